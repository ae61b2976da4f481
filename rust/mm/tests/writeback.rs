//! Dirty pages and writeback (`writeback.rs`), and the fix that acts when a page is dirtied
//! or written back: `migrate_on_first_dirty`.

mod common;

use cmadev_mm::config::{Placement, PolicyConfig};
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::{pg, Kind};
use cmadev_mm::vmstat::Counter;
use common::*;

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
    assert!(m.pages[pfn].test(pg::DIRTY));
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
    assert!(m.pages[now].test(pg::WRITEBACK));
    assert_eq!(m.vmstat.get(Counter::DirtyMigrations), 2);
    m.check_invariants().unwrap();
    m.run_until(m.now + 100 * MS);
    m.check_invariants().unwrap();
}

/// `migrate_pages` in synchronous mode waits for a page under writeback
/// (`folio_wait_writeback` in `migrate_folio_unmap`, 6.1) instead of failing the range: a
/// `cma_alloc` over a file page being written back succeeds at its first range, once the write
/// has completed.
#[test]
fn a_page_under_writeback_delays_cma_alloc_until_it_is_written() {
    let mut m = machine(256, 64, Placement::Balanced);
    let (base, cam) = (m.cma[0].base_pfn, m.owners.intern("camera").unwrap());
    let cache = m.owners.intern("cache").unwrap();
    let index = loop {
        let i = m
            .alloc_owned(cache, cmadev_mm::gfp::Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
            .unwrap();
        let pfn = m.owned_pfn(cache, i).unwrap().unwrap();
        if pfn >= base && pfn < base + 512 {
            break i;
        }
    };
    m.access_owned(cache, index, true).unwrap();
    let done_at = m.writeback_owned(cache, index).unwrap();
    let pfn = m.owned_pfn(cache, index).unwrap().unwrap();
    assert!(m.pages[pfn].test(pg::WRITEBACK));
    let issued = m.now;
    let id = m.cma_alloc(0, 512, 9, cam, false).unwrap();
    run_job(&mut m, id, 10_000 * MS);
    let job = m.jobs[id as usize].clone();
    assert_eq!(job.pfn, Some(base), "the first range, once written");
    assert_eq!(job.busy_retries, 0);
    let completed = job.completed_ns.unwrap();
    assert!(
        completed >= done_at && done_at > issued,
        "the allocation waited for the write"
    );
    m.check_invariants().unwrap();
}
