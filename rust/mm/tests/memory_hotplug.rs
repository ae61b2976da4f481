//! Memory offlining and onlining (`memory_hotplug.rs`): what each placement's kernel lets
//! `offline_pages` take from a CMA area, and what keeps a range online.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::{Errno, Machine, Pfn};
use common::*;

/// The 4 MiB range of `[from, to)` holding the most page cache and no kernel memory.
fn busiest_range(m: &Machine, from: Pfn, to: Pfn) -> (Pfn, Pfn, usize) {
    Pfn::range_step(from, to, 1024)
        .filter(|&s| {
            Pfn::range(s, s + 1024).all(|p| {
                !matches!(
                    m.pages[p].kind(),
                    Kind::Kernel | Kind::Reserved | Kind::Device
                )
            })
        })
        .map(|s| {
            let n = Pfn::range(s, s + 1024)
                .filter(|&p| m.pages[p].kind() == Kind::File)
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
    let (start, end, in_range) = busiest_range(&m, m.cma[0].base_pfn, m.end_pfn());
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
    let (start, end, in_range) = busiest_range(&m, Pfn(0), m.cma[0].base_pfn);
    assert!(in_range > 500);
    let r = m.offline_pages(start, end).unwrap();
    assert_eq!(r.result, Ok(()), "{:?}", r.blockers);
    assert_eq!(r.pages_migrated as usize, in_range);
    m.check_invariants().unwrap();
    m.online_pages(start, end).unwrap();
    m.check_invariants().unwrap();
    // A long-term pin keeps its range online, and the report names the pinner.
    let (range, _, _) = busiest_range(&m, Pfn(0), m.cma[0].base_pfn);
    let pfn = Pfn::range(range, range + 1024)
        .find(|&p| m.pages[p].kind() == Kind::File)
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
        .offline_pages(kpfn.align_down(10), kpfn.align_down(10) + 1024)
        .unwrap();
    assert_eq!(r.result, Err(Errno::Ebusy));
    assert_eq!(r.reason, Some("failure to isolate range"));
    m.check_invariants().unwrap();
}
