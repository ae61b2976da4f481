//! Placement policies (SPEC §3): where a movable request may take pages of a CMA area.
//! This is the seam every placement plugs into; the allocator asks two questions:
//! - `may_use_cma(gfp)`: does this request get ALLOC_CMA at all?
//! - `cma_first(zone)`: should it take CMA pages before its own free lists?
//!
//! `legacy` (Linux 4.1, 2015): `__rmqueue` tries `__rmqueue_smallest` first and falls back
//! to `__rmqueue_cma_fallback` only when the movable lists are empty.
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

use crate::config::Placement;
use crate::gfp::Gfp;
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
            Placement::Legacy | Placement::ZoneCma | Placement::MovableZone | Placement::Gcma => {
                false
            }
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
            Placement::Legacy | Placement::MovableZone => false,
        }
    }
}
