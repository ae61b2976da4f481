//! What every workload spec has (a name, a start and a stop time) and its checks. Each kind
//! checks its own fields (`Task::validate`) with the helpers here, so that every message
//! names the workload, the field and the fix in the same words.

use super::Task;
use crate::error::{MmError, MmResult};

/// The checks of one workload's spec: every message starts with the workload's name.
pub(crate) struct Check<'a> {
    name: &'a str,
}

impl Check<'_> {
    /// Refuse the spec: `workload "name": msg`.
    pub(crate) fn bad<T>(&self, msg: String) -> MmResult<T> {
        Err(MmError::InvalidConfig(format!(
            "workload {:?}: {msg}",
            self.name
        )))
    }

    /// A rate per second: finite, not negative, and above 0 unless `zero_ok`.
    pub(crate) fn rate(&self, field: &str, r: f64, zero_ok: bool) -> MmResult<()> {
        if !r.is_finite() || r < 0.0 || (!zero_ok && r == 0.0) {
            return self.bad(format!(
                "{field} = {r} must be a finite number above 0 (per second)"
            ));
        }
        Ok(())
    }

    /// A count or a duration of at least 1.
    pub(crate) fn positive(&self, field: &str, n: u64) -> MmResult<()> {
        if n == 0 {
            return self.bad(format!("{field} must be at least 1"));
        }
        Ok(())
    }
}

/// Check what serde cannot: the name, the window, then the kind's own fields.
pub(super) fn validate<K: Task>(k: &K) -> MmResult<()> {
    let name = k.name();
    let check = Check { name };
    if name.is_empty() {
        return Err(MmError::InvalidConfig(
            "workload name must not be empty: it names the owner of its pages".into(),
        ));
    }
    let (start, stop) = k.window();
    if let Some(stop) = stop {
        if stop <= start {
            return check.bad(format!(
                "stop_ns ({stop}) must be after start_ns ({start}): drop stop_ns to run \
                 until the end"
            ));
        }
    }
    k.validate(&check)
}
