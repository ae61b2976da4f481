//! Placement policies (SPEC §3): where a movable request may take pages of a CMA area.
//! This is the seam every placement plugs into; the allocator asks two questions:
//! - `may_use_cma(gfp)`: does this request get ALLOC_CMA at all?
//! - `cma_first(zone)`: should it take CMA pages before its own free lists?
//!
//! `legacy` (Linux 4.1, 2015): `__rmqueue` tries `__rmqueue_smallest` first and falls back
//! to `__rmqueue_cma_fallback` only when the movable lists are empty.
//! `legacy_2014` (Linux 3.x up to 4.0, the kernels the GCMA and ZONE_CMA RFCs measured):
//! `fallbacks[MIGRATE_MOVABLE] = { MIGRATE_CMA, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE }`,
//! so CMA is reached from `__rmqueue_fallback`, which walks the orders from the largest
//! down and takes the first non-empty fallback list at each: a movable request that finds
//! no movable block of its order or above breaks the *largest* free CMA block, gives the
//! rest back to the CMA lists, and the next such request breaks the next largest one
//! (`rmqueue_fallback_2014`). Joonsoo Kim's dc67647b78b9 ("mm/cma: change fallback
//! behaviour for CMA freepage", 4.1) replaced this with `__rmqueue_cma_fallback`
//! (`__rmqueue_smallest` on the CMA lists) because "high order freepage with MIGRATE_CMA
//! are broken continually although there are suitable order CMA freepage". Under load the
//! old order scatters movable pages over every max-order block of the area, so every range
//! a device asks for holds pages to migrate.
//! `balanced` (Roman Gushchin, "mm,page_alloc,cma: conditionally prefer cma pageblocks for
//! movable allocations", 5.7/5.8): CMA first when the zone's free CMA pages exceed half of
//! its free pages.
//! `zone_cma` / `movable_zone`: the CMA pageblocks are the only pageblocks of their own
//! zone, which movable highmem requests reach first through the zonelist
//! (`highest_zone`: only `GFP_HIGHUSER_MOVABLE`; `GFP_USER | __GFP_MOVABLE`, the block
//! device page cache, stops at ZONE_NORMAL); inside that zone the legacy order applies
//! (there is nothing but CMA there). Both series removed ALLOC_CMA's watermark special
//! case: every free page of the CMA zone counts (`wmark_counts_cma`).
//! `gcma`: the area is not part of the page allocator's reach for ordinary requests; only
//! the cleancache and frontswap (discardable pages) use it (`gcma.rs`).
//!
//! The placements also reproduce different kernels, which matters for a few behaviours
//! outside allocation (memory offlining, `memory_hotplug.rs`; watermarks, `zone.rs`).

use crate::config::{Placement, MAX_PAGE_ORDER};
use crate::gfp::Gfp;
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::Machine;

impl Machine {
    /// `gfp_to_alloc_flags_cma`, as each placement sees it.
    #[inline]
    pub(crate) fn may_use_cma(&self, gfp: Gfp) -> bool {
        match self.cfg.policy.placement {
            Placement::Gcma => false,
            _ => gfp.alloc_cma(),
        }
    }

    /// Whether `__rmqueue` should try the CMA lists before the request's own lists.
    #[inline]
    pub(crate) fn cma_first(&self, zi: usize) -> bool {
        match self.cfg.policy.placement {
            Placement::Balanced => {
                let zone = &self.zones[zi];
                zone.nr_free_cma > zone.nr_free_pages / 2
            }
            Placement::Legacy
            | Placement::Legacy2014
            | Placement::ZoneCma
            | Placement::MovableZone
            | Placement::Gcma => false,
        }
    }

    /// Whether a freed CMA page skips the per-CPU lists. Under gcma the area's free pages
    /// are the backend's pool (`gcma_free_range` gives pages straight back to it), so no
    /// CMA page ever waits on a per-CPU list and a gcma allocation needs no drain.
    #[inline]
    pub(crate) fn cma_frees_bypass_pcp(&self) -> bool {
        self.cfg.policy.placement == Placement::Gcma
    }

    /// Whether memory offlining refuses CMA pageblocks outright: `has_unmovable_pages`
    /// returns a CMA page as unmovable to anyone but a CMA allocation since Linux 5.4
    /// (Qian Cai, "mm/hotplug: treat CMA pages as unmovable", after CMA memory was seen
    /// offlined on powerpc). The placements reproducing older kernels (`legacy`: 4.1;
    /// `movable_zone`: 4.17, where CMA memory *is* ZONE_MOVABLE, the hotpluggable zone)
    /// only look at the pages, so a CMA range holding nothing but movable or free pages can
    /// be offlined and the area loses that memory. `zone_cma` refuses ZONE_CMA wholesale
    /// (`__offline_pages`: `if (is_zone_cma(zone)) goto out`).
    #[inline]
    pub(crate) fn offline_refuses_cma(&self) -> bool {
        match self.cfg.policy.placement {
            Placement::Balanced | Placement::Gcma | Placement::ZoneCma => true,
            Placement::Legacy | Placement::Legacy2014 | Placement::MovableZone => false,
        }
    }

    /// Whether `__rmqueue` falls back the 2014 way (`rmqueue_fallback_2014`).
    #[inline]
    pub(crate) fn cma_fallback_2014(&self) -> bool {
        self.cfg.policy.placement == Placement::Legacy2014
    }

    /// `__rmqueue_fallback` of Linux 3.18/4.0, with `fallbacks[MIGRATE_MOVABLE]` listing
    /// MIGRATE_CMA first: from the largest order down to `order`, the first fallback type
    /// with a free block of that order. A CMA block is not stolen: it is split with the
    /// remainder going back to the CMA lists (`buddy_type = migratetype`), so the next
    /// fallback finds the next largest CMA block. Other types are stolen as
    /// `try_to_steal_freepages` did (the pageblock is claimed when the request is large
    /// enough or reclaimable/unmovable and half the block is free or alike).
    /// `cma` is whether the request may take CMA pages at all (3.18 had no ALLOC_CMA
    /// check here: every movable request could; a pinned target cannot in the model).
    pub(crate) fn rmqueue_fallback_2014(
        &mut self,
        zi: usize,
        order: u32,
        start_mt: Migratetype,
        cma: bool,
    ) -> Option<Pfn> {
        let cma_first = cma && start_mt == Migratetype::Movable;
        for current in (order..=MAX_PAGE_ORDER).rev() {
            let area = &self.zones[zi].free_area[current as usize];
            let cma_list = &area.lists[Migratetype::Cma.index()];
            if cma_first && !cma_list.is_empty() {
                let pfn = cma_list.head;
                self.del_page_from_free_list(zi, pfn, current, Migratetype::Cma);
                self.expand(zi, pfn, order, current, Migratetype::Cma);
                return Some(pfn);
            }
            let zone = &self.zones[zi];
            let found = start_mt
                .fallbacks()
                .iter()
                .copied()
                .find(|&fb| !zone.free_list_empty(current, fb));
            if let Some(fb) = found {
                let pfn = self.free_list_head(zi, current, fb);
                let can_steal = self.can_steal_fallback(current, start_mt);
                return Some(
                    self.steal_suitable_fallback(zi, pfn, current, order, start_mt, can_steal),
                );
            }
        }
        None
    }
}
