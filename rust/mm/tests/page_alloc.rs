//! The buddy allocator and the per-CPU lists (`page_alloc.rs`): boot hands every page to
//! the free lists; allocations and frees of every order keep the invariants and give every
//! page back.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
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
