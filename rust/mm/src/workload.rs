//! Background workloads, run inside the event loop (SPEC §4): no Python call per page.
//! (Being written: see the module plan in `WorkloadSpec`.)

use serde::{Deserialize, Serialize};

use crate::error::{misuse, MmResult};
use crate::Machine;

/// A workload as Python declares it (JSON, tagged by `kind`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkloadSpec {
    Placeholder { name: String },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkloadStats {}

#[derive(Clone, Debug, Default)]
pub struct Workloads {}

impl Machine {
    pub fn start_workload(&mut self, _spec: WorkloadSpec) -> MmResult<u32> {
        misuse("workloads are not implemented yet")
    }

    pub fn stop_workload(&mut self, _id: u32) -> MmResult<()> {
        misuse("workloads are not implemented yet")
    }

    pub fn workload_stats(&self, _id: u32) -> MmResult<WorkloadStats> {
        misuse("workloads are not implemented yet")
    }

    pub(crate) fn workload_step(&mut self, _id: u32) {}
}
