//! The `cmadev._core` extension module: a thin PyO3 layer over `cmadev-mm`.
//!
//! Conversion only: every method checks its arguments, calls one engine function and
//! converts the result into one of the typed classes of `types.rs` (or a plain mapping of
//! counters, a list of lines). Engine errors become `cmadev.errors` exceptions through the
//! table of `errors.rs`.
//!
//! - The engine runs without the GIL (`Python::detach`): another Python thread runs while a
//!   machine does, and two machines in two threads run in parallel.
//! - Long runs are cut into slices of events (`Machine::run_slice`); between slices the
//!   binding checks for signals, so Ctrl-C stops a run with `KeyboardInterrupt` between two
//!   events, and the machine stays consistent.
//! - A machine serves one thread at a time: a call while it runs in another thread is a
//!   `MisuseError` saying so, not a wait or a corruption.
//! - A panic (an engine bug) is caught, reported as `EngineBugError`, and poisons the engine
//!   so that no half-updated state is used afterwards.

mod errors;
mod types;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::machine::Slice;
use cmadev_mm::page::Kind;
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::{Machine, MachineConfig, MmError, Pfn};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{misuse, to_pyerr};
use crate::types::*;

/// The page kinds `alloc` takes, by index (`ALLOC_KINDS` in Python).
const ALLOC_KINDS: [Kind; 3] = [Kind::Anon, Kind::File, Kind::Kernel];

/// A run goes back to Python (to check for signals) after this much host time: short enough
/// that Ctrl-C is seen well within 100 ms, long enough that taking the GIL back (up to the
/// interpreter's 5 ms switch interval when another thread holds it) costs little.
const SLICE_TIME: std::time::Duration = std::time::Duration::from_millis(20);

/// Events between two looks at the clock within a slice (events cost 20-500 ns each).
const EVENTS_PER_LOOK: u64 = 4096;

#[pyclass(module = "cmadev._core")]
struct Engine {
    machine: Machine,
    poisoned: Option<String>,
}

/// Run `f` on the engine behind `slf`, turning engine errors and panics into Python
/// exceptions. A short call keeps the GIL: letting it go and taking it back costs more than
/// a page allocation.
fn with<T>(
    slf: &Bound<'_, Engine>,
    f: impl FnOnce(&mut Machine) -> Result<T, MmError>,
) -> PyResult<T> {
    call(slf, |machine| catch_unwind(AssertUnwindSafe(|| f(machine))))
}

/// Run `f` on the engine behind `slf` without the GIL (a run, a contiguous allocation, a
/// check over every frame): other Python threads go on meanwhile.
fn detached<T: Send>(
    slf: &Bound<'_, Engine>,
    f: impl FnOnce(&mut Machine) -> Result<T, MmError> + Send,
) -> PyResult<T> {
    let py = slf.py();
    call(slf, |machine| {
        py.detach(|| catch_unwind(AssertUnwindSafe(|| f(machine))))
    })
}

type Caught<T> = std::thread::Result<Result<T, MmError>>;

/// Borrow the engine (refusing a second thread), refuse a poisoned one, run `body`, and map
/// its outcome: an engine error to its exception, a panic to `EngineBugError` and poison.
fn call<T>(slf: &Bound<'_, Engine>, body: impl FnOnce(&mut Machine) -> Caught<T>) -> PyResult<T> {
    let mut engine = slf.try_borrow_mut().map_err(|_| {
        misuse(
            "this machine is running in another thread: a machine serves one thread at a \
             time (give each thread its own machine)",
        )
    })?;
    if let Some(why) = &engine.poisoned {
        return Err(to_pyerr(MmError::Bug(format!(
            "the engine stopped after an internal error: {why}"
        ))));
    }
    match body(&mut engine.machine) {
        Ok(result) => result.map_err(to_pyerr),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            engine.poisoned = Some(msg.clone());
            Err(to_pyerr(MmError::Bug(format!("engine panic: {msg}"))))
        }
    }
}

