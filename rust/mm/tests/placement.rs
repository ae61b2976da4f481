//! Placement policies (`placement.rs`, and the zonelist of `page_alloc.rs`): where movable
//! requests take CMA pages under `legacy`, `balanced`, `zone_cma` and `movable_zone`.
//! `cargo test -p cmadev-mm --test placement -- --nocapture` prints the figures.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::zone::{Wmark, ZoneId};
use cmadev_mm::Machine;
use common::*;

fn movable_lists_empty(m: &Machine, zi: usize) -> bool {
    m.zones[zi]
        .free_area
        .iter()
        .all(|a| a.lists[Migratetype::Movable.index()].is_empty())
}

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

/// Where the first `n` CMA pages of a movable fill land: the number of distinct max-order
/// (4 MiB) blocks of the area they touch, once the movable lists ran dry.
fn cma_blocks_touched(placement: Placement, n: usize) -> (usize, bool) {
    let mut m = machine(256, 64, placement);
    let app = m.owners.intern("app").unwrap();
    let mut blocks = std::collections::BTreeSet::new();
    let (mut in_cma, mut saw_empty_lists) = (0, false);
    while in_cma < n {
        let empty_before = movable_lists_empty(&m, 0);
        let i = m
            .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .unwrap();
        let pfn = m.owned_pfn(app, i).unwrap().unwrap();
        if in_area(&m, pfn) {
            saw_empty_lists |= empty_before || movable_lists_empty(&m, 0);
            blocks.insert(pfn.0 >> 10);
            in_cma += 1;
        }
    }
    m.check_invariants().unwrap();
    (blocks.len(), saw_empty_lists)
}

/// legacy_2014 (3.x-4.0, before dc67647b78b9): CMA is still reached only once the movable
/// lists are empty, but `__rmqueue_fallback` takes the largest CMA block every time, so the
/// first pages in CMA land one per max-order block, over the whole area; legacy (4.1+,
/// `__rmqueue_smallest` on the CMA lists) fills one block before it breaks the next.
#[test]
fn legacy_2014_breaks_the_largest_cma_block_every_time() {
    let (old, old_after_empty) = cma_blocks_touched(Placement::Legacy2014, 64);
    let (new, new_after_empty) = cma_blocks_touched(Placement::Legacy, 64);
    println!("first 64 CMA pages touch {old} of 16 max-order blocks (legacy_2014), {new} (legacy)");
    assert!(
        old_after_empty && new_after_empty,
        "CMA only after the movable lists ran dry"
    );
    assert_eq!(
        old, 16,
        "legacy_2014 spreads over every block of the 64 MiB area"
    );
    assert!(new <= 2, "legacy fills the smallest blocks first");
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
