//! Errors the engine reports. The binding maps each variant to one Python exception class
//! (`cmadev.errors`), so the variant names the category and the message says what to do.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The machine description cannot be built.
    InvalidConfig(String),
    /// An API call that makes no sense in the current state (double free, unpin of an
    /// unpinned page, unknown page or owner).
    Misuse(String),
    /// An allocation failed even after reclaim (-ENOMEM).
    OutOfMemory(String),
    /// A CMA call that cannot be made (unknown area, request larger than its area).
    Cma(String),
    /// A run passed the machine's event budget (`max_events`): stopped, not hung.
    Budget(String),
    /// An internal invariant does not hold: a bug in the engine.
    Bug(String),
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmError::InvalidConfig(m)
            | MmError::Misuse(m)
            | MmError::OutOfMemory(m)
            | MmError::Cma(m)
            | MmError::Budget(m)
            | MmError::Bug(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for MmError {}

pub type MmResult<T> = Result<T, MmError>;

pub fn misuse<T>(msg: impl Into<String>) -> MmResult<T> {
    Err(MmError::Misuse(msg.into()))
}

/// Kernel error numbers, for outcomes that are not exceptions (a failed `cma_alloc` is a
/// result, with the errno the kernel would return).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Errno {
    Ebusy,
    Enomem,
    Eagain,
    Eintr,
    /// The request is refused outright (e.g. offlining ZONE_CMA memory).
    Einval,
}

impl Errno {
    pub fn name(self) -> &'static str {
        match self {
            Errno::Ebusy => "EBUSY",
            Errno::Enomem => "ENOMEM",
            Errno::Eagain => "EAGAIN",
            Errno::Eintr => "EINTR",
            Errno::Einval => "EINVAL",
        }
    }
    pub fn code(self) -> i32 {
        match self {
            Errno::Ebusy => -16,
            Errno::Enomem => -12,
            Errno::Eagain => -11,
            Errno::Eintr => -4,
            Errno::Einval => -22,
        }
    }
}
