//! Zones and watermarks (`zone.rs`): ZONE_CMA's share of `min_free_kbytes` and ZONE_NORMAL's
//! lowmem reserve.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::zone::{Wmark, ZoneId};
use common::*;

/// ZONE_CMA's watermarks: on 64-bit the CMA zone is not highmem, so it takes a share of
/// min_free_kbytes in proportion to its size; ZONE_NORMAL keeps 1/32 of it back from
/// movable requests (lowmem_reserve).
#[test]
fn zone_cma_has_its_own_proportional_watermarks() {
    let m = machine(256, 64, Placement::ZoneCma);
    let (n, c) = (&m.zones[0], &m.zones[1]);
    let total_min = n.wmark(Wmark::Min) + c.wmark(Wmark::Min);
    // min_free_kbytes from the memory GFP_USER may use (ZONE_NORMAL), shared by both zones.
    let pages_min = cmadev_mm::zone::default_min_free_kbytes(n.managed_pages) / 4;
    println!(
        "zone_cma: NORMAL min/low/high {:?}, CMA {:?}, lowmem_reserve {:?}",
        n.watermark, c.watermark, n.lowmem_reserve
    );
    assert!(
        total_min.abs_diff(pages_min) <= 2,
        "min_free_kbytes is shared out"
    );
    let ratio = c.wmark(Wmark::Min) as f64 / n.wmark(Wmark::Min) as f64;
    let size_ratio = c.managed_pages as f64 / n.managed_pages as f64;
    assert!((ratio - size_ratio).abs() < 0.02, "{ratio} vs {size_ratio}");
    assert!(c.wmark(Wmark::Low) > c.wmark(Wmark::Min));
    assert!(c.wmark(Wmark::High) > c.wmark(Wmark::Low));
    assert_eq!(n.lowmem_reserve[ZoneId::Cma as usize], c.managed_pages / 32);
    assert_eq!(c.lowmem_reserve, [0; 3]);
}

/// `__zone_watermark_ok` (6.1) subtracts `NR_FREE_CMA_PAGES` from the free pages of a request
/// without `ALLOC_CMA`: unmovable allocations fail while the CMA area is still entirely free,
/// and a movable request still succeeds.
#[test]
fn free_cma_pages_do_not_count_for_requests_that_may_not_use_cma() {
    let mut m = machine(256, 128, Placement::Balanced);
    let slab = m.owners.intern("slab").unwrap();
    let app = m.owners.intern("app").unwrap();
    let mut failed = None;
    for _ in 0..100_000 {
        if let Err(e) = m.alloc_owned(
            slab,
            cmadev_mm::gfp::Gfp::KERNEL,
            0,
            cmadev_mm::page::Kind::Kernel,
        ) {
            failed = Some(e);
            break;
        }
    }
    assert!(
        matches!(failed, Some(cmadev_mm::MmError::OutOfMemory(_))),
        "GFP_KERNEL runs out: {failed:?}"
    );
    let info: std::collections::BTreeMap<_, _> = m.meminfo().into_iter().collect();
    assert_eq!(
        info["CmaFree"],
        128 * 1024,
        "the CMA area was left untouched"
    );
    assert!(
        info["MemFree"] > 100 * 1024,
        "most free memory is CMA, unusable for GFP_KERNEL"
    );
    m.alloc_owned(
        app,
        cmadev_mm::gfp::Gfp::HIGHUSER_MOVABLE,
        0,
        cmadev_mm::page::Kind::Anon,
    )
    .expect("a movable request still succeeds");
    m.check_invariants().unwrap();
}
