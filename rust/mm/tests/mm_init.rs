//! Deferred initialisation of the frames (`mm_init.rs`): boot writes no free block's frame,
//! and a board booted so gives out the same blocks in the same order as one initialised
//! eagerly, including a block put at the tail of the list the deferred blocks follow.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::{Kind, Page};
use cmadev_mm::Machine;
use cmadev_mm::Pfn;
use common::*;

fn booted(cma_mib: u64, deferred: bool) -> Machine {
    let mut cfg = board(256, cma_mib, Placement::Legacy);
    cfg.deferred_struct_page_init = deferred;
    Machine::new(cfg).unwrap()
}

/// The pfns of top-order movable blocks allocated until the allocator refuses one.
fn top_order_blocks(m: &mut Machine) -> Vec<Pfn> {
    let owner = m.owners.intern("app").unwrap();
    let mut pfns = Vec::new();
    while let Ok(index) = m.alloc_owned(owner, Gfp::HIGHUSER_MOVABLE, 10, Kind::Anon) {
        pfns.push(m.owned_pfn(owner, index).unwrap().unwrap());
    }
    pfns
}

#[test]
fn boot_writes_no_free_frame_outside_cma() {
    let m = booted(64, true);
    let area = &m.cma[0];
    let written = Pfn::range(Pfn(0), area.base_pfn)
        .filter(|&p| m.pages[p] != Page::FREE)
        .count();
    assert_eq!(written, 0, "frames written at boot below the CMA area");
    assert_eq!(
        m.frame(Pfn(0)).kind(),
        Kind::Buddy,
        "a deferred block reads as a buddy"
    );
    assert_eq!(m.frame(Pfn(0)).order(), 10);
    assert_eq!(m.frame(Pfn(1)).kind(), Kind::Free);
    m.check_invariants().unwrap();
    assert_eq!(m.buddyinfo_text(), booted(64, false).buddyinfo_text());
}

#[test]
fn blocks_come_in_the_eager_order_and_onlined_memory_last() {
    let mut runs = [true, false].map(|deferred| {
        let mut m = booted(0, deferred);
        let block = (Pfn(0x2000), Pfn(0x2400));
        m.offline_pages(block.0, block.1).unwrap();
        // `__free_pages_core` puts onlined memory at the tail: after the deferred blocks too.
        m.online_pages(block.0, block.1).unwrap();
        m.check_invariants().unwrap();
        top_order_blocks(&mut m)
    });
    let [deferred, eager] = std::mem::take(&mut runs);
    assert_eq!(deferred, eager);
    // The watermarks keep the last block back: the one at the tail of the list.
    assert_eq!(deferred.len(), 63);
    assert!(
        !deferred.contains(&Pfn(0x2000)),
        "the onlined block is at the tail"
    );
}
