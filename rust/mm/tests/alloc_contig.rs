//! `alloc_contig_range` (`alloc_contig.rs`): an unmovable page fails the isolation at once;
//! a folio its owner frees while a batch holds it isolated is forgotten.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::{pg, Kind};
use cmadev_mm::Errno;
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
