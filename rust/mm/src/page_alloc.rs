//! The buddy allocator (`mm/page_alloc.c`): free lists per zone x order x migratetype,
//! `__rmqueue_smallest`, CMA fallback, `__rmqueue_fallback` with pageblock stealing,
//! `__free_one_page` with coalescing, per-CPU page lists and their drain, and the fast and
//! slow paths of `__alloc_pages`.
//!
//! Reproduced from Linux 6.10 (6.1 where it says so) unless a placement says otherwise:
//! - a free block sits on the free list of its pageblock's migratetype; free pages in
//!   ISOLATE pageblocks are not counted in NR_FREE_PAGES (`account_freepages`);
//! - buddies merge across pageblocks only when both types are mergeable
//!   (UNMOVABLE/MOVABLE/RECLAIMABLE), and the buddy's blocks then take the merged type;
//! - per-CPU lists hold order-0 pages only (as before 5.13), one list per
//!   UNMOVABLE/MOVABLE/RECLAIMABLE; a freed CMA page goes on the MOVABLE list; a movable
//!   request that may not use CMA bypasses the lists (`rmqueue`, 5.x);
//! - their size is 6.1's (5.14+): `high` is the zone's low watermark split across the CPUs
//!   (`zone_highsize`), a bulk free returns `batch` pages doubled for each bulk free without
//!   an allocation in between (`nr_pcp_free`, `free_factor`), emptying one list at a time
//!   from its tail (`free_pcppages_bulk`), and while kswapd runs a list keeps at most
//!   `4 * batch` pages (`nr_pcp_high`, `ZONE_RECLAIM_ACTIVE`);
//! - `__rmqueue_fallback` takes the largest fallback block, claims its pageblock when
//!   `can_steal_fallback` and enough of it is free or alike, else takes a single page.
//!
//! Simplified: no highatomic reserves, no ALLOC_NOFRAGMENT, no watermark boosting, no
//! compaction (a high-order request that finds no block after reclaim fails). The slow
//! path's reclaim retries and the OOM killer are in `oom_kill.rs`.

use crate::config::MAX_PAGE_ORDER;
use crate::error::Errno;
use crate::gfp::Gfp;
use crate::list::List;
use crate::owner::OwnerId;
use crate::page::{pg, Kind, Page};
use crate::pageblock::{Migratetype, MIGRATE_PCPTYPES};
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::zone::{Wmark, ZoneId};
use crate::Machine;

/// `struct per_cpu_pages` (order-0 lists only).
#[derive(Clone, Debug, Default)]
pub struct PerCpuPages {
    pub lists: [List; MIGRATE_PCPTYPES],
    pub count: u32,
    pub high: u32,
    pub batch: u32,
    /// `pcp->free_factor`: how many times in a row the list was bulk-freed without an
    /// allocation in between (each doubles the next bulk free, up to
    /// `PCP_BATCH_SCALE_MAX`).
    pub free_factor: u8,
}

/// `CONFIG_PCP_BATCH_SCALE_MAX` (default 5): a bulk free returns at most `batch << 5` pages.
pub const PCP_BATCH_SCALE_MAX: u8 = 5;

impl PerCpuPages {
    /// `zone_batchsize`: about 0.1% of the zone or 1 MiB, whichever is smaller, quartered
    /// and clamped to 2^n - 1 (6.1, unchanged since 2.6).
    pub fn batchsize(managed_pages: u64) -> u32 {
        let batch = ((managed_pages >> 10).min(256) / 4).max(1);
        let x = batch + batch / 2;
        let rounddown_pow2 = 1u64 << (63 - x.leading_zeros());
        (rounddown_pow2 as u32).saturating_sub(1).max(1)
    }

    /// `zone_set_pageset_high_and_batch` (5.14+, Mel Gorman's "mm/page_alloc: scale the
    /// number of pages that are batch freed" series): `batch` as `zone_batchsize`, `high`
    /// as `zone_highsize`: the zone's low watermark split across the node's CPUs, at least
    /// `4 * batch` (before 5.14 it was `6 * batch`, a few hundred KiB per CPU; since, the
    /// lists together may hold the whole low watermark). Returns `(high, batch)`.
    pub fn sizes(managed_pages: u64, low_wmark: u64, cpus: u32) -> (u32, u32) {
        let batch = Self::batchsize(managed_pages);
        let share = (low_wmark / cpus.max(1) as u64).min(u32::MAX as u64) as u32;
        (share.max(batch << 2), batch)
    }

