//! Guaranteed CMA (`gcma.rs`): the area takes no ordinary allocation; the cleancache and the
//! write-through frontswap keep discardable copies in it; `cma_alloc` discards them.
//! `cargo test -p cmadev-mm --test gcma -- --nocapture` prints the figures.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::memory::Access;
use cmadev_mm::owner::{SLOT_CACHED, SLOT_EVICTED, SLOT_SWAPPED};
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::Machine;
use common::*;

fn slot(m: &Machine, owner: u16, index: u32) -> u32 {
    m.owners.list[owner as usize].map[index as usize]
}

/// No ordinary allocation ever lands in a gcma area, however tight memory gets; with
/// nothing discardable (anonymous memory, no swap) the area stays empty.
#[test]
fn gcma_area_takes_no_ordinary_allocation() {
    let mut m = machine(256, 64, Placement::Gcma);
    let app = m.owners.intern("app").unwrap();
    let fs = m.owners.intern("ext4").unwrap();
    let drv = m.owners.intern("driver").unwrap();
    let mut n = 0;
    while m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .is_ok()
    {
        n += 1;
        if n % 8 == 0 {
            let _ = m.alloc_owned(drv, Gfp::KERNEL, 0, Kind::Kernel);
        }
    }
    let u = m.cma_usage(0);
    println!("gcma: {n} anonymous pages until -ENOMEM; area {u:?}");
    assert_eq!(
        u.free, m.cma[0].count as u64,
        "nothing discardable: the area is untouched"
    );
    assert!(n < 192 * 256, "only memory outside the area was usable");
    m.check_invariants().unwrap();
    // Page cache: only its evicted copies enter the area.
    m.free_owned(app, 0).unwrap();
    for i in 1..n {
        m.free_owned(app, i).unwrap();
    }
    for _ in 0..60_000 {
        m.alloc_owned(fs, Gfp::USER_MOVABLE, 0, Kind::File).unwrap();
    }
    let u = m.cma_usage(0);
    println!("gcma after page cache: area {u:?}");
    assert_eq!((u.anon, u.file, u.other), (0, 0, 0));
    let kept = m.vmstat.get(Counter::CleancachePuts) - m.vmstat.get(Counter::CleancacheEvictions);
    assert_eq!(u.cache, kept);
    assert!(u.cache > 0);
    m.check_invariants().unwrap();
}