/// Read the engine behind `slf` (with the GIL: reads are short).
fn read<T>(slf: &Bound<'_, Engine>, f: impl FnOnce(&Machine) -> Result<T, MmError>) -> PyResult<T> {
    let engine = slf.try_borrow().map_err(|_| {
        misuse("this machine is running in another thread: a machine serves one thread at a time")
    })?;
    f(&engine.machine).map_err(to_pyerr)
}

/// Run until `done` holds or the clock reaches `limit`, a slice at a time, checking for
/// signals between slices; true if `done` held.
fn run_sliced(
    slf: &Bound<'_, Engine>,
    limit: u64,
    done: impl Fn(&Machine) -> bool + Send + Sync + Copy,
) -> PyResult<bool> {
    loop {
        match detached(slf, |m| run_for_a_while(m, limit, done))? {
            Slice::Done => return Ok(true),
            Slice::Reached => return Ok(false),
            Slice::Paused => slf.py().check_signals()?,
        }
    }
}

/// Run slices of events for about `SLICE_TIME` of host time. Where a slice ends depends on
/// the host's speed, never what is simulated (`Machine::run_slice` resumes exactly).
fn run_for_a_while(
    m: &mut Machine,
    limit: u64,
    done: impl Fn(&Machine) -> bool + Copy,
) -> Result<Slice, MmError> {
    let started = std::time::Instant::now();
    loop {
        match m.run_slice(limit, EVENTS_PER_LOOK, done)? {
            Slice::Paused if started.elapsed() < SLICE_TIME => continue,
            outcome => return Ok(outcome),
        }
    }
}

/// Named counters as a Python dict, in the engine's order (the kernel's).
fn counters<'py, K: AsRef<str>>(
    py: Python<'py>,
    pairs: Vec<(K, u64)>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in pairs {
        d.set_item(name.as_ref(), value)?;
    }
    Ok(d)
}

fn parse_migratetype(mt: &str) -> PyResult<Migratetype> {
    Migratetype::ALL
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(mt))
        .ok_or_else(|| misuse(format!("unknown migratetype {mt:?}: use Movable or CMA")))
}

