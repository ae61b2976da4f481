//! References and pins (`gup.rs`) and the fixes that act when a page is pinned:
//! `migrate_on_longterm_pin`, `migrate_on_pin`, `warn_cma_pins`, `pin_duration_warn`.
//! `cargo test -p cmadev-mm --test gup -- --nocapture` prints the figures.

mod common;

use cmadev_mm::config::{Placement, PolicyConfig};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::MmError;
use common::*;

/// mainline's FOLL_LONGTERM path: the page moves out of CMA before the pin, at the
/// pinner's expense; a page that cannot move fails the pin with -ENOMEM.
#[test]
fn migrate_on_longterm_pin_moves_the_page_or_fails_the_pin() {
    for fix in [false, true] {
        let mut m = with_policy(
            256,
            64,
            PolicyConfig {
                migrate_on_longterm_pin: fix,
                ..policy(Placement::Balanced)
            },
        );
        let app = m.owners.intern("app").unwrap();
        let rdma = m.owners.intern("rdma").unwrap();
        let i = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
        let pfn = m.owned_pfn(app, i).unwrap().unwrap();
        m.take_charge();
        let (_, pinned) = m.take_hold(pfn, rdma, HoldKind::LongtermPin, None).unwrap();
        let cost = m.take_charge();
        if fix {
            assert!(!in_area(&m, pinned), "moved out of CMA");
            assert_eq!(m.owned_pfn(app, i).unwrap(), Some(pinned));
            assert!(
                cost >= m.cfg.cost.migrate_page_ns(),
                "the pinner pays: {cost} ns"
            );
            assert_eq!(m.vmstat.get(Counter::PinMigrations), 1);
            println!("migrate_on_longterm_pin: pin cost {cost} ns");
        } else {
            assert_eq!(pinned, pfn, "pinned in place");
        }
        assert_eq!(m.pin_count(pinned), 1);
        // A short FOLL_PIN is not long-term: stays.
        let j = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
        let pfn = m.owned_pfn(app, j).unwrap().unwrap();
        let (_, pinned) = m.take_hold(pfn, rdma, HoldKind::Pin, None).unwrap();
        assert_eq!(pinned, pfn);
        m.check_invariants().unwrap();
        if !fix {
            continue;
        }
        // A page with an extra reference cannot be migrated: the pin fails.
        let k = alloc_until_cma(&mut m, app, Kind::Anon, 60_000);
        let pfn = m.owned_pfn(app, k).unwrap().unwrap();
        m.take_hold(pfn, app, HoldKind::Ref, None).unwrap();
        let holds = m.holds.len();
        let err = m
            .take_hold(pfn, rdma, HoldKind::LongtermPin, None)
            .unwrap_err();
        assert!(
            matches!(err, MmError::OutOfMemory(ref s) if s.contains("-ENOMEM")),
            "{err}"
        );
        assert_eq!(m.holds.len(), holds, "no pin taken");
        assert_eq!(m.vmstat.get(Counter::PinMigrationFail), 1);
        m.check_invariants().unwrap();
    }
}

/// Under movable_zone, FOLL_LONGTERM also moves pages out of ZONE_MOVABLE (5.13).
#[test]
fn migrate_on_longterm_pin_leaves_zone_movable() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            migrate_on_longterm_pin: true,
            ..policy(Placement::MovableZone)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let rdma = m.owners.intern("rdma").unwrap();
    let i = m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
        .unwrap();
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    assert_eq!(m.zone_idx(pfn), 1);
    let (_, pinned) = m.take_hold(pfn, rdma, HoldKind::LongtermPin, None).unwrap();
    assert_eq!(m.zone_idx(pinned), 0);
    m.check_invariants().unwrap();
}

/// Mel Gorman's migrate_on_pin: every FOLL_PIN pin moves the page out, get_page does not;
/// a short pin whose page cannot move is taken in place.
#[test]
fn migrate_on_pin_moves_every_foll_pin_but_not_get_page() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            migrate_on_pin: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let dio = m.owners.intern("dio").unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    let (r, same) = m.take_hold(pfn, dio, HoldKind::Ref, None).unwrap();
    assert_eq!(same, pfn, "get_page does not migrate");
    m.release_hold(r).unwrap();
    m.take_charge();
    let (_, moved) = m.take_hold(pfn, dio, HoldKind::Pin, Some(MS)).unwrap();
    let cost = m.take_charge();
    assert!(!in_area(&m, moved));
    assert!(cost >= m.cfg.cost.migrate_page_ns());
    println!("migrate_on_pin: FOLL_PIN cost {cost} ns");
    // Best effort: a referenced page is pinned where it is.
    let j = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, j).unwrap().unwrap();
    m.take_hold(pfn, app, HoldKind::Ref, None).unwrap();
    let (_, stays) = m.take_hold(pfn, dio, HoldKind::Pin, None).unwrap();
    assert_eq!(stays, pfn);
    assert_eq!(m.vmstat.get(Counter::PinMigrations), 1);
    assert_eq!(m.vmstat.get(Counter::PinMigrationFail), 1);
    m.run_until(m.now + 10 * MS);
    m.check_invariants().unwrap();
}