/// Evicted clean file pages go to the cleancache; a re-read finds them there: no storage
/// read, the cost of a copy.
#[test]
fn gcma_cleancache_keeps_evicted_file_pages_and_a_reread_hits() {
    let mut m = machine(256, 64, Placement::Gcma);
    let reader = m.owners.intern("reader").unwrap();
    for _ in 0..60_000 {
        m.alloc_owned(reader, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
    }
    let u = m.cma_usage(0);
    let puts = m.vmstat.get(Counter::CleancachePuts);
    println!("gcma after 60000 file pages: area {u:?}, {puts} puts");
    assert!(u.cache > 5000 && u.anon == 0 && u.file == 0);
    assert_eq!(
        u.cache, puts,
        "every put is still cached (the area is not full)"
    );
    assert_eq!(
        slot(&m, reader, 0) & SLOT_CACHED,
        SLOT_CACHED,
        "the oldest page is cached"
    );
    m.check_invariants().unwrap();

    let (pgpgin, refaults) = (
        m.vmstat.get(Counter::Pgpgin),
        m.vmstat.get(Counter::WorkingsetRefaultFile),
    );
    m.take_charge();
    let (pfn, how) = m.access_owned(reader, 0, false).unwrap();
    let cost = m.take_charge();
    assert_eq!(how, Access::CleancacheHit);
    assert!(!in_area(&m, pfn));
    assert_eq!(m.vmstat.get(Counter::Pgpgin), pgpgin, "no storage read");
    assert_eq!(m.vmstat.get(Counter::WorkingsetRefaultFile), refaults);
    assert_eq!(m.vmstat.get(Counter::CleancacheHits), 1);
    let c = &m.cfg.cost;
    assert!(
        cost >= c.cleancache_hit_ns && cost < c.storage_read_ns(1),
        "{cost} ns"
    );
    println!(
        "gcma: cleancache hit cost {cost} ns (a storage read: {} ns)",
        c.storage_read_ns(1)
    );
    // The fault's allocation may have reclaimed (and cached) a batch more.
    let puts = m.vmstat.get(Counter::CleancachePuts);
    assert_eq!(m.vmstat.get(Counter::CleancacheEvictions), 0);
    assert_eq!(m.cma_usage(0).cache, puts - 1, "the cache is exclusive");

    // Truncating a cached page drops its copy.
    assert_eq!(slot(&m, reader, 1) & SLOT_CACHED, SLOT_CACHED);
    m.free_owned(reader, 1).unwrap();
    assert_eq!(m.cma_usage(0).cache, puts - 2);
    m.check_invariants().unwrap();
}

/// A full cleancache evicts its oldest pages first.
#[test]
fn gcma_full_cache_evicts_its_oldest_pages() {
    let mut m = machine(256, 64, Placement::Gcma);
    let reader = m.owners.intern("reader").unwrap();
    for _ in 0..100_000 {
        m.alloc_owned(reader, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
    }
    let u = m.cma_usage(0);
    let evictions = m.vmstat.get(Counter::CleancacheEvictions);
    println!("gcma after 100000 file pages: area {u:?}, {evictions} evictions");
    assert_eq!(u.cache, m.cma[0].count as u64, "the whole area is cache");
    assert!(evictions > 10_000);
    assert_eq!(
        slot(&m, reader, 0),
        SLOT_EVICTED,
        "the oldest copy was dropped"
    );
    let cached: Vec<u32> = (0..100_000)
        .filter(|&i| {
            slot(&m, reader, i) & SLOT_CACHED == SLOT_CACHED && slot(&m, reader, i) < SLOT_SWAPPED
        })
        .collect();
    assert_eq!(cached.len() as u64, u.cache);
    assert!(
        cached.windows(2).all(|w| w[1] == w[0] + 1),
        "a contiguous run of recent pages"
    );
    m.check_invariants().unwrap();
}

/// `cma_alloc` over an area full of cache pages discards them: no migration, no copy,
/// latency in the tens of microseconds, and nearly the same on an idle area.
#[test]
fn gcma_cma_alloc_discards_instead_of_migrating() {
    let mut m = machine(256, 64, Placement::Gcma);
    let cam = m.owners.intern("camera").unwrap();
    let idle = m.cma_alloc(0, 4096, 8, cam, false).unwrap();
    run_job(&mut m, idle, 1_000_000_000);
    let idle_latency = m.jobs[idle as usize].latency_ns().unwrap();
    let pfn = m.jobs[idle as usize].pfn.unwrap();
    m.cma_release(0, pfn, 4096, cam).unwrap();

    let reader = m.owners.intern("reader").unwrap();
    for _ in 0..100_000 {
        m.alloc_owned(reader, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
    }
    assert_eq!(m.cma_usage(0).cache, m.cma[0].count as u64);
    let id = m.cma_alloc(0, 4096, 8, cam, false).unwrap();
    run_job(&mut m, id, 1_000_000_000);
    let job = m.jobs[id as usize].clone();
    println!(
        "gcma cma_alloc 16 MiB: idle {} us, over a full cache {} us ({} discarded, {} migrated)",
        idle_latency / 1000,
        job.latency_ns().unwrap() / 1000,
        job.pages_discarded,
        job.pages_migrated
    );
    let pfn = job.pfn.expect("guaranteed");
    assert_eq!(job.pages_migrated, 0);
    assert_eq!(job.pages_reclaimed, 0);
    assert_eq!(job.pages_discarded, 4096);
    assert_eq!(m.vmstat.get(Counter::CleancacheDiscards), 4096);
    assert_eq!(m.vmstat.get(Counter::PgmigrateSuccess), 0);
    assert!(job.latency_ns().unwrap() < 2 * MS, "low latency");
    assert!(
        job.latency_ns().unwrap() < idle_latency + 1_000 * 4096,
        "nearly flat"
    );
    m.check_invariants().unwrap();
    // The discarded pages' next read is a refault.
    let lost = (0..100_000)
        .find(|&i| slot(&m, reader, i) == SLOT_EVICTED && i > 50_000)
        .unwrap();
    let (_, how) = m.access_owned(reader, lost, false).unwrap();
    assert_eq!(how, Access::Refault);
    m.cma_release(0, pfn, 4096, cam).unwrap();
    m.check_invariants().unwrap();
}

/// With swap, swapped-out anonymous pages keep a write-through copy in the area: the
/// swap-in finds it in memory (no device read).
#[test]
fn gcma_frontswap_keeps_a_copy_of_swapped_pages() {
    let mut cfg = board(256, 64, Placement::Gcma);
    cfg.swap = 256 * MIB;
    let mut m = Machine::new(cfg).unwrap();
    let hog = m.owners.intern("hog").unwrap();
    for _ in 0..60_000 {
        let i = m
            .alloc_owned(hog, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        m.access_owned(hog, i, true).unwrap();
    }
    let stores = m.vmstat.get(Counter::FrontswapStores);
    let pswpout = m.vmstat.get(Counter::Pswpout);
    println!("gcma frontswap: {pswpout} pages swapped out, {stores} copies kept");
    assert!(stores > 1000);
    assert_eq!(
        stores, pswpout,
        "write-through: every swapped page is also on the device"
    );
    m.check_invariants().unwrap();
    let cached = (0..60_000)
        .find(|&i| {
            let s = slot(&m, hog, i);
            s & SLOT_CACHED == SLOT_CACHED && s < SLOT_SWAPPED
        })
        .unwrap();
    let pswpin = m.vmstat.get(Counter::Pswpin);
    let (_, how) = m.access_owned(hog, cached, false).unwrap();
    assert_eq!(how, Access::CleancacheHit);
    assert_eq!(
        m.vmstat.get(Counter::Pswpin),
        pswpin,
        "no read from the swap device"
    );
    assert_eq!(m.vmstat.get(Counter::FrontswapLoads), 1);
    m.check_invariants().unwrap();
    // A contiguous allocation drops copies: those pages come back from the device.
    let cam = m.owners.intern("camera").unwrap();
    let id = m.cma_alloc(0, m.cma[0].count, 0, cam, false).unwrap();
    run_job(&mut m, id, 1_000_000_000);
    assert!(m.jobs[id as usize].pfn.is_some());
    m.check_invariants().unwrap();
    let gone = (0..60_000)
        .find(|&i| slot(&m, hog, i) == SLOT_SWAPPED)
        .unwrap();
    let (_, how) = m.access_owned(hog, gone, false).unwrap();
    assert_eq!(how, Access::SwapIn);
    m.check_invariants().unwrap();
}