    /// `nr_pcp_free` (6.1): how many pages a bulk free returns when the list reached its
    /// high mark. Doubles with each bulk free not separated by an allocation, keeps at
    /// least `batch` pages on the list, and returns at least `batch`.
    #[inline]
    fn nr_pcp_free(&mut self, high: u32) -> u32 {
        let batch = self.batch;
        if high < batch {
            return 1;
        }
        let (min_nr_free, max_nr_free) = (batch, high - batch);
        let scaled = batch << self.free_factor;
        if scaled < max_nr_free && self.free_factor < PCP_BATCH_SCALE_MAX {
            self.free_factor += 1;
        }
        scaled.min(max_nr_free).max(min_nr_free)
    }
}

/// The `fpi_t` flags of a free that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fpi {
    /// `FPI_NONE`: head or tail as `buddy_merge_likely` says.
    None,
    /// `FPI_TO_TAIL`: memory handed to the allocator at boot or when onlined
    /// (`__free_pages_core`), and free blocks put back after isolation
    /// (`__putback_isolated_page`), go to the tail (5.10+): untouched memory is used last.
    ToTail,
}

/// How a request is allowed to allocate (the kernel's `alloc_flags`).
#[derive(Clone, Copy, Debug)]
pub struct AllocFlags {
    pub wmark: Wmark,
    /// `ALLOC_CMA`.
    pub cma: bool,
}

/// The request being served: everything `get_page_from_freelist` needs.
#[derive(Clone, Copy, Debug)]
pub struct AllocRequest {
    pub order: u32,
    pub gfp: Gfp,
    pub owner: OwnerId,
    pub cpu: u32,
}

/// `nr_pcp_high` (6.1): while kswapd reclaims the node (`ZONE_RECLAIM_ACTIVE`, set by
/// `balance_pgdat`), the lists keep at most `4 * batch` pages, so that what reclaim frees
/// reaches the buddy lists.
#[inline]
fn nr_pcp_high(pcp: &PerCpuPages, reclaim_active: bool) -> u32 {
    if reclaim_active {
        (pcp.batch << 2).min(pcp.high)
    } else {
        pcp.high
    }
}

/// The first buddy head in `[from, end)`, or `end`: the frames before it are looked at one
/// by one, as the scans over a pageblock's free blocks (`move_freepages_block`) step over the
/// frames between blocks.
#[inline]
pub(crate) fn next_buddy_head(pages: &[Page], from: Pfn, end: Pfn) -> Pfn {
    let frames = &pages[from.idx()..end.idx()];
    match frames.iter().position(|f| f.kind() == Kind::Buddy) {
        Some(i) => from + i as u32,
        None => end,
    }
}

impl Machine {
    // ----- free lists -------------------------------------------------------------------

    /// Count free pages in or out of a zone's counters (`account_freepages`).
    #[inline]
    pub(crate) fn account_freepages(&mut self, zi: usize, nr: i64, mt: Migratetype) {
        if mt == Migratetype::Isolate {
            return;
        }
        let zone = &mut self.zones[zi];
        zone.nr_free_pages = (zone.nr_free_pages as i64 + nr) as u64;
        if mt == Migratetype::Cma {
            zone.nr_free_cma = (zone.nr_free_cma as i64 + nr) as u64;
        }
    }

    /// Put the free block at `pfn` on its free list: the head becomes PageBuddy with its
    /// order, every other frame of the block is a plain free frame. `add_to_free_list`
    /// puts it at the list's head (taken first by `__rmqueue_smallest`),
    /// `add_to_free_list_tail` at its tail (taken last).
    #[inline]
    fn add_to_free_list(&mut self, zi: usize, pfn: Pfn, order: u32, mt: Migratetype, tail: bool) {
        if tail && self.zones[zi].deferred.follow(order, mt) {
            // After the deferred blocks, as after the eagerly written ones (`mm_init.rs`).
            let end = self.zones[zi].deferred.end;
            self.deferred_grow_zone(zi, end);
        }
        self.pages[pfn].make_free(Kind::Buddy, order);
        self.pageblocks.buddy_added(pfn);
        let area = &mut self.zones[zi].free_area[order as usize];
        if tail {
            area.lists[mt.index()].push_tail(&mut self.pages, pfn);
        } else {
            area.lists[mt.index()].push_head(&mut self.pages, pfn);
        }
        area.nr_free += 1;
        self.account_freepages(zi, 1 << order, mt);
    }

