//! Deferred initialisation of the frames (`CONFIG_DEFERRED_STRUCT_PAGE_INIT`; 6.1 keeps it in
//! `mm/page_alloc.c`: `deferred_init_memmap`, `deferred_free_range`, `deferred_grow_zone`;
//! since 6.4 it lives in `mm/mm_init.c`).
//!
//! Boot hands most of memory to the buddy allocator as top-order blocks, lowest first, at
//! the tail of their zone's MAX_ORDER MOVABLE free list (`Machine::free_range_at_boot`).
//! Putting a block on the list writes its head frame, and the head frames are
//! `4 MiB / 4 KiB * 16 B` = 16 KiB apart: every one is a host page fault, 16,384 of them
//! (about 21 ms) to boot a 64 GiB board that may never use most of them. The kernel defers
//! the same work on large machines: with `CONFIG_DEFERRED_STRUCT_PAGE_INIT` only the start
//! of a node's memory is initialised at boot; the `pgdatinit` kthreads initialise the rest
//! and free it to the lists' tails (`deferred_init_memmap` -> `deferred_free_range` ->
//! `__free_pages_core`, `FPI_TO_TAIL`), and an allocation that finds a zone short before they
//! are done initialises more on the spot (`get_page_from_freelist` -> `deferred_grow_zone`).
//!
//! Reproduced: the free lists as they stand once the init is done (`page_alloc_init_late`,
//! before `init` runs): the deferred blocks come after every block already on their list,
//! lowest first, and count as free from boot (`nr_free`, `NR_FREE_PAGES`).
//!
//! Not reproduced: the `pgdatinit` kthreads, the part of memory 6.1 initialises before them,
//! and the time either takes (nothing is simulated before `init`). A deferred block's head
//! frame is written when something first needs it: an allocation that reaches the end of
//! the list's written blocks (one block, as `deferred_grow_zone` grows a zone by what the
//! request needs), a block put at the list's tail (all of them first, so that it goes after
//! them), or a walk over frames by pfn: the isolation of a range (`start_isolate_page_range`,
//! which every contiguous allocation begins with) and `offline_pages` write every block up
//! to the walk's end. What is simulated is therefore exactly what an eagerly initialised
//! machine does (`MachineConfig::deferred_struct_page_init` off; a test runs both side by
//! side); only the host's work moves, to where the memory is first used.

use crate::config::MAX_PAGE_ORDER;
use crate::machine::Machine;
use crate::page::{Kind, Page};
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;

/// Frames per top-order block.
const BLOCK: u32 = 1 << MAX_PAGE_ORDER;

/// A zone's deferred blocks: the free top-order MOVABLE blocks `[next, end)`, one every
/// [`BLOCK`] frames, that follow the written blocks of the zone's MAX_ORDER MOVABLE free list;
/// their frames are still the zero bits of `Page::FREE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeferredBlocks {
    pub next: Pfn,
    pub end: Pfn,
}

impl DeferredBlocks {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.next >= self.end
    }

    /// How many blocks are deferred.
    #[inline]
    pub fn len(&self) -> u32 {
        (self.end.0.saturating_sub(self.next.0)) / BLOCK
    }

    /// Whether frame `pfn` lies in a deferred block.
    #[inline]
    pub fn contains(&self, pfn: Pfn) -> bool {
        pfn >= self.next && pfn < self.end
    }

    /// Whether these are the blocks that follow the free list `(order, mt)`.
    #[inline]
    pub fn follow(&self, order: u32, mt: Migratetype) -> bool {
        order == MAX_PAGE_ORDER && mt == Migratetype::Movable && !self.is_empty()
    }
}

impl Machine {
    /// Boot's free of the top-order MOVABLE block at `pfn` of zone `zi`, deferred: counted
    /// free at once, its head frame written when first needed. A block that does not follow
    /// the zone's deferred ones is freed at once (boot frees blocks lowest first, so every
    /// block of a zone but those at its edges is deferred).
    pub(crate) fn free_boot_block_deferred(&mut self, zi: usize, pfn: Pfn) {
        let deferred = &mut self.zones[zi].deferred;
        if deferred.is_empty() {
            *deferred = DeferredBlocks {
                next: pfn,
                end: pfn,
            };
        } else if deferred.end != pfn {
            self.free_one_page_fpi(pfn, MAX_PAGE_ORDER, crate::page_alloc::Fpi::ToTail);
            return;
        }
        self.zones[zi].deferred.end += BLOCK;
        self.zones[zi].free_area[MAX_PAGE_ORDER as usize].nr_free += 1;
        self.account_freepages(zi, BLOCK as i64, Migratetype::Movable);
    }

    /// `deferred_grow_zone`: write the head frames of zone `zi`'s deferred blocks below
    /// `upto` and put them at the tail of their list, lowest first (they were counted free
    /// at boot).
    #[cold]
    pub(crate) fn deferred_grow_zone(&mut self, zi: usize, upto: Pfn) {
        let order = MAX_PAGE_ORDER;
        let list = Migratetype::Movable.index();
        while self.zones[zi].deferred.next < upto.min(self.zones[zi].deferred.end) {
            let pfn = self.zones[zi].deferred.next;
            self.zones[zi].deferred.next += BLOCK;
            debug_assert_eq!(self.pages[pfn], Page::FREE);
            self.pages[pfn].make_free(Kind::Buddy, order);
            self.pageblocks.buddy_added(pfn);
            self.zones[zi].free_area[order as usize].lists[list].push_tail(&mut self.pages, pfn);
        }
    }

    /// Initialise every deferred block that a walk over the frames `[.., end)` could see
    /// (in every zone: the blocks below `end`), before the walk reads the frames by pfn.
    #[inline]
    pub(crate) fn deferred_init_upto(&mut self, end: Pfn) {
        for zi in 0..self.zones.len() {
            let deferred = self.zones[zi].deferred;
            if !deferred.is_empty() && deferred.next < end {
                self.deferred_grow_zone(zi, end);
            }
        }
    }

    /// `page_alloc_init_late`'s wait for the deferred init: every block written. Nothing
    /// simulated changes; a caller that reads the frames directly (a test, a dump of every
    /// frame) sees every free block's head.
    pub fn deferred_init_all(&mut self) {
        self.deferred_init_upto(self.end_pfn());
    }

    /// The frame at `pfn` as an eagerly initialised machine holds it: a deferred block's
    /// head reads as the top-order buddy it stands for (its list links left out).
    pub fn frame(&self, pfn: Pfn) -> Page {
        let zone = &self.zones[self.zone_idx(pfn)];
        let mut page = self.pages[pfn];
        if zone.deferred.contains(pfn) && pfn.is_aligned(MAX_PAGE_ORDER) {
            page.make_free(Kind::Buddy, MAX_PAGE_ORDER);
        }
        page
    }
}
