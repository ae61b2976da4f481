//! `longterm_pinner`: RDMA/vfio/io_uring fixed buffers: anonymous pages allocated at start
//! and pinned FOLL_LONGTERM (with `migrate_on_longterm_pin`, migrated out of CMA first),
//! until `hold_ns` has passed or the workload stops.
//!
//! By default each page is faulted in by its pin; with `populate_first` the whole buffer is
//! faulted in before the first pin (as `ib_umem_get` registers a populated buffer). The
//! difference matters to the fix's cost: a page migrated out frees its CMA frame to the
//! per-CPU list, and the next fault on that CPU takes the same frame back, so faulting and
//! pinning page by page migrates nearly every page, where pinning a populated buffer
//! migrates only the pages that were in CMA.

use serde::{Deserialize, Serialize};

use super::spec::Check;
use super::task::Cx;
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::gup::HoldKind;
use crate::owner::OwnerId;
use crate::page::Kind;
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongtermPinner {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    pub pages: u32,
    /// Unpin after this long (None: hold until the workload stops).
    #[serde(default)]
    pub hold_ns: Option<u64>,
    /// Fault the whole buffer in first (the application fills it), then pin it (as
    /// `ib_umem_get` registers a populated buffer). Without it, each page is faulted in
    /// by the pin itself, one page at a time.
    #[serde(default)]
    pub populate_first: bool,
    #[serde(skip)]
    state: PinnerState,
}

/// A pinner's progress.
#[derive(Clone, Debug, Default)]
struct PinnerState {
    populated: u32,
    pinned: u32,
}

/// What a long-term pinner does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PinnerOp {
    /// Fault in the next page of a buffer filled before it is pinned.
    Populate,
    /// Long-term pin the next page (faulting it in if it is not resident).
    Pin,
}

impl LongtermPinner {
    /// Pin the next page of the buffer FOLL_LONGTERM, faulting it in first if the buffer was
    /// not populated.
    fn pin(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        let index = s.pinned;
        s.pinned += 1;
        // A populated page is only looked up (faulted back in if it was swapped out).
        let write = index >= s.populated;
        let r =
            cx.m.touch_slot(cx.owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, write);
        let Some(pfn) = cx.record(r) else {
            return;
        };
        let pinned =
            cx.m.take_hold(pfn, cx.owner, HoldKind::LongtermPin, self.hold_ns);
        cx.count_hold(&pinned);
    }
}

impl Task for LongtermPinner {
    const KIND: &'static str = "longterm_pinner";
    type Op = PinnerOp;

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.positive("pages", self.pages as u64)?;
        if let Some(h) = self.hold_ns {
            check.positive("hold_ns", h)?;
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, _start: u64) {
        m.reserve_slots(owner, self.pages);
        self.state = PinnerState::default();
    }

    fn next_op(&self, free_at: u64) -> Option<(u64, PinnerOp)> {
        let s = &self.state;
        if self.populate_first && s.populated < self.pages {
            Some((free_at, PinnerOp::Populate))
        } else {
            (s.pinned < self.pages).then_some((free_at, PinnerOp::Pin))
        }
    }

    fn run(&mut self, op: PinnerOp, cx: &mut Cx<'_>) {
        match op {
            PinnerOp::Populate => cx.populate_next(&mut self.state.populated),
            PinnerOp::Pin => self.pin(cx),
        }
    }
}