    #[inline]
    pub(crate) fn del_page_from_free_list(
        &mut self,
        zi: usize,
        pfn: Pfn,
        order: u32,
        mt: Migratetype,
    ) {
        debug_assert!(
            !self.zones[zi].deferred.contains(pfn),
            "{pfn:#x} is deferred"
        );
        let area = &mut self.zones[zi].free_area[order as usize];
        area.lists[mt.index()].remove(&mut self.pages, pfn);
        area.nr_free -= 1;
        self.pages[pfn].make_free(Kind::Free, 0);
        self.pageblocks.buddy_removed(pfn);
        self.account_freepages(zi, -(1 << order), mt);
    }

    /// `expand`: split a block of order `high` down to `low`, giving back the upper halves.
    #[inline]
    pub(crate) fn expand(&mut self, zi: usize, pfn: Pfn, low: u32, mut high: u32, mt: Migratetype) {
        while high > low {
            high -= 1;
            self.add_to_free_list(zi, pfn + (1 << high), high, mt, false);
        }
    }

    /// The first block on the free list `(order, mt)` of zone `zi` (`NIL` if none): a
    /// deferred block, its head frame written now, when the written ones are all taken
    /// (`deferred_grow_zone`).
    #[inline]
    pub(crate) fn free_list_head(&mut self, zi: usize, order: u32, mt: Migratetype) -> Pfn {
        let head = self.zones[zi].free_area[order as usize].lists[mt.index()].head;
        if head == crate::page::NIL && self.zones[zi].deferred.follow(order, mt) {
            let first = self.zones[zi].deferred.next;
            self.deferred_grow_zone(zi, first + 1);
            return first;
        }
        head
    }

    /// `__rmqueue_smallest`: the smallest free block of `mt` that fits.
    fn rmqueue_smallest(&mut self, zi: usize, order: u32, mt: Migratetype) -> Option<Pfn> {
        for current in order..=MAX_PAGE_ORDER {
            let pfn = self.free_list_head(zi, current, mt);
            if pfn != crate::page::NIL {
                self.del_page_from_free_list(zi, pfn, current, mt);
                self.expand(zi, pfn, order, current, mt);
                return Some(pfn);
            }
        }
        None
    }

    /// `__rmqueue_cma_fallback`.
    #[inline]
    fn rmqueue_cma_fallback(&mut self, zi: usize, order: u32) -> Option<Pfn> {
        self.rmqueue_smallest(zi, order, Migratetype::Cma)
    }

    /// `__rmqueue`: where a movable request that may use CMA takes its pages is the
    /// placement policy (`placement.rs`).
    fn rmqueue_one(
        &mut self,
        zi: usize,
        order: u32,
        mt: Migratetype,
        flags: AllocFlags,
    ) -> Option<Pfn> {
        if flags.cma && self.cma_first(zi) {
            if let Some(pfn) = self.rmqueue_cma_fallback(zi, order) {
                return Some(pfn);
            }
        }
        if let Some(pfn) = self.rmqueue_smallest(zi, order, mt) {
            return Some(pfn);
        }
        if self.cma_fallback_2014() {
            return self.rmqueue_fallback_2014(zi, order, mt, flags.cma);
        }
        if flags.cma {
            if let Some(pfn) = self.rmqueue_cma_fallback(zi, order) {
                return Some(pfn);
            }
        }
        self.rmqueue_fallback(zi, order, mt)
    }

    /// `can_steal_fallback`.
    pub(crate) fn can_steal_fallback(&self, order: u32, start_mt: Migratetype) -> bool {
        let pb = self.pageblocks.order;
        order >= pb / 2 || matches!(start_mt, Migratetype::Reclaimable | Migratetype::Unmovable)
    }

    /// `find_suitable_fallback`: the first fallback type with a free block of this order.
    fn find_suitable_fallback(
        &self,
        zi: usize,
        order: u32,
        start_mt: Migratetype,
    ) -> Option<Migratetype> {
        let zone = &self.zones[zi];
        start_mt
            .fallbacks()
            .iter()
            .copied()
            .find(|&fb| !zone.free_list_empty(order, fb))
    }

    /// `__rmqueue_fallback` (6.10): steal from another migratetype, largest block first.
    fn rmqueue_fallback(&mut self, zi: usize, order: u32, start_mt: Migratetype) -> Option<Pfn> {
        let mut found = None;
        for current in (order..=MAX_PAGE_ORDER).rev() {
            if let Some(fb) = self.find_suitable_fallback(zi, current, start_mt) {
                let can_steal = self.can_steal_fallback(current, start_mt);
                if !can_steal && start_mt == Migratetype::Movable && current > order {
                    // find_smallest: a movable request does not break up a large block it
                    // cannot claim.
                    found = (order..=MAX_PAGE_ORDER).find_map(|o| {
                        self.find_suitable_fallback(zi, o, start_mt)
                            .map(|fb| (o, fb, false))
                    });
                } else {
                    found = Some((current, fb, can_steal));
                }
                break;
            }
        }
        let (current, fallback_mt, can_steal) = found?;
        let pfn = self.free_list_head(zi, current, fallback_mt);
        Some(self.steal_suitable_fallback(zi, pfn, current, order, start_mt, can_steal))
    }

