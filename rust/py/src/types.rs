//! The result classes the engine returns: frozen, read-only Python objects with one attribute
//! per field (`get_all`), each built from the engine's own struct by one `From`. They are
//! declared, with a docstring per class, in `python/cmadev/_core.pyi`; `cmadev.sim.mm` turns
//! them into the plain-data records of `cmadev.results`.

use cmadev_mm::alloc_contig::{Blocker, ContigRange};
use cmadev_mm::cma::CmaJob;
use cmadev_mm::cma_map::AreaMaps;
use cmadev_mm::debug::PageInfo;
use cmadev_mm::dma_heap::DmaHeapRequest;
use cmadev_mm::gup::HoldInfo;
use cmadev_mm::memory_hotplug::OfflineReport;
use cmadev_mm::procfs::CmaUsage;
use cmadev_mm::series::Series;
use cmadev_mm::workload::WorkloadStats;
use cmadev_mm::{Errno, Machine};
use pyo3::prelude::*;

/// A page that kept a contiguous range from being freed.
#[pyclass(module = "cmadev._core", frozen, get_all, skip_from_py_object)]
#[derive(Clone)]
pub struct BlockerInfo {
    pub pfn: u32,
    pub reason: &'static str,
    pub page_kind: &'static str,
    pub owner: String,
    pub holder: Option<String>,
    pub hold_kind: Option<&'static str>,
    pub since_ns: Option<u64>,
}

impl From<&Blocker> for BlockerInfo {
    fn from(b: &Blocker) -> Self {
        BlockerInfo {
            pfn: b.pfn.0,
            reason: b.reason,
            page_kind: b.page_kind,
            owner: b.owner.clone(),
            holder: b.holder.clone(),
            hold_kind: b.hold_kind,
            since_ns: b.since_ns,
        }
    }
}

fn blockers(list: &[Blocker]) -> Vec<BlockerInfo> {
    list.iter().map(BlockerInfo::from).collect()
}

fn errno(result: Result<(), Errno>) -> Option<&'static str> {
    result.err().map(Errno::name)
}

/// One `cma_alloc` call, in progress or finished.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct JobInfo {
    pub id: u32,
    pub area: String,
    pub count: u32,
    pub align: u32,
    pub owner: String,
    pub state: String,
    pub issued_ns: u64,
    pub completed_ns: Option<u64>,
    pub pfn: Option<u32>,
    pub errno: Option<&'static str>,
    pub busy_retries: u32,
    pub passes: u32,
    pub pages_migrated: u64,
    pub pages_reclaimed: u64,
    pub pages_discarded: u64,
    pub failed_attempts: u64,
    pub lock_wait_ns: u64,
    pub cancelled: bool,
    pub released: bool,
    pub blockers: Vec<BlockerInfo>,
}

impl JobInfo {
    pub fn new(m: &Machine, j: &CmaJob) -> Self {
        let released = match (j.allocation, j.pfn) {
            (Some(id), Some(pfn)) => m.allocations.by_id(id, pfn).is_none(),
            _ => false,
        };
        JobInfo {
            id: j.id,
            area: m.cma[j.area].name.clone(),
            count: j.count,
            align: j.align,
            owner: m.owners.name(j.owner).to_string(),
            state: format!("{:?}", j.state).to_lowercase(),
            issued_ns: j.issued_ns,
            completed_ns: j.completed_ns,
            pfn: j.pfn.map(|p| p.0),
            errno: j.errno.map(Errno::name),
            busy_retries: j.busy_retries,
            passes: j.passes,
            pages_migrated: j.pages_migrated,
            pages_reclaimed: j.pages_reclaimed,
            pages_discarded: j.pages_discarded,
            failed_attempts: j.failed_attempts,
            lock_wait_ns: j.lock_wait_ns,
            cancelled: j.cancelled,
            released,
            blockers: blockers(&j.blockers),
        }
    }
}

/// What a synchronous `alloc_contig_range` did.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct ContigResult {
    pub errno: Option<&'static str>,
    pub allocation: Option<u64>,
    pub pages_migrated: u64,
    pub pages_reclaimed: u64,
    pub pages_discarded: u64,
    pub blockers: Vec<BlockerInfo>,
}

