//! The machine description (`config.rs`): policies whose fixes cannot act under their
//! placement are refused, saying why.

mod common;

use cmadev_mm::config::{Placement, PolicyConfig};
use cmadev_mm::{Machine, MmError};
use common::*;

/// Combinations that cannot do anything are refused, saying why.
#[test]
fn pointless_combinations_are_rejected_with_a_reason() {
    let check = |p: PolicyConfig| {
        let mut cfg = board(256, 64, p.placement);
        cfg.policy = p;
        Machine::new(cfg).err()
    };
    for (fix, p) in [
        (
            "migrate_on_longterm_pin",
            PolicyConfig {
                migrate_on_longterm_pin: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "migrate_on_pin",
            PolicyConfig {
                migrate_on_pin: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "migrate_on_first_dirty",
            PolicyConfig {
                migrate_on_first_dirty: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "warn_cma_pins",
            PolicyConfig {
                warn_cma_pins: true,
                ..policy(Placement::Gcma)
            },
        ),
        (
            "fs_superblock_unmovable",
            PolicyConfig {
                fs_superblock_unmovable: true,
                ..policy(Placement::ZoneCma)
            },
        ),
    ] {
        let err =
            check(p.clone()).unwrap_or_else(|| panic!("{fix} accepted with {:?}", p.placement));
        let msg = err.to_string();
        assert!(matches!(err, MmError::InvalidConfig(_)));
        assert!(
            msg.contains(fix) && msg.contains(p.placement.name()),
            "{msg}"
        );
    }
    let all = |placement| PolicyConfig {
        migrate_on_longterm_pin: true,
        migrate_on_pin: true,
        migrate_on_first_dirty: true,
        warn_cma_pins: true,
        pin_duration_warn_ns: Some(MS),
        fs_superblock_unmovable: placement != Placement::ZoneCma
            && placement != Placement::MovableZone,
        ..policy(placement)
    };
    for placement in [
        Placement::Legacy,
        Placement::Balanced,
        Placement::ZoneCma,
        Placement::MovableZone,
    ] {
        assert!(
            check(all(placement)).is_none(),
            "{placement:?} takes every fix that applies"
        );
    }
}

/// Every placement's JSON name is its `name()`, the one the policy files use.
#[test]
fn placement_names_are_their_json_names() {
    for p in [
        Placement::Legacy,
        Placement::Legacy2014,
        Placement::Balanced,
        Placement::ZoneCma,
        Placement::MovableZone,
        Placement::Gcma,
    ] {
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json, serde_json::json!(p.name()));
        assert_eq!(serde_json::from_value::<Placement>(json).unwrap(), p);
    }
}
