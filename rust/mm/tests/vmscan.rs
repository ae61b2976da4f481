//! LRU and reclaim (`vmscan.rs`): reclaim for a request that cannot use a zone skips that
//! zone's pages on the node's LRU, and counts them as scanned.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use common::*;

/// Reclaim for a NORMAL-only request (GFP_KERNEL) under ZONE_CMA walks past the CMA zone's
/// pages on the node's LRU: they count in pgskip_cma and in pgscan (the kernel's
/// `total_scan`); with the CMA area in ZONE_NORMAL nothing is skipped.
#[test]
fn zone_cma_reclaim_for_normal_requests_skips_cma_pages() {
    let mut figures = Vec::new();
    for placement in [Placement::ZoneCma, Placement::Balanced] {
        let mut m = machine(256, 64, placement);
        let reader = m.owners.intern("reader").unwrap();
        let drv = m.owners.intern("driver").unwrap();
        // Page cache read first (under zone_cma: into the CMA zone, at the LRU's tail),
        // then more, until ZONE_NORMAL is nearly full.
        for _ in 0..60_000 {
            m.alloc_owned(reader, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
                .unwrap();
        }
        let before_scan = m.vmstat.get(Counter::PgscanDirect);
        for _ in 0..8000 {
            m.alloc_owned(drv, Gfp::KERNEL, 0, Kind::Kernel).unwrap();
        }
        let skip = m.vmstat.get(Counter::PgskipCma);
        let scan = m.vmstat.get(Counter::PgscanDirect) - before_scan;
        let steal = m.vmstat.get(Counter::PgstealDirect);
        figures.push((placement, skip, scan, steal));
        m.check_invariants().unwrap();
    }
    println!("reclaim for GFP_KERNEL (placement, pgskip_cma, pgscan_direct, pgsteal): {figures:?}");
    let (_, zskip, zscan, _) = figures[0];
    let (_, bskip, bscan, _) = figures[1];
    assert!(zskip > 10_000, "ZONE_CMA pages are skipped: {zskip}");
    assert!(zscan >= zskip, "pgscan includes the skipped pages");
    assert_eq!(bskip, 0);
    assert!(
        zscan > bscan,
        "the extra zone costs scanning work: {zscan} vs {bscan}"
    );
}