    /// `steal_suitable_fallback` (6.10): claim whole pageblocks for large blocks, or the
    /// pageblock when at least half of it is free or holds pages of the same mobility.
    pub(crate) fn steal_suitable_fallback(
        &mut self,
        zi: usize,
        pfn: Pfn,
        current: u32,
        order: u32,
        start_mt: Migratetype,
        whole_block: bool,
    ) -> Pfn {
        let block_mt = self.pageblocks.get(pfn);
        let pb_order = self.pageblocks.order;
        if current >= pb_order {
            self.del_page_from_free_list(zi, pfn, current, block_mt);
            for pb in Pfn::range_step(pfn, pfn + (1 << current), 1 << pb_order) {
                self.pageblocks.set(pb, start_mt);
            }
            self.expand(zi, pfn, order, current, start_mt);
            return pfn;
        }
        if whole_block {
            let (free, movable) = self.count_pageblock(pfn);
            let alike = if start_mt == Migratetype::Movable {
                movable
            } else if block_mt == Migratetype::Movable {
                (1u32 << pb_order) - (free + movable)
            } else {
                0
            };
            if free + alike >= 1 << (pb_order - 1) {
                self.move_freepages_block(pfn, start_mt);
                return self
                    .rmqueue_smallest(zi, order, start_mt)
                    .expect("the claimed pageblock has a free block of this order");
            }
        }
        self.del_page_from_free_list(zi, pfn, current, block_mt);
        self.expand(zi, pfn, order, current, block_mt);
        pfn
    }

    /// Free pages and movable (LRU) pages in the pageblock of `pfn`
    /// (`prep_move_freepages_block`).
    fn count_pageblock(&self, pfn: Pfn) -> (u32, u32) {
        let start = self.pageblocks.start(pfn);
        let end = start + self.pageblocks.nr_pages();
        let (mut free, mut movable, mut p) = (0, 0, start);
        while p < end {
            let page = &self.pages[p];
            match page.kind() {
                Kind::Buddy => {
                    free += 1 << page.order();
                    p += 1 << page.order();
                    continue;
                }
                Kind::Anon | Kind::File | Kind::Shmem
                    if page.test(pg::LRU) || page.test(pg::ISOLATED) =>
                {
                    movable += 1
                }
                _ => {}
            }
            p += 1;
        }
        (free, movable)
    }

    /// If the pageblock of `pfn` lies inside a free block larger than a pageblock, split
    /// that block into pageblock-sized ones (`split_large_buddy`), so the pageblock's type
    /// can change on its own.
    pub(crate) fn split_large_buddy(&mut self, pfn: Pfn) {
        let pb_order = self.pageblocks.order;
        let start = self.pageblocks.start(pfn);
        debug_assert!(self.zones.iter().all(|z| !z.deferred.contains(start)));
        for order in pb_order + 1..=MAX_PAGE_ORDER {
            let head = start.align_down(order);
            let page = self.pages[head];
            if page.kind() == Kind::Buddy && page.order() >= order {
                let (zi, big) = (self.zone_idx(head), page.order());
                let mt = self.pageblocks.get(head);
                self.del_page_from_free_list(zi, head, big, mt);
                for pb in Pfn::range_step(head, head + (1 << big), 1 << pb_order) {
                    self.add_to_free_list(zi, pb, pb_order, mt, false);
                }
                return;
            }
        }
    }

    /// `move_freepages_block` + `set_pageblock_migratetype`: retype the pageblock of `pfn`
    /// and move its free blocks to the tails of the new type's lists (`move_to_free_list`
    /// is `list_move_tail` since 5.10, David Hildenbrand's "mm/page_alloc: move pages to
    /// tail in move_to_free_list()": blocks that change type, as when a pageblock is
    /// isolated, un-isolated or stolen, are taken last). Returns the free pages moved.
    pub(crate) fn move_freepages_block(&mut self, pfn: Pfn, new_mt: Migratetype) -> u32 {
        self.split_large_buddy(pfn);
        let start = self.pageblocks.start(pfn);
        let end = start + self.pageblocks.nr_pages();
        let old_mt = self.pageblocks.get(start);
        if self.pageblocks.buddies(start) == 0 {
            // No free block in it: only the type changes.
            self.pageblocks.set(start, new_mt);
            return 0;
        }
        let zi = self.zone_idx(start);
        let (mut moved, mut p) = (0, start);
        loop {
            p = next_buddy_head(&self.pages, p, end);
            if p >= end {
                break;
            }
            let order = self.pages[p].order();
            self.del_page_from_free_list(zi, p, order, old_mt);
            self.add_to_free_list(zi, p, order, new_mt, true);
            moved += 1 << order;
            p += 1 << order;
        }
        self.pageblocks.set(start, new_mt);
        moved
    }

