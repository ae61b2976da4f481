//! Background workloads, run inside the event loop (SPEC §4): no Python call per page.
//!
//! Each workload is a task with its own owner (its name), so every page it maps and every
//! pin it takes is attributed to it: that is how a report names what blocked a device. It
//! runs as one event, `EventKind::Workload(id)`, that does a batch of operations and
//! schedules itself again. Operations happen at their own virtual times: the step moves the
//! clock forward from one operation to the next, but never past the next pending event or
//! the end of the current `run_until`, so whatever else the machine does (kswapd, writeback
//! completions, pin releases, `cma_alloc` batches) interleaves with the workload exactly as
//! it would one operation at a time, and the event heap is touched once per batch, not once
//! per page.
//!
//! Pacing: a workload's rate spaces its operations (`1 / rate` apart); the virtual time the
//! engine charges to an operation (direct reclaim, storage reads on a miss, migration on
//! pin, dirty throttling, fsync) is time the task is stalled, and its next operation cannot
//! start before the stall is over. So an operation takes `max(1 / rate, charged time)`: a
//! reader that misses in the page cache does less, as a real task blocked on I/O would.
//! Missed operations are not made up later.
//!
//! Drawing ahead: a random read or touch lands on a random slot of a mapping of up to a few
//! hundred thousand pages and then on a random frame, two cache misses that were a quarter
//! of a scenario's run time. Readers and anonymous hogs therefore draw their pages a few
//! accesses ahead, from a random stream of their own (so that drawing early does not reorder
//! other workloads' draws), and prefetch the slot and the frame of the coming accesses
//! (`prefetch_access`). The pages read are the same as if drawn at the time; only the
//! engine's speed changes.
//!
//! Kinds (what each reproduces, and what it simplifies):
//! - `page_cache_reader`: `read()` of a file through the page cache (`filemap_read`): a
//!   resident page is a hit (`folio_mark_accessed`), a first read populates it from storage,
//!   a read after reclaim dropped it is a refault. Random reads follow a Zipf law over the
//!   file's pages (`zipf_s = 0`: uniform), or stream through the file in order. No
//!   readahead: every miss is one storage request (as with `POSIX_FADV_RANDOM`).
//! - `writer`: `write()` of whole pages, cycling through the file in order; pages are
//!   dirtied (`folio_mark_dirty`, throttled by `balance_dirty_pages`) and cleaned by the
//!   flusher, by reclaim or by the writer's own `fsync` (`file_write_and_wait_range`: write
//!   back its dirty pages and wait, charged). Overwriting a whole page needs no read, so a
//!   rewritten evicted page is not a refault.
//! - `anon_hog`: anonymous memory (`GFP_HIGHUSER_MOVABLE`) growing to a target at a rate by
//!   first-touch faults, and re-touched at random (a share of the touches write): swapped-out
//!   pages come back as swap-ins.
//! - `direct_io`: `O_DIRECT` I/O on the task's own anonymous buffer: each I/O pins a run of
//!   buffer pages with `pin_user_pages` (FOLL_PIN) for a drawn time (the device's transfer),
//!   then the engine unpins them (`unpin_user_pages` on completion). I/Os are submitted
//!   asynchronously (Poisson arrivals at the given rate); the task does not wait for them.
//!   With `migrate_on_pin`, a pin first tries to migrate a CMA page out (charged to the
//!   task, counted in `migrations_charged`); a pin that fails is counted in `pin_failures`.
//!   `hold` chooses how the I/O holds its pages: `pin` (FOLL_PIN, the default), `get_page`
//!   (a plain reference, as direct I/O did before its FOLL_PIN conversion: `warn_cma_pins`
//!   warns, `migrate_on_pin` does not migrate) or `get_page_short` (the annotated brief
//!   reference, exempt from `warn_cma_pins`).
//! - `longterm_pinner`: RDMA/vfio/io_uring fixed buffers: anonymous pages allocated at start
//!   and pinned FOLL_LONGTERM (with `migrate_on_longterm_pin`, migrated out of CMA first),
//!   until `hold_ns` has passed or the workload stops. By default each page is faulted in
//!   by its pin; with `populate_first` the whole buffer is faulted in before the first pin.
//!   The difference matters to the fix's cost: a page migrated out frees its CMA frame to
//!   the per-CPU list, and the next fault on that CPU takes the same frame back, so
//!   faulting and pinning page by page migrates nearly every page, where pinning a
//!   populated buffer migrates only the pages that were in CMA.
//! - `fs_mount`: a mounted filesystem's superblock and group-descriptor buffers: block-device
//!   page cache read with `sb_bread` (`__GFP_MOVABLE` without `__GFP_HIGHMEM`, so ZONE_MOVABLE
//!   and ZONE_CMA are out of reach but CMA pageblocks of ZONE_NORMAL are not), each held by
//!   its `buffer_head` reference (`get_page`) for the life of the mount. With
//!   `fs_superblock_unmovable` they are allocated unmovable (`sb_bread_unmovable`, ext4
//!   2014). Mounted at `start_ns`, unmounted at `stop_ns`.
//! - `kernel_alloc`: slab-like unmovable kernel allocations (`GFP_KERNEL`) at a Poisson rate,
//!   each freed after an exponentially distributed lifetime.
//!
//! Stopping a workload releases its holds and frees its pages (the file is truncated, the
//! process exits). Two kinds of page cannot be freed at that instant: a page under writeback
//! (or isolated by a contiguous allocation in progress) is freed when that is over (a
//! follow-up event reaps it); a page another owner holds (a reference taken from Python) is
//! left where it is, still mapped by the stopped workload: user pages stay on the LRU for
//! reclaim to evict once the reference is dropped.
//!
//! An allocation that fails even after direct reclaim (-ENOMEM) is counted in
//! `alloc_failures` and the workload carries on (no OOM killer is modelled).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::error::{misuse, MmError, MmResult};
use crate::event::EventKind;
use crate::gfp::Gfp;
use crate::gup::HoldKind;
use crate::memory::Access;
use crate::owner::{slot_is_resident, OwnerId, SLOT_EMPTY};
use crate::page::{pg, Kind};
use crate::prefetch::prefetch;
use crate::rng::Rng;
use crate::vmstat::Counter;
use crate::Machine;

/// `EventKind::Workload` ids with this bit set stop the workload (or reap what it left).
const STOP_EVENT: u32 = 1 << 31;
/// A step yields after this many operations even if nothing else is due.
const MAX_OPS_PER_STEP: u32 = 4096;
/// How often a stopped workload looks again for pages isolated by a contiguous allocation.
const REAP_RETRY_NS: u64 = 1_000_000;

fn default_superblock_pages() -> u32 {
    8
}

/// How long each direct-I/O pin lasts.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PinDistribution {
    /// Exponentially distributed around `pin_mean_ns` (I/O completion times).
    Exponential,
    /// Always `pin_mean_ns`.
    Fixed,
}

fn default_pin_distribution() -> PinDistribution {
    PinDistribution::Exponential
}

/// How a direct I/O holds its buffer pages while the transfer is in flight.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum IoHold {
    /// `pin_user_pages` (FOLL_PIN): direct I/O since the block layer moved to
    /// `iov_iter_extract_pages` (David Howells, 6.3 for bio, 6.5 for the old `direct-io.c`).
    #[default]
    #[serde(alias = "FOLL_PIN")]
    Pin,
    /// `get_user_pages` + `put_page`: a plain page reference, as direct I/O held its pages
    /// before the FOLL_PIN conversion (and as in the 2015 CMA discussion).
    GetPage,
    /// The same reference annotated as brief (`get_page_short`, Peter Zijlstra's proposal):
    /// exempt from `warn_cma_pins`.
    GetPageShort,
}

