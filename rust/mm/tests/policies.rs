//! Placements (legacy, balanced, zone_cma, movable_zone, gcma), the fixes, memory
//! offlining, and the invariants after each, driven through the public API
//! (`alloc_owned`/`access_owned`/`take_hold`/`cma_alloc`), not workloads.
//! `cargo test -p cmadev-mm --test policies -- --nocapture` prints the figures.

mod common;

use cmadev_mm::config::{Placement, PolicyConfig};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::memory::Access;
use cmadev_mm::owner::{SLOT_CACHED, SLOT_EVICTED, SLOT_SWAPPED};
use cmadev_mm::page::{pg, Kind};
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::zone::{Wmark, ZoneId};
use cmadev_mm::{Errno, Machine, MmError};
use common::*;

const MS: u64 = 1_000_000;

fn with_policy(ram_mib: u64, cma_mib: u64, policy: PolicyConfig) -> Machine {
    let mut cfg = board(ram_mib, cma_mib, policy.placement);
    cfg.policy = policy;
    let m = Machine::new(cfg).expect("valid board");
    m.check_invariants().expect("invariants at boot");
    m
}

fn policy(placement: Placement) -> PolicyConfig {
    PolicyConfig {
        placement,
        ..PolicyConfig::default()
    }
}

fn in_area(m: &Machine, pfn: u32) -> bool {
    let a = &m.cma[0];
    pfn >= a.base_pfn && pfn < a.base_pfn + a.count
}

fn slot(m: &Machine, owner: u16, index: u32) -> u32 {
    m.owners.list[owner as usize].map[index as usize]
}

fn movable_lists_empty(m: &Machine, zi: usize) -> bool {
    m.zones[zi]
        .free_area
        .iter()
        .all(|a| a.lists[Migratetype::Movable.index()].is_empty())
}

/// Allocate movable pages of `kind` for `owner` until one lands in the CMA area; returns
/// its index. Panics if none does within `limit` pages.
fn alloc_until_cma(m: &mut Machine, owner: u16, kind: Kind, limit: u32) -> u32 {
    for _ in 0..limit {
        let i = m
            .alloc_owned(owner, Gfp::HIGHUSER_MOVABLE, 0, kind)
            .unwrap();
        let pfn = m.owned_pfn(owner, i).unwrap().unwrap();
        if in_area(m, pfn) {
            return i;
        }
    }
    panic!("no {} page reached the CMA area", kind.name());
}

// ----- placements -------------------------------------------------------------------------

/// legacy (2015): CMA pages only once the movable free lists are empty
/// (`__rmqueue_cma_fallback` after `__rmqueue_smallest`).
#[test]
fn legacy_takes_cma_only_once_movable_lists_are_empty() {
    let mut m = machine(256, 64, Placement::Legacy);
    let app = m.owners.intern("app").unwrap();
    let mut n = 0u32;
    loop {
        let lists_empty_before = movable_lists_empty(&m, 0);
        let i = m
            .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        n += 1;
        let pfn = m.owned_pfn(app, i).unwrap().unwrap();
        if in_area(&m, pfn) {
            assert!(
                lists_empty_before || movable_lists_empty(&m, 0),
                "legacy took a CMA page while movable blocks were free"
            );
            break;
        }
    }
    let outside = 192 * 256;
    println!("legacy: first CMA page after {n} pages ({outside} outside CMA)");
    assert!(
        n > outside * 9 / 10,
        "most of the memory outside CMA was used first"
    );
    m.check_invariants().unwrap();
}

