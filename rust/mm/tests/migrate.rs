//! Page migration (`migrate.rs`): a folio being migrated is off the LRU while its target is
//! allocated, so reclaim for the target cannot free it.

mod common;

use cmadev_mm::config::{Placement, PolicyConfig};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::zone::Wmark;
use common::*;

/// The page a fix migrates must be off the LRU while its target is allocated: the target
/// allocation may reclaim, and reclaim must not free the page being migrated
/// (`folio_isolate_lru` before `migrate_pages` in the kernel).
#[test]
fn page_being_migrated_for_a_fix_is_not_reclaimed_under_it() {
    for pin in [false, true] {
        let mut m = with_policy(
            256,
            64,
            PolicyConfig {
                migrate_on_first_dirty: !pin,
                migrate_on_pin: pin,
                ..policy(Placement::Balanced)
            },
        );
        let app = m.owners.intern("app").unwrap();
        let drv = m.owners.intern("driver").unwrap();
        let dio = m.owners.intern("dio").unwrap();
        let n = 62_000;
        for _ in 0..n {
            m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
                .unwrap();
        }
        let victim = (0..n)
            .rev()
            .find(|&i| m.owned_pfn(app, i).unwrap().is_some_and(|p| in_area(&m, p)))
            .unwrap();
        // Every other resident page active: the victim is the inactive list's tail.
        for i in 0..n {
            if i != victim && m.owned_pfn(app, i).unwrap().is_some() {
                m.access_owned(app, i, false).unwrap();
                m.access_owned(app, i, false).unwrap();
            }
        }
        // Memory outside CMA down to the min watermark, without reclaiming yet.
        let min = m.zones[0].wmark(Wmark::Min);
        while m.zones[0].nr_free_pages - m.zones[0].nr_free_cma > min {
            m.alloc_owned(drv, Gfp::KERNEL, 0, Kind::Kernel).unwrap();
        }
        assert!(m.owned_pfn(app, victim).unwrap().is_some());
        let pfn = if pin {
            let pfn = m.owned_pfn(app, victim).unwrap().unwrap();
            m.take_hold(pfn, dio, HoldKind::Pin, None).unwrap().1
        } else {
            m.access_owned(app, victim, true).unwrap().0
        };
        assert!(
            m.vmstat.get(Counter::PgstealDirect) > 0,
            "the target needed reclaim"
        );
        m.check_invariants().unwrap();
        assert_eq!(m.owned_pfn(app, victim).unwrap(), Some(pfn));
        assert!(!in_area(&m, pfn), "moved out");
    }
}
