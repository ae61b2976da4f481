//! The buddy allocator and the per-CPU lists (`page_alloc.rs`): boot hands every page to
//! the free lists; allocations and frees of every order keep the invariants and give every
//! page back; the lists' sizes and bulk frees and where freed blocks go on the free lists
//! are 6.1's.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::page_alloc::PerCpuPages;
use cmadev_mm::zone::Wmark;
use cmadev_mm::Pfn;
use common::*;

#[test]
fn boot_accounts_every_page() {
    let m = machine(256, 64, Placement::Legacy);
    let info: std::collections::BTreeMap<_, _> = m.meminfo().into_iter().collect();
    assert_eq!(info["MemTotal"], 256 * 1024);
    assert_eq!(info["MemFree"], 256 * 1024);
    assert_eq!(info["CmaTotal"], 64 * 1024);
    assert_eq!(info["CmaFree"], 64 * 1024);
}

#[test]
fn alloc_free_roundtrip_keeps_invariants() {
    let mut m = machine(256, 64, Placement::Balanced);
    let owner = m.owners.intern("app").unwrap();
    let mut idx = Vec::new();
    for i in 0..5000 {
        let order = (i % 4) as u32;
        let (gfp, kind) = if i % 3 == 0 {
            (Gfp::KERNEL, Kind::Kernel)
        } else {
            (Gfp::HIGHUSER_MOVABLE, Kind::Anon)
        };
        idx.push(m.alloc_owned(owner, gfp, order, kind).unwrap());
    }
    m.check_invariants().unwrap();
    for i in idx.iter().step_by(2) {
        m.free_owned(owner, *i).unwrap();
    }
    m.check_invariants().unwrap();
    for i in idx.iter().skip(1).step_by(2) {
        m.free_owned(owner, *i).unwrap();
    }
    m.check_invariants().unwrap();
    for zi in 0..m.zones.len() {
        m.drain_all_pages(zi);
    }
    m.check_invariants().unwrap();
    let info: std::collections::BTreeMap<_, _> = m.meminfo().into_iter().collect();
    assert_eq!(info["MemFree"], 256 * 1024, "everything freed comes back");
    assert!(
        m.free_owned(owner, idx[0]).is_err(),
        "double free is refused"
    );
}

/// 6.1's `pcp->high` (5.14+, `zone_highsize`): the zone's low watermark split across the
/// CPUs, at least `4 * batch`; `batch` as `zone_batchsize`. On a 512 MiB board that is
/// several times the classic `6 * batch`.
#[test]
fn pcp_high_is_the_low_watermark_split_across_cpus() {
    let m = machine(512, 128, Placement::Balanced);
    let zone = &m.zones[0];
    let low = zone.wmark(Wmark::Low);
    let cpus = m.cfg.cpus as u64;
    for pcp in &m.pcp {
        assert_eq!(pcp.batch, PerCpuPages::batchsize(zone.managed_pages));
        assert_eq!(pcp.high as u64, (low / cpus).max(4 * pcp.batch as u64));
    }
    assert_eq!(m.pcp[0].batch, 31);
    assert!(m.pcp[0].high > 6 * m.pcp[0].batch, "{:?}", m.pcp[0]);
}

/// `nr_pcp_free` (6.1): each bulk free without an allocation in between returns twice as
/// many pages as the last (`free_factor`), from `batch` up to `high - batch`; an allocation
/// halves the factor again.
#[test]
fn pcp_bulk_frees_double_without_allocations() {
    let mut m = machine(512, 128, Placement::Balanced);
    let owner = m.owners.intern("drv").unwrap();
    let cpu = m.owners.cpu(owner) as usize;
    let pages: Vec<_> = (0..4000)
        .map(|_| m.alloc_page_order0(Gfp::KERNEL, owner).unwrap())
        .collect();
    let (high, batch) = (m.pcp[cpu].high, m.pcp[cpu].batch);
    let mut drops = Vec::new();
    let mut before = m.pcp[cpu].count;
    for &pfn in &pages {
        m.free_page_order0(pfn).unwrap();
        let now = m.pcp[cpu].count;
        if now < before {
            drops.push(before + 1 - now);
        }
        before = now;
    }
    let expected: Vec<u32> = (0..drops.len())
        .map(|i| (batch << i.min(5)).clamp(batch, high - batch))
        .collect();
    assert_eq!(drops, expected, "high {high}, batch {batch}");
    assert!(drops.len() >= 4 && *drops.last().unwrap() == high - batch);
    m.alloc_page_order0(Gfp::KERNEL, owner).unwrap();
    assert!(
        m.pcp[cpu].free_factor < 5,
        "an allocation halves the factor"
    );
    m.check_invariants().unwrap();
}