/// balanced (Roman Gushchin, 2020): CMA first once free CMA pages exceed half the zone's
/// free pages, while movable blocks are still free.
#[test]
fn balanced_takes_cma_once_it_holds_half_the_free_memory() {
    let mut m = machine(256, 64, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    let mut n = 0u32;
    loop {
        let (free, cma) = (m.zones[0].nr_free_pages, m.zones[0].nr_free_cma);
        let i = m
            .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        n += 1;
        let pfn = m.owned_pfn(app, i).unwrap().unwrap();
        if in_area(&m, pfn) {
            // A per-CPU refill takes a batch at once: allow one batch of slack.
            let batch = m.pcp[0].batch as u64;
            assert!(
                2 * cma + 2 * batch > free,
                "CMA taken early: {cma} free CMA of {free} free"
            );
            assert!(
                !movable_lists_empty(&m, 0),
                "before the movable lists ran dry"
            );
            println!("balanced: first CMA page after {n} pages, {cma} of {free} free were CMA");
            break;
        }
        assert!(
            2 * cma <= free + 2,
            "no CMA page although CMA held over half: {cma}/{free}"
        );
    }
    assert!(
        n < 192 * 256 * 8 / 10,
        "well before memory outside CMA ran out"
    );
    m.check_invariants().unwrap();
}

/// Zone placements: `GFP_HIGHUSER_MOVABLE` goes to the CMA zone first through the zonelist;
/// `GFP_USER | __GFP_MOVABLE` (block-device page cache) and `GFP_KERNEL` never do.
fn zone_placement_routes_only_highuser_movable(placement: Placement, id: ZoneId) {
    let mut m = machine(256, 64, placement);
    assert_eq!(m.zones.len(), 2);
    assert_eq!(m.zones[1].id, id);
    assert_eq!(m.zones[1].start_pfn, m.cma[0].base_pfn);
    let app = m.owners.intern("app").unwrap();
    let fs = m.owners.intern("ext4").unwrap();
    let drv = m.owners.intern("driver").unwrap();
    for _ in 0..2000 {
        let i = m
            .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        assert_eq!(m.zone_idx(m.owned_pfn(app, i).unwrap().unwrap()), 1);
    }
    // Fill the CMA zone past its low watermark: movable requests then fall back to NORMAL.
    let mut fell_back = false;
    for _ in 0..20_000 {
        let i = m
            .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        if m.zone_idx(m.owned_pfn(app, i).unwrap().unwrap()) == 0 {
            fell_back = true;
            break;
        }
    }
    assert!(fell_back, "the zonelist falls back to ZONE_NORMAL");
    let low = m.zones[1].wmark(Wmark::Low);
    assert!(
        m.zones[1].nr_free_pages <= low + 64,
        "the CMA zone is used down to its low watermark ({} free, low {low})",
        m.zones[1].nr_free_pages
    );
    for _ in 0..3000 {
        let i = m.alloc_owned(fs, Gfp::USER_MOVABLE, 0, Kind::File).unwrap();
        assert_eq!(m.zone_idx(m.owned_pfn(fs, i).unwrap().unwrap()), 0);
        let k = m.alloc_owned(drv, Gfp::KERNEL, 0, Kind::Kernel).unwrap();
        assert_eq!(m.zone_idx(m.owned_pfn(drv, k).unwrap().unwrap()), 0);
    }
    let counter = if id == ZoneId::Cma {
        Counter::PgallocCma
    } else {
        Counter::PgallocMovable
    };
    assert!(m.vmstat.get(counter) >= 2000);
    m.check_invariants().unwrap();
}

#[test]
fn zone_cma_takes_only_highuser_movable_requests() {
    zone_placement_routes_only_highuser_movable(Placement::ZoneCma, ZoneId::Cma);
}

#[test]
fn movable_zone_takes_only_highuser_movable_requests() {
    zone_placement_routes_only_highuser_movable(Placement::MovableZone, ZoneId::Movable);
}

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

// ----- gcma -------------------------------------------------------------------------------

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
    assert_eq!(m.cma_usage(0).cache, puts - 1, "the cache is exclusive");

    // Truncating a cached page drops its copy.
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
    m.cma_release(0, pfn, 4096).unwrap();

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
    m.cma_release(0, pfn, 4096).unwrap();
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

// ----- fixes ------------------------------------------------------------------------------

/// mainline's FOLL_LONGTERM path: the page moves out of CMA before the pin, at the
/// pinner's expense; a page that cannot move fails the pin with -ENOMEM.
#[test]
fn migrate_on_longterm_pin_moves_the_page_or_fails_the_pin() {
    for fix in [false, true] {
        let mut m = with_policy(
            256,
            64,
            PolicyConfig {
                migrate_on_longterm_pin: fix,
                ..policy(Placement::Balanced)
            },
        );
        let app = m.owners.intern("app").unwrap();
        let rdma = m.owners.intern("rdma").unwrap();
        let i = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
        let pfn = m.owned_pfn(app, i).unwrap().unwrap();
        m.take_charge();
        let (_, pinned) = m.take_hold(pfn, rdma, HoldKind::LongtermPin, None).unwrap();
        let cost = m.take_charge();
        if fix {
            assert!(!in_area(&m, pinned), "moved out of CMA");
            assert_eq!(m.owned_pfn(app, i).unwrap(), Some(pinned));
            assert!(
                cost >= m.cfg.cost.migrate_page_ns(),
                "the pinner pays: {cost} ns"
            );
            assert_eq!(m.vmstat.get(Counter::PinMigrations), 1);
            println!("migrate_on_longterm_pin: pin cost {cost} ns");
        } else {
            assert_eq!(pinned, pfn, "pinned in place");
        }
        assert_eq!(m.pin_count(pinned), 1);
        // A short FOLL_PIN is not long-term: stays.
        let j = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
        let pfn = m.owned_pfn(app, j).unwrap().unwrap();
        let (_, pinned) = m.take_hold(pfn, rdma, HoldKind::Pin, None).unwrap();
        assert_eq!(pinned, pfn);
        m.check_invariants().unwrap();
        if !fix {
            continue;
        }
        // A page with an extra reference cannot be migrated: the pin fails.
        let k = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
        let pfn = m.owned_pfn(app, k).unwrap().unwrap();
        m.take_hold(pfn, app, HoldKind::Ref, None).unwrap();
        let holds = m.holds.len();
        let err = m
            .take_hold(pfn, rdma, HoldKind::LongtermPin, None)
            .unwrap_err();
        assert!(
            matches!(err, MmError::OutOfMemory(ref s) if s.contains("-ENOMEM")),
            "{err}"
        );
        assert_eq!(m.holds.len(), holds, "no pin taken");
        assert_eq!(m.vmstat.get(Counter::PinMigrationFail), 1);
        m.check_invariants().unwrap();
    }
}

/// Under movable_zone, FOLL_LONGTERM also moves pages out of ZONE_MOVABLE (5.13).
#[test]
fn migrate_on_longterm_pin_leaves_zone_movable() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            migrate_on_longterm_pin: true,
            ..policy(Placement::MovableZone)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let rdma = m.owners.intern("rdma").unwrap();
    let i = m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
        .unwrap();
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    assert_eq!(m.zone_idx(pfn), 1);
    let (_, pinned) = m.take_hold(pfn, rdma, HoldKind::LongtermPin, None).unwrap();
    assert_eq!(m.zone_idx(pinned), 0);
    m.check_invariants().unwrap();
}

