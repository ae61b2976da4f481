//! `kernel_alloc`: slab-like unmovable kernel allocations (`GFP_KERNEL`) at a Poisson rate,
//! each freed after an exponentially distributed lifetime.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::spec::Check;
use super::task::Cx;
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::owner::{pfn_slot, OwnerId, SLOT_EMPTY};
use crate::page::Kind;
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelAlloc {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    pub rate_allocs_per_s: f64,
    #[serde(default)]
    pub order: u32,
    pub lifetime_mean_ns: u64,
    #[serde(skip)]
    state: KernelAllocState,
}

/// The allocations in flight.
#[derive(Clone, Debug, Default)]
struct KernelAllocState {
    next: u64,
    mean_interval: f64,
    /// `(free time, slot)` of live allocations, earliest first.
    frees: BinaryHeap<Reverse<(u64, u32)>>,
    /// Slots of the owner's mapping free for reuse.
    free_slots: Vec<u32>,
}

/// What the allocator does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KernelAllocOp {
    Alloc,
    /// Free the allocation whose lifetime ended first.
    Free,
}

impl KernelAlloc {
    /// A slab-like unmovable allocation, freed after an exponential lifetime.
    fn alloc(&mut self, cx: &mut Cx<'_>) {
        let (owner, s) = (cx.owner, &mut self.state);
        let m = &mut *cx.m;
        let gap = m.rng.exp(s.mean_interval).round() as u64;
        s.next = m.now + gap.max(1);
        let index = match s.free_slots.pop() {
            Some(i) => i,
            None => {
                let map = &mut m.owners.list[owner as usize].map;
                map.push(SLOT_EMPTY);
                map.len() as u32 - 1
            }
        };
        match m.alloc_for_slot(owner, Gfp::KERNEL, self.order, Kind::Kernel, index) {
            Ok(pfn) => {
                m.owners.list[owner as usize].map[index as usize] = pfn_slot(pfn);
                let life = (m.rng.exp(self.lifetime_mean_ns as f64).round() as u64).max(1);
                let free_at = m.now + life;
                cx.stats.populated += 1;
                s.frees.push(Reverse((free_at, index)));
            }
            Err(_) => {
                cx.stats.alloc_failures += 1;
                s.free_slots.push(index);
            }
        }
    }

    /// `kfree` of the allocation whose lifetime ended.
    fn free(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        let Some(Reverse((_, index))) = s.frees.pop() else {
            return;
        };
        s.free_slots.push(index);
        let freed = cx.m.free_owned(cx.owner, index);
        debug_assert!(freed.is_ok(), "{freed:?}");
    }
}

impl Task for KernelAlloc {
    const KIND: &'static str = "kernel_alloc";
    type Op = KernelAllocOp;

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.rate("rate_allocs_per_s", self.rate_allocs_per_s, false)?;
        check.positive("lifetime_mean_ns", self.lifetime_mean_ns)?;
        let order = self.order;
        if order > crate::config::MAX_PAGE_ORDER {
            return check.bad(format!("order {order} is above MAX_PAGE_ORDER (10)"));
        }
        Ok(())
    }

    /// Its mapping grows as it allocates (slots are reused once freed).
    fn start(&mut self, _m: &mut Machine, _owner: OwnerId, start: u64) {
        self.state = KernelAllocState {
            next: start,
            mean_interval: 1e9 / self.rate_allocs_per_s,
            frees: BinaryHeap::new(),
            free_slots: Vec::new(),
        };
    }

    /// The next allocation, or the free due before it.
    fn next_op(&self, free_at: u64) -> Option<(u64, KernelAllocOp)> {
        let s = &self.state;
        let alloc = (free_at.max(s.next), KernelAllocOp::Alloc);
        match s.frees.peek() {
            Some(Reverse((free, _))) if *free <= alloc.0 => Some((*free, KernelAllocOp::Free)),
            _ => Some(alloc),
        }
    }

    fn run(&mut self, op: KernelAllocOp, cx: &mut Cx<'_>) {
        match op {
            KernelAllocOp::Alloc => self.alloc(cx),
            KernelAllocOp::Free => self.free(cx),
        }
    }

    /// Frees happen in whatever context drops the last reference, not in the task's.
    fn task_bound(op: KernelAllocOp) -> bool {
        op != KernelAllocOp::Free
    }

    fn stop(&mut self) {
        self.state.frees.clear();
        self.state.free_slots.clear();
    }

    /// A kernel allocation may be of any order.
    fn maps_only_order0(&self) -> bool {
        false
    }
}