impl ContigResult {
    pub fn new(result: Result<(), Errno>, cr: &ContigRange) -> Self {
        ContigResult {
            errno: errno(result),
            allocation: cr.allocation,
            pages_migrated: cr.nr_migrated,
            pages_reclaimed: cr.nr_reclaimed,
            pages_discarded: cr.nr_discarded,
            blockers: blockers(&cr.blockers),
        }
    }
}

/// What `offline_pages` did.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct OfflineResult {
    pub errno: Option<&'static str>,
    pub reason: Option<&'static str>,
    pub pages_migrated: u64,
    pub pages_discarded: u64,
    pub passes: u32,
    pub elapsed_ns: u64,
    pub blockers: Vec<BlockerInfo>,
}

impl From<&OfflineReport> for OfflineResult {
    fn from(r: &OfflineReport) -> Self {
        OfflineResult {
            errno: errno(r.result),
            reason: r.reason,
            pages_migrated: r.pages_migrated,
            pages_discarded: r.pages_discarded,
            passes: r.passes,
            elapsed_ns: r.elapsed_ns,
            blockers: blockers(&r.blockers),
        }
    }
}

/// One frame's state (`dump_page`).
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct FrameInfo {
    pub pfn: u32,
    pub kind: &'static str,
    pub order: u32,
    pub owner: String,
    pub index: u32,
    pub flags: Vec<&'static str>,
    pub migratetype: &'static str,
    pub zone: &'static str,
    pub refcount: u64,
    pub pincount: u64,
}

impl From<PageInfo> for FrameInfo {
    fn from(p: PageInfo) -> Self {
        FrameInfo {
            pfn: p.pfn.0,
            kind: p.kind,
            order: p.order,
            owner: p.owner,
            index: p.index,
            flags: p.flags,
            migratetype: p.migratetype,
            zone: p.zone,
            refcount: p.refcount as u64,
            pincount: p.pincount as u64,
        }
    }
}

/// A reference or pin held on a frame.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct HoldRecord {
    pub id: u64,
    pub holder: String,
    pub kind: &'static str,
    pub since_ns: u64,
}

impl From<HoldInfo> for HoldRecord {
    fn from(h: HoldInfo) -> Self {
        HoldRecord {
            id: h.id,
            holder: h.holder,
            kind: h.kind,
            since_ns: h.since_ns,
        }
    }
}

/// A hold just taken: its id, the frame it pins (after any migration), the time charged.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct HoldTaken {
    pub id: u64,
    pub pfn: u32,
    pub cost_ns: u64,
}

/// What touching a page did: the frame, how (hit, refault, swapin, ...), the time charged.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct Access {
    pub pfn: u32,
    pub how: String,
    pub cost_ns: u64,
}

/// A device request through the dma-heap, as it stands now.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct DmaRequestInfo {
    pub id: u32,
    pub jobs: Vec<u32>,
    pub done: bool,
    pub ok: bool,
    pub released_ns: Option<u64>,
    pub cancelled: bool,
    pub held_pages: u64,
}

impl DmaRequestInfo {
    pub fn new(m: &Machine, r: &DmaHeapRequest) -> Self {
        DmaRequestInfo {
            id: r.id,
            jobs: r.jobs.clone(),
            done: r.is_done(m),
            ok: r.ok(m),
            released_ns: r.released_ns,
            cancelled: r.cancelled,
            held_pages: r.held_pages(m),
        }
    }
}

/// A CMA area: its name, first frame and size in pages.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct AreaInfo {
    pub name: String,
    pub base_pfn: u32,
    pub pages: u32,
}

/// A zone: its span, managed and free pages, and its min/low/high watermarks.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct ZoneInfo {
    pub name: &'static str,
    pub start_pfn: u32,
    pub end_pfn: u32,
    pub managed: u64,
    pub free: u64,
    pub free_cma: u64,
    pub watermarks: [u64; 3],
}

