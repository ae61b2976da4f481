//! Zones and watermarks (`include/linux/mmzone.h`, `mm/page_alloc.c`:
//! `__setup_per_zone_wmarks`, `setup_per_zone_lowmem_reserve`, `__zone_watermark_ok`).
//!
//! Zones are contiguous pfn ranges. NORMAL always exists; MOVABLE (the `movable_zone`
//! placement) or CMA (Joonsoo Kim's ZONE_CMA) hold the CMA areas when a policy asks for
//! them. There is one node.

use serde::Serialize;

use crate::config::MAX_PAGE_ORDER;
use crate::list::List;
use crate::mm_init::DeferredBlocks;
use crate::pageblock::{Migratetype, MIGRATE_PCPTYPES, MIGRATE_TYPES};
use crate::pfn::Pfn;

pub const NR_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ZoneId {
    Normal = 0,
    Movable = 1,
    /// ZONE_CMA sits above ZONE_MOVABLE in Joonsoo Kim's series; the two never coexist here.
    Cma = 2,
}

impl ZoneId {
    pub fn name(self) -> &'static str {
        match self {
            ZoneId::Normal => "Normal",
            ZoneId::Movable => "Movable",
            ZoneId::Cma => "CMA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wmark {
    Min = 0,
    Low = 1,
    High = 2,
}

/// `struct free_area`: one list per migratetype for one order.
#[derive(Clone, Debug, Default)]
pub struct FreeArea {
    pub lists: [List; MIGRATE_TYPES],
    pub nr_free: u64,
}

#[derive(Clone, Debug)]
pub struct Zone {
    pub id: ZoneId,
    /// `[start_pfn, end_pfn)`.
    pub start_pfn: Pfn,
    pub end_pfn: Pfn,
    pub managed_pages: u64,
    pub free_area: [FreeArea; NR_ORDERS],
    /// `NR_FREE_PAGES`: pages in the buddy free lists (not on per-CPU lists).
    pub nr_free_pages: u64,
    /// `NR_FREE_CMA_PAGES`: the part of `nr_free_pages` in CMA pageblocks.
    pub nr_free_cma: u64,
    pub watermark: [u64; 3],
    /// `lowmem_reserve[j]`: pages this zone keeps back from requests whose highest zone is j.
    pub lowmem_reserve: [u64; 3],
    /// Free top-order blocks whose frames are not written yet (`mm_init.rs`): they follow
    /// the blocks on `free_area[MAX_PAGE_ORDER]`'s MOVABLE list.
    pub deferred: DeferredBlocks,
}

impl Zone {
    pub fn new(id: ZoneId, start_pfn: Pfn, end_pfn: Pfn) -> Self {
        Zone {
            id,
            start_pfn,
            end_pfn,
            managed_pages: 0,
            free_area: Default::default(),
            nr_free_pages: 0,
            nr_free_cma: 0,
            watermark: [0; 3],
            lowmem_reserve: [0; 3],
            deferred: DeferredBlocks::default(),
        }
    }

    /// Whether the free list `(order, mt)` is empty, its deferred blocks counted.
    #[inline]
    pub fn free_list_empty(&self, order: u32, mt: Migratetype) -> bool {
        self.free_area[order as usize].lists[mt.index()].is_empty()
            && !self.deferred.follow(order, mt)
    }

    /// Blocks on the free list `(order, mt)`, its deferred blocks counted.
    pub fn free_list_len(&self, order: u32, mt: Migratetype) -> u32 {
        let deferred = if self.deferred.follow(order, mt) {
            self.deferred.len()
        } else {
            0
        };
        self.free_area[order as usize].lists[mt.index()].len + deferred
    }

    #[inline]
    pub fn contains(&self, pfn: Pfn) -> bool {
        pfn >= self.start_pfn && pfn < self.end_pfn
    }

    #[inline]
    pub fn wmark(&self, w: Wmark) -> u64 {
        self.watermark[w as usize]
    }

    /// Free pages a request that may not use CMA cannot count
    /// (`__zone_watermark_unusable_free`, highatomic reserves not modelled).
    #[inline]
    pub fn unusable_free(&self, order: u32, alloc_cma: bool) -> i64 {
        let mut unusable = (1i64 << order) - 1;
        if !alloc_cma {
            unusable += self.nr_free_cma as i64;
        }
        unusable
    }

    /// `__zone_watermark_ok`: free pages, less what the request may not use, must exceed the
    /// mark plus the lowmem reserve; a high-order request also needs a free block of at
    /// least its order on a list it may use.
    pub fn watermark_ok(
        &self,
        order: u32,
        mark: u64,
        highest_zone: ZoneId,
        alloc_cma: bool,
    ) -> bool {
        self.watermark_ok_free(order, mark, highest_zone, alloc_cma, self.nr_free_pages)
    }