    // ----- freeing ----------------------------------------------------------------------

    /// `free_one_page`: give the block back and merge it with its free buddies. The frames
    /// must already be in their free state (`free_pages_prepare`). A block larger than a
    /// pageblock may span pageblocks of different types (one of them isolated by a
    /// contiguous allocation): each pageblock goes to its own type's list, and they merge
    /// again where the types allow (`split_large_buddy`, 6.10). Where the merged block goes
    /// on its list is `__free_one_page`'s choice (`buddy_merge_likely`).
    pub(crate) fn free_one_page(&mut self, pfn: Pfn, order: u32) {
        self.free_one_page_fpi(pfn, order, Fpi::None);
    }

    /// `free_one_page` with the caller's `fpi_t`: `Fpi::ToTail` puts the merged block at
    /// the tail of its list whatever its buddies.
    pub(crate) fn free_one_page_fpi(&mut self, pfn: Pfn, order: u32, fpi: Fpi) {
        let pb_order = self.pageblocks.order;
        if order <= pb_order {
            self.free_one_page_block(pfn, order, fpi);
            return;
        }
        let (mt, zi, end) = (
            self.pageblocks.get(pfn),
            self.zone_idx(pfn),
            pfn + (1 << order),
        );
        if order == MAX_PAGE_ORDER
            && end <= self.zones[zi].end_pfn
            && Pfn::range_step(pfn, end, 1 << pb_order).all(|pb| self.pageblocks.get(pb) == mt)
        {
            // Freed pageblock by pageblock, the block would merge back into itself (each
            // pageblock's buddy is in it, in its zone and of its type) and no further (the
            // top order): it goes straight onto its list, as it would end up, without reading
            // and writing each pageblock's head frame (boot frees all memory this way). At
            // the top order no merge is likely: the head of the list unless the caller says
            // the tail.
            self.add_to_free_list(zi, pfn, order, mt, fpi == Fpi::ToTail);
            return;
        }
        for pb in Pfn::range_step(pfn, pfn + (1 << order), 1 << pb_order) {
            self.free_one_page_block(pb, pb_order, fpi);
        }
    }

    /// `__free_one_page` for a block within one pageblock (or, at most, a pageblock).
    fn free_one_page_block(&mut self, mut pfn: Pfn, mut order: u32, fpi: Fpi) {
        let zi = self.zone_idx(pfn);
        let mt = self.pageblocks.get(pfn);
        let pb_order = self.pageblocks.order;
        let (zstart, zend) = (self.zones[zi].start_pfn, self.zones[zi].end_pfn);
        while order < MAX_PAGE_ORDER {
            let buddy = pfn.buddy(order);
            if buddy < zstart || buddy + (1 << order) > zend {
                break;
            }
            let bp = self.pages[buddy];
            if bp.kind() != Kind::Buddy || bp.order() != order {
                break;
            }
            let buddy_mt = self.pageblocks.get(buddy);
            if order >= pb_order
                && buddy_mt != mt
                && (!mt.is_mergeable() || !buddy_mt.is_mergeable())
            {
                break;
            }
            self.del_page_from_free_list(zi, buddy, order, buddy_mt);
            if buddy_mt != mt {
                // Match the buddy's type, so an expand() later puts the halves on the
                // right lists.
                for pb in Pfn::range_step(buddy, buddy + (1 << order), 1 << pb_order) {
                    self.pageblocks.set(pb, mt);
                }
            }
            pfn = Pfn(pfn.0 & buddy.0);
            order += 1;
        }
        let to_tail = fpi == Fpi::ToTail || self.buddy_merge_likely(pfn, order, zstart, zend);
        self.add_to_free_list(zi, pfn, order, mt, to_tail);
    }