impl IoHold {
    fn hold_kind(self) -> HoldKind {
        match self {
            IoHold::Pin => HoldKind::Pin,
            IoHold::GetPage => HoldKind::Ref,
            IoHold::GetPageShort => HoldKind::RefShort,
        }
    }
}

/// A workload as Python declares it (JSON, tagged by `kind`). Times in ns (absolute virtual
/// times for `start_ns`/`stop_ns`), sizes in pages, rates per second.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkloadSpec {
    PageCacheReader {
        name: String,
        #[serde(default)]
        start_ns: u64,
        #[serde(default)]
        stop_ns: Option<u64>,
        /// Pages in the file set.
        file_pages: u32,
        rate_pages_per_s: f64,
        /// Zipf exponent of the access skew over the file's pages (0: uniform).
        #[serde(default)]
        zipf_s: f64,
        /// Stream through the file in order instead of reading at random.
        #[serde(default)]
        sequential: bool,
    },
    Writer {
        name: String,
        #[serde(default)]
        start_ns: u64,
        #[serde(default)]
        stop_ns: Option<u64>,
        file_pages: u32,
        rate_pages_per_s: f64,
        /// `fsync` after this many pages written (None: leave it to the flusher).
        #[serde(default)]
        fsync_every_pages: Option<u32>,
    },
    AnonHog {
        name: String,
        #[serde(default)]
        start_ns: u64,
        #[serde(default)]
        stop_ns: Option<u64>,
        target_pages: u32,
        growth_pages_per_s: f64,
        /// Random re-touches of the pages it has (0: none).
        #[serde(default)]
        touch_rate_pages_per_s: f64,
        /// Share of re-touches that write.
        #[serde(default)]
        write_fraction: f64,
    },
    DirectIo {
        name: String,
        #[serde(default)]
        start_ns: u64,
        #[serde(default)]
        stop_ns: Option<u64>,
        /// The task's own anonymous I/O buffer, populated at start.
        buffer_pages: u32,
        ios_per_s: f64,
        pages_per_io: u32,
        pin_mean_ns: u64,
        #[serde(default = "default_pin_distribution")]
        pin_distribution: PinDistribution,
        /// `pin` (FOLL_PIN, the default), `get_page` or `get_page_short`.
        #[serde(default)]
        hold: IoHold,
    },
    LongtermPinner {
        name: String,
        #[serde(default)]
        start_ns: u64,
        #[serde(default)]
        stop_ns: Option<u64>,
        pages: u32,
        /// Unpin after this long (None: hold until the workload stops).
        #[serde(default)]
        hold_ns: Option<u64>,
        /// Fault the whole buffer in first (the application fills it), then pin it (as
        /// `ib_umem_get` registers a populated buffer). Without it, each page is faulted in
        /// by the pin itself, one page at a time.
        #[serde(default)]
        populate_first: bool,
    },
    FsMount {
        name: String,
        /// When the filesystem is mounted.
        #[serde(default, alias = "mount_ns")]
        start_ns: u64,
        /// When it is unmounted (None: never).
        #[serde(default, alias = "unmount_ns")]
        stop_ns: Option<u64>,
        /// Superblock + group-descriptor buffers (one page each), read from storage at
        /// mount.
        #[serde(default = "default_superblock_pages")]
        superblock_pages: u32,
    },
    KernelAlloc {
        name: String,
        #[serde(default)]
        start_ns: u64,
        #[serde(default)]
        stop_ns: Option<u64>,
        rate_allocs_per_s: f64,
        #[serde(default)]
        order: u32,
        lifetime_mean_ns: u64,
    },
}

impl WorkloadSpec {
    pub fn name(&self) -> &str {
        match self {
            WorkloadSpec::PageCacheReader { name, .. }
            | WorkloadSpec::Writer { name, .. }
            | WorkloadSpec::AnonHog { name, .. }
            | WorkloadSpec::DirectIo { name, .. }
            | WorkloadSpec::LongtermPinner { name, .. }
            | WorkloadSpec::FsMount { name, .. }
            | WorkloadSpec::KernelAlloc { name, .. } => name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            WorkloadSpec::PageCacheReader { .. } => "page_cache_reader",
            WorkloadSpec::Writer { .. } => "writer",
            WorkloadSpec::AnonHog { .. } => "anon_hog",
            WorkloadSpec::DirectIo { .. } => "direct_io",
            WorkloadSpec::LongtermPinner { .. } => "longterm_pinner",
            WorkloadSpec::FsMount { .. } => "fs_mount",
            WorkloadSpec::KernelAlloc { .. } => "kernel_alloc",
        }
    }

    /// `(start_ns, stop_ns)`.
    pub fn window(&self) -> (u64, Option<u64>) {
        match *self {
            WorkloadSpec::PageCacheReader {
                start_ns, stop_ns, ..
            }
            | WorkloadSpec::Writer {
                start_ns, stop_ns, ..
            }
            | WorkloadSpec::AnonHog {
                start_ns, stop_ns, ..
            }
            | WorkloadSpec::DirectIo {
                start_ns, stop_ns, ..
            }
            | WorkloadSpec::LongtermPinner {
                start_ns, stop_ns, ..
            }
            | WorkloadSpec::FsMount {
                start_ns, stop_ns, ..
            }
            | WorkloadSpec::KernelAlloc {
                start_ns, stop_ns, ..
            } => (start_ns, stop_ns),
        }
    }

