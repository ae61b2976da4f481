//! Guaranteed CMA (SeongJae Park and Minchan Kim, RFC 2014-2015, "gcma: introduce
//! guaranteed contiguous memory allocator"; revived in 2025 by Minchan Kim and Suren
//! Baghdasaryan as a cleancache backend, "mm: introduce GCMA"): the area holds only
//! discardable pages, so a contiguous allocation discards instead of migrating.
//!
//! Reproduced:
//! - ordinary allocations never use a gcma area (`placement.rs`: no ALLOC_CMA); the area's
//!   free pages are the backend's own pool;
//! - **cleancache** (the 2025 backend): when reclaim drops a clean file page
//!   (`__filemap_remove_folio` -> `cleancache_put`), its contents are copied into a free
//!   page of the area, which is then the file page's only copy in memory (the owner's slot
//!   says `SLOT_CACHED | pfn`); a later read finds it there (`cleancache_get`), copies it
//!   back (`cleancache_hit_ns` instead of a storage read) and frees the cache page (the
//!   cache is exclusive: a page lives either in the page cache or in the cleancache);
//!   freeing the file page (truncate) drops the copy (`cleancache_invalidate`);
//! - **frontswap** (the 2014-2015 RFC, in its write-through mode): an anonymous page swapped
//!   out is still written to the swap device, and a copy is kept in the area, so a swap-in
//!   finds it in memory; dropping the copy costs nothing, the swap slot stays valid;
//! - when the area has no free page, the least recently stored cache page is evicted
//!   (the RFC's `slru_list` and `evict_frontswap_pages`; one page at a time here, not the
//!   RFC's batches of 32);
//! - `cma_alloc` over a gcma area (`gcma_alloc_range` in the 2025 series) discards the cache
//!   pages in the range: no copy, no migration, no per-CPU drain (`alloc_contig.rs`).
//!   Allocation success is then bounded only by device buffers already handed out, and
//!   the area's use by the rest of the system is bounded by what is discardable.
//!
//! Simplified: the 2025 series keeps the area out of the buddy allocator altogether (its
//! pages are donated to cleancache at boot); here the area's free pages stay on the zone's
//! MIGRATE_CMA free lists, which only this backend and `cma_alloc` take from, and frees of
//! CMA pages bypass the per-CPU lists under gcma (`free_unref_page`), as `gcma_free_range`
//! does. There is no per-inode pool, no cleancache size limit beyond the area, and the
//! cleancache hit is charged as one page copy (`cleancache_hit_ns`), not as a major fault.

use rustc_hash::FxHashSet;

use crate::config::{Placement, MAX_PAGE_ORDER};
use crate::list::List;
use crate::owner::{cached_slot, SLOT_EVICTED, SLOT_SWAPPED};
use crate::page::{Kind, Page, NIL};
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::Machine;

/// The gcma backend's state: its cache pages, most recently stored first.
#[derive(Clone, Debug, Default)]
pub struct Gcma {
    /// Every cache page, threaded through the frames' list links (a cache page is on no
    /// other list): stored at the head, evicted from the tail (the RFC's `slru_list`).
    pub lru: List,
    /// The cache pages that hold a frontswap copy of an anonymous page (the rest hold
    /// cleancache copies of file pages).
    pub frontswap: FxHashSet<Pfn>,
}

impl Machine {
    /// Whether the CMA areas are gcma areas.
    #[inline]
    pub(crate) fn gcma_enabled(&self) -> bool {
        self.cfg.policy.placement == Placement::Gcma && !self.cma.is_empty()
    }

    /// Take one free page of a gcma area straight off the MIGRATE_CMA free lists (the
    /// backend's `gcma_alloc_page`), smallest block first; the rest of a larger block goes
    /// back as `expand` would give it back. Free pages of isolated pageblocks (a
    /// `cma_alloc` in progress) are on the ISOLATE lists and are never taken.
    fn gcma_alloc_page(&mut self) -> Option<Pfn> {
        for zi in 0..self.zones.len() {
            if self.zones[zi].nr_free_cma == 0 {
                continue;
            }
            for order in 0..=MAX_PAGE_ORDER {
                let head =
                    self.zones[zi].free_area[order as usize].lists[Migratetype::Cma.index()].head;
                if head == NIL {
                    continue;
                }
                self.take_free_block(head);
                for o in (0..order).rev() {
                    // The buddy of each upper half is the lower half we keep: no merge.
                    self.free_one_page(head + (1 << o), o);
                }
                return Some(head);
            }
        }
        None
    }

