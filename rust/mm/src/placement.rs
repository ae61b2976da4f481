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
//! zone, which movable highmem requests reach first through the zonelist; inside that zone
//! the legacy order applies (there is nothing but CMA there).
//! `gcma`: the area is not part of the page allocator's reach for ordinary requests; only
//! the cleancache (discardable pages) uses it (`gcma.rs`).

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
}
