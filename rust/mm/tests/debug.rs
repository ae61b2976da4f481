//! `dump_page` (`debug.rs`): what `page_info` says about a frame as it is allocated, held,
//! pinned and freed.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::{HoldKind, GUP_PIN_COUNTING_BIAS};
use cmadev_mm::page::Kind;
use cmadev_mm::{MmError, Pfn};
use common::*;

#[test]
fn page_info_counts_the_owner_references_and_pins() {
    let mut m = machine(256, 64, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    let dio = m.owners.intern("dio").unwrap();
    let i = m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .unwrap();
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    let info = m.page_info(pfn).unwrap();
    assert_eq!(info.pfn, pfn);
    assert_eq!((info.kind, info.order, info.index), ("anon", 0, i));
    assert_eq!(info.owner, "app");
    assert_eq!(info.zone, "Normal");
    assert_eq!(info.migratetype, m.pageblocks.get(pfn).name());
    assert!(info.flags.contains(&"lru") && info.flags.contains(&"movable"));
    assert_eq!(
        (info.refcount, info.pincount),
        (1, 0),
        "the owner's reference"
    );
    let (r, _) = m.take_hold(pfn, dio, HoldKind::Ref, None).unwrap();
    assert_eq!(
        (
            m.page_info(pfn).unwrap().refcount,
            m.page_info(pfn).unwrap().pincount
        ),
        (2, 0)
    );
    m.take_hold(pfn, dio, HoldKind::Pin, None).unwrap();
    let info = m.page_info(pfn).unwrap();
    assert_eq!(info.refcount, 2 + GUP_PIN_COUNTING_BIAS);
    assert_eq!(info.pincount, 1);
    assert!(info.flags.contains(&"extra_refs"));
    m.release_hold(r).unwrap();
    assert_eq!(
        m.page_info(pfn).unwrap().refcount,
        1 + GUP_PIN_COUNTING_BIAS
    );

    // A free frame has no reference; beyond the end of memory is a misuse.
    let free = Pfn::range(Pfn(0), m.end_pfn())
        .find(|&p| m.pages[p].kind() == Kind::Buddy)
        .unwrap();
    let info = m.page_info(free).unwrap();
    assert_eq!(
        (info.kind, info.owner.as_str(), info.refcount),
        ("buddy", "-", 0)
    );
    let end = m.end_pfn();
    let err = m.page_info(end).unwrap_err();
    assert!(
        matches!(err, MmError::Misuse(ref s) if s.contains("beyond the end of memory")),
        "{err}"
    );
}
