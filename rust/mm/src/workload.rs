//! Background workloads, run inside the event loop (SPEC §4).

use crate::Machine;

#[derive(Clone, Debug, Default)]
pub struct Workloads {}

impl Machine {
    pub(crate) fn workload_step(&mut self, _id: u32) {}
}