/// A CMA area's pages by what holds them.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct AreaUsage {
    pub free: u64,
    pub anon: u64,
    pub file: u64,
    pub device: u64,
    pub cache: u64,
    pub other: u64,
}

impl From<CmaUsage> for AreaUsage {
    fn from(u: CmaUsage) -> Self {
        AreaUsage {
            free: u.free,
            anon: u.anon,
            file: u.file,
            device: u.device,
            cache: u.cache,
            other: u.other,
        }
    }
}

/// A background workload's statistics.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct WorkloadReport {
    pub name: String,
    pub kind: &'static str,
    pub running: bool,
    pub ops: u64,
    pub pages_read: u64,
    pub pages_written: u64,
    pub hits: u64,
    pub populated: u64,
    pub refaults: u64,
    pub swapins: u64,
    pub cleancache_hits: u64,
    pub pins_taken: u64,
    pub pin_failures: u64,
    pub alloc_failures: u64,
    pub stall_ns: u64,
    pub migrations_charged: u64,
    pub resident_pages: u64,
    pub finished_ns: Option<u64>,
}

impl From<WorkloadStats> for WorkloadReport {
    fn from(s: WorkloadStats) -> Self {
        WorkloadReport {
            name: s.name,
            kind: s.kind,
            running: s.running,
            ops: s.ops,
            pages_read: s.pages_read,
            pages_written: s.pages_written,
            hits: s.hits,
            populated: s.populated,
            refaults: s.refaults,
            swapins: s.swapins,
            cleancache_hits: s.cleancache_hits,
            pins_taken: s.pins_taken,
            pin_failures: s.pin_failures,
            alloc_failures: s.alloc_failures,
            stall_ns: s.stall_ns,
            migrations_charged: s.migrations_charged,
            resident_pages: s.resident_pages,
            finished_ns: s.finished_ns,
        }
    }
}

/// The time series sampled so far, one list per quantity (see `rust/mm/src/series.rs`).
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct SeriesColumns {
    pub t_ns: Vec<u64>,
    pub mem_free: Vec<u64>,
    pub cma_free: Vec<u64>,
    pub cma_movable: Vec<u64>,
    pub cma_cache: Vec<u64>,
    pub cma_device: Vec<u64>,
    pub kswapd_busy_ns: Vec<u64>,
    pub refaults: Vec<u64>,
    pub pgscan: Vec<u64>,
    pub nr_dirty: Vec<u64>,
    pub nr_writeback: Vec<u64>,
}

impl From<&Series> for SeriesColumns {
    fn from(s: &Series) -> Self {
        SeriesColumns {
            t_ns: s.t_ns.clone(),
            mem_free: s.mem_free.clone(),
            cma_free: s.cma_free.clone(),
            cma_movable: s.cma_movable.clone(),
            cma_cache: s.cma_cache.clone(),
            cma_device: s.cma_device.clone(),
            kswapd_busy_ns: s.kswapd_busy_ns.clone(),
            refaults: s.refaults.clone(),
            pgscan: s.pgscan.clone(),
            nr_dirty: s.nr_dirty.clone(),
            nr_writeback: s.nr_writeback.clone(),
        }
    }
}

/// The CMA areas' pages by state, sampled with the series (see `rust/mm/src/cma_map.rs`):
/// per sample and area, runs of `(state, bins)` in pfn order.
#[pyclass(module = "cmadev._core", frozen, get_all)]
pub struct AreaMapsInfo {
    pub max_bins: u32,
    pub every: u32,
    pub bin_pages: Vec<u32>,
    pub t_ns: Vec<u64>,
    pub samples: Vec<Vec<Vec<(u8, u32)>>>,
}

impl From<&AreaMaps> for AreaMapsInfo {
    fn from(a: &AreaMaps) -> Self {
        AreaMapsInfo {
            max_bins: a.max_bins,
            every: a.every,
            bin_pages: a.bin_pages.clone(),
            t_ns: a.t_ns.clone(),
            samples: a.samples.clone(),
        }
    }
}
