//! CMA areas (`cma.rs`): `cma_alloc` migrates movable pages out of its range, and a pinned
//! page makes it retry at the next aligned position.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::Pfn;
use common::*;

/// Fill memory with anonymous pages for `owner` until allocation fails, then free every
/// other one so that migration finds targets.
fn fill_movable(m: &mut cmadev_mm::Machine, owner: u16) {
    let mut n = 0;
    while m
        .alloc_owned(owner, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .is_ok()
    {
        n += 1;
    }
    for i in (0..n).step_by(2) {
        m.free_owned(owner, i).unwrap();
    }
}

#[test]
fn cma_alloc_migrates_movable_pages_out() {
    let mut m = machine(256, 64, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    // Fill most of memory with movable pages: balanced puts many in CMA.
    fill_movable(&mut m, app);
    let usage = m.cma_usage(0);
    assert!(
        usage.anon > 6_000,
        "balanced placement fills CMA under pressure: {usage:?}"
    );
    let cam = m.owners.intern("camera").unwrap();
    let id = m.cma_alloc(0, 4096, 8, cam, false).unwrap();
    run_job(&mut m, id, 10_000_000_000);
    let job = &m.jobs[id as usize];
    assert!(job.pfn.is_some(), "allocation succeeded: {:?}", job.errno);
    assert!(job.pages_migrated > 0);
    m.check_invariants().unwrap();
    let pfn = job.pfn.unwrap();
    m.cma_release(0, pfn, 4096, cam).unwrap();
    m.check_invariants().unwrap();
}

#[test]
fn pinned_page_makes_cma_alloc_retry_further_on() {
    let mut m = machine(256, 64, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    fill_movable(&mut m, app);
    let base = m.cma[0].base_pfn;
    let pfn = Pfn::range(base, base + 256)
        .find(|&p| m.pages[p].kind() == Kind::Anon)
        .unwrap();
    let rdma = m.owners.intern("rdma").unwrap();
    m.take_hold(pfn, rdma, HoldKind::LongtermPin, None).unwrap();
    let cam = m.owners.intern("camera").unwrap();
    let id = m.cma_alloc(0, 1024, 8, cam, false).unwrap();
    run_job(&mut m, id, 10_000_000_000);
    let job = &m.jobs[id as usize];
    assert_eq!(job.busy_retries, 1);
    assert_eq!(job.pfn, Some(base + 256), "next aligned position");
    assert!(job
        .blockers
        .iter()
        .any(|b| b.holder.as_deref() == Some("rdma")));
    m.check_invariants().unwrap();
    let trace = m.trace.lines_since(0).join("\n");
    assert!(trace.contains("cma_alloc_busy_retry"), "{trace}");
    assert!(trace.contains("test_pages_isolated") && trace.contains("ret=fail"));
}

/// A request is found by its id; an unknown id is a misuse (and never done).
#[test]
fn requests_are_looked_up_and_run_to_completion_by_id() {
    let mut m = machine(256, 64, Placement::Balanced);
    let cam = m.owners.intern("camera").unwrap();
    assert!(matches!(m.job(0), Err(cmadev_mm::MmError::Misuse(_))));
    assert!(!m.job_done(0));
    assert!(m.run_until_job(0, 1_000_000_000).is_err());
    let id = m.cma_alloc(0, 1024, 8, cam, false).unwrap();
    assert!(!m.job_done(id));
    assert!(m.run_until_job(id, m.now + 1_000_000_000).unwrap());
    assert!(m.job_done(id));
    let job = m.job(id).unwrap();
    assert_eq!((job.id, job.count), (id, 1024));
    let pfn = job.pfn.expect("an idle area");
    m.cma_release(0, pfn, 1024, cam).unwrap();
    m.check_invariants().unwrap();
}