    /// `__zone_watermark_ok` with `free_pages` given: `should_reclaim_retry` asks it with
    /// the free pages the zone would have if every reclaimable page were reclaimed.
    pub fn watermark_ok_free(
        &self,
        order: u32,
        mark: u64,
        highest_zone: ZoneId,
        alloc_cma: bool,
        free_pages: u64,
    ) -> bool {
        let free = free_pages as i64 - self.unusable_free(order, alloc_cma);
        let min = mark as i64 + self.lowmem_reserve[highest_zone as usize] as i64;
        if free <= min {
            return false;
        }
        if order == 0 {
            return true;
        }
        (order..NR_ORDERS as u32).any(|o| {
            self.free_area[o as usize].nr_free > 0
                && (Migratetype::ALL[..MIGRATE_PCPTYPES]
                    .iter()
                    .any(|&mt| !self.free_list_empty(o, mt))
                    || (alloc_cma && !self.free_list_empty(o, Migratetype::Cma)))
        })
    }
}

/// `calculate_min_free_kbytes`: sqrt(lowmem_kbytes * 16), clamped to [128, 262144].
pub fn default_min_free_kbytes(lowmem_pages: u64) -> u64 {
    let lowmem_kbytes = lowmem_pages * 4;
    ((lowmem_kbytes * 16) as f64)
        .sqrt()
        .floor()
        .clamp(128.0, 262_144.0) as u64
}

/// `__setup_per_zone_wmarks` as the kernels with a second zone here ran it on 64-bit
/// boards (Joonsoo Kim's ZONE_CMA v7, 4.11, 2017; CMA as ZONE_MOVABLE, 4.17, 2018):
/// `is_highmem()` is false for every zone (ZONE_CMA is highmem only with CONFIG_HIGHMEM,
/// and ZONE_MOVABLE only when carved out of HIGHMEM), so every zone, ZONE_CMA and
/// ZONE_MOVABLE included, takes a share of `min_free_kbytes` in proportion to its managed
/// pages: the CMA zone thins ZONE_NORMAL's reserve. Neither series touched this function:
/// ZONE_CMA's watermarks are recomputed by the ordinary `init_per_zone_wmark_min` once the
/// area's pages have moved into it. low and high sit `max(share/4, managed *
/// watermark_scale_factor / 10000)` above min (`watermark_scale_factor`, 4.6+).
/// `min_free_kbytes` itself comes from ZONE_NORMAL only (`nr_free_buffer_pages` counts the
/// zones `GFP_USER` may use): see `default_min_free_kbytes`.
///
/// Not reproduced: mainline later capped ZONE_MOVABLE's min like HIGHMEM's
/// (`clamp(managed / 1024, SWAP_CLUSTER_MAX, 128)`); no placement that reproduces a
/// current kernel has a second zone here.
pub fn setup_watermarks(zones: &mut [Zone], min_free_kbytes: u64, watermark_scale_factor: u64) {
    let pages_min = min_free_kbytes / 4;
    let lowmem: u64 = zones.iter().map(|z| z.managed_pages).sum::<u64>().max(1);
    for zone in zones.iter_mut() {
        let share = pages_min * zone.managed_pages / lowmem;
        let min = share;
        let gap = (share / 4).max(zone.managed_pages * watermark_scale_factor / 10_000);
        zone.watermark = [min, min + gap, min + 2 * gap];
    }
    setup_lowmem_reserve(zones);
}

/// `setup_per_zone_lowmem_reserve` with `sysctl_lowmem_reserve_ratio[ZONE_NORMAL] = 32`:
/// a lower zone keeps back 1/32 of the pages of the zones above it from requests that could
/// have used those zones. ZONE_CMA's series added a ratio of 32 for the new zone, which only
/// matters for zones above it (there are none); so a `GFP_HIGHUSER_MOVABLE` request that
/// falls back from the CMA zone to ZONE_NORMAL finds ZONE_NORMAL's watermarks raised by
/// 1/32 of the CMA zone.
fn setup_lowmem_reserve(zones: &mut [Zone]) {
    const NORMAL_RATIO: u64 = 32;
    let above: Vec<(ZoneId, u64)> = zones.iter().map(|z| (z.id, z.managed_pages)).collect();
    for zone in zones.iter_mut() {
        zone.lowmem_reserve = [0; 3];
        if zone.id != ZoneId::Normal {
            continue;
        }
        let mut sum = 0;
        for &(id, managed) in above.iter().filter(|(id, _)| *id > ZoneId::Normal) {
            sum += managed;
            zone.lowmem_reserve[id as usize] = sum / NORMAL_RATIO;
        }
    }
}
