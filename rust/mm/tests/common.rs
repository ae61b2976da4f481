//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use cmadev_mm::config::{CmaAreaConfig, MachineConfig, Placement};
use cmadev_mm::Machine;

pub const MIB: u64 = 1 << 20;

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
