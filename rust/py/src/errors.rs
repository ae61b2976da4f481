//! Engine errors as Python exceptions: the classes live in `cmadev.errors` (plain Python, where
//! users read the hierarchy); `import_exception!` gives each a Rust type, and `to_pyerr`'s
//! `match` covers every `MmError` variant, so a new variant cannot go unmapped (it does not
//! compile). `error_classes` lists the table for the test that checks it from Python.

use cmadev_mm::MmError;
use pyo3::prelude::*;

pyo3::import_exception!(cmadev.errors, InvalidConfigError);
pyo3::import_exception!(cmadev.errors, MisuseError);
pyo3::import_exception!(cmadev.errors, OutOfMemoryError);
pyo3::import_exception!(cmadev.errors, CmaError);
pyo3::import_exception!(cmadev.errors, EventBudgetError);
pyo3::import_exception!(cmadev.errors, EngineBugError);

/// The exception for an engine error: one class per variant.
pub fn to_pyerr(err: MmError) -> PyErr {
    match err {
        MmError::InvalidConfig(m) => InvalidConfigError::new_err(m),
        MmError::Misuse(m) => MisuseError::new_err(m),
        MmError::OutOfMemory(m) => OutOfMemoryError::new_err(m),
        MmError::Cma(m) => CmaError::new_err(m),
        MmError::Budget(m) => EventBudgetError::new_err(m),
        MmError::Bug(m) => EngineBugError::new_err(m),
    }
}

pub fn misuse(msg: impl Into<String>) -> PyErr {
    to_pyerr(MmError::Misuse(msg.into()))
}

/// The variant's name (an exhaustive `match`: a new variant must be named here, and then
/// listed in `EVERY_VARIANT`, whose length the compiler checks against its uses).
fn variant_name(err: &MmError) -> &'static str {
    match err {
        MmError::InvalidConfig(_) => "InvalidConfig",
        MmError::Misuse(_) => "Misuse",
        MmError::OutOfMemory(_) => "OutOfMemory",
        MmError::Cma(_) => "Cma",
        MmError::Budget(_) => "Budget",
        MmError::Bug(_) => "Bug",
    }
}

fn every_variant() -> [MmError; 6] {
    let m = String::new;
    [
        MmError::InvalidConfig(m()),
        MmError::Misuse(m()),
        MmError::OutOfMemory(m()),
        MmError::Cma(m()),
        MmError::Budget(m()),
        MmError::Bug(m()),
    ]
}

/// Every `MmError` variant's name and the name of the class it raises, for the test of the
/// table.
#[pyfunction]
pub fn error_classes(py: Python<'_>) -> Vec<(&'static str, String)> {
    every_variant()
        .into_iter()
        .map(|err| {
            let name = variant_name(&err);
            let class = to_pyerr(err).get_type(py);
            let qualname = class.qualname().map(|q| q.to_string()).unwrap_or_default();
            (name, qualname)
        })
        .collect()
}
