//! mlock and the unevictable LRU (`mlock.rs`): mlocked pages are never reclaimed or swapped,
//! but they are migrated, so mlock does not block a contiguous allocation; the counters are
//! 6.1's.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::Machine;
use common::*;
use serde_json::json;

const S: u64 = 1_000_000_000;

fn meminfo(m: &Machine, key: &str) -> u64 {
    m.meminfo()
        .into_iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no {key}"))
        .1
}

fn hog(name: &str, pages: u32, mlock: bool) -> cmadev_mm::workload::WorkloadKind {
    spec(
        json!({"kind": "anon_hog", "name": name, "target_pages": pages,
                "growth_pages_per_s": 100_000.0, "mlock": mlock}),
    )
}

#[test]
fn an_mlocked_hog_is_unevictable_and_counted() {
    let mut m = machine(256, 64, Placement::Balanced);
    let id = m.start_workload(hog("locked", 20_000, true)).unwrap();
    m.run_until(S);
    m.check_invariants().unwrap();
    let st = m.workload_stats(id).unwrap();
    assert_eq!(st.resident_pages, 20_000);
    assert_eq!(meminfo(&m, "Mlocked"), 20_000 * 4);
    assert_eq!(meminfo(&m, "Unevictable"), 20_000 * 4);
    assert_eq!(meminfo(&m, "AnonPages"), 20_000 * 4);
    assert_eq!(
        meminfo(&m, "Active(anon)") + meminfo(&m, "Inactive(anon)"),
        0
    );
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsMlocked), 20_000);
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsCulled), 20_000);
    // Exit munlocks every page, then frees it.
    m.stop_workload(id).unwrap();
    m.check_invariants().unwrap();
    assert_eq!(meminfo(&m, "Mlocked"), 0);
    assert_eq!(meminfo(&m, "Unevictable"), 0);
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsMunlocked), 20_000);
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsRescued), 20_000);
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsStranded), 0);
}

/// Under pressure with swap, the plain hog is swapped and the mlocked one is not.
#[test]
fn reclaim_swaps_the_plain_hog_never_the_mlocked_one() {
    let mut cfg = board(256, 0, Placement::Balanced);
    cfg.swap = 256 * MIB;
    let mut m = Machine::new(cfg).unwrap();
    let locked = m.start_workload(hog("locked", 25_000, true)).unwrap();
    let plain = m.start_workload(hog("plain", 25_000, false)).unwrap();
    m.run_until(S);
    // A third hog pushes memory past its size.
    let third = m.start_workload(hog("third", 25_000, false)).unwrap();
    m.run_until(2 * S);
    m.check_invariants().unwrap();
    let (l, p, t) = (
        m.workload_stats(locked).unwrap(),
        m.workload_stats(plain).unwrap(),
        m.workload_stats(third).unwrap(),
    );
    println!(
        "resident: locked {}, plain {}, third {}; pswpout {}",
        l.resident_pages,
        p.resident_pages,
        t.resident_pages,
        m.vmstat.get(Counter::Pswpout)
    );
    assert!(m.vmstat.get(Counter::Pswpout) > 5_000);
    assert_eq!(l.resident_pages, 25_000, "mlocked pages stay");
    assert!(p.resident_pages < 25_000, "the plain hog was swapped");
    assert_eq!(meminfo(&m, "Mlocked"), 25_000 * 4);
}

/// The kernel's `alloc_contig_range` takes unevictable pages (`ISOLATE_UNEVICTABLE`):
/// a `cma_alloc` over a CMA area full of mlocked pages succeeds by migrating them, and they
/// stay mlocked where they land.
#[test]
fn cma_alloc_migrates_mlocked_pages() {
    let mut m = machine(256, 64, Placement::Balanced);
    // Enough to push balanced placement into CMA.
    let id = m.start_workload(hog("locked", 50_000, true)).unwrap();
    m.run_until(S);
    let in_cma = m.cma_usage(0).anon;
    assert!(in_cma > 4_000, "mlocked pages in CMA: {in_cma}");
    let before = (
        m.vmstat.get(Counter::UnevictablePgsStranded),
        m.vmstat.get(Counter::UnevictablePgsMlocked),
    );
    let cam = m.owners.intern("camera").unwrap();
    let job = m.cma_alloc(0, 8192, 8, cam, false).unwrap();
    run_job(&mut m, job, 10 * S);
    let j = &m.jobs[job as usize];
    assert!(
        j.pfn.is_some(),
        "cma_alloc over mlocked pages: {:?}",
        j.errno
    );
    let migrated = j.pages_migrated;
    println!("cma_alloc of 32 MiB over {in_cma} mlocked CMA pages: {migrated} migrated");
    assert!(migrated > 0);
    m.check_invariants().unwrap();
    assert_eq!(m.workload_stats(id).unwrap().resident_pages, 50_000);
    assert_eq!(meminfo(&m, "Mlocked"), 50_000 * 4, "still mlocked");
    assert_eq!(meminfo(&m, "Unevictable"), 50_000 * 4);
    // 6.1: the isolated source is stranded (lru_cache_disable), the destination rescued by
    // lru_add_fn, then mlocked and culled again.
    assert_eq!(
        m.vmstat.get(Counter::UnevictablePgsStranded) - before.0,
        migrated
    );
    assert_eq!(
        m.vmstat.get(Counter::UnevictablePgsMlocked) - before.1,
        migrated
    );
}

/// Locking pages already resident culls them from the LRU; unlocking rescues them.
#[test]
fn mlock_and_munlock_of_resident_pages() {
    let mut m = machine(256, 64, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    for _ in 0..1000 {
        m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
    }
    assert_eq!(m.lru_sizes()[0], 1000);
    m.mlock_owner(app, true).unwrap();
    m.check_invariants().unwrap();
    assert_eq!(m.lru_sizes()[0], 0);
    assert_eq!(m.lru.nr_unevictable, 1000);
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsCulled), 1000);
    // New pages of a locked mapping go to the unevictable LRU directly.
    m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .unwrap();
    assert_eq!(m.node_stat.nr_mlock, 1001);
    m.mlock_owner(app, false).unwrap();
    m.check_invariants().unwrap();
    assert_eq!(m.lru_sizes()[0], 1001);
    assert_eq!(m.vmstat.get(Counter::UnevictablePgsRescued), 1001);
    assert_eq!(m.node_stat.nr_mlock, 0);
    assert!(m.mlock_owner(cmadev_mm::owner::OWNER_KERNEL, true).is_err());
}

/// A long-term pin migrates mlocked pages out of CMA too (`folio_isolate_lru` takes them);
/// outside `lru_cache_disable` the source is munlocked, not stranded.
#[test]
fn a_longterm_pin_migrates_mlocked_pages_out_of_cma() {
    let mut m = with_policy(
        256,
        64,
        cmadev_mm::config::PolicyConfig {
            migrate_on_longterm_pin: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    m.mlock_owner(app, true).unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    let munlocked = m.vmstat.get(Counter::UnevictablePgsMunlocked);
    let (_, new) = m
        .take_hold(pfn, app, cmadev_mm::gup::HoldKind::LongtermPin, None)
        .unwrap();
    assert!(!in_area(&m, new), "migrated out of CMA");
    assert_eq!(
        m.vmstat.get(Counter::UnevictablePgsMunlocked),
        munlocked + 1
    );
    m.check_invariants().unwrap();
}