/// Mel Gorman's migrate_on_pin: every FOLL_PIN pin moves the page out, get_page does not;
/// a short pin whose page cannot move is taken in place.
#[test]
fn migrate_on_pin_moves_every_foll_pin_but_not_get_page() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            migrate_on_pin: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let dio = m.owners.intern("dio").unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    let (r, same) = m.take_hold(pfn, dio, HoldKind::Ref, None).unwrap();
    assert_eq!(same, pfn, "get_page does not migrate");
    m.release_hold(r).unwrap();
    m.take_charge();
    let (_, moved) = m.take_hold(pfn, dio, HoldKind::Pin, Some(MS)).unwrap();
    let cost = m.take_charge();
    assert!(!in_area(&m, moved));
    assert!(cost >= m.cfg.cost.migrate_page_ns());
    println!("migrate_on_pin: FOLL_PIN cost {cost} ns");
    // Best effort: a referenced page is pinned where it is.
    let j = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, j).unwrap().unwrap();
    m.take_hold(pfn, app, HoldKind::Ref, None).unwrap();
    let (_, stays) = m.take_hold(pfn, dio, HoldKind::Pin, None).unwrap();
    assert_eq!(stays, pfn);
    assert_eq!(m.vmstat.get(Counter::PinMigrations), 1);
    assert_eq!(m.vmstat.get(Counter::PinMigrationFail), 1);
    m.run_until(m.now + 10 * MS);
    m.check_invariants().unwrap();
}

