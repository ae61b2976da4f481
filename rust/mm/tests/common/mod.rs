//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use cmadev_mm::config::{CmaAreaConfig, MachineConfig, Placement, PolicyConfig};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::workload::WorkloadKind;
use cmadev_mm::{Machine, Pfn};

pub const MIB: u64 = 1 << 20;
pub const MS: u64 = 1_000_000;

/// A board with `ram_mib` of memory and one CMA area "cma" of `cma_mib`.
pub fn board(ram_mib: u64, cma_mib: u64, placement: Placement) -> MachineConfig {
    let mut cfg = MachineConfig::with_ram(ram_mib * MIB);
    if cma_mib > 0 {
        cfg.cma_areas = vec![CmaAreaConfig {
            name: "cma".into(),
            size: cma_mib * MIB,
            order_per_bit: 0,
        }];
    }
    cfg.policy.placement = placement;
    cfg.seed = 1;
    cfg
}

pub fn machine(ram_mib: u64, cma_mib: u64, placement: Placement) -> Machine {
    let m = Machine::new(board(ram_mib, cma_mib, placement)).expect("valid board");
    m.check_invariants().expect("invariants at boot");
    m
}

/// Run until job `id` is done (at most `limit_ns` of virtual time).
pub fn run_job(m: &mut Machine, id: u32, limit_ns: u64) {
    let limit = m.now + limit_ns;
    let done = m.run_while(limit, |m| m.jobs[id as usize].is_done());
    assert!(done, "job {id} did not finish within {limit_ns} ns");
}

/// The seeds every scenario test runs over: nine, so that a median does not hang on one
/// lucky or unlucky draw of the pins and reads.
pub const SEEDS: [u64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

pub fn spec(v: serde_json::Value) -> WorkloadKind {
    serde_json::from_value(v).expect("valid workload spec")
}

pub fn policy(placement: Placement) -> PolicyConfig {
    PolicyConfig {
        placement,
        ..PolicyConfig::default()
    }
}

/// A machine with one CMA area "cma" at the top of memory, under `policy`.
pub fn machine_with(ram_mib: u64, cma_mib: u64, policy: PolicyConfig, seed: u64) -> Machine {
    let mut cfg = MachineConfig::with_ram(ram_mib * MIB);
    cfg.cma_areas = vec![CmaAreaConfig {
        name: "cma".into(),
        size: cma_mib * MIB,
        order_per_bit: 0,
    }];
    cfg.policy = policy;
    cfg.seed = seed;
    Machine::new(cfg).expect("valid board")
}

/// Share of the CMA area holding movable pages, in per cent, averaged over the last
/// `samples` samples of the time series.
pub fn cma_util_pct_last(m: &Machine, samples: usize) -> u64 {
    let s = &m.series;
    let tail = &s.cma_movable[s.cma_movable.len() - samples..];
    tail.iter().sum::<u64>() * 100 / (tail.len() as u64 * s.cma_total)
}

/// A board like `board`, under `policy`, checked at boot.
pub fn with_policy(ram_mib: u64, cma_mib: u64, policy: PolicyConfig) -> Machine {
    let mut cfg = board(ram_mib, cma_mib, policy.placement);
    cfg.policy = policy;
    let m = Machine::new(cfg).expect("valid board");
    m.check_invariants().expect("invariants at boot");
    m
}

/// Whether `pfn` is in the first CMA area.
pub fn in_area(m: &Machine, pfn: Pfn) -> bool {
    let a = &m.cma[0];
    a.contains(pfn)
}

/// Allocate movable pages of `kind` for `owner` until one lands in the CMA area; returns
/// its index. Panics if none does within `limit` pages.
pub fn alloc_until_cma(m: &mut Machine, owner: u16, kind: Kind, limit: u32) -> u32 {
    for _ in 0..limit {
        let i = m
            .alloc_owned(owner, Gfp::HIGHUSER_MOVABLE, 0, kind)
            .unwrap();
        let pfn = m.owned_pfn(owner, i).unwrap().unwrap();
        if in_area(m, pfn) {
            return i;
        }
    }
    panic!("no {} page reached the CMA area", kind.name());
}
