//! `direct_io`: `O_DIRECT` I/O on the task's own anonymous buffer.
//!
//! Reproduced: the buffer is populated at start; then each I/O pins a run of buffer pages
//! with `pin_user_pages` (FOLL_PIN) for a drawn time (the device's transfer), and the engine
//! unpins them together when it completes (`unpin_user_pages`, as a bio's completion
//! releases all its pages). I/Os are submitted asynchronously (Poisson arrivals at the given
//! rate); the task does not wait for them. With `migrate_on_pin`, a pin first tries to
//! migrate a CMA page out (charged to the task, counted in `migrations_charged`); a pin that
//! fails is counted in `pin_failures`. `hold` chooses how the I/O holds its pages: `pin`
//! (FOLL_PIN, the default), `get_page` (a plain reference, as direct I/O did before its
//! FOLL_PIN conversion: `warn_cma_pins` warns, `migrate_on_pin` does not migrate) or
//! `get_page_short` (the annotated brief reference, exempt from `warn_cma_pins`).

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

/// How long each direct-I/O pin lasts.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PinDistribution {
    /// Exponentially distributed around `pin_mean_ns` (I/O completion times).
    Exponential,
    /// Always `pin_mean_ns`.
    Fixed,
}

fn default_pin_distribution() -> PinDistribution {
    PinDistribution::Exponential
}

/// How a direct I/O holds its buffer pages while the transfer is in flight.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum IoHold {
    /// `pin_user_pages` (FOLL_PIN): direct I/O since the block layer moved to
    /// `iov_iter_extract_pages` (David Howells, 6.3 for bio, 6.5 for the old `direct-io.c`).
    #[default]
    #[serde(alias = "FOLL_PIN")]
    Pin,
    /// `get_user_pages` + `put_page`: a plain page reference, as direct I/O held its pages
    /// before the FOLL_PIN conversion (and as in the 2015 CMA discussion).
    GetPage,
    /// The same reference annotated as brief (`get_page_short`, Peter Zijlstra's proposal):
    /// exempt from `warn_cma_pins`.
    GetPageShort,
}

impl IoHold {
    pub fn hold_kind(self) -> HoldKind {
        match self {
            IoHold::Pin => HoldKind::Pin,
            IoHold::GetPage => HoldKind::Ref,
            IoHold::GetPageShort => HoldKind::RefShort,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectIo {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    /// The task's own anonymous I/O buffer, populated at start.
    pub buffer_pages: u32,
    pub ios_per_s: f64,
    pub pages_per_io: u32,
    pub pin_mean_ns: u64,
    #[serde(default = "default_pin_distribution")]
    pub pin_distribution: PinDistribution,
    /// `pin` (FOLL_PIN, the default), `get_page` or `get_page_short`.
    #[serde(default)]
    pub hold: IoHold,
    #[serde(skip)]
    state: DirectIoState,
}

/// A direct-I/O task's progress.
#[derive(Clone, Debug, Default)]
struct DirectIoState {
    populated: u32,
    next: u64,
    mean_interval: f64,
}

/// What a direct-I/O task does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirectIoOp {
    /// Fault in the next page of the buffer, at start.
    Populate,
    /// Submit one I/O.
    Io,
}

impl DirectIo {
    /// One direct I/O: `pin_user_pages` on a run of buffer pages, unpinned when the I/O
    /// completes (the holds' scheduled release).
    fn io(&mut self, cx: &mut Cx<'_>) {
        let owner = cx.owner;
        let m = &mut *cx.m;
        let gap = m.rng.exp(self.state.mean_interval).round() as u64;
        self.state.next = m.now + gap.max(1);
        let duration = match self.pin_distribution {
            PinDistribution::Fixed => self.pin_mean_ns,
            PinDistribution::Exponential => {
                (m.rng.exp(self.pin_mean_ns as f64).round() as u64).max(1)
            }
        };
        let first = m.rng.below(self.buffer_pages as u64) as u32;
        let mut held = Vec::with_capacity(self.pages_per_io as usize);
        for k in 0..self.pages_per_io {
            let index = (first + k) % self.buffer_pages;
            // GUP faults the page in first if it is not resident (swapped out).
            let r =
                cx.m.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, false);
            let Some(pfn) = cx.record(r) else {
                continue;
            };
            let pinned = cx.m.take_hold(pfn, owner, self.hold.hold_kind(), None);
            cx.count_hold(&pinned);
            if let Ok((hold_id, _)) = pinned {
                held.push(hold_id);
            }
        }
        if !held.is_empty() {
            let at = cx.m.now + duration;
            cx.m.release_holds_at(held, at);
        }
    }
}

impl Task for DirectIo {
    const KIND: &'static str = "direct_io";
    type Op = DirectIoOp;

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        let (buffer_pages, pages_per_io) = (self.buffer_pages, self.pages_per_io);
        check.positive("buffer_pages", buffer_pages as u64)?;
        check.rate("ios_per_s", self.ios_per_s, false)?;
        check.positive("pages_per_io", pages_per_io as u64)?;
        check.positive("pin_mean_ns", self.pin_mean_ns)?;
        if pages_per_io > buffer_pages {
            return check.bad(format!(
                "pages_per_io ({pages_per_io}) is larger than buffer_pages \
                 ({buffer_pages}): an I/O pins part of the buffer"
            ));
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        m.reserve_slots(owner, self.buffer_pages);
        self.state = DirectIoState {
            populated: 0,
            next: start,
            mean_interval: 1e9 / self.ios_per_s,
        };
    }

    fn next_op(&self, free_at: u64) -> Option<(u64, DirectIoOp)> {
        let s = &self.state;
        Some(if s.populated < self.buffer_pages {
            (free_at, DirectIoOp::Populate)
        } else {
            (free_at.max(s.next), DirectIoOp::Io)
        })
    }

    fn run(&mut self, op: DirectIoOp, cx: &mut Cx<'_>) {
        match op {
            DirectIoOp::Populate => cx.populate_next(&mut self.state.populated),
            DirectIoOp::Io => self.io(cx),
        }
    }
}