/// Mel Gorman's migrate_on_first_dirty: the first write fault, and the start of writeback,
/// move a CMA page out, charged to the writer.
#[test]
fn migrate_on_first_dirty_moves_pages_when_dirtied_or_written_back() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            migrate_on_first_dirty: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    m.take_charge();
    let (pfn, _) = m.access_owned(app, i, true).unwrap();
    let cost = m.take_charge();
    assert!(!in_area(&m, pfn), "the first dirtying moved the page");
    assert!(m.pages[pfn as usize].test(pg::DIRTY));
    assert!(cost >= m.cfg.cost.migrate_page_ns());
    assert_eq!(m.vmstat.get(Counter::DirtyMigrations), 1);
    println!("migrate_on_first_dirty: first write cost {cost} ns");

    // A page dirtied while referenced stays; it moves when its writeback starts.
    let j = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, j).unwrap().unwrap();
    let (r, _) = m.take_hold(pfn, app, HoldKind::Ref, None).unwrap();
    let (dirty, _) = m.access_owned(app, j, true).unwrap();
    assert_eq!(dirty, pfn, "a referenced page cannot move");
    m.release_hold(r).unwrap();
    m.writeback_owned(app, j).unwrap();
    let now = m.owned_pfn(app, j).unwrap().unwrap();
    assert!(!in_area(&m, now), "moved at the start of writeback");
    assert!(m.pages[now as usize].test(pg::WRITEBACK));
    assert_eq!(m.vmstat.get(Counter::DirtyMigrations), 2);
    m.check_invariants().unwrap();
    m.run_until(m.now + 100 * MS);
    m.check_invariants().unwrap();
}

/// warn_cma_pins: get_page on a CMA page is logged with who took it; the annotated
/// get_page_short is not, nor are pages outside CMA.
#[test]
fn warn_cma_pins_warns_on_get_page_but_not_get_page_short() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            warn_cma_pins: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let nfs = m.owners.intern("nfsd").unwrap();
    let outside = m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
        .unwrap();
    let outside = m.owned_pfn(app, outside).unwrap().unwrap();
    assert!(!in_area(&m, outside));
    m.take_hold(outside, nfs, HoldKind::Ref, None).unwrap();
    assert!(m.dmesg.lines.is_empty());
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    m.take_hold(pfn, nfs, HoldKind::RefShort, None).unwrap();
    assert!(m.dmesg.lines.is_empty(), "get_page_short is exempt");
    m.take_hold(pfn, nfs, HoldKind::Ref, None).unwrap();
    assert_eq!(m.dmesg.lines.len(), 1);
    let line = &m.dmesg.lines[0];
    println!("{line}");
    assert!(line.contains("get_page()") && line.contains("nfsd") && line.contains("app"));
}

/// pin_duration_warn: put_page/unpin warns when a CMA page stayed held past the threshold,
/// naming the holder.
#[test]
fn pin_duration_warn_names_long_holders() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            pin_duration_warn_ns: Some(10 * MS),
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let dio = m.owners.intern("dio").unwrap();
    let rdma = m.owners.intern("rdma").unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    m.take_hold(pfn, dio, HoldKind::Pin, Some(5 * MS)).unwrap();
    m.take_hold(pfn, rdma, HoldKind::LongtermPin, Some(50 * MS))
        .unwrap();
    m.run_until(m.now + 20 * MS);
    assert!(m.dmesg.lines.is_empty(), "5 ms is under the threshold");
    m.run_until(m.now + 50 * MS);
    assert_eq!(m.dmesg.lines.len(), 1);
    let line = &m.dmesg.lines[0];
    println!("{line}");
    assert!(line.contains("rdma") && line.contains("50 ms") && line.contains("FOLL_LONGTERM"));
    assert!(line.contains("app"), "and whose page it was");
}