    /// Check what serde cannot: every message names the field and the fix.
    pub fn validate(&self) -> MmResult<()> {
        let name = self.name();
        let bad = |msg: String| Err(MmError::InvalidConfig(format!("workload {name:?}: {msg}")));
        if name.is_empty() {
            return Err(MmError::InvalidConfig(
                "workload name must not be empty: it names the owner of its pages".into(),
            ));
        }
        let (start, stop) = self.window();
        if let Some(stop) = stop {
            if stop <= start {
                return bad(format!(
                    "stop_ns ({stop}) must be after start_ns ({start}): drop stop_ns to run \
                     until the end"
                ));
            }
        }
        let rate = |field: &str, r: f64, zero_ok: bool| -> MmResult<()> {
            if !r.is_finite() || r < 0.0 || (!zero_ok && r == 0.0) {
                return bad(format!(
                    "{field} = {r} must be a finite number above 0 (per second)"
                ));
            }
            Ok(())
        };
        let positive = |field: &str, n: u64| -> MmResult<()> {
            if n == 0 {
                return bad(format!("{field} must be at least 1"));
            }
            Ok(())
        };
        match *self {
            WorkloadSpec::PageCacheReader {
                file_pages,
                rate_pages_per_s,
                zipf_s,
                ..
            } => {
                positive("file_pages", file_pages as u64)?;
                rate("rate_pages_per_s", rate_pages_per_s, false)?;
                if !zipf_s.is_finite() || !(0.0..=10.0).contains(&zipf_s) {
                    return bad(format!(
                        "zipf_s = {zipf_s} must be between 0 (uniform) and 10 (1 is classic \
                         Zipf)"
                    ));
                }
            }
            WorkloadSpec::Writer {
                file_pages,
                rate_pages_per_s,
                fsync_every_pages,
                ..
            } => {
                positive("file_pages", file_pages as u64)?;
                rate("rate_pages_per_s", rate_pages_per_s, false)?;
                if let Some(n) = fsync_every_pages {
                    positive("fsync_every_pages", n as u64)?;
                }
            }
            WorkloadSpec::AnonHog {
                target_pages,
                growth_pages_per_s,
                touch_rate_pages_per_s,
                write_fraction,
                ..
            } => {
                positive("target_pages", target_pages as u64)?;
                rate("growth_pages_per_s", growth_pages_per_s, false)?;
                rate("touch_rate_pages_per_s", touch_rate_pages_per_s, true)?;
                if !(0.0..=1.0).contains(&write_fraction) {
                    return bad(format!(
                        "write_fraction = {write_fraction} must be between 0 and 1"
                    ));
                }
            }
            WorkloadSpec::DirectIo {
                buffer_pages,
                ios_per_s,
                pages_per_io,
                pin_mean_ns,
                ..
            } => {
                positive("buffer_pages", buffer_pages as u64)?;
                rate("ios_per_s", ios_per_s, false)?;
                positive("pages_per_io", pages_per_io as u64)?;
                positive("pin_mean_ns", pin_mean_ns)?;
                if pages_per_io > buffer_pages {
                    return bad(format!(
                        "pages_per_io ({pages_per_io}) is larger than buffer_pages \
                         ({buffer_pages}): an I/O pins part of the buffer"
                    ));
                }
            }
            WorkloadSpec::LongtermPinner { pages, hold_ns, .. } => {
                positive("pages", pages as u64)?;
                if let Some(h) = hold_ns {
                    positive("hold_ns", h)?;
                }
            }
            WorkloadSpec::FsMount {
                superblock_pages, ..
            } => positive("superblock_pages", superblock_pages as u64)?,
            WorkloadSpec::KernelAlloc {
                rate_allocs_per_s,
                order,
                lifetime_mean_ns,
                ..
            } => {
                rate("rate_allocs_per_s", rate_allocs_per_s, false)?;
                positive("lifetime_mean_ns", lifetime_mean_ns)?;
                if order > crate::config::MAX_PAGE_ORDER {
                    return bad(format!("order {order} is above MAX_PAGE_ORDER (10)"));
                }
            }
        }
        Ok(())
    }
}

/// What a workload has done (cumulative), as `workload_stats` reports it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct WorkloadStats {
    pub name: String,
    pub kind: &'static str,
    pub running: bool,
    /// Operations done: page reads and writes, touches, I/Os, allocations and frees.
    pub ops: u64,
    pub pages_read: u64,
    pub pages_written: u64,
    /// Accesses that found the page resident.
    pub hits: u64,
    /// First touches: new page cache or anonymous pages.
    pub populated: u64,
    /// File pages read again after reclaim dropped them (`workingset_refault_file`).
    pub refaults: u64,
    pub swapins: u64,
    pub cleancache_hits: u64,
    /// Pins (FOLL_PIN, FOLL_LONGTERM) and, for `fs_mount` and `direct_io` with a
    /// `get_page`/`get_page_short` hold, page references taken.
    pub pins_taken: u64,
    pub pin_failures: u64,
    pub alloc_failures: u64,
    /// Virtual time the task spent stalled in the engine (reclaim, storage, migration,
    /// throttling, fsync).
    pub stall_ns: u64,
    /// Pages migrated out of CMA on its behalf (`migrate_on_*pin`, `migrate_on_first_dirty`).
    pub migrations_charged: u64,
    /// Pages it has resident now (after a stop: the ones it could not free yet).
    pub resident_pages: u64,
}

/// One operation of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Grow,
    Touch,
    /// Populate the next page of a buffer at start.
    Populate,
    Io,
    /// Allocate and long-term pin the next page.
    Pin,
    /// Read and hold the next superblock buffer.
    Mount,
    Alloc,
    /// Free the kernel allocation whose lifetime ended first.
    Free,
}

impl Op {
    /// Whether the task does it itself (and so waits out its stalls). Frees of kernel
    /// allocations happen in whatever context drops the last reference.
    fn task_bound(self) -> bool {
        self != Op::Free
    }
}

/// Zipf-distributed ranks in `1..=n` by rejection-inversion (W. Hörmann, G. Derflinger,
/// "Rejection-inversion to generate variates from monotone discrete distributions", 1996;
/// the formulation of Apache Commons' `RejectionInversionZipfSampler`): O(1) time and memory
/// per draw, whatever the size of the file.
///
/// Each draw inverts the hat function, `x = exp(log1p(u (1-s)) / (1-s))`, and rounds it to a
/// rank: two libm calls and a `floor` (an eighth of a scenario's run time). When `1/(1-s)` is
/// a multiple of 1/2 (s = 0.5, 0.6, 0.75, 0.8, 0.9, 1.5, 2, ...: `half_power`), `x` is also
/// `(1 + u (1-s))^(1/(1-s))`, a few multiplications and a square root, and a draw decides
/// from that whenever the decision is at least 1e-9 · x away from a boundary (the rounding to
/// a rank, the acceptance threshold): the two computations of `x` agree to about 1e-14, so
/// the libm one then decides the same. Draws near a boundary (two in 10^4 for tv_evening's
/// reader) and other exponents take the libm path. Either way a draw uses the same uniform
/// variates and returns the same rank as the libm-only computation (`sample_reference`, kept
/// for the test that checks it).
#[derive(Clone, Debug)]
struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
    /// `m = 2 / (1 - s)` when it is an integer (to 1e-12) with `1 <= |m| <= 64`: then
    /// `x = (1 + t)^(m/2)`.
    half_power: Option<i32>,
}

/// What the fast path decided for one uniform variate.
enum Fast {
    /// Accept rank `k` (`k - x <= threshold`).
    Accept(u32),
    /// Rank `k`, accepted only if `u >= h_integral(k + 0.5) - h(k)` (computed exactly).
    Check(u32),
}

impl Zipf {
    fn new(n: u32, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
            half_power: None,
        };
        let m = 2.0 / (1.0 - s);
        if m.is_finite() && (1.0..=64.0).contains(&m.abs().round()) {
            let r = m.round();
            if (m - r).abs() <= 1e-12 * r.abs() {
                z.half_power = Some(r as i32);
            }
        }
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// The integral of `h` from 1 to `x`, shifted: `(x^(1-s) - 1) / (1-s)` (ln x at s = 1).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }

    fn sample(&self, rng: &mut crate::rng::Rng) -> u32 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            match self.fast_decision(u) {
                Some(Fast::Accept(k)) => return k,
                Some(Fast::Check(k)) => {
                    let k = k as f64;
                    if u >= self.h_integral(k + 0.5) - self.h(k) {
                        return k as u32;
                    }
                }
                None => {
                    if let Some(k) = self.decide_reference(u) {
                        return k;
                    }
                }
            }
        }
    }

    /// One step of the libm-only algorithm: the rank `u` gives, or None if it is rejected.
    fn decide_reference(&self, u: f64) -> Option<u32> {
        let x = self.h_integral_inv(u);
        let k = (x + 0.5).floor().clamp(1.0, self.n);
        if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
            return Some(k as u32);
        }
        None
    }

    /// The libm-only algorithm, draw for draw what `sample` returns.
    #[cfg(test)]
    fn sample_reference(&self, rng: &mut crate::rng::Rng) -> u32 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            if let Some(k) = self.decide_reference(u) {
                return k;
            }
        }
    }

    /// `decide_reference`'s decision for `u` from a cheaper `x`, or None if there is none
    /// (`half_power` is None) or `x` is too close to a boundary for the two computations to
    /// be sure to agree.
    ///
    /// Both start from the same `t = max(u (1-s), -1)`. The reference computes
    /// `exp(log1p(t) / t * u)` (or, for `|t| <= 1e-8`, `exp(helper1(t) u)` by its series),
    /// that is `(1 + t)^(u/t)` to within a few ulps of its logarithm `y` (`|y| = |ln x| < 23`):
    /// a relative 1e-14 at most. This computes `(1 + t)^(m/2)` by squarings, a square root
    /// and (for negative `m`) a division: `1 + t` is rounded (a relative 1.1e-16, times
    /// `|m|/2 <= 32`), the products add at most 64 ulps, and `m/2` differs from
    /// `u/t = 1/(1-s)` by a relative 1e-12 at most (1e-16 for s = 0.6), which changes
    /// `ln x` by `1e-12 |y|`: the two `x` agree to a relative 3e-11 at worst. The decisions
    /// need `x + 0.5` to its nearest integer and `k - x` to the threshold: a margin of
    /// 1e-9 · (x + 0.5) is thirty times the largest disagreement. `t >= -0.75` keeps away
    /// from the clamp at -1.
    #[inline]
    fn fast_decision(&self, u: f64) -> Option<Fast> {
        let m = self.half_power?;
        let t = (u * (1.0 - self.s)).max(-1.0);
        // (`max` gives -1 for a NaN, so `t` is a number.)
        if t < -0.75 {
            return None;
        }
        let w = 1.0 + t;
        let mut e = m.unsigned_abs() / 2;
        let mut x = if m & 1 != 0 { w.sqrt() } else { 1.0 };
        let mut base = w;
        while e > 0 {
            if e & 1 != 0 {
                x *= base;
            }
            base *= base;
            e >>= 1;
        }
        if m < 0 {
            x = 1.0 / x;
        }
        let z = x + 0.5;
        if z.is_nan() || z >= 4.0e15 {
            return None;
        }
        // floor(z) for 0 <= z < 2^52, without a libm call.
        let fl = (z as i64) as f64;
        let margin = 1e-9 * z;
        if z - fl < margin || fl + 1.0 - z < margin {
            return None;
        }
        let k = fl.clamp(1.0, self.n);
        let d = k - x;
        if (d - self.threshold).abs() < margin {
            return None;
        }
        Some(if d <= self.threshold {
            Fast::Accept(k as u32)
        } else {
            Fast::Check(k as u32)
        })
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// How many accesses ahead a reader or an anonymous hog draws its pages: the slot of a
/// page is prefetched two accesses before it, its frame one access before.
const READ_AHEAD: usize = 3;

/// A uniform index in `0..n` from a raw 64-bit draw (Lemire's multiply-shift, as
/// `Rng::below`).
fn scale_draw(raw: u64, n: u32) -> u32 {
    ((raw as u128 * n as u128) >> 64) as u32
}

/// The page a reader reads after those it has drawn already: in order, or at random (Zipf or
/// uniform) from its own stream.
fn draw_read_index(state: &mut State, spec: &WorkloadSpec) -> u32 {
    let (
        State::Reader {
            cursor, zipf, rng, ..
        },
        WorkloadSpec::PageCacheReader {
            file_pages,
            sequential,
            ..
        },
    ) = (state, spec)
    else {
        unreachable!("a reader's state")
    };
    if *sequential {
        let i = *cursor;
        *cursor = (*cursor + 1) % file_pages;
        i
    } else {
        match zipf {
            Some(z) => z.sample(rng) - 1,
            None => rng.below(*file_pages as u64) as u32,
        }
    }
}

/// Nanoseconds between operations at `rate` per second (at least 1).
fn interval_ns(rate: f64) -> u64 {
    ((1e9 / rate).round() as u64).max(1)
}

/// The per-kind progress of a workload.
#[derive(Clone, Debug)]
enum State {
    Reader {
        next: u64,
        interval: u64,
        cursor: u32,
        zipf: Option<Zipf>,
        /// The reader's own random stream: it draws its pages ahead of time (`ahead`), so
        /// sharing the machine's would reorder other workloads' draws.
        rng: Rng,
        /// The next pages it will read, drawn ahead so their slots and frames can be
        /// prefetched (`prefetch_access`).
        ahead: [u32; READ_AHEAD],
    },
    Writer {
        next: u64,
        interval: u64,
        cursor: u32,
        /// Indices written since the last fsync.
        unsynced: Vec<u32>,
    },
    AnonHog {
        grow_next: u64,
        grow_interval: u64,
        touch_next: u64,
        touch_interval: Option<u64>,
        populated: u32,
        /// Its own random stream, for the touches (drawn ahead, as a reader's pages).
        rng: Rng,
        /// Raw draws for the next touches: a draw picks a page uniformly among those
        /// populated when the touch happens (`scale_draw`), so growth in between counts.
        ahead: [u64; READ_AHEAD],
    },
    DirectIo {
        populated: u32,
        next: u64,
        mean_interval: f64,
    },
    LongtermPinner {
        populated: u32,
        pinned: u32,
    },
    FsMount {
        mounted: u32,
    },
    KernelAlloc {
        next: u64,
        mean_interval: f64,
        /// `(free time, slot)` of live allocations, earliest first.
        frees: BinaryHeap<Reverse<(u64, u32)>>,
        /// Slots of the owner's mapping free for reuse.
        free_slots: Vec<u32>,
    },
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub spec: WorkloadSpec,
    pub owner: OwnerId,
    pub running: bool,
    stats: WorkloadStats,
    state: State,
    /// When the task is done with its last operation (its stall included).
    task_free_at: u64,
    /// A step event is in the queue.
    step_pending: bool,
    /// Stopped with pages left to free later (a reap event is in the queue).
    reap_pending: bool,
    /// Length of the owner's mapping once the workload started (see
    /// `workload_resident_pages`).
    map_len: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Workloads {
    pub list: Vec<Workload>,
}

impl Machine {
    /// Start a background workload; it runs from `start_ns` (or now, if that has passed).
    /// Returns its id.
    pub fn start_workload(&mut self, spec: WorkloadSpec) -> MmResult<u32> {
        spec.validate()?;
        let (start, stop) = spec.window();
        if let Some(stop) = stop {
            if stop <= self.now {
                return Err(MmError::InvalidConfig(format!(
                    "workload {:?}: stop_ns ({stop}) is not after the current time ({}): \
                     pick a later stop or none",
                    spec.name(),
                    self.now
                )));
            }
        }
        let owner = self.workload_owner(spec.name())?;
        let start = start.max(self.now);
        let state = self.initial_state(&spec, owner, start);
        let id = self.workloads.list.len() as u32;
        if id >= STOP_EVENT {
            return misuse("too many workloads (2^31)");
        }
        let stats = WorkloadStats {
            name: spec.name().to_string(),
            kind: spec.kind(),
            running: true,
            ..Default::default()
        };
        self.workloads.list.push(Workload {
            spec,
            owner,
            running: true,
            stats,
            state,
            task_free_at: start,
            step_pending: false,
            reap_pending: false,
            map_len: self.owners.list[owner as usize].map.len(),
        });
        self.schedule_workload_step(id, start);
        if let Some(stop) = stop {
            self.events
                .schedule(stop, EventKind::Workload(id | STOP_EVENT));
        }
        Ok(id)
    }

    /// The owner a new workload runs as: its name, which must not be in use by a running
    /// workload or own pages already (two tasks would share one file mapping).
    fn workload_owner(&mut self, name: &str) -> MmResult<OwnerId> {
        let owner = self.owners.intern(name)?;
        if owner <= crate::owner::OWNER_KERNEL {
            return Err(MmError::InvalidConfig(format!(
                "workload name {name:?} is reserved: choose another"
            )));
        }
        if self
            .workloads
            .list
            .iter()
            .any(|w| w.running && w.owner == owner)
        {
            return Err(MmError::InvalidConfig(format!(
                "a workload named {name:?} is already running: give each workload its own name"
            )));
        }
        if self.owners.list[owner as usize]
            .map
            .iter()
            .any(|&s| s != SLOT_EMPTY)
        {
            return Err(MmError::InvalidConfig(format!(
                "owner {name:?} already has pages: give the workload a name of its own"
            )));
        }
        Ok(owner)
    }

    fn initial_state(&mut self, spec: &WorkloadSpec, owner: OwnerId, start: u64) -> State {
        match *spec {
            WorkloadSpec::PageCacheReader {
                file_pages,
                rate_pages_per_s,
                zipf_s,
                sequential,
                ..
            } => {
                self.reserve_slots(owner, file_pages);
                let mut state = State::Reader {
                    next: start,
                    interval: interval_ns(rate_pages_per_s),
                    cursor: 0,
                    zipf: (!sequential && zipf_s > 0.0).then(|| Zipf::new(file_pages, zipf_s)),
                    rng: Rng::new(self.rng.next_u64()),
                    ahead: [0; READ_AHEAD],
                };
                let first = [(); READ_AHEAD].map(|_| draw_read_index(&mut state, spec));
                if let State::Reader { ahead, .. } = &mut state {
                    *ahead = first;
                }
                state
            }
            WorkloadSpec::Writer {
                file_pages,
                rate_pages_per_s,
                ..
            } => {
                self.reserve_slots(owner, file_pages);
                State::Writer {
                    next: start,
                    interval: interval_ns(rate_pages_per_s),
                    cursor: 0,
                    unsynced: Vec::new(),
                }
            }
            WorkloadSpec::AnonHog {
                target_pages,
                growth_pages_per_s,
                touch_rate_pages_per_s,
                ..
            } => {
                self.reserve_slots(owner, target_pages);
                let mut state = State::AnonHog {
                    grow_next: start,
                    grow_interval: interval_ns(growth_pages_per_s),
                    touch_next: start,
                    touch_interval: (touch_rate_pages_per_s > 0.0)
                        .then(|| interval_ns(touch_rate_pages_per_s)),
                    populated: 0,
                    rng: Rng::new(self.rng.next_u64()),
                    ahead: [0; READ_AHEAD],
                };
                if let State::AnonHog { rng, ahead, .. } = &mut state {
                    *ahead = [(); READ_AHEAD].map(|_| rng.next_u64());
                }
                state
            }
            WorkloadSpec::DirectIo {
                buffer_pages,
                ios_per_s,
                ..
            } => {
                self.reserve_slots(owner, buffer_pages);
                State::DirectIo {
                    populated: 0,
                    next: start,
                    mean_interval: 1e9 / ios_per_s,
                }
            }
            WorkloadSpec::LongtermPinner { pages, .. } => {
                self.reserve_slots(owner, pages);
                State::LongtermPinner {
                    populated: 0,
                    pinned: 0,
                }
            }
            WorkloadSpec::FsMount {
                superblock_pages, ..
            } => {
                self.reserve_slots(owner, superblock_pages);
                State::FsMount { mounted: 0 }
            }
            WorkloadSpec::KernelAlloc {
                rate_allocs_per_s, ..
            } => State::KernelAlloc {
                next: start,
                mean_interval: 1e9 / rate_allocs_per_s,
                frees: BinaryHeap::new(),
                free_slots: Vec::new(),
            },
        }
    }

    fn workload(&self, id: u32) -> MmResult<&Workload> {
        self.workloads.list.get(id as usize).ok_or_else(|| {
            MmError::Misuse(format!(
                "no workload #{id}: {} were started",
                self.workloads.list.len()
            ))
        })
    }

    fn schedule_workload_step(&mut self, id: u32, at: u64) {
        let w = &mut self.workloads.list[id as usize];
        if !w.step_pending {
            w.step_pending = true;
            self.events.schedule(at, EventKind::Workload(id));
        }
    }

    /// Stop a workload now: no more operations; its holds are released and its pages freed
    /// (see the module comment for pages that cannot be freed at once). Stopping a stopped
    /// workload does nothing.
    pub fn stop_workload(&mut self, id: u32) -> MmResult<()> {
        if !self.workload(id)?.running {
            return Ok(());
        }
        let saved = self.take_charge();
        let w = &mut self.workloads.list[id as usize];
        w.running = false;
        if let State::KernelAlloc {
            frees, free_slots, ..
        } = &mut w.state
        {
            frees.clear();
            free_slots.clear();
        }
        let owner = w.owner;
        let holds: Vec<u64> = self
            .holds
            .by_id
            .iter()
            .filter(|(_, h)| h.holder == owner)
            .map(|(&hid, _)| hid)
            .collect();
        for hid in holds {
            self.release_hold(hid)?;
        }
        self.reap_workload(id);
        self.charge = saved;
        Ok(())
    }

    /// Free what a stopped workload still maps. Pages under writeback or isolated for
    /// migration are retried when that is over; pages held by others are left on the LRU.
    fn reap_workload(&mut self, id: u32) {
        let owner = self.workloads.list[id as usize].owner;
        self.workloads.list[id as usize].reap_pending = false;
        let mut retry_at: Option<u64> = None;
        let len = self.owners.list[owner as usize].map.len();
        for index in 0..len as u32 {
            let slot = self.owners.list[owner as usize].map[index as usize];
            if slot == SLOT_EMPTY {
                continue;
            }
            if slot_is_resident(slot) {
                let page = self.pages[slot as usize];
                if page.test(pg::WRITEBACK) {
                    let end = self.writeback_end.get(&slot).copied().unwrap_or(self.now);
                    retry_at = Some(retry_at.unwrap_or(0).max(end));
                    continue;
                }
                if page.test(pg::ISOLATED) {
                    let at = self.now + REAP_RETRY_NS;
                    retry_at = Some(retry_at.unwrap_or(0).max(at));
                    continue;
                }
                if page.test(pg::EXTRA) {
                    continue;
                }
            }
            let freed = self.free_owned(owner, index);
            debug_assert!(freed.is_ok(), "{freed:?}");
        }
        if let Some(at) = retry_at {
            self.workloads.list[id as usize].reap_pending = true;
            self.events
                .schedule(at.max(self.now), EventKind::Workload(id | STOP_EVENT));
        }
        self.take_charge();
    }

    /// A workload's statistics so far.
    pub fn workload_stats(&self, id: u32) -> MmResult<WorkloadStats> {
        let w = self.workload(id)?;
        let mut stats = w.stats.clone();
        stats.running = w.running;
        // A name is reused only once its earlier workload has nothing left: the mapping is
        // the latest workload's.
        let latest = self.workloads.list.iter().rposition(|x| x.owner == w.owner);
        if latest == Some(id as usize) {
            stats.resident_pages = self.workload_resident_pages(w);
        }
        Ok(stats)
    }

    /// `resident_pages` of a workload's owner, without looking at the frames when they are
    /// all order-0: a workload other than `kernel_alloc` maps only order-0 pages (`touch_slot`
    /// and `fault_in` allocate order 0, migration keeps the order), so its slots hold a
    /// compound page only if one was appended to its mapping from outside (`alloc_owned`
    /// appends at the end), which would have made the mapping longer than at the start.
    /// Counting the resident slots reads the mapping in order instead of one random frame
    /// per page (a cache miss each: a millisecond per scenario run).
    fn workload_resident_pages(&self, w: &Workload) -> u64 {
        let map = &self.owners.list[w.owner as usize].map;
        if map.len() != w.map_len || matches!(w.spec, WorkloadSpec::KernelAlloc { .. }) {
            return self.resident_pages(w.owner);
        }
        let n = map.iter().filter(|&&s| slot_is_resident(s)).count() as u64;
        debug_assert_eq!(n, self.resident_pages(w.owner));
        n
    }

    /// Pages resident in `owner`'s mapping (compound pages count all their frames).
    fn resident_pages(&self, owner: OwnerId) -> u64 {
        self.owners.list[owner as usize]
            .map
            .iter()
            .filter(|&&s| s != SLOT_EMPTY && slot_is_resident(s))
            .map(|&pfn| 1u64 << self.pages[pfn as usize].order())
            .sum()
    }

    /// The event of workload `ev` (its id, with `STOP_EVENT` for a stop or a reap).
    pub(crate) fn workload_step(&mut self, ev: u32) {
        let id = ev & !STOP_EVENT;
        if ev & STOP_EVENT != 0 {
            let w = &self.workloads.list[id as usize];
            if w.running {
                let _ = self.stop_workload(id);
            } else if w.reap_pending {
                // Not a stale stop event (the workload was stopped by hand before stop_ns):
                // the pages it could not free at its stop.
                self.reap_workload(id);
            }
            return;
        }
        let w = &mut self.workloads.list[id as usize];
        w.step_pending = false;
        if !w.running {
            return;
        }
        let saved = self.take_charge();
        self.run_workload_ops(id);
        self.charge = saved;
    }

    /// Do operations at their times until the next one would pass the next pending event
    /// or the end of the current run; then schedule the step again for it.
    fn run_workload_ops(&mut self, id: u32) {
        let mut ops = 0;
        while let Some((at, op)) = self.next_workload_op(id) {
            let at = at.max(self.now);
            let limit = self
                .events
                .peek_time()
                .unwrap_or(u64::MAX)
                .min(self.horizon);
            if ops >= MAX_OPS_PER_STEP || (at > self.now && at > limit) {
                self.schedule_workload_step(id, at);
                return;
            }
            self.now = at;
            let migrations = self.migrations_for_fixes();
            self.workload_op(id, op);
            let stall = self.take_charge();
            let migrated = self.migrations_for_fixes() - migrations;
            let w = &mut self.workloads.list[id as usize];
            w.stats.ops += 1;
            w.stats.stall_ns += stall;
            w.stats.migrations_charged += migrated;
            if op.task_bound() {
                w.task_free_at = at + stall;
            }
            ops += 1;
        }
    }

    /// Pages migrated out of CMA by the pin and dirty fixes, so far.
    fn migrations_for_fixes(&self) -> u64 {
        self.vmstat.get(Counter::PinMigrations) + self.vmstat.get(Counter::DirtyMigrations)
    }

    /// The workload's next operation and when it is due.
    fn next_workload_op(&self, id: u32) -> Option<(u64, Op)> {
        let w = &self.workloads.list[id as usize];
        let t = w.task_free_at;
        match (&w.state, &w.spec) {
            (State::Reader { next, .. }, _) => Some((t.max(*next), Op::Read)),
            (State::Writer { next, .. }, _) => Some((t.max(*next), Op::Write)),
            (
                State::AnonHog {
                    grow_next,
                    touch_next,
                    touch_interval,
                    populated,
                    ..
                },
                WorkloadSpec::AnonHog { target_pages, .. },
            ) => {
                let grow = (*populated < *target_pages).then(|| (t.max(*grow_next), Op::Grow));
                let touch = (touch_interval.is_some() && *populated > 0)
                    .then(|| (t.max(*touch_next), Op::Touch));
                match (grow, touch) {
                    (Some(g), Some(tc)) => Some(if tc.0 < g.0 { tc } else { g }),
                    (g, tc) => g.or(tc),
                }
            }
            (
                State::DirectIo {
                    populated, next, ..
                },
                WorkloadSpec::DirectIo { buffer_pages, .. },
            ) => Some(if populated < buffer_pages {
                (t, Op::Populate)
            } else {
                (t.max(*next), Op::Io)
            }),
            (
                State::LongtermPinner { populated, pinned },
                WorkloadSpec::LongtermPinner {
                    pages,
                    populate_first,
                    ..
                },
            ) => {
                if *populate_first && populated < pages {
                    Some((t, Op::Populate))
                } else {
                    (pinned < pages).then_some((t, Op::Pin))
                }
            }
            (
                State::FsMount { mounted },
                WorkloadSpec::FsMount {
                    superblock_pages, ..
                },
            ) => (mounted < superblock_pages).then_some((t, Op::Mount)),
            (State::KernelAlloc { next, frees, .. }, _) => {
                let alloc = (t.max(*next), Op::Alloc);
                match frees.peek() {
                    Some(Reverse((free_at, _))) if *free_at <= alloc.0 => {
                        Some((*free_at, Op::Free))
                    }
                    _ => Some(alloc),
                }
            }
            _ => unreachable!("workload state matches its spec"),
        }
    }

    fn workload_op(&mut self, id: u32, op: Op) {
        match op {
            Op::Read => self.wl_read(id),
            Op::Write => self.wl_write(id),
            Op::Grow => self.wl_grow(id),
            Op::Touch => self.wl_touch(id),
            Op::Populate => self.wl_populate(id),
            Op::Io => self.wl_io(id),
            Op::Pin => self.wl_longterm_pin(id),
            Op::Mount => self.wl_mount(id),
            Op::Alloc => self.wl_kernel_alloc(id),
            Op::Free => self.wl_kernel_free(id),
        }
    }

    /// Count what an access found, or an allocation failure.
    fn wl_record(&mut self, id: u32, result: MmResult<(u32, Access)>) -> Option<u32> {
        let stats = &mut self.workloads.list[id as usize].stats;
        match result {
            Ok((pfn, how)) => {
                match how {
                    Access::Hit => stats.hits += 1,
                    Access::Populated => stats.populated += 1,
                    Access::Refault => stats.refaults += 1,
                    Access::SwapIn => stats.swapins += 1,
                    Access::CleancacheHit => stats.cleancache_hits += 1,
                }
                Some(pfn)
            }
            Err(e) => {
                debug_assert!(matches!(e, MmError::OutOfMemory(_)), "{e:?}");
                stats.alloc_failures += 1;
                None
            }
        }
    }

    /// `filemap_read` of one page of the file.
    fn wl_read(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let (owner, now) = (w.owner, self.now);
        let drawn = draw_read_index(&mut w.state, &w.spec);
        let State::Reader {
            next,
            interval,
            ahead,
            ..
        } = &mut w.state
        else {
            unreachable!()
        };
        *next = now + *interval;
        let [index, next_read, after] = *ahead;
        *ahead = [next_read, after, drawn];
        let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::File, false);
        if self.wl_record(id, r).is_some() {
            self.workloads.list[id as usize].stats.pages_read += 1;
        }
        self.prefetch_access(owner, after, drawn);
    }

    /// Start loading what the coming accesses of a workload that draws its pages ahead
    /// will look at, while other operations run: the slot of the last page drawn, and the
    /// frame of the one before it (its slot was prefetched by the previous access). A hint
    /// only: the accesses look at both again.
    fn prefetch_access(&self, owner: OwnerId, frame_of: u32, slot_of: u32) {
        let map = &self.owners.list[owner as usize].map;
        prefetch(&map[slot_of as usize]);
        let slot = map[frame_of as usize];
        if slot_is_resident(slot) {
            prefetch(&self.pages[slot as usize]);
        }
    }

    /// A whole-page `write()`: dirty the page in the page cache, then maybe fsync.
    fn wl_write(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let (owner, now) = (w.owner, self.now);
        let WorkloadSpec::Writer {
            file_pages,
            fsync_every_pages,
            ..
        } = w.spec
        else {
            unreachable!()
        };
        let State::Writer {
            next,
            interval,
            cursor,
            ..
        } = &mut w.state
        else {
            unreachable!()
        };
        *next = now + *interval;
        let index = *cursor;
        *cursor = (*cursor + 1) % file_pages;
        let slot = self.owners.list[owner as usize].map[index as usize];
        if slot != SLOT_EMPTY && !slot_is_resident(slot) {
            // A whole-page overwrite does not read the old contents: forget the shadow.
            let _ = self.free_owned(owner, index);
        }
        let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::File, true);
        if self.wl_record(id, r).is_none() {
            return;
        }
        let w = &mut self.workloads.list[id as usize];
        w.stats.pages_written += 1;
        let State::Writer { unsynced, .. } = &mut w.state else {
            unreachable!()
        };
        unsynced.push(index);
        if fsync_every_pages.is_some_and(|n| unsynced.len() >= n as usize) {
            self.wl_fsync(id);
        }
    }

    /// `fsync`: write back the pages dirtied since the last one and wait (charged).
    fn wl_fsync(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let State::Writer { unsynced, .. } = &mut w.state else {
            unreachable!()
        };
        let mut indices = std::mem::take(unsynced);
        indices.sort_unstable();
        indices.dedup();
        let map = &self.owners.list[owner as usize].map;
        let mut wait_until = self.now;
        let mut dirty = Vec::with_capacity(indices.len());
        for &i in &indices {
            let slot = map[i as usize];
            if slot == SLOT_EMPTY || !slot_is_resident(slot) {
                continue;
            }
            let page = &self.pages[slot as usize];
            if page.test(pg::DIRTY) && !page.test(pg::WRITEBACK) {
                dirty.push(slot);
            } else if page.test(pg::WRITEBACK) {
                // Already being written (flusher, reclaim): wait for that write.
                let end = self.writeback_end.get(&slot).copied().unwrap_or(self.now);
                wait_until = wait_until.max(end);
            }
        }
        if !dirty.is_empty() {
            wait_until = wait_until.max(self.writeback_pages(&dirty));
        }
        self.charge += wait_until - self.now;
    }

    /// A first-touch fault growing the anonymous hog.
    fn wl_grow(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let (owner, now) = (w.owner, self.now);
        let State::AnonHog {
            grow_next,
            grow_interval,
            populated,
            ..
        } = &mut w.state
        else {
            unreachable!()
        };
        *grow_next = now + *grow_interval;
        let index = *populated;
        let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, true);
        if self.wl_record(id, r).is_some() {
            if let State::AnonHog { populated, .. } = &mut self.workloads.list[id as usize].state {
                *populated += 1;
            }
        }
    }

    /// A random re-touch of one of the hog's pages (a share of them writes).
    fn wl_touch(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let (owner, now) = (w.owner, self.now);
        let WorkloadSpec::AnonHog { write_fraction, .. } = w.spec else {
            unreachable!()
        };
        let State::AnonHog {
            touch_next,
            touch_interval,
            populated,
            rng,
            ahead,
            ..
        } = &mut w.state
        else {
            unreachable!()
        };
        *touch_next = now + touch_interval.unwrap_or(u64::MAX / 4);
        let n = *populated;
        let drawn = rng.next_u64();
        let [this, next_touch, after] = *ahead;
        *ahead = [next_touch, after, drawn];
        let write = write_fraction > 0.0 && rng.unit() < write_fraction;
        let index = scale_draw(this, n);
        let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, write);
        self.wl_record(id, r);
        self.prefetch_access(owner, scale_draw(after, n), scale_draw(drawn, n));
    }

    /// Fault in the next page of a direct-I/O buffer, or of a long-term pinner's buffer
    /// filled before it is pinned, at start.
    fn wl_populate(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let (State::DirectIo { populated, .. } | State::LongtermPinner { populated, .. }) =
            &mut w.state
        else {
            unreachable!()
        };
        let index = *populated;
        *populated += 1;
        let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, true);
        self.wl_record(id, r);
    }

    /// One direct I/O: `pin_user_pages` on a run of buffer pages, unpinned when the I/O
    /// completes (the hold's scheduled release).
    fn wl_io(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let WorkloadSpec::DirectIo {
            buffer_pages,
            pages_per_io,
            pin_mean_ns,
            pin_distribution,
            hold,
            ..
        } = w.spec
        else {
            unreachable!()
        };
        let State::DirectIo {
            next,
            mean_interval,
            ..
        } = &mut w.state
        else {
            unreachable!()
        };
        let gap = self.rng.exp(*mean_interval).round() as u64;
        *next = self.now + gap.max(1);
        let duration = match pin_distribution {
            PinDistribution::Fixed => pin_mean_ns,
            PinDistribution::Exponential => {
                (self.rng.exp(pin_mean_ns as f64).round() as u64).max(1)
            }
        };
        let first = self.rng.below(buffer_pages as u64) as u32;
        let mut held = Vec::with_capacity(pages_per_io as usize);
        for k in 0..pages_per_io {
            let index = (first + k) % buffer_pages;
            // GUP faults the page in first if it is not resident (swapped out).
            let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, false);
            let Some(pfn) = self.wl_record(id, r) else {
                continue;
            };
            let pinned = self.take_hold(pfn, owner, hold.hold_kind(), None);
            self.count_hold(id, &pinned);
            if let Ok((hold_id, _)) = pinned {
                held.push(hold_id);
            }
        }
        if !held.is_empty() {
            self.release_holds_at(held, self.now + duration);
        }
    }

    /// Pin the next page of a long-term pinned buffer FOLL_LONGTERM, faulting it in first if
    /// the buffer was not populated.
    fn wl_longterm_pin(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let WorkloadSpec::LongtermPinner { hold_ns, .. } = w.spec else {
            unreachable!()
        };
        let State::LongtermPinner { populated, pinned } = &mut w.state else {
            unreachable!()
        };
        let index = *pinned;
        *pinned += 1;
        // A populated page is only looked up (faulted back in if it was swapped out).
        let write = index >= *populated;
        let r = self.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, write);
        let Some(pfn) = self.wl_record(id, r) else {
            return;
        };
        let pinned = self.take_hold(pfn, owner, HoldKind::LongtermPin, hold_ns);
        self.count_hold(id, &pinned);
    }

    /// Tally a pin or reference the workload took (or failed to take).
    fn count_hold(&mut self, id: u32, held: &MmResult<(u64, u32)>) {
        let stats = &mut self.workloads.list[id as usize].stats;
        match held {
            Ok(_) => stats.pins_taken += 1,
            Err(_) => stats.pin_failures += 1,
        }
    }

    /// `sb_bread` of the next superblock/group-descriptor block, kept referenced by its
    /// `buffer_head` until unmount.
    fn wl_mount(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let State::FsMount { mounted } = &mut w.state else {
            unreachable!()
        };
        let index = *mounted;
        *mounted += 1;
        // ext4's fix (`sb_bread_unmovable`): the same read without __GFP_MOVABLE.
        let gfp = if self.cfg.policy.fs_superblock_unmovable {
            Gfp::USER
        } else {
            Gfp::USER_MOVABLE
        };
        let r = self.touch_slot(owner, index, gfp, Kind::File, false);
        let Some(pfn) = self.wl_record(id, r) else {
            return;
        };
        self.workloads.list[id as usize].stats.pages_read += 1;
        let held = self.take_hold(pfn, owner, HoldKind::Ref, None);
        self.count_hold(id, &held);
    }

    /// A slab-like unmovable allocation, freed after an exponential lifetime.
    fn wl_kernel_alloc(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let WorkloadSpec::KernelAlloc {
            order,
            lifetime_mean_ns,
            ..
        } = w.spec
        else {
            unreachable!()
        };
        let State::KernelAlloc {
            next,
            mean_interval,
            free_slots,
            ..
        } = &mut w.state
        else {
            unreachable!()
        };
        let gap = self.rng.exp(*mean_interval).round() as u64;
        *next = self.now + gap.max(1);
        let index = match free_slots.pop() {
            Some(i) => i,
            None => {
                let map = &mut self.owners.list[owner as usize].map;
                map.push(SLOT_EMPTY);
                map.len() as u32 - 1
            }
        };
        match self.alloc_for_slot(owner, Gfp::KERNEL, order, Kind::Kernel, index) {
            Ok(pfn) => {
                self.owners.list[owner as usize].map[index as usize] = pfn;
                let life = (self.rng.exp(lifetime_mean_ns as f64).round() as u64).max(1);
                let free_at = self.now + life;
                let w = &mut self.workloads.list[id as usize];
                w.stats.populated += 1;
                if let State::KernelAlloc { frees, .. } = &mut w.state {
                    frees.push(Reverse((free_at, index)));
                }
            }
            Err(_) => {
                let w = &mut self.workloads.list[id as usize];
                w.stats.alloc_failures += 1;
                if let State::KernelAlloc { free_slots, .. } = &mut w.state {
                    free_slots.push(index);
                }
            }
        }
    }

    /// `kfree` of the allocation whose lifetime ended.
    fn wl_kernel_free(&mut self, id: u32) {
        let w = &mut self.workloads.list[id as usize];
        let owner = w.owner;
        let State::KernelAlloc {
            frees, free_slots, ..
        } = &mut w.state
        else {
            unreachable!()
        };
        let Some(Reverse((_, index))) = frees.pop() else {
            return;
        };
        free_slots.push(index);
        let freed = self.free_owned(owner, index);
        debug_assert!(freed.is_ok(), "{freed:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_matches_its_law() {
        // P(rank 1) = 1 / H(n, s); for n = 1000, s = 1: H ~ 7.4855.
        let z = Zipf::new(1000, 1.0);
        let mut rng = crate::rng::Rng::new(3);
        let n = 200_000;
        let mut ones = 0;
        let mut twos = 0;
        for _ in 0..n {
            let k = z.sample(&mut rng);
            assert!((1..=1000).contains(&k));
            ones += (k == 1) as u32;
            twos += (k == 2) as u32;
        }
        let p1 = ones as f64 / n as f64;
        assert!((p1 - 1.0 / 7.4855).abs() < 0.005, "{p1}");
        let ratio = ones as f64 / twos as f64;
        assert!((ratio - 2.0).abs() < 0.1, "{ratio}");
        // s != 1 and a single-element range.
        let z = Zipf::new(1, 0.8);
        assert_eq!(z.sample(&mut rng), 1);
        let z = Zipf::new(50, 0.5);
        for _ in 0..1000 {
            assert!((1..=50).contains(&z.sample(&mut rng)));
        }
    }

    /// The fast path returns, draw for draw, the ranks of the libm-only algorithm, and
    /// leaves the uniform stream in the same place.
    #[test]
    fn zipf_fast_path_matches_reference() {
        let cases: &[(u32, f64, u32)] = &[
            (163_840, 0.6, 400_000), // tv_evening's page cache
            (1000, 1.0, 100_000),
            (50, 0.5, 50_000),
            (1, 0.8, 1000),
            (2, 0.3, 20_000),
            (1_000_000, 1.2, 100_000),
            (4_000_000_000, 0.9, 100_000),
            (100_000, 0.999, 100_000),
            (100_000, 1.001, 100_000),
            (100_000, 0.01, 100_000),
            (100_000, 2.0, 100_000),
            (1000, 10.0, 50_000),
            (65_536, 0.000_01, 50_000),
            (100_000, 0.75, 100_000),
            (100_000, 1.5, 100_000),
            (100_000, 0.95, 100_000),
            (100_000, 0.968_75, 100_000),
            (100_000, 1.0 / 3.0, 100_000),
            (7, 0.6, 20_000),
        ];
        // The fast path is taken where it should be: 2 / (1 - s) = 5, 4, 8, -4, 40, -2.
        for (s, m) in [
            (0.6, 5),
            (0.5, 4),
            (0.75, 8),
            (1.5, -4),
            (0.95, 40),
            (2.0, -2),
        ] {
            assert_eq!(Zipf::new(1000, s).half_power, Some(m), "s={s}");
        }
        for s in [1.0, 0.3, 0.999, 10.0, 0.000_01] {
            assert_eq!(Zipf::new(1000, s).half_power, None, "s={s}");
        }
        for &(n, s, draws) in cases {
            let z = Zipf::new(n, s);
            let mut a = crate::rng::Rng::new(n as u64 ^ s.to_bits());
            let mut b = a.clone();
            for i in 0..draws {
                let (fast, reference) = (z.sample(&mut a), z.sample_reference(&mut b));
                assert_eq!(fast, reference, "n={n} s={s} draw {i}");
            }
            assert_eq!(a.next_u64(), b.next_u64(), "n={n} s={s}: streams diverged");
        }
    }

    #[test]
    fn spec_json_shapes() {
        let s: WorkloadSpec = serde_json::from_str(
            r#"{"kind":"fs_mount","name":"ext4","mount_ns":5,"unmount_ns":9}"#,
        )
        .unwrap();
        assert_eq!(s.window(), (5, Some(9)));
        let bad = serde_json::from_str::<WorkloadSpec>(
            r#"{"kind":"writer","name":"w","file_pages":1,"rate_pages_per_s":1,"bogus":1}"#,
        );
        assert!(bad.is_err());
        // A direct I/O holds its pages with FOLL_PIN unless told otherwise.
        let dio = |extra: &str| {
            serde_json::from_str::<WorkloadSpec>(&format!(
                r#"{{"kind":"direct_io","name":"d","buffer_pages":16,"ios_per_s":1,
                   "pages_per_io":1,"pin_mean_ns":1{extra}}}"#
            ))
        };
        let hold = |s: WorkloadSpec| match s {
            WorkloadSpec::DirectIo { hold, .. } => hold.hold_kind(),
            _ => unreachable!(),
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