fn nth<T: Copy>(table: &[T], what: &str, index: usize) -> PyResult<T> {
    table.get(index).copied().ok_or_else(|| {
        misuse(format!(
            "{what} #{index} does not exist: use an index below {}",
            table.len()
        ))
    })
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let cfg: MachineConfig = serde_json::from_str(config_json).map_err(|e| {
            to_pyerr(MmError::InvalidConfig(format!(
                "machine configuration: {e}"
            )))
        })?;
        let machine = py.detach(|| Machine::new(cfg)).map_err(to_pyerr)?;
        Ok(Engine {
            machine,
            poisoned: None,
        })
    }

    #[getter]
    fn now_ns(slf: &Bound<'_, Self>) -> PyResult<u64> {
        read(slf, |m| Ok(m.now))
    }

    #[getter]
    fn nr_pages(slf: &Bound<'_, Self>) -> PyResult<u32> {
        read(slf, |m| Ok(m.nr_pages()))
    }

    #[getter]
    fn events_run(slf: &Bound<'_, Self>) -> PyResult<u64> {
        read(slf, |m| Ok(m.events_run))
    }

    fn owner(slf: &Bound<'_, Self>, name: &str) -> PyResult<u16> {
        with(slf, |m| m.owners.intern(name))
    }

    fn owner_name(slf: &Bound<'_, Self>, id: u16) -> PyResult<String> {
        read(slf, |m| Ok(m.owners.name(m.owners.check(id)?).to_string()))
    }

    /// `alloc_pages` for `owner`: `gfp` and `kind` are indices into `GFP_NAMES` and
    /// `ALLOC_KINDS`; returns the page's index in the owner's mapping.
    fn alloc(
        slf: &Bound<'_, Self>,
        owner: u16,
        gfp: usize,
        order: u32,
        kind: usize,
    ) -> PyResult<u32> {
        let (_, gfp) = nth(&Gfp::NAMES, "gfp mask", gfp)?;
        let kind = nth(&ALLOC_KINDS, "page kind", kind)?;
        with(slf, |m| {
            let owner = m.owners.check(owner)?;
            m.alloc_owned_uncharged(owner, gfp, order, kind)
        })
    }

    fn free(slf: &Bound<'_, Self>, owner: u16, index: u32) -> PyResult<()> {
        with(slf, |m| {
            m.free_owned_uncharged(m.owners.check(owner)?, index)
        })
    }

    fn pfn_of(slf: &Bound<'_, Self>, owner: u16, index: u32) -> PyResult<Option<u32>> {
        read(slf, |m| {
            Ok(m.owned_pfn(m.owners.check(owner)?, index)?.map(|p| p.0))
        })
    }

    fn access(slf: &Bound<'_, Self>, owner: u16, index: u32, write: bool) -> PyResult<Access> {
        let (pfn, how, cost_ns) = with(slf, |m| {
            m.access_owned_timed(m.owners.check(owner)?, index, write)
        })?;
        Ok(Access {
            pfn: pfn.0,
            how: format!("{how:?}").to_lowercase(),
            cost_ns,
        })
    }

    #[pyo3(signature = (pfn, holder, kind, duration_ns=None))]
    fn hold(
        slf: &Bound<'_, Self>,
        pfn: u32,
        holder: u16,
        kind: &str,
        duration_ns: Option<u64>,
    ) -> PyResult<HoldTaken> {
        let kind = HoldKind::parse(kind).map_err(to_pyerr)?;
        let (id, pinned, cost_ns) = with(slf, |m| {
            let holder = m.owners.check(holder)?;
            m.take_hold_timed(Pfn(pfn), holder, kind, duration_ns)
        })?;
        Ok(HoldTaken {
            id,
            pfn: pinned.0,
            cost_ns,
        })
    }

    fn release(slf: &Bound<'_, Self>, hold_id: u64) -> PyResult<()> {
        with(slf, |m| m.release_hold(hold_id).map(|_| ()))
    }

    fn holds(slf: &Bound<'_, Self>, pfn: u32) -> PyResult<Vec<HoldRecord>> {
        read(slf, |m| {
            Ok(m.holds_on(Pfn(pfn))
                .into_iter()
                .map(HoldRecord::from)
                .collect())
        })
    }

    /// Start writeback of a dirty page now; returns when it completes (ns).
    fn writeback(slf: &Bound<'_, Self>, owner: u16, index: u32) -> PyResult<u64> {
        with(slf, |m| m.writeback_owned(m.owners.check(owner)?, index))
    }

    #[pyo3(signature = (area, count, align, owner, zero=false))]
    fn cma_alloc(
        slf: &Bound<'_, Self>,
        area: &str,
        count: u32,
        align: u32,
        owner: u16,
        zero: bool,
    ) -> PyResult<u32> {
        with(slf, |m| {
            let a = m.cma_area_by_name(area)?;
            m.cma_alloc(a, count, align, m.owners.check(owner)?, zero)
        })
    }

    #[pyo3(signature = (area, buffers, owner, zero=false))]
    fn dma_heap_alloc(
        slf: &Bound<'_, Self>,
        area: &str,
        buffers: Vec<(u32, u32)>,
        owner: u16,
        zero: bool,
    ) -> PyResult<u32> {
        with(slf, |m| {
            let a = m.cma_area_by_name(area)?;
            m.dma_heap_alloc(a, &buffers, m.owners.check(owner)?, zero)
        })
    }

    fn dma_heap_release(slf: &Bound<'_, Self>, id: u32) -> PyResult<()> {
        with(slf, |m| m.dma_heap_release(id))
    }

    fn dma_request(slf: &Bound<'_, Self>, id: u32) -> PyResult<DmaRequestInfo> {
        read(slf, |m| Ok(DmaRequestInfo::new(m, m.dma_request(id)?)))
    }

    fn job(slf: &Bound<'_, Self>, id: u32) -> PyResult<JobInfo> {
        read(slf, |m| Ok(JobInfo::new(m, m.job(id)?)))
    }

    fn job_done(slf: &Bound<'_, Self>, id: u32) -> PyResult<bool> {
        read(slf, |m| Ok(m.job(id)?.is_done()))
    }

    fn cma_release_job(slf: &Bound<'_, Self>, id: u32, owner: u16) -> PyResult<()> {
        with(slf, |m| m.cma_release_job(id, m.owners.check(owner)?))
    }

    fn cma_release(
        slf: &Bound<'_, Self>,
        area: &str,
        pfn: u32,
        count: u32,
        owner: u16,
    ) -> PyResult<()> {
        with(slf, |m| {
            let a = m.cma_area_by_name(area)?;
            m.cma_release(a, Pfn(pfn), count, m.owners.check(owner)?)
        })
    }

    /// `alloc_contig_range([start, end))` run to completion.
    fn alloc_contig_range(
        slf: &Bound<'_, Self>,
        start: u32,
        end: u32,
        migratetype: &str,
        owner: u16,
    ) -> PyResult<ContigResult> {
        let mt = parse_migratetype(migratetype)?;
        detached(slf, |m| {
            let owner = m.owners.check(owner)?;
            let (result, cr) = m.alloc_contig_range(Pfn(start), Pfn(end), mt, owner)?;
            Ok(ContigResult::new(result, &cr))
        })
    }

    fn free_contig_range(
        slf: &Bound<'_, Self>,
        start: u32,
        count: u32,
        owner: u16,
    ) -> PyResult<()> {
        with(slf, |m| {
            m.free_contig_range(Pfn(start), count, m.owners.check(owner)?)
        })
    }

    /// `offline_pages([start, end))` run to completion (memory hot-remove).
    fn offline_pages(slf: &Bound<'_, Self>, start: u32, end: u32) -> PyResult<OfflineResult> {
        with(slf, |m| {
            Ok(OfflineResult::from(&m.offline_pages(Pfn(start), Pfn(end))?))
        })
    }

    fn online_pages(slf: &Bound<'_, Self>, start: u32, end: u32) -> PyResult<()> {
        with(slf, |m| m.online_pages(Pfn(start), Pfn(end)))
    }

    fn run_until(slf: &Bound<'_, Self>, t_ns: u64) -> PyResult<()> {
        run_sliced(slf, t_ns, |_| false).map(|_| ())
    }

    /// Run until `cma_alloc` request `id` is done or the clock reaches `limit_ns`; true if
    /// it is done.
    fn run_until_job(slf: &Bound<'_, Self>, id: u32, limit_ns: u64) -> PyResult<bool> {
        read(slf, |m| m.job(id).map(|_| ()))?;
        run_sliced(slf, limit_ns, move |m| m.jobs[id as usize].is_done())
    }

    fn next_event_ns(slf: &Bound<'_, Self>) -> PyResult<Option<u64>> {
        read(slf, |m| Ok(m.events.peek_time()))
    }

    /// `/proc/meminfo` in kB, in the kernel's order.
    fn meminfo<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        counters(slf.py(), read(slf, |m| Ok(m.meminfo()))?)
    }

    fn meminfo_text(slf: &Bound<'_, Self>) -> PyResult<String> {
        read(slf, |m| Ok(m.meminfo_text()))
    }

    fn buddyinfo_text(slf: &Bound<'_, Self>) -> PyResult<String> {
        read(slf, |m| Ok(m.buddyinfo_text()))
    }

    fn pagetypeinfo_text(slf: &Bound<'_, Self>) -> PyResult<String> {
        read(slf, |m| Ok(m.pagetypeinfo_text()))
    }

    /// `/proc/vmstat`, in the kernel's order.
    fn vmstat<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        counters(slf.py(), read(slf, |m| Ok(m.vmstat()))?)
    }

    /// `/sys/kernel/mm/cma/<area>/*`, in the order `ls` shows them.
    fn cma_sysfs<'py>(slf: &Bound<'py, Self>, area: &str) -> PyResult<Bound<'py, PyDict>> {
        let files = read(slf, |m| Ok(m.cma_sysfs(m.cma_area_by_name(area)?)))?;
        counters(slf.py(), files)
    }

    fn cma_usage(slf: &Bound<'_, Self>, area: &str) -> PyResult<AreaUsage> {
        read(slf, |m| {
            Ok(AreaUsage::from(m.cma_usage(m.cma_area_by_name(area)?)))
        })
    }

    fn cma_areas(slf: &Bound<'_, Self>) -> PyResult<Vec<AreaInfo>> {
        read(slf, |m| {
            Ok(m.cma
                .iter()
                .map(|a| AreaInfo {
                    name: a.name.clone(),
                    base_pfn: a.base_pfn.0,
                    pages: a.count,
                })
                .collect())
        })
    }

    fn zones(slf: &Bound<'_, Self>) -> PyResult<Vec<ZoneInfo>> {
        read(slf, |m| {
            Ok(m.zones
                .iter()
                .map(|z| ZoneInfo {
                    name: z.id.name(),
                    start_pfn: z.start_pfn.0,
                    end_pfn: z.end_pfn.0,
                    managed: z.managed_pages,
                    free: z.nr_free_pages,
                    free_cma: z.nr_free_cma,
                    watermarks: z.watermark,
                })
                .collect())
        })
    }

    #[pyo3(signature = (since=0))]
    fn trace(slf: &Bound<'_, Self>, since: u64) -> PyResult<Vec<String>> {
        read(slf, |m| Ok(m.trace.lines_since(since)))
    }

    fn trace_emitted(slf: &Bound<'_, Self>) -> PyResult<u64> {
        read(slf, |m| Ok(m.trace.emitted()))
    }

    fn dmesg(slf: &Bound<'_, Self>) -> PyResult<Vec<String>> {
        read(slf, |m| Ok(m.dmesg.lines.clone()))
    }

    fn page_info(slf: &Bound<'_, Self>, pfn: u32) -> PyResult<FrameInfo> {
        read(slf, |m| Ok(FrameInfo::from(m.page_info(Pfn(pfn))?)))
    }

    /// Start a background workload from its JSON spec; returns its id.
    fn start_workload(slf: &Bound<'_, Self>, spec_json: &str) -> PyResult<u32> {
        let spec = serde_json::from_str(spec_json).map_err(|e| {
            to_pyerr(MmError::InvalidConfig(format!(
                "workload specification: {e}"
            )))
        })?;
        with(slf, |m| m.start_workload(spec))
    }

    fn stop_workload(slf: &Bound<'_, Self>, id: u32) -> PyResult<()> {
        with(slf, |m| m.stop_workload(id))
    }

    fn workload_stats(slf: &Bound<'_, Self>, id: u32) -> PyResult<WorkloadReport> {
        read(slf, |m| Ok(WorkloadReport::from(m.workload_stats(id)?)))
    }

    fn set_sampling(slf: &Bound<'_, Self>, interval_ns: u64) -> PyResult<()> {
        with(slf, |m| {
            m.set_sampling(interval_ns);
            Ok(())
        })
    }

    fn series(slf: &Bound<'_, Self>) -> PyResult<SeriesColumns> {
        read(slf, |m| Ok(SeriesColumns::from(&m.series)))
    }

    fn check_invariants(slf: &Bound<'_, Self>) -> PyResult<()> {
        detached(slf, |m| m.check_invariants())
    }

    // ----- the kernel's views and the trace's header ---------------------------------------

    /// `/proc/vmstat` as the kernel prints it.
    fn vmstat_text(slf: &Bound<'_, Self>) -> PyResult<String> {
        read(slf, |m| Ok(m.vmstat_text()))
    }

    /// The model's own counters (not kernel names), apart from `/proc/vmstat`.
    fn model_counters<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        counters(slf.py(), read(slf, |m| Ok(m.model_counters()))?)
    }

    /// `/proc/zoneinfo`.
    fn zoneinfo_text(slf: &Bound<'_, Self>) -> PyResult<String> {
        read(slf, |m| Ok(m.zoneinfo_text()))
    }

    /// The debugfs `cma/<area>/` files, by name, as their text.
    fn cma_debugfs(slf: &Bound<'_, Self>, area: &str) -> PyResult<Vec<(&'static str, String)>> {
        read(slf, |m| Ok(m.cma_debugfs(m.cma_area_by_name(area)?)))
    }

    /// The `/sys/kernel/mm/cma/<area>/` files the board's kernel version has, as their text.
    fn cma_sysfs_files(slf: &Bound<'_, Self>, area: &str) -> PyResult<Vec<(&'static str, String)>> {
        read(slf, |m| Ok(m.cma_sysfs_files(m.cma_area_by_name(area)?)))
    }

    /// The header `trace` files begin with.
    fn trace_header(slf: &Bound<'_, Self>) -> PyResult<String> {
        read(slf, |m| Ok(m.trace.header(m.cfg.cpus)))
    }

    /// Trace lines kept now (the oldest are dropped past `trace_limit`).
    fn trace_kept(slf: &Bound<'_, Self>) -> PyResult<u64> {
        read(slf, |m| Ok(m.trace.kept()))
    }

    fn set_area_maps(slf: &Bound<'_, Self>, max_bins: u32, every: u32) -> PyResult<()> {
        with(slf, |m| {
            m.set_area_maps(max_bins, every);
            Ok(())
        })
    }

    /// The sampled area maps (`cma_map.rs`).
    fn area_maps(slf: &Bound<'_, Self>) -> PyResult<AreaMapsInfo> {
        read(slf, |m| Ok(AreaMapsInfo::from(&m.area_maps)))
    }
}