/// `free_pcppages_bulk` (6.1) returns the coldest pages, from the list's tail: the pages
/// freed last stay on the list and are the next ones handed out.
#[test]
fn pcp_bulk_free_returns_the_coldest_pages() {
    let mut m = machine(512, 128, Placement::Balanced);
    let owner = m.owners.intern("drv").unwrap();
    let cpu = m.owners.cpu(owner) as usize;
    let pages: Vec<_> = (0..2000)
        .map(|_| m.alloc_page_order0(Gfp::KERNEL, owner).unwrap())
        .collect();
    m.drain_all_pages(0);
    let high = m.pcp[cpu].high as usize;
    for &pfn in &pages[..high] {
        m.free_page_order0(pfn).unwrap();
    }
    // The list reached `high` with the last free: the first `batch` freed went back.
    let batch = m.pcp[cpu].batch as usize;
    assert_eq!(m.pcp[cpu].count as usize, high - batch);
    for &pfn in &pages[..batch] {
        assert!(
            m.pages[pfn].kind().is_free() && m.pages[pfn].kind() != Kind::Pcp,
            "{pfn:#x}"
        );
    }
    for &pfn in &pages[batch..high] {
        assert_eq!(m.pages[pfn].kind(), Kind::Pcp, "{pfn:#x}");
    }
    let again = m.alloc_page_order0(Gfp::KERNEL, owner).unwrap();
    assert_eq!(
        again,
        pages[high - 1],
        "LIFO: the page freed last comes back first"
    );
}

/// 6.1 at boot (`__free_pages_core`, `FPI_TO_TAIL`): memory outside CMA is handed to the
/// allocator at the tails of the free lists, so it is used from the bottom up; each CMA
/// pageblock is freed on its own (`init_cma_reserved_pageblock`, at the head), so the area
/// is used from its top down.
#[test]
fn boot_order_uses_memory_from_the_bottom_and_cma_from_the_top() {
    let mut m = machine(512, 128, Placement::Balanced);
    let owner = m.owners.intern("drv").unwrap();
    let first = m.alloc_page_order0(Gfp::KERNEL, owner).unwrap();
    let reserved = Pfn((m.cfg.reserved / 4096) as u32);
    assert!(
        first < reserved + 1024,
        "{first:#x}, reserved up to {reserved:#x}"
    );
    let app = m.owners.intern("app").unwrap();
    let idx = alloc_until_cma(&mut m, app, Kind::Anon, 200_000);
    let pfn = m.owned_pfn(app, idx).unwrap().unwrap();
    let top = m.end_pfn() - 1024;
    assert!(
        pfn >= top,
        "first CMA page {pfn:#x}, top block from {top:#x}"
    );
}

/// `buddy_merge_likely` (5.1+): a freed block whose buddy is in use but whose parent's
/// buddy is free goes to the tail of its list, where it is taken last.
#[test]
fn a_block_likely_to_merge_goes_to_the_tail() {
    let mut m = machine(512, 128, Placement::Legacy);
    let owner = m.owners.intern("drv").unwrap();
    let zi = 0;
    let pages: Vec<_> = (0..64)
        .map(|_| m.alloc_page_order0(Gfp::KERNEL, owner).unwrap())
        .collect();
    m.drain_all_pages(zi);
    let x = pages[0];
    assert!(x.is_aligned(6) || x.is_aligned(5), "{x:#x}");
    assert!(pages.iter().enumerate().all(|(i, &p)| p == x + i as u32));
    // [x+24, x+28) free (an order-2 block), x+28 and x+29 in use, x+30 and x+31 freed:
    // their order-1 block's buddy (x+28) is busy, its parent's buddy (x+24) is free.
    for i in [24, 25, 26, 27] {
        m.free_page_order0(x + i).unwrap();
    }
    m.drain_all_pages(zi);
    for i in [30, 31] {
        m.free_page_order0(x + i).unwrap();
    }
    m.drain_all_pages(zi);
    let mt = m.pageblocks.get(x);
    let list = m.zones[zi].free_area[1].lists[mt.index()];
    assert_eq!(list.tail, x + 30, "to the tail: {list:?}");
    m.check_invariants().unwrap();
}
