//! Background workloads, run inside the event loop (SPEC §4): no Python call per page.
//!
//! A workload is a task with its own owner, doing operations at a rate: reads, writes,
//! touches, I/Os, pins, allocations. Python declares it as JSON tagged by `kind`
//! (`{"kind": "anon_hog", "name": "hog", ...}`; times in ns, absolute virtual times for
//! `start_ns`/`stop_ns`, sizes in pages, rates per second). Each kind is one struct holding
//! its spec (the JSON fields) and its own progress, in a file of its own with what it
//! reproduces and what it simplifies; `WorkloadKind` is the kind the JSON names, and
//! `Task` is what every kind does, called through one `match` per step.
//!
//! | file | what |
//! | --- | --- |
//! | `task.rs` | the life of a workload: start, the step loop, stop and reap; statistics |
//! | `spec.rs` | what every spec has (name, start, stop) and the checks of its fields |
//! | `zipf.rs` | the Zipf sampler of the reader's access skew |
//! | `ahead.rs` | drawing pages ahead and prefetching them |
//! | `page_cache_reader.rs` | `read()` through the page cache |
//! | `writer.rs` | `write()` of whole pages, writeback, `fsync` |
//! | `anon_hog.rs` | anonymous memory growing by first-touch faults |
//! | `direct_io.rs` | `O_DIRECT` I/O pinning its buffer pages |
//! | `longterm_pinner.rs` | RDMA/vfio/io_uring FOLL_LONGTERM pins |
//! | `fs_mount.rs` | a mounted filesystem's superblock buffers |
//! | `kernel_alloc.rs` | slab-like unmovable kernel allocations |
//! | `build.rs` | a parallel build: short processes with heaps, source reads, output |
//! | `tmpfs_file.rs` | a tmpfs file written and read (shmem pages) |

mod ahead;
mod anon_hog;
mod build;
mod direct_io;
mod fs_mount;
mod kernel_alloc;
mod longterm_pinner;
mod page_cache_reader;
mod spec;
mod task;
mod tmpfs_file;
mod writer;
mod zipf;

use serde::{Deserialize, Serialize};

pub use anon_hog::AnonHog;
pub use build::Build;
pub use direct_io::{DirectIo, IoHold, PinDistribution};
pub use fs_mount::FsMount;
pub use kernel_alloc::KernelAlloc;
pub use longterm_pinner::LongtermPinner;
pub use page_cache_reader::PageCacheReader;
pub use task::{Workload, WorkloadStats, Workloads};
pub use tmpfs_file::TmpfsFile;
pub use writer::Writer;

use crate::error::MmResult;
use crate::owner::OwnerId;
use crate::Machine;
use spec::Check;
use task::Cx;

/// What every kind of workload does. The step loop (`task.rs`) is generic over it, so each
/// kind runs its operations in a loop of its own: `WorkloadKind` dispatches once per step.
pub(crate) trait Task {
    /// The kind's name in the JSON (`"kind": "anon_hog"`) and in the statistics.
    const KIND: &'static str;
    /// One operation of this kind.
    type Op: Copy;

    /// The name it runs as: the owner of its pages and pins.
    fn name(&self) -> &str;
    /// `(start_ns, stop_ns)`.
    fn window(&self) -> (u64, Option<u64>);
    /// Check the kind's own fields (`spec::validate` checks the name and the window).
    fn validate(&self, check: &Check) -> MmResult<()>;
    /// Set up at start: the owner's mapping, the kind's progress from `start` on.
    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64);
    /// The next operation and when it is due, for a task free from `free_at` on; None when
    /// it has nothing left to do.
    fn next_op(&self, free_at: u64) -> Option<(u64, Self::Op)>;
    /// Do one operation now (`cx.m.now`); what it charges is the task's stall.
    fn run(&mut self, op: Self::Op, cx: &mut Cx<'_>);
    /// Whether the task does `op` itself (and so waits out its stalls).
    fn task_bound(_op: Self::Op) -> bool {
        true
    }
    /// Forget what is left to do at a stop (its pages are freed by the caller).
    fn stop(&mut self) {}
    /// Whether it maps only order-0 pages (see `workload_resident_pages`).
    fn maps_only_order0(&self) -> bool {
        true
    }
}

