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
