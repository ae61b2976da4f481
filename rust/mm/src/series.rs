//! Time series sampled at a fixed interval of virtual time.

use crate::Machine;

#[derive(Clone, Debug, Default)]
pub struct Series {}

impl Machine {
    pub(crate) fn sample(&mut self) {}

    pub(crate) fn schedule_background(&mut self) {
        self.schedule_flusher();
    }
}
