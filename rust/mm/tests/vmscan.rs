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

/// kswapd swaps anonymous pages out as `pageout` does: under writeback until the swap write
/// completes, then freed; it waits for its writes rather than starting more than a round's
/// worth; direct reclaim waits for the writes it needs. A page touched during its write
/// stays resident and gives its slot back.
#[test]
fn swap_out_frees_anonymous_pages_when_the_write_completes() {
    let mut cfg = board(128, 0, Placement::Balanced);
    cfg.swap = 256 * MIB;
    let mut m = cmadev_mm::Machine::new(cfg).unwrap();
    let hog = m
        .start_workload(spec(serde_json::json!({
            "kind": "anon_hog", "name": "hog", "target_pages": 48_000,
            "growth_pages_per_s": 20_000.0})))
        .unwrap();
    let (mut max_writing, mut saw_writeback) = (0, false);
    let high: u64 = m
        .zones
        .iter()
        .map(|z| z.wmark(cmadev_mm::zone::Wmark::High))
        .sum();
    while m.now < 4_000 * MS {
        let t = m.now + 10 * MS;
        m.run_until(t);
        let writing = m.writeback.swap_writing;
        max_writing = max_writing.max(writing);
        saw_writeback |= writing > 0 && m.writeback.nr_writeback >= writing;
        m.check_invariants().unwrap();
    }
    let st = m.workload_stats(hog).unwrap();
    println!(
        "pswpout {}, most swap writes in flight {max_writing} (high watermark {high}), \
         direct reclaims {}",
        m.vmstat.get(Counter::Pswpout),
        m.vmstat.get(Counter::AllocstallNormal)
    );
    assert!(
        saw_writeback,
        "anonymous pages were under writeback to swap"
    );
    assert!(m.vmstat.get(Counter::Pswpout) > 10_000);
    // kswapd starts a round only while less than a round's target (the high watermark) is
    // in flight: at most two rounds' worth.
    assert!(max_writing <= 2 * high + 32, "{max_writing} in flight");
    assert_eq!(st.populated, 48_000, "the hog grew: {st:?}");
    assert_eq!(st.alloc_failures, 0);
    // Once the writes are done nothing is under writeback and every slot is a page's.
    m.stop_workload(hog).unwrap();
    m.run_until(m.now + 2_000 * MS);
    m.check_invariants().unwrap();
    assert_eq!(m.writeback.swap_writing, 0);
    assert_eq!(
        m.writeback.swap_used, 0,
        "the hog's swap slots are freed with it"
    );
}