/// Combinations that cannot do anything are refused, saying why.
#[test]
fn pointless_combinations_are_rejected_with_a_reason() {
    let check = |p: PolicyConfig| {
        let mut cfg = board(256, 64, p.placement);
        cfg.policy = p;
        Machine::new(cfg).err()
    };
    for (fix, p) in [
        (
            "migrate_on_longterm_pin",
            PolicyConfig {
                migrate_on_longterm_pin: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "migrate_on_pin",
            PolicyConfig {
                migrate_on_pin: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "migrate_on_first_dirty",
            PolicyConfig {
                migrate_on_first_dirty: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "warn_cma_pins",
            PolicyConfig {
                warn_cma_pins: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "fs_superblock_unmovable",
            PolicyConfig {
                fs_superblock_unmovable: true,
                ..policy(Placement::ZoneCma)
            },
        ),
    ] {
        let err =
            check(p.clone()).unwrap_or_else(|| panic!("{fix} accepted with {:?}", p.placement));
        let msg = err.to_string();
        assert!(matches!(err, MmError::InvalidConfig(_)));
        assert!(
            msg.contains(fix) && msg.contains(p.placement.name()),
            "{msg}"
        );
    }
    let all = |placement| PolicyConfig {
        migrate_on_longterm_pin: true,
        migrate_on_pin: true,
        migrate_on_first_dirty: true,
        warn_cma_pins: true,
        pin_duration_warn_ns: Some(MS),
        fs_superblock_unmovable: placement != Placement::ZoneCma
            && placement != Placement::MovableZone,
        ..policy(placement)
    };
    for placement in [
        Placement::Legacy,
        Placement::Balanced,
        Placement::ZoneCma,
        Placement::MovableZone,
    ] {
        assert!(
            check(all(placement)).is_none(),
            "{placement:?} takes every fix that applies"
        );
    }
}

// ----- memory offlining -------------------------------------------------------------------

/// The 4 MiB range of `[from, to)` holding the most page cache and no kernel memory.
fn busiest_range(m: &Machine, from: u32, to: u32) -> (u32, u32, usize) {
    (from..to)
        .step_by(1024)
        .filter(|&s| {
            (s..s + 1024).all(|p| {
                !matches!(
                    m.pages[p as usize].kind(),
                    Kind::Kernel | Kind::Reserved | Kind::Device
                )
            })
        })
        .map(|s| {
            let n = (s..s + 1024)
                .filter(|&p| m.pages[p as usize].kind() == Kind::File)
                .count();
            (s, s + 1024, n)
        })
        .max_by_key(|r| r.2)
        .expect("a range")
}

fn meminfo(m: &Machine, key: &str) -> u64 {
    m.meminfo().into_iter().find(|(k, _)| *k == key).unwrap().1
}

/// movable_zone (4.17): CMA memory is ZONE_MOVABLE, and that kernel's hotplug only looks at
/// the pages: a range holding movable pages is emptied and offlined, and the CMA area has
/// lost that memory without knowing it. A device buffer blocks offlining.
#[test]
fn movable_zone_offlining_takes_memory_from_the_cma_area() {
    let mut m = machine(256, 64, Placement::MovableZone);
    let app = m.owners.intern("app").unwrap();
    for _ in 0..3000 {
        m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
    }
    let (start, end, in_range) = busiest_range(&m, m.cma[0].base_pfn, m.nr_pages());
    assert!(in_range > 500, "the range holds page cache");
    let total = meminfo(&m, "MemTotal");
    let r = m.offline_pages(start, end).unwrap();
    println!(
        "movable_zone: offline 4 MiB of CMA: {:?} after {} us, {} pages migrated",
        r.result,
        r.elapsed_ns / 1000,
        r.pages_migrated
    );
    assert_eq!(r.result, Ok(()));
    assert_eq!(r.pages_migrated as usize, in_range);
    assert_eq!(meminfo(&m, "MemTotal"), total - 4096);
    assert_eq!(meminfo(&m, "CmaTotal"), 64 * 1024, "the area does not know");
    assert!(
        (0..3000).all(|i| m.owned_pfn(app, i).unwrap().is_some()),
        "nothing lost"
    );
    m.check_invariants().unwrap();

    // The area cannot hand out its whole size any more.
    let cam = m.owners.intern("camera").unwrap();
    let id = m.cma_alloc(0, m.cma[0].count, 0, cam, false).unwrap();
    run_job(&mut m, id, 10_000_000_000);
    assert_eq!(m.jobs[id as usize].errno, Some(Errno::Ebusy));
    m.check_invariants().unwrap();
    // Onlining gives it back.
    m.online_pages(start, end).unwrap();
    assert_eq!(meminfo(&m, "MemTotal"), total);
    let id = m.cma_alloc(0, m.cma[0].count, 0, cam, false).unwrap();
    run_job(&mut m, id, 10_000_000_000);
    let pfn = m.jobs[id as usize].pfn.expect("whole again");
    m.check_invariants().unwrap();

    // A device buffer in the range blocks offlining at isolation.
    let r = m.offline_pages(pfn, pfn + 1024).unwrap();
    assert_eq!(r.result, Err(Errno::Ebusy));
    assert_eq!(r.reason, Some("failure to isolate range"));
    assert_eq!(r.blockers[0].owner, "camera");
    assert!(m
        .dmesg
        .lines
        .last()
        .unwrap()
        .contains("failed due to failure to isolate range"));
    assert_eq!(m.pageblocks.get(pfn), Migratetype::Cma, "isolation undone");
    m.check_invariants().unwrap();
}

/// Since 5.4 CMA pageblocks are unmovable to memory offlining: refused even when free.
/// ZONE_CMA is refused outright. Ordinary memory goes offline once its movable pages move;
/// a pinned page or a kernel page keeps it online.
#[test]
fn offlining_refuses_cma_memory_in_current_kernels() {
    let mut m = machine(256, 64, Placement::Balanced);
    let base = m.cma[0].base_pfn;
    let r = m.offline_pages(base, base + 1024).unwrap();
    assert_eq!(r.result, Err(Errno::Ebusy));
    assert_eq!(r.blockers[0].reason, "cma");
    assert_eq!(m.pageblocks.get(base), Migratetype::Cma);

    // legacy reproduces 4.1, before the check: a free CMA range goes offline.
    let mut l = machine(256, 64, Placement::Legacy);
    let base = l.cma[0].base_pfn;
    assert_eq!(l.offline_pages(base, base + 1024).unwrap().result, Ok(()));
    l.check_invariants().unwrap();

    let mut z = machine(256, 64, Placement::ZoneCma);
    let base = z.cma[0].base_pfn;
    let r = z.offline_pages(base, base + 1024).unwrap();
    assert_eq!(r.result, Err(Errno::Einval));

    // Ordinary memory: page cache moves out, the range goes offline.
    let app = m.owners.intern("app").unwrap();
    let rdma = m.owners.intern("rdma").unwrap();
    for _ in 0..20_000 {
        m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
    }
    let (start, end, in_range) = busiest_range(&m, 0, m.cma[0].base_pfn);
    assert!(in_range > 500);
    let r = m.offline_pages(start, end).unwrap();
    assert_eq!(r.result, Ok(()), "{:?}", r.blockers);
    assert_eq!(r.pages_migrated as usize, in_range);
    m.check_invariants().unwrap();
    m.online_pages(start, end).unwrap();
    m.check_invariants().unwrap();
    // A long-term pin keeps its range online, and the report names the pinner.
    let (range, _, _) = busiest_range(&m, 0, m.cma[0].base_pfn);
    let pfn = (range..range + 1024)
        .find(|&p| m.pages[p as usize].kind() == Kind::File)
        .unwrap();
    m.take_hold(pfn, rdma, HoldKind::LongtermPin, None).unwrap();
    let r = m.offline_pages(range, range + 1024).unwrap();
    assert_eq!(r.result, Err(Errno::Ebusy));
    assert_eq!(r.reason, Some("unmovable page"));
    assert!(r
        .blockers
        .iter()
        .any(|b| b.holder.as_deref() == Some("rdma") && b.reason == "longterm_pinned"));
    m.check_invariants().unwrap();
    // Kernel memory fails at isolation.
    let drv = m.owners.intern("driver").unwrap();
    let k = m.alloc_owned(drv, Gfp::KERNEL, 0, Kind::Kernel).unwrap();
    let kpfn = m.owned_pfn(drv, k).unwrap().unwrap();
    let r = m
        .offline_pages(kpfn & !1023, (kpfn & !1023) + 1024)
        .unwrap();
    assert_eq!(r.result, Err(Errno::Ebusy));
    assert_eq!(r.reason, Some("failure to isolate range"));
    m.check_invariants().unwrap();
}

// ----- engine regressions -----------------------------------------------------------------

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
    let isolated = m.run_while(m.now + 1_000_000_000, |m| {
        m.pages[pfn as usize].test(pg::ISOLATED)
    });
    assert!(isolated, "the page was isolated");
    m.release_hold(r).unwrap();
    m.free_owned(app, i).unwrap();
    run_job(&mut m, id, 10_000_000_000);
    m.check_invariants().unwrap();
}

/// The page a fix migrates must be off the LRU while its target is allocated: the target
/// allocation may reclaim, and reclaim must not free the page being migrated
/// (`folio_isolate_lru` before `migrate_pages` in the kernel).
#[test]
fn page_being_migrated_for_a_fix_is_not_reclaimed_under_it() {
    for pin in [false, true] {
        let mut m = with_policy(
            256,
            64,
            PolicyConfig {
                migrate_on_first_dirty: !pin,
                migrate_on_pin: pin,
                ..policy(Placement::Balanced)
            },
        );
        let app = m.owners.intern("app").unwrap();
        let drv = m.owners.intern("driver").unwrap();
        let dio = m.owners.intern("dio").unwrap();
        let n = 62_000;
        for _ in 0..n {
            m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
                .unwrap();
        }
        let victim = (0..n)
            .rev()
            .find(|&i| m.owned_pfn(app, i).unwrap().is_some_and(|p| in_area(&m, p)))
            .unwrap();
        // Every other resident page active: the victim is the inactive list's tail.
        for i in 0..n {
            if i != victim && m.owned_pfn(app, i).unwrap().is_some() {
                m.access_owned(app, i, false).unwrap();
                m.access_owned(app, i, false).unwrap();
            }
        }
        // Memory outside CMA down to the min watermark, without reclaiming yet.
        let min = m.zones[0].wmark(Wmark::Min);
        while m.zones[0].nr_free_pages - m.zones[0].nr_free_cma > min {
            m.alloc_owned(drv, Gfp::KERNEL, 0, Kind::Kernel).unwrap();
        }
        assert!(m.owned_pfn(app, victim).unwrap().is_some());
        let pfn = if pin {
            let pfn = m.owned_pfn(app, victim).unwrap().unwrap();
            m.take_hold(pfn, dio, HoldKind::Pin, None).unwrap().1
        } else {
            m.access_owned(app, victim, true).unwrap().0
        };
        assert!(
            m.vmstat.get(Counter::PgstealDirect) > 0,
            "the target needed reclaim"
        );
        m.check_invariants().unwrap();
        assert_eq!(m.owned_pfn(app, victim).unwrap(), Some(pfn));
        assert!(!in_area(&m, pfn), "moved out");
    }
}