/// warn_cma_pins: get_page on a CMA page is logged with who took it; the annotated
/// get_page_short is not, nor are pages outside CMA.
#[test]
fn warn_cma_pins_warns_on_get_page_but_not_get_page_short() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            warn_cma_pins: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let nfs = m.owners.intern("nfsd").unwrap();
    let outside = m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
        .unwrap();
    let outside = m.owned_pfn(app, outside).unwrap().unwrap();
    assert!(!in_area(&m, outside));
    m.take_hold(outside, nfs, HoldKind::Ref, None).unwrap();
    assert!(m.dmesg.lines.is_empty());
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    m.take_hold(pfn, nfs, HoldKind::RefShort, None).unwrap();
    assert!(m.dmesg.lines.is_empty(), "get_page_short is exempt");
    m.take_hold(pfn, nfs, HoldKind::Ref, None).unwrap();
    assert_eq!(m.dmesg.lines.len(), 1);
    let line = &m.dmesg.lines[0];
    println!("{line}");
    assert!(line.contains("get_page()") && line.contains("nfsd") && line.contains("app"));
}

/// pin_duration_warn: put_page/unpin warns when a CMA page stayed held past the threshold,
/// naming the holder.
#[test]
fn pin_duration_warn_names_long_holders() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            pin_duration_warn_ns: Some(10 * MS),
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let dio = m.owners.intern("dio").unwrap();
    let rdma = m.owners.intern("rdma").unwrap();
    let i = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    m.take_hold(pfn, dio, HoldKind::Pin, Some(5 * MS)).unwrap();
    m.take_hold(pfn, rdma, HoldKind::LongtermPin, Some(50 * MS))
        .unwrap();
    m.run_until(m.now + 20 * MS);
    assert!(m.dmesg.lines.is_empty(), "5 ms is under the threshold");
    m.run_until(m.now + 50 * MS);
    assert_eq!(m.dmesg.lines.len(), 1);
    let line = &m.dmesg.lines[0];
    println!("{line}");
    assert!(line.contains("rdma") && line.contains("50 ms") && line.contains("FOLL_LONGTERM"));
    assert!(line.contains("app"), "and whose page it was");
}

/// `holds_on` lists a page's holds oldest first with their holders; `take_hold_timed` returns
/// what the hold cost its caller and leaves no charge behind, like the other calls made from
/// outside the event loop.
#[test]
fn holds_on_names_each_holder_and_timed_calls_take_their_charge() {
    let mut m = with_policy(
        256,
        64,
        PolicyConfig {
            migrate_on_pin: true,
            ..policy(Placement::Balanced)
        },
    );
    let app = m.owners.intern("app").unwrap();
    let nfs = m.owners.intern("nfsd").unwrap();
    let dio = m.owners.intern("dio").unwrap();
    let i = m
        .alloc_owned_uncharged(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::File)
        .unwrap();
    assert_eq!(m.charge, 0, "alloc_owned_uncharged drops its charge");
    let pfn = m.owned_pfn(app, i).unwrap().unwrap();
    assert!(m.holds_on(pfn).is_empty());
    let (r, _, cost) = m.take_hold_timed(pfn, nfs, HoldKind::Ref, None).unwrap();
    assert_eq!(cost, 0, "a reference costs nothing");
    m.run_until(m.now + MS);
    let (p, _, _) = m
        .take_hold_timed(pfn, dio, HoldKind::RefShort, None)
        .unwrap();
    let holds = m.holds_on(pfn);
    assert_eq!(holds.len(), 2);
    assert_eq!(
        (
            holds[0].id,
            holds[0].holder.as_str(),
            holds[0].kind,
            holds[0].since_ns
        ),
        (r, "nfsd", "get_page", 0)
    );
    assert_eq!(
        (
            holds[1].id,
            holds[1].holder.as_str(),
            holds[1].kind,
            holds[1].since_ns
        ),
        (p, "dio", "get_page_short", MS)
    );
    assert!(m.holds_on(m.end_pfn()).is_empty(), "beyond the end: nobody");
    m.release_hold(r).unwrap();
    m.release_hold(p).unwrap();
    // A FOLL_PIN on a CMA page migrates it first (migrate_on_pin): the pinner is charged.
    let j = alloc_until_cma(&mut m, app, Kind::File, 60_000);
    let pfn = m.owned_pfn(app, j).unwrap().unwrap();
    m.take_charge();
    let (_, moved, cost) = m.take_hold_timed(pfn, dio, HoldKind::Pin, None).unwrap();
    assert!(!in_area(&m, moved));
    assert!(cost >= m.cfg.cost.migrate_page_ns(), "{cost} ns");
    assert_eq!(m.charge, 0, "take_hold_timed takes the charge");
    let (hit, _, cost) = m.access_owned_timed(app, j, false).unwrap();
    assert_eq!((hit, cost, m.charge), (moved, 0, 0));
    m.free_owned_uncharged(app, i).unwrap();
    assert_eq!(m.charge, 0, "free_owned_uncharged drops its charge");
    m.check_invariants().unwrap();
}