    /// `buddy_merge_likely` (5.1+, Dan Williams' "mm: maintain randomization of page free
    /// lists"; first as Aaron Lu's heuristic): a block whose buddy is in use, but whose
    /// parent's buddy is free, is likely to merge into a larger block once its buddy is
    /// freed, so `__free_one_page` puts it at the tail of its list where it is taken last.
    /// Never for the two largest orders (`order >= MAX_ORDER - 2`).
    #[inline]
    fn buddy_merge_likely(&self, pfn: Pfn, order: u32, zstart: Pfn, zend: Pfn) -> bool {
        if order >= MAX_PAGE_ORDER - 1 {
            return false;
        }
        // `higher_page_pfn = buddy_pfn & pfn`: the order + 1 block holding this one.
        let higher = Pfn(pfn.0 & !(1 << order));
        let higher_buddy = higher.buddy(order + 1);
        if higher_buddy < zstart || higher_buddy + (1 << (order + 1)) > zend {
            return false;
        }
        let page = &self.pages[higher_buddy];
        page.kind() == Kind::Buddy && page.order() == order + 1
    }

    /// `free_pages_prepare` + the free path: order-0 pages go to the CPU's list, larger
    /// blocks straight to the buddy lists.
    pub(crate) fn free_pages(&mut self, pfn: Pfn, order: u32, cpu: u32) {
        if self.trace.page_free_on() {
            self.trace_mm_page_free(pfn, order);
        }
        for p in Pfn::range(pfn, pfn + (1 << order)) {
            self.pages[p] = Page::FREE;
        }
        self.vmstat.add(Counter::Pgfree, 1 << order);
        self.charge += self.cfg.cost.page_alloc_ns;
        if order == 0 {
            self.free_unref_page(pfn, cpu);
        } else {
            self.free_one_page(pfn, order);
        }
    }

    fn pcp_index(&self, zi: usize, cpu: u32) -> usize {
        zi * self.cfg.cpus as usize + cpu as usize
    }

    /// `free_unref_page` + `free_unref_page_commit` (6.1): onto the head of the per-CPU
    /// list of the page's type (CMA pages on the MOVABLE list), unless its pageblock is
    /// isolated (or the area is gcma's own pool); when the lists reach their high mark
    /// (`nr_pcp_high`), `nr_pcp_free` pages go back to the buddy lists, the list just
    /// freed to first.
    fn free_unref_page(&mut self, pfn: Pfn, cpu: u32) {
        let mt = self.pageblocks.get(pfn);
        if mt == Migratetype::Isolate || (mt == Migratetype::Cma && self.cma_frees_bypass_pcp()) {
            self.free_one_page(pfn, 0);
            return;
        }
        let pcp_mt = if mt.index() >= MIGRATE_PCPTYPES {
            Migratetype::Movable
        } else {
            mt
        };
        let zi = self.zone_idx(pfn);
        let idx = self.pcp_index(zi, cpu);
        self.pages[pfn].set_kind(Kind::Pcp);
        let reclaim_active = self.kswapd.running;
        let pcp = &mut self.pcp[idx];
        pcp.lists[pcp_mt.index()].push_head(&mut self.pages, pfn);
        pcp.count += 1;
        let high = nr_pcp_high(pcp, reclaim_active);
        if pcp.count >= high {
            let count = pcp.nr_pcp_free(high);
            self.free_pcppages_bulk(idx, count, pcp_mt.index());
        }
    }

    /// `free_pcppages_bulk` (6.1): return `count` pages to the buddy lists, emptying one
    /// list at a time from its tail (the coldest pages), round robin from list `first`.
    fn free_pcppages_bulk(&mut self, idx: usize, count: u32, first: usize) {
        let mut count = count.min(self.pcp[idx].count);
        let mut list = first;
        while count > 0 {
            while self.pcp[idx].lists[list].is_empty() {
                list = (list + 1) % MIGRATE_PCPTYPES;
            }
            while count > 0 {
                let Some(pfn) = self.pcp[idx].lists[list].pop_tail(&mut self.pages) else {
                    break;
                };
                self.pcp[idx].count -= 1;
                count -= 1;
                self.pages[pfn] = Page::FREE;
                self.free_one_page(pfn, 0);
            }
            list = (list + 1) % MIGRATE_PCPTYPES;
        }
    }

    /// `drain_all_pages(zone)` (6.1): every CPU whose lists hold pages gives them back,
    /// drained from the caller's CPU (`__drain_all_pages`: `cpus_with_pcps`, then
    /// `drain_pages_zone` remotely under each list's lock; since 6.0 no IPI). Charges each
    /// CPU drained and each page freed.
    pub fn drain_all_pages(&mut self, zi: usize) {
        let cost = &self.cfg.cost;
        let (per_cpu, per_page) = (cost.drain_per_cpu_ns, cost.page_alloc_ns);
        for cpu in 0..self.cfg.cpus {
            let idx = self.pcp_index(zi, cpu);
            let count = self.pcp[idx].count;
            if count > 0 {
                self.free_pcppages_bulk(idx, count, 0);
                self.charge += per_cpu + per_page * count as u64;
            }
        }
        self.drain_all_pages_flush();
    }

