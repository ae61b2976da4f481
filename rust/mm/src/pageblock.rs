//! Pageblocks and migratetypes (`include/linux/mmzone.h`, `mm/page_alloc.c`
//! `set_pageblock_migratetype`).
//!
//! Memory is grouped into pageblocks of 2^pageblock_order pages; each has one migratetype,
//! and a free buddy block always sits on the free list of its pageblock's migratetype
//! (the strict free-list accounting of Linux 6.10+; older kernels let a few pages drift,
//! which cmadev does not reproduce).

use serde::Serialize;

use crate::pfn::Pfn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[repr(u8)]
pub enum Migratetype {
    Unmovable = 0,
    Movable = 1,
    Reclaimable = 2,
    Cma = 3,
    Isolate = 4,
}

pub const MIGRATE_TYPES: usize = 5;
/// Types with a per-CPU list (`MIGRATE_PCPTYPES`): a freed CMA page goes on the MOVABLE
/// list.
pub const MIGRATE_PCPTYPES: usize = 3;

impl Migratetype {
    pub const ALL: [Migratetype; MIGRATE_TYPES] = [
        Migratetype::Unmovable,
        Migratetype::Movable,
        Migratetype::Reclaimable,
        Migratetype::Cma,
        Migratetype::Isolate,
    ];

    /// The name `/proc/pagetypeinfo` prints.
    pub fn name(self) -> &'static str {
        match self {
            Migratetype::Unmovable => "Unmovable",
            Migratetype::Movable => "Movable",
            Migratetype::Reclaimable => "Reclaimable",
            Migratetype::Cma => "CMA",
            Migratetype::Isolate => "Isolate",
        }
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// `migratetype_is_mergeable`: buddies of these types may merge across pageblocks.
    pub fn is_mergeable(self) -> bool {
        (self as usize) < MIGRATE_PCPTYPES
    }

    /// The fallback order of `__rmqueue_fallback` (`fallbacks[]` in `mm/page_alloc.c`).
    /// CMA and ISOLATE blocks are never stolen.
    pub fn fallbacks(self) -> &'static [Migratetype] {
        match self {
            Migratetype::Unmovable => &[Migratetype::Reclaimable, Migratetype::Movable],
            Migratetype::Movable => &[Migratetype::Reclaimable, Migratetype::Unmovable],
            Migratetype::Reclaimable => &[Migratetype::Unmovable, Migratetype::Movable],
            Migratetype::Cma | Migratetype::Isolate => &[],
        }
    }
}

/// One migratetype per pageblock (the kernel's `pageblock_flags` bitmap), and the number of
/// free buddy heads in each (the model's own bookkeeping, not the kernel's: a pageblock with
/// none has no free block to move or merge, so `move_freepages_block` and the undo of an
/// isolation need not scan its frames; `check_invariants` counts them again).
#[derive(Clone, Debug)]
pub struct Pageblocks {
    pub order: u32,
    types: Vec<Migratetype>,
    buddies: Vec<u16>,
}

impl Pageblocks {
    pub fn new(nr_pages: u64, order: u32) -> Self {
        let n = nr_pages.div_ceil(1 << order) as usize;
        Pageblocks {
            order,
            types: vec![Migratetype::Movable; n],
            buddies: vec![0; n],
        }
    }

    /// Free buddy heads (`PageBuddy` frames) in the pageblock of `pfn`.
    #[inline]
    pub fn buddies(&self, pfn: Pfn) -> u16 {
        self.buddies[(pfn.0 >> self.order) as usize]
    }

    /// A frame of the pageblock of `pfn` became a buddy head (`add_to_free_list`).
    #[inline]
    pub(crate) fn buddy_added(&mut self, pfn: Pfn) {
        self.buddies[(pfn.0 >> self.order) as usize] += 1;
    }

    /// A buddy head of the pageblock of `pfn` left its free list.
    #[inline]
    pub(crate) fn buddy_removed(&mut self, pfn: Pfn) {
        self.buddies[(pfn.0 >> self.order) as usize] -= 1;
    }

    #[inline]
    pub fn nr_pages(&self) -> u32 {
        1 << self.order
    }

    #[inline]
    pub fn get(&self, pfn: Pfn) -> Migratetype {
        self.types[(pfn.0 >> self.order) as usize]
    }

    #[inline]
    pub fn set(&mut self, pfn: Pfn, mt: Migratetype) {
        self.types[(pfn.0 >> self.order) as usize] = mt;
    }

    /// First pfn of the pageblock holding `pfn` (`pageblock_start_pfn`).
    #[inline]
    pub fn start(&self, pfn: Pfn) -> Pfn {
        pfn.align_down(self.order)
    }

    /// First pfn after the pageblock holding `pfn - 1`, rounding up (`pageblock_end_pfn`
    /// applied to an exclusive end).
    #[inline]
    pub fn align_up(&self, pfn: Pfn) -> Pfn {
        let mask = self.nr_pages() - 1;
        Pfn((pfn.0 + mask) & !mask)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}