    /// Copy the page at `pfn` into the area; returns the slot marker for its owner.
    fn gcma_store(&mut self, pfn: Pfn, frontswap: bool) -> Option<u32> {
        if !self.gcma_enabled() {
            return None;
        }
        let cache = match self.gcma_alloc_page() {
            Some(c) => c,
            None => {
                // Full: make room by evicting the least recently stored cache page.
                if !self.gcma_evict_oldest() {
                    return None;
                }
                self.gcma_alloc_page()?
            }
        };
        let src = self.pages[pfn];
        let page = &mut self.pages[cache];
        *page = Page::FREE;
        page.set_kind(Kind::Cache);
        page.owner = src.owner;
        page.index = src.index;
        self.gcma.lru.push_head(&mut self.pages, cache);
        if frontswap {
            self.gcma.frontswap.insert(cache);
            self.vmstat.inc(Counter::FrontswapStores);
        } else {
            self.vmstat.inc(Counter::CleancachePuts);
        }
        self.charge += self.cfg.cost.page_copy_ns;
        Some(cached_slot(cache))
    }

    /// `cleancache_put`: keep an evicted clean file page; returns the slot marker, or None
    /// when there is no gcma area (or it holds only device buffers).
    pub(crate) fn cleancache_put(&mut self, pfn: Pfn) -> Option<u32> {
        self.gcma_store(pfn, false)
    }

    /// `frontswap_store` (write-through): keep a copy of an anonymous page that was just
    /// written to swap; returns the slot marker.
    pub(crate) fn frontswap_store(&mut self, pfn: Pfn) -> Option<u32> {
        self.gcma_store(pfn, true)
    }

    /// Whether the cache page holds a frontswap (anonymous) copy.
    #[inline]
    pub(crate) fn gcma_is_frontswap(&self, cache_pfn: Pfn) -> bool {
        self.gcma.frontswap.contains(&cache_pfn)
    }

    /// A read found its page in the cache (`cleancache_get` / `frontswap_load`): copy it back
    /// (charged) and drop the cache copy.
    pub(crate) fn cleancache_get(&mut self, cache_pfn: Pfn) {
        let counter = if self.gcma_is_frontswap(cache_pfn) {
            Counter::FrontswapLoads
        } else {
            Counter::CleancacheHits
        };
        self.vmstat.inc(counter);
        self.charge += self.cfg.cost.cleancache_hit_ns;
        self.gcma_free(cache_pfn);
    }

    /// Drop a cache page whose owner freed the page (`cleancache_invalidate_page` /
    /// `frontswap_invalidate_page`). Returns true if it was a frontswap copy (the swap slot
    /// it shadows is then the caller's to free).
    pub(crate) fn cleancache_invalidate(&mut self, cache_pfn: Pfn) -> bool {
        self.gcma_free(cache_pfn)
    }

    /// A contiguous allocation takes the cache page's frame: the copy is dropped (the file
    /// page's next read is a refault, the anonymous page's a swap-in) and the frame freed.
    /// Cheap: no copy, no migration.
    pub(crate) fn cleancache_discard(&mut self, cache_pfn: Pfn) {
        self.gcma_drop(cache_pfn);
        self.vmstat.inc(Counter::CleancacheDiscards);
        self.charge += self.cfg.cost.page_alloc_ns;
    }

    /// Evict the least recently stored cache page to make room. False if there is none.
    fn gcma_evict_oldest(&mut self) -> bool {
        let tail = self.gcma.lru.tail;
        if tail == NIL {
            return false;
        }
        self.gcma_drop(tail);
        self.vmstat.inc(Counter::CleancacheEvictions);
        true
    }

    /// Forget a cache page's contents: its owner's slot goes back to "on storage".
    fn gcma_drop(&mut self, cache_pfn: Pfn) {
        let page = self.pages[cache_pfn];
        debug_assert_eq!(page.kind(), Kind::Cache);
        let marker = if self.gcma_is_frontswap(cache_pfn) {
            SLOT_SWAPPED
        } else {
            SLOT_EVICTED
        };
        if let Some(slot) = self
            .owners
            .list
            .get_mut(page.owner as usize)
            .and_then(|o| o.map.get_mut(page.index as usize))
        {
            if *slot == cached_slot(cache_pfn) {
                *slot = marker;
            }
        }
        self.gcma_free(cache_pfn);
    }

    /// Give a cache page back to the area (`gcma_free_page`), straight to the buddy lists.
    /// Returns true if it was a frontswap copy.
    fn gcma_free(&mut self, cache_pfn: Pfn) -> bool {
        debug_assert_eq!(self.pages[cache_pfn].kind(), Kind::Cache);
        self.gcma.lru.remove(&mut self.pages, cache_pfn);
        let was_frontswap = self.gcma.frontswap.remove(&cache_pfn);
        self.pages[cache_pfn] = Page::FREE;
        self.free_one_page(cache_pfn, 0);
        was_frontswap
    }
}