    /// `rmqueue_bulk`: refill a per-CPU list with `batch` pages taken one by one.
    fn rmqueue_bulk(&mut self, zi: usize, idx: usize, mt: Migratetype, flags: AllocFlags) {
        let batch = self.pcp[idx].batch;
        for _ in 0..batch {
            let Some(pfn) = self.rmqueue_one(zi, 0, mt, flags) else {
                break;
            };
            self.pages[pfn].set_kind(Kind::Pcp);
            self.pcp[idx].lists[mt.index()].push_tail(&mut self.pages, pfn);
            self.pcp[idx].count += 1;
        }
    }

    /// `rmqueue`: order-0 pages from the per-CPU list, the rest from the buddy lists.
    fn rmqueue(&mut self, zi: usize, req: &AllocRequest, flags: AllocFlags) -> Option<Pfn> {
        let mt = req.gfp.migratetype;
        if req.order == 0 && (flags.cma || mt != Migratetype::Movable) {
            let idx = self.pcp_index(zi, req.cpu);
            // `rmqueue_pcplist`: an allocation halves the bulk-free scaling.
            self.pcp[idx].free_factor >>= 1;
            if self.pcp[idx].lists[mt.index()].is_empty() {
                self.rmqueue_bulk(zi, idx, mt, flags);
            }
            let pfn = self.pcp[idx].lists[mt.index()].pop_head(&mut self.pages)?;
            self.pcp[idx].count -= 1;
            self.pages[pfn] = Page::FREE;
            return Some(pfn);
        }
        self.rmqueue_one(zi, req.order, mt, flags)
    }

    // ----- allocation -------------------------------------------------------------------

    /// The zones a request may use, highest first (`gfp_zone` + the zonelist).
    #[inline]
    pub(crate) fn highest_zone(&self, gfp: Gfp) -> usize {
        if gfp.highmem && gfp.migratetype == Migratetype::Movable && !gfp.pin {
            self.zones.len() - 1
        } else {
            0
        }
    }

    /// `get_page_from_freelist`: the first zone, highest first, that passes its watermark
    /// and has a block.
    pub(crate) fn get_page_from_freelist(
        &mut self,
        req: &AllocRequest,
        flags: AllocFlags,
    ) -> Option<Pfn> {
        let highest = self.highest_zone(req.gfp);
        let highest_id: ZoneId = self.zones[highest].id;
        let counts_cma = self.wmark_counts_cma(flags.cma);
        for zi in (0..=highest).rev() {
            let zone = &self.zones[zi];
            let mark = zone.wmark(flags.wmark);
            if !zone.watermark_ok(req.order, mark, highest_id, counts_cma) {
                continue;
            }
            if let Some(pfn) = self.rmqueue(zi, req, flags) {
                return Some(pfn);
            }
        }
        None
    }

    /// `__alloc_pages`: fast path at the low watermark; else wake kswapd, retry at min,
    /// then direct reclaim (charged to the caller) for requests that may sleep.
    /// Returns the first pfn of a block whose frames are still in the free state: the
    /// caller prepares them (`prep_new_page`).
    pub(crate) fn alloc_pages_raw(&mut self, req: &AllocRequest) -> Result<Pfn, Errno> {
        self.charge += self.cfg.cost.page_alloc_ns;
        let cma = self.may_use_cma(req.gfp);
        let fast = AllocFlags {
            wmark: Wmark::Low,
            cma,
        };
        if let Some(pfn) = self.get_page_from_freelist(req, fast) {
            return Ok(pfn);
        }
        self.alloc_pages_slowpath(req, cma)
    }

    /// `__alloc_pages_slowpath`, kept out of line so that the fast path stays small.
    #[cold]
    #[inline(never)]
    fn alloc_pages_slowpath(&mut self, req: &AllocRequest, cma: bool) -> Result<Pfn, Errno> {
        if req.gfp.kswapd_reclaim {
            self.wake_all_kswapds(req.order, self.highest_zone(req.gfp));
        }
        let slow = AllocFlags {
            wmark: Wmark::Min,
            cma,
        };
        if let Some(pfn) = self.get_page_from_freelist(req, slow) {
            return Ok(pfn);
        }
        if !req.gfp.direct_reclaim {
            return Err(Errno::Enomem);
        }
        // Direct reclaim, its retries and the OOM killer (`oom_kill.rs`).
        self.alloc_pages_direct_reclaim_retry(req, slow)
    }