/// The engine's default cost model: `{"page_copy_ns": 2000, ...}`, the names of the
/// configuration JSON (Python `CostModel` fields + `_ns`), in nanoseconds.
#[pyfunction]
fn default_costs() -> BTreeMap<&'static str, u64> {
    cmadev_mm::cost::CostModel::DEFAULT
        .fields()
        .into_iter()
        .collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<BlockerInfo>()?;
    m.add_class::<JobInfo>()?;
    m.add_class::<ContigResult>()?;
    m.add_class::<OfflineResult>()?;
    m.add_class::<FrameInfo>()?;
    m.add_class::<HoldRecord>()?;
    m.add_class::<HoldTaken>()?;
    m.add_class::<Access>()?;
    m.add_class::<DmaRequestInfo>()?;
    m.add_class::<AreaInfo>()?;
    m.add_class::<ZoneInfo>()?;
    m.add_class::<AreaUsage>()?;
    m.add_class::<WorkloadReport>()?;
    m.add_class::<SeriesColumns>()?;
    m.add_class::<AreaMapsInfo>()?;
    m.add_function(wrap_pyfunction!(default_costs, m)?)?;
    m.add_function(wrap_pyfunction!(errors::error_classes, m)?)?;
    m.add(
        "GFP_NAMES",
        Gfp::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    )?;
    m.add(
        "ALLOC_KINDS",
        ALLOC_KINDS.iter().map(|k| k.name()).collect::<Vec<_>>(),
    )?;
    Ok(())
}
