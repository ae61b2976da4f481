//! Time series sampled at a fixed interval of virtual time.

use serde::Serialize;

use crate::Machine;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {}

impl Machine {
    /// Sample every `interval_ns` from now on (0 stops sampling).
    pub fn set_sampling(&mut self, _interval_ns: u64) {}

    pub(crate) fn sample(&mut self) {}

    pub(crate) fn schedule_background(&mut self) {
        self.schedule_flusher();
    }
}