    /// Allocate and prepare a block for `owner`: the head carries kind, owner and index;
    /// tail frames point at the head. Counts `pgalloc_<zone>`.
    pub(crate) fn alloc_prepared(
        &mut self,
        req: &AllocRequest,
        kind: Kind,
        index: u32,
    ) -> Result<Pfn, Errno> {
        let pfn = self.alloc_pages_raw(req)?;
        self.prep_new_page(pfn, req.order, kind, req.owner, index, req.gfp);
        if matches!(kind, Kind::Anon | Kind::File) {
            // The caller puts the page on the LRU through its CPU's batch (`folio_add_lru`).
            self.lru_batches.add(req.cpu);
        }
        Ok(pfn)
    }

    pub(crate) fn prep_new_page(
        &mut self,
        pfn: Pfn,
        order: u32,
        kind: Kind,
        owner: OwnerId,
        index: u32,
        gfp: Gfp,
    ) {
        let head = &mut self.pages[pfn];
        *head = Page::FREE;
        head.set_kind(kind);
        head.set_order(order);
        head.owner = owner;
        head.index = index;
        if gfp.migratetype == Migratetype::Movable {
            head.set(pg::MOVABLE);
        }
        for p in Pfn::range(pfn + 1, pfn + (1 << order)) {
            let tail = &mut self.pages[p];
            *tail = Page::FREE;
            tail.set_kind(Kind::Tail);
            tail.owner = owner;
            tail.index = pfn.0;
        }
        let counter = match self.zones[self.zone_idx(pfn)].id {
            ZoneId::Normal => Counter::PgallocNormal,
            ZoneId::Movable => Counter::PgallocMovable,
            ZoneId::Cma => Counter::PgallocCma,
        };
        self.vmstat.add(counter, 1 << order);
        if self.trace.page_alloc_on() {
            self.trace_mm_page_alloc(pfn);
        }
    }
}

impl Machine {
    /// The allocator fast path on its own (`alloc_pages(gfp, 0)` by a driver): one order-0
    /// page for `owner`, prepared as kernel memory (no owner mapping, not on the LRU). For
    /// benchmarks and workloads that do not need `alloc_owned`'s bookkeeping. Movable masks
    /// are refused: movable pages must be mapped by their owner (`alloc_owned`) so that
    /// reclaim and migration can find them. The allocation cost is added to `self.charge`.
    pub fn alloc_page_order0(&mut self, gfp: Gfp, owner: OwnerId) -> crate::MmResult<Pfn> {
        if gfp.migratetype == Migratetype::Movable {
            return crate::error::misuse(
                "alloc_page_order0 takes non-movable masks only: allocate movable pages with \
                 alloc_owned",
            );
        }
        if owner as usize >= self.owners.list.len() {
            return crate::error::misuse(format!("owner #{owner} does not exist"));
        }
        let req = AllocRequest {
            order: 0,
            gfp,
            owner,
            cpu: self.owners.cpu(owner),
        };
        self.alloc_prepared(&req, Kind::Kernel, 0).map_err(|_| {
            crate::MmError::OutOfMemory(format!(
                "order-0 allocation for {} failed (-ENOMEM)",
                self.owners.name(owner)
            ))
        })
    }

    /// `__free_page` for a page from `alloc_page_order0`: back onto its owner's CPU list.
    pub fn free_page_order0(&mut self, pfn: Pfn) -> crate::MmResult<()> {
        let Some(page) = self.pages.get(pfn.idx()).copied() else {
            return crate::error::misuse(format!("pfn {pfn:#x} is beyond the end of memory"));
        };
        if page.kind() != Kind::Kernel || page.order() != 0 || page.test(pg::EXTRA) {
            return crate::error::misuse(format!(
                "pfn {pfn:#x} is not an unreferenced order-0 page from alloc_page_order0 \
                 ({}, order {}): freed twice?",
                page.kind().name(),
                page.order()
            ));
        }
        let cpu = self.owners.cpu(page.owner);
        self.free_pages(pfn, 0, cpu);
        Ok(())
    }

    /// Take the free block headed at `pfn` off its list (`__isolate_free_page` without the
    /// watermark check). Returns its order; its frames are left in the free state.
    pub(crate) fn take_free_block(&mut self, pfn: Pfn) -> u32 {
        let order = self.pages[pfn].order();
        let zi = self.zone_idx(pfn);
        let mt = self.pageblocks.get(pfn);
        self.del_page_from_free_list(zi, pfn, order, mt);
        order
    }
}