/// A workload as Python declares it (JSON, tagged by `kind`) and, once started, its
/// progress: one struct per kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkloadKind {
    PageCacheReader(PageCacheReader),
    Writer(Writer),
    AnonHog(AnonHog),
    DirectIo(DirectIo),
    LongtermPinner(LongtermPinner),
    FsMount(FsMount),
    KernelAlloc(KernelAlloc),
    Build(Build),
    TmpfsFile(TmpfsFile),
}

/// `each_kind!(kind, k => expr)`: `expr` for the struct inside `kind`, whatever its kind.
macro_rules! each_kind {
    ($kind:expr, $k:ident => $body:expr) => {
        match $kind {
            $crate::workload::WorkloadKind::PageCacheReader($k) => $body,
            $crate::workload::WorkloadKind::Writer($k) => $body,
            $crate::workload::WorkloadKind::AnonHog($k) => $body,
            $crate::workload::WorkloadKind::DirectIo($k) => $body,
            $crate::workload::WorkloadKind::LongtermPinner($k) => $body,
            $crate::workload::WorkloadKind::FsMount($k) => $body,
            $crate::workload::WorkloadKind::KernelAlloc($k) => $body,
            $crate::workload::WorkloadKind::Build($k) => $body,
            $crate::workload::WorkloadKind::TmpfsFile($k) => $body,
        }
    };
}
pub(crate) use each_kind;

fn kind_of<K: Task>(_: &K) -> &'static str {
    K::KIND
}

impl WorkloadKind {
    pub fn name(&self) -> &str {
        each_kind!(self, k => k.name())
    }

    /// `page_cache_reader`, `writer`, ...: the `kind` of the JSON.
    pub fn kind(&self) -> &'static str {
        each_kind!(self, k => kind_of(k))
    }

    /// `(start_ns, stop_ns)`.
    pub fn window(&self) -> (u64, Option<u64>) {
        each_kind!(self, k => k.window())
    }

    /// Check what serde cannot: every message names the field and the fix.
    pub fn validate(&self) -> MmResult<()> {
        each_kind!(self, k => spec::validate(k))
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        each_kind!(self, k => k.start(m, owner, start))
    }

    fn stop(&mut self) {
        each_kind!(self, k => k.stop())
    }

    fn maps_only_order0(&self) -> bool {
        each_kind!(self, k => k.maps_only_order0())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gup::HoldKind;

    #[test]
    fn spec_json_shapes() {
        let s: WorkloadKind = serde_json::from_str(
            r#"{"kind":"fs_mount","name":"ext4","mount_ns":5,"unmount_ns":9}"#,
        )
        .unwrap();
        assert_eq!(s.window(), (5, Some(9)));
        let bad = serde_json::from_str::<WorkloadKind>(
            r#"{"kind":"writer","name":"w","file_pages":1,"rate_pages_per_s":1,"bogus":1}"#,
        );
        assert!(bad.is_err());
        // A direct I/O holds its pages with FOLL_PIN unless told otherwise.
        let dio = |extra: &str| {
            serde_json::from_str::<WorkloadKind>(&format!(
                r#"{{"kind":"direct_io","name":"d","buffer_pages":16,"ios_per_s":1,
                   "pages_per_io":1,"pin_mean_ns":1{extra}}}"#
            ))
        };
        let hold = |s: WorkloadKind| match s {
            WorkloadKind::DirectIo(d) => d.hold.hold_kind(),
            other => panic!("not a direct I/O: {other:?}"),
        };
        assert_eq!(hold(dio("").unwrap()), HoldKind::Pin);
        assert_eq!(hold(dio(r#","hold":"get_page""#).unwrap()), HoldKind::Ref);
        assert_eq!(
            hold(dio(r#","hold":"get_page_short""#).unwrap()),
            HoldKind::RefShort
        );
        assert!(dio(r#","hold":"longterm""#).is_err());
    }
}
