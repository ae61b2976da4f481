//! `alloc_contig_range` (`alloc_contig.rs`): an unmovable page fails the isolation at once;
//! a folio its owner frees while a batch holds it isolated is forgotten; each call pays
//! 6.1's per-call work (`lru_cache_disable`, the drain of the lists that hold pages, the
//! isolation and its undo) and its per-page walks.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::cost::CostModel;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::{pg, Kind};
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::{Errno, Machine};
use common::*;

#[test]
fn unmovable_page_fails_isolation_at_once() {
    let mut m = machine(256, 0, Placement::Balanced);
    let k = m.owners.intern("driver").unwrap();
    let i = m.alloc_owned(k, Gfp::KERNEL, 0, Kind::Kernel).unwrap();
    let pfn = m.owned_pfn(k, i).unwrap().unwrap();
    let start = pfn.align_down(9);
    let mut cr = cmadev_mm::alloc_contig::ContigRange::new(
        start,
        start + 512,
        cmadev_mm::pageblock::Migratetype::Movable,
        0,
    );
    let step = m.contig_step(&mut cr, k);
    assert_eq!(step.result, Some(Err(Errno::Ebusy)));
    m.check_invariants().unwrap();
}

/// A folio isolated by a `cma_alloc` in progress may be freed by its owner between two
/// steps; the next step must forget it rather than put a free frame back on the LRU.
#[test]
fn page_freed_while_isolated_by_cma_alloc_is_forgotten() {
    let mut m = machine(256, 64, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    let nfs = m.owners.intern("nfsd").unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    for _ in 0..2000 {
        m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
    }
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    // A reference makes its migration fail, so it stays isolated across steps.
    let (r, _) = m.take_hold(pfn, nfs, HoldKind::Ref, None).unwrap();
    let cam = m.owners.intern("camera").unwrap();
    let id = m.cma_alloc(0, m.cma[0].count, 0, cam, false).unwrap();
    let isolated = m.run_while(m.now + 1_000_000_000, |m| m.pages[pfn].test(pg::ISOLATED));
    assert!(isolated, "the page was isolated");
    m.release_hold(r).unwrap();
    m.free_owned(app, i).unwrap();
    run_job(&mut m, id, 10_000_000_000);
    m.check_invariants().unwrap();
}

/// A machine whose costs are all zero but `set`: the latency of an `alloc_contig_range`
/// is then exactly what that cost charges.
fn costed(placement: Placement, set: impl FnOnce(&mut CostModel)) -> Machine {
    let mut cfg = board(512, 128, placement);
    cfg.cpus = 4;
    let mut cost = CostModel {
        page_copy_ns: 0,
        migrate_fixed_ns: 0,
        migrate_fail_ns: 0,
        isolate_pageblock_ns: 0,
        drain_per_cpu_ns: 0,
        lru_cache_disable_ns: 0,
        lru_drain_per_cpu_ns: 0,
        pfn_walk_ns: 0,
        reclaim_scan_page_ns: 0,
        cleancache_hit_ns: 0,
        zero_page_ns: 0,
        page_alloc_ns: 0,
        ..CostModel::DEFAULT
    };
    set(&mut cost);
    cfg.cost = cost;
    Machine::new(cfg).unwrap()
}

/// `alloc_contig_range([start, start + pages))` in the CMA area, idle; its virtual time.
fn contig_ns(m: &mut Machine, offset: u32, pages: u32) -> u64 {
    let owner = m.owners.intern("dev").unwrap();
    let start = m.cma[0].base_pfn + offset;
    let t0 = m.now;
    let (res, _) = m
        .alloc_contig_range(start, start + pages, Migratetype::Cma, owner)
        .unwrap();
    res.unwrap();
    m.check_invariants().unwrap();
    m.now - t0
}

/// `lru_cache_disable` (6.1) once per call: an expedited grace period, and a drain work
/// item on each CPU whose LRU batches hold pages (here, the CPUs that faulted pages in).
#[test]
fn every_call_pays_lru_cache_disable() {
    let mut m = costed(Placement::Balanced, |c| {
        c.lru_cache_disable_ns = 1000;
        c.lru_drain_per_cpu_ns = 100;
    });
    assert_eq!(
        contig_ns(&mut m, 0, 1),
        1000,
        "no CPU holds a batch at boot"
    );
    let mut cpus = std::collections::BTreeSet::new();
    for name in ["a", "b", "c"] {
        let o = m.owners.intern(name).unwrap();
        m.alloc_owned(o, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        cpus.insert(m.owners.cpu(o));
    }
    assert_eq!(
        contig_ns(&mut m, 1024, 1024),
        1000 + 100 * cpus.len() as u64
    );
    assert_eq!(
        contig_ns(&mut m, 2048, 1024),
        1000,
        "the batches were drained"
    );
}

/// `drain_all_pages` (6.1): only the CPUs whose lists hold pages, drained from the caller,
/// each page freed to the buddy lists.
#[test]
fn the_drain_costs_each_cpu_with_pages_and_each_page() {
    let mut m = costed(Placement::Balanced, |c| {
        c.drain_per_cpu_ns = 1000;
        c.page_alloc_ns = 1;
    });
    let drv = m.owners.intern("drv").unwrap();
    let cpu = m.owners.cpu(drv) as usize;
    let pages: Vec<_> = (0..100)
        .map(|_| m.alloc_page_order0(Gfp::KERNEL, drv).unwrap())
        .collect();
    m.drain_all_pages(0);
    m.take_charge();
    for pfn in pages {
        m.free_page_order0(pfn).unwrap();
    }
    m.take_charge();
    let on_lists = m.pcp[cpu].count as u64;
    assert_eq!(on_lists, 100);
    assert_eq!(contig_ns(&mut m, 0, 1024), 1000 + on_lists);
    assert_eq!(contig_ns(&mut m, 1024, 1024), 0, "nothing left to drain");
}

/// The walks: each frame examined by `isolate_migratepages_range` and
/// `test_pages_isolated` (a free block counts once), each page taken (`split_map_pages`);
/// and the free of each page of a larger free block left outside the range.
#[test]
fn walks_and_frees_cost_per_page() {
    let mut m = costed(Placement::Balanced, |c| c.pfn_walk_ns = 1);
    // One free MAX_ORDER block, split per pageblock when isolated (`split_large_buddy`):
    // two free blocks examined by each walk, the 1024 pages taken.
    assert_eq!(contig_ns(&mut m, 0, 1024), 2 + 2 + 1024);
    let mut m = costed(Placement::Balanced, |c| c.page_alloc_ns = 1);
    // One page out of a free pageblock-sized block (the isolated half of a MAX_ORDER
    // block): the other 511 are freed one by one.
    assert_eq!(contig_ns(&mut m, 0, 1), 511);
}

/// Isolating a pageblock and undoing it cost the same (`set_migratetype_isolate`,
/// `unset_migratetype_isolate`: the zone lock and a walk of the block each).
#[test]
fn isolation_and_its_undo_cost_per_pageblock() {
    let mut m = costed(Placement::Balanced, |c| c.isolate_pageblock_ns = 1);
    assert_eq!(contig_ns(&mut m, 0, 4096), 2 * 8);
}

/// `gcma_alloc_range` (2025) isolates nothing, drains nothing and tests nothing: a gcma
/// allocation pays only its per-page work.
#[test]
fn gcma_pays_no_isolation_drain_or_grace_period() {
    let mut m = costed(Placement::Gcma, |c| {
        c.isolate_pageblock_ns = 1000;
        c.drain_per_cpu_ns = 1000;
        c.lru_cache_disable_ns = 1000;
        c.lru_drain_per_cpu_ns = 1000;
    });
    let o = m.owners.intern("a").unwrap();
    m.alloc_owned(o, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .unwrap();
    assert_eq!(contig_ns(&mut m, 0, 4096), 0);
}
