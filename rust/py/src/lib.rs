//! The `cmadev._core` extension module: a thin PyO3 layer over `cmadev-mm`.
//!
//! Conversion only: every method parses its arguments, calls one engine function and
//! converts the result. Engine errors become `cmadev.errors` exceptions in `to_pyerr`; a
//! panic (an engine bug) is caught, reported as `EngineBugError`, and poisons the engine so
//! that no half-updated state is used afterwards.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cmadev_mm::alloc_contig::Blocker;
use cmadev_mm::cma::CmaJob;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::{Machine, MachineConfig, MmError, Pfn};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Map an engine error onto the exception class of the same category in `cmadev.errors`.
fn to_pyerr(py: Python<'_>, err: MmError) -> PyErr {
    let class = match &err {
        MmError::InvalidConfig(_) => "InvalidConfigError",
        MmError::Misuse(_) => "MisuseError",
        MmError::OutOfMemory(_) => "OutOfMemoryError",
        MmError::Cma(_) => "CmaError",
        MmError::Bug(_) => "EngineBugError",
    };
    match py.import("cmadev.errors").and_then(|m| m.getattr(class)) {
        Ok(cls) => PyErr::from_value(match cls.call1((err.to_string(),)) {
            Ok(v) => v,
            Err(e) => return e,
        }),
        Err(e) => e,
    }
}

fn misuse(py: Python<'_>, msg: String) -> PyErr {
    to_pyerr(py, MmError::Misuse(msg))
}

#[pyclass(module = "cmadev._core")]
struct Engine {
    machine: Machine,
    poisoned: Option<String>,
}

impl Engine {
    /// Run `f` on the machine, turning engine errors and panics into Python exceptions.
    fn with<T>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut Machine) -> Result<T, MmError>,
    ) -> PyResult<T> {
        if let Some(why) = &self.poisoned {
            return Err(to_pyerr(
                py,
                MmError::Bug(format!("the engine stopped after an internal error: {why}")),
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.machine))) {
            Ok(r) => r.map_err(|e| to_pyerr(py, e)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                self.poisoned = Some(msg.clone());
                Err(to_pyerr(py, MmError::Bug(format!("engine panic: {msg}"))))
            }
        }
    }
}

fn parse_kind(py: Python<'_>, kind: &str) -> PyResult<Kind> {
    Kind::parse(kind).ok_or_else(|| {
        misuse(
            py,
            format!("unknown page kind {kind:?}: use anon, file or kernel"),
        )
    })
}

fn parse_migratetype(py: Python<'_>, mt: &str) -> PyResult<Migratetype> {
    Migratetype::ALL
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(mt))
        .ok_or_else(|| {
            misuse(
                py,
                format!("unknown migratetype {mt:?}: use Movable or CMA"),
            )
        })
}

fn blocker_dict<'py>(py: Python<'py>, b: &Blocker) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pfn", b.pfn.0)?;
    d.set_item("reason", b.reason)?;
    d.set_item("page_kind", b.page_kind)?;
    d.set_item("owner", &b.owner)?;
    d.set_item("holder", &b.holder)?;
    d.set_item("hold_kind", b.hold_kind)?;
    d.set_item("since_ns", b.since_ns)?;
    Ok(d)
}

fn job_dict<'py>(py: Python<'py>, m: &Machine, j: &CmaJob) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", j.id)?;
    d.set_item("area", &m.cma[j.area].name)?;
    d.set_item("count", j.count)?;
    d.set_item("align", j.align)?;
    d.set_item("owner", m.owners.name(j.owner))?;
    d.set_item("state", format!("{:?}", j.state).to_lowercase())?;
    d.set_item("issued_ns", j.issued_ns)?;
    d.set_item("completed_ns", j.completed_ns)?;
    d.set_item("pfn", j.pfn.map(|p| p.0))?;
    d.set_item("errno", j.errno.map(|e| e.name()))?;
    d.set_item("busy_retries", j.busy_retries)?;
    d.set_item("passes", j.passes)?;
    d.set_item("pages_migrated", j.pages_migrated)?;
    d.set_item("pages_reclaimed", j.pages_reclaimed)?;
    d.set_item("pages_discarded", j.pages_discarded)?;
    d.set_item("failed_attempts", j.failed_attempts)?;
    d.set_item("lock_wait_ns", j.lock_wait_ns)?;
    d.set_item("cancelled", j.cancelled)?;
    let blockers: PyResult<Vec<_>> = j.blockers.iter().map(|b| blocker_dict(py, b)).collect();
    d.set_item("blockers", blockers?)?;
    Ok(d)
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let cfg: MachineConfig = serde_json::from_str(config_json).map_err(|e| {
            to_pyerr(
                py,
                MmError::InvalidConfig(format!("machine configuration: {e}")),
            )
        })?;
        let machine = Machine::new(cfg).map_err(|e| to_pyerr(py, e))?;
        Ok(Engine {
            machine,
            poisoned: None,
        })
    }

    #[getter]
    fn now_ns(&self) -> u64 {
        self.machine.now
    }

    #[getter]
    fn nr_pages(&self) -> u32 {
        self.machine.nr_pages()
    }

    fn owner(&mut self, py: Python<'_>, name: &str) -> PyResult<u16> {
        self.with(py, |m| m.owners.intern(name))
    }

    fn owner_name(&self, id: u16) -> Option<String> {
        self.machine
            .owners
            .list
            .get(id as usize)
            .map(|o| o.name.clone())
    }

    fn alloc(
        &mut self,
        py: Python<'_>,
        owner: u16,
        gfp: &str,
        order: u32,
        kind: &str,
    ) -> PyResult<u32> {
        let kind = parse_kind(py, kind)?;
        self.with(py, |m| {
            let gfp = Gfp::parse(gfp)?;
            m.alloc_owned_uncharged(owner, gfp, order, kind)
        })
    }

    fn free(&mut self, py: Python<'_>, owner: u16, index: u32) -> PyResult<()> {
        self.with(py, |m| m.free_owned_uncharged(owner, index))
    }

    fn pfn_of(&mut self, py: Python<'_>, owner: u16, index: u32) -> PyResult<Option<u32>> {
        let pfn = self.with(py, |m| m.owned_pfn(owner, index))?;
        Ok(pfn.map(|p| p.0))
    }

    /// Access a page; returns (pfn, what happened, ns the access cost).
    fn access(
        &mut self,
        py: Python<'_>,
        owner: u16,
        index: u32,
        write: bool,
    ) -> PyResult<(u32, String, u64)> {
        let (pfn, how, cost) = self.with(py, |m| m.access_owned_timed(owner, index, write))?;
        Ok((pfn.0, format!("{how:?}").to_lowercase(), cost))
    }

    /// Take a reference or pin; returns (hold id, pfn pinned, ns charged to the holder).
    #[pyo3(signature = (pfn, holder, kind, duration_ns=None))]
    fn hold(
        &mut self,
        py: Python<'_>,
        pfn: u32,
        holder: u16,
        kind: &str,
        duration_ns: Option<u64>,
    ) -> PyResult<(u64, u32, u64)> {
        self.with(py, |m| {
            let kind = HoldKind::parse(kind)?;
            let (id, pinned, cost) = m.take_hold_timed(Pfn(pfn), holder, kind, duration_ns)?;
            Ok((id, pinned.0, cost))
        })
    }

    fn release(&mut self, py: Python<'_>, hold_id: u64) -> PyResult<()> {
        self.with(py, |m| m.release_hold(hold_id).map(|_| ()))
    }

    /// The holds on a page: (id, holder name, kind, since ns).
    fn holds(&self, pfn: u32) -> Vec<(u64, String, &'static str, u64)> {
        let holds = self.machine.holds_on(Pfn(pfn)).into_iter();
        holds
            .map(|h| (h.id, h.holder, h.kind, h.since_ns))
            .collect()
    }

    /// Start writeback of a dirty page now; returns when it completes (ns).
    fn writeback(&mut self, py: Python<'_>, owner: u16, index: u32) -> PyResult<u64> {
        self.with(py, |m| m.writeback_owned(owner, index))
    }

    #[pyo3(signature = (area, count, align, owner, zero=false))]
    fn cma_alloc(
        &mut self,
        py: Python<'_>,
        area: &str,
        count: u32,
        align: u32,
        owner: u16,
        zero: bool,
    ) -> PyResult<u32> {
        self.with(py, |m| {
            let a = m.cma_area_by_name(area)?;
            m.cma_alloc(a, count, align, owner, zero)
        })
    }

    /// A device's buffers allocated one after the other (a driver's loop), as one request;
    /// returns the request's id.
    #[pyo3(signature = (area, buffers, owner, zero=false))]
    fn dma_heap_alloc(
        &mut self,
        py: Python<'_>,
        area: &str,
        buffers: Vec<(u32, u32)>,
        owner: u16,
        zero: bool,
    ) -> PyResult<u32> {
        self.with(py, |m| {
            let a = m.cma_area_by_name(area)?;
            m.dma_heap_alloc(a, &buffers, owner, zero)
        })
    }

    fn dma_heap_release(&mut self, py: Python<'_>, id: u32) -> PyResult<()> {
        self.with(py, |m| m.dma_heap_release(id))
    }

    /// A device request: its buffers' job ids, whether it is done, whether every buffer was
    /// allocated, when it stopped holding buffers, whether it was let go in flight, and the
    /// pages it holds.
    #[allow(clippy::type_complexity)]
    fn dma_request(
        &mut self,
        py: Python<'_>,
        id: u32,
    ) -> PyResult<(Vec<u32>, bool, bool, Option<u64>, bool, u64)> {
        self.with(py, |m| {
            let r = m.dma_request(id)?;
            Ok((
                r.jobs.clone(),
                r.is_done(m),
                r.ok(m),
                r.released_ns,
                r.cancelled,
                r.held_pages(m),
            ))
        })
    }

    fn job<'py>(&self, py: Python<'py>, id: u32) -> PyResult<Bound<'py, PyDict>> {
        let j = self.machine.job(id).map_err(|e| to_pyerr(py, e))?;
        job_dict(py, &self.machine, j)
    }

    fn job_done(&self, id: u32) -> bool {
        self.machine.job_done(id)
    }

    fn cma_release(&mut self, py: Python<'_>, area: &str, pfn: u32, count: u32) -> PyResult<()> {
        self.with(py, |m| {
            let a = m.cma_area_by_name(area)?;
            m.cma_release(a, Pfn(pfn), count)
        })
    }

    /// Run `alloc_contig_range` to completion; returns (errno or None, migrated, reclaimed,
    /// blockers).
    fn alloc_contig_range<'py>(
        &mut self,
        py: Python<'py>,
        start: u32,
        end: u32,
        migratetype: &str,
        owner: u16,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mt = parse_migratetype(py, migratetype)?;
        let (res, cr) = self.with(py, |m| {
            m.alloc_contig_range(Pfn(start), Pfn(end), mt, owner)
        })?;
        let d = PyDict::new(py);
        d.set_item("errno", res.err().map(|e| e.name()))?;
        d.set_item("pages_migrated", cr.nr_migrated)?;
        d.set_item("pages_reclaimed", cr.nr_reclaimed)?;
        d.set_item("pages_discarded", cr.nr_discarded)?;
        let blockers: PyResult<Vec<_>> = cr.blockers.iter().map(|b| blocker_dict(py, b)).collect();
        d.set_item("blockers", blockers?)?;
        Ok(d)
    }

    /// `offline_pages([start, end))` run to completion (memory hot-remove).
    fn offline_pages<'py>(
        &mut self,
        py: Python<'py>,
        start: u32,
        end: u32,
    ) -> PyResult<Bound<'py, PyDict>> {
        let r = self.with(py, |m| m.offline_pages(Pfn(start), Pfn(end)))?;
        let d = PyDict::new(py);
        d.set_item("errno", r.result.err().map(|e| e.name()))?;
        d.set_item("reason", r.reason)?;
        d.set_item("pages_migrated", r.pages_migrated)?;
        d.set_item("pages_discarded", r.pages_discarded)?;
        d.set_item("passes", r.passes)?;
        d.set_item("elapsed_ns", r.elapsed_ns)?;
        let blockers: PyResult<Vec<_>> = r.blockers.iter().map(|b| blocker_dict(py, b)).collect();
        d.set_item("blockers", blockers?)?;
        Ok(d)
    }

    fn online_pages(&mut self, py: Python<'_>, start: u32, end: u32) -> PyResult<()> {
        self.with(py, |m| m.online_pages(Pfn(start), Pfn(end)))
    }

    fn free_contig_range(&mut self, py: Python<'_>, start: u32, count: u32) -> PyResult<()> {
        self.with(py, |m| m.free_contig_range(Pfn(start), count))
    }

    fn run_until(&mut self, py: Python<'_>, t_ns: u64) -> PyResult<()> {
        self.with(py, |m| {
            m.run_until(t_ns);
            Ok(())
        })
    }

    /// Run until request `id` is done or `limit_ns` is reached; true if done.
    fn run_until_job(&mut self, py: Python<'_>, id: u32, limit_ns: u64) -> PyResult<bool> {
        self.machine.job(id).map_err(|e| to_pyerr(py, e))?;
        self.with(py, |m| m.run_until_job(id, limit_ns))
    }

    fn next_event_ns(&self) -> Option<u64> {
        self.machine.events.peek_time()
    }

    fn meminfo(&self) -> Vec<(&'static str, u64)> {
        self.machine.meminfo()
    }

    fn meminfo_text(&self) -> String {
        self.machine.meminfo_text()
    }

    fn buddyinfo_text(&self) -> String {
        self.machine.buddyinfo_text()
    }

    fn pagetypeinfo_text(&self) -> String {
        self.machine.pagetypeinfo_text()
    }

    fn vmstat(&self) -> Vec<(String, u64)> {
        self.machine.vmstat()
    }

    fn cma_sysfs(&mut self, py: Python<'_>, area: &str) -> PyResult<Vec<(&'static str, u64)>> {
        self.with(py, |m| {
            let a = m.cma_area_by_name(area)?;
            Ok(m.cma_sysfs(a))
        })
    }

    fn cma_usage(&mut self, py: Python<'_>, area: &str) -> PyResult<Vec<(&'static str, u64)>> {
        self.with(py, |m| {
            let a = m.cma_area_by_name(area)?;
            let u = m.cma_usage(a);
            Ok(vec![
                ("free", u.free),
                ("anon", u.anon),
                ("file", u.file),
                ("device", u.device),
                ("cache", u.cache),
                ("other", u.other),
            ])
        })
    }

    /// (name, base pfn, pages) of each CMA area.
    fn cma_areas(&self) -> Vec<(String, u32, u32)> {
        self.machine
            .cma
            .iter()
            .map(|a| (a.name.clone(), a.base_pfn.0, a.count))
            .collect()
    }

    /// (name, start pfn, end pfn, managed, free, free cma, [min, low, high]) per zone.
    #[allow(clippy::type_complexity)]
    fn zones(&self) -> Vec<(&'static str, u32, u32, u64, u64, u64, [u64; 3])> {
        self.machine
            .zones
            .iter()
            .map(|z| {
                (
                    z.id.name(),
                    z.start_pfn.0,
                    z.end_pfn.0,
                    z.managed_pages,
                    z.nr_free_pages,
                    z.nr_free_cma,
                    z.watermark,
                )
            })
            .collect()
    }

    #[pyo3(signature = (since=0))]
    fn trace(&self, since: u64) -> Vec<String> {
        self.machine.trace.lines_since(since)
    }

    fn trace_emitted(&self) -> u64 {
        self.machine.trace.emitted()
    }

    fn dmesg(&self) -> Vec<String> {
        self.machine.dmesg.lines.clone()
    }

    fn page_info<'py>(&self, py: Python<'py>, pfn: u32) -> PyResult<Bound<'py, PyDict>> {
        let info = self
            .machine
            .page_info(Pfn(pfn))
            .map_err(|e| to_pyerr(py, e))?;
        let d = PyDict::new(py);
        d.set_item("pfn", info.pfn.0)?;
        d.set_item("kind", info.kind)?;
        d.set_item("order", info.order)?;
        d.set_item("owner", info.owner)?;
        d.set_item("index", info.index)?;
        d.set_item("flags", info.flags)?;
        d.set_item("migratetype", info.migratetype)?;
        d.set_item("zone", info.zone)?;
        d.set_item("refcount", info.refcount)?;
        d.set_item("pincount", info.pincount)?;
        Ok(d)
    }

    /// Start a background workload from its JSON spec; returns its id.
    fn start_workload(&mut self, py: Python<'_>, spec_json: &str) -> PyResult<u32> {
        let spec = serde_json::from_str(spec_json).map_err(|e| {
            to_pyerr(
                py,
                MmError::InvalidConfig(format!("workload specification: {e}")),
            )
        })?;
        self.with(py, |m| m.start_workload(spec))
    }

    fn stop_workload(&mut self, py: Python<'_>, id: u32) -> PyResult<()> {
        self.with(py, |m| m.stop_workload(id))
    }

    /// A workload's statistics, as JSON.
    fn workload_stats(&mut self, py: Python<'_>, id: u32) -> PyResult<String> {
        let stats = self.with(py, |m| m.workload_stats(id))?;
        Ok(serde_json::to_string(&stats).expect("stats serialise"))
    }

    fn set_sampling(&mut self, py: Python<'_>, interval_ns: u64) -> PyResult<()> {
        self.with(py, |m| {
            m.set_sampling(interval_ns);
            Ok(())
        })
    }

    /// The sampled time series, as JSON.
    fn series_json(&self) -> String {
        serde_json::to_string(&self.machine.series).expect("series serialise")
    }

    fn check_invariants(&mut self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |m| m.check_invariants())
    }

    // ----- the kernel's views and the trace's header (issue 13): one conversion each ----

    fn vmstat_text(&self) -> String {
        self.machine.vmstat_text()
    }

    fn model_counters(&self) -> Vec<(&'static str, u64)> {
        self.machine.model_counters()
    }

    fn zoneinfo_text(&self) -> String {
        self.machine.zoneinfo_text()
    }

    fn cma_debugfs(&mut self, py: Python<'_>, area: &str) -> PyResult<Vec<(&'static str, String)>> {
        self.with(py, |m| Ok(m.cma_debugfs(m.cma_area_by_name(area)?)))
    }

    fn cma_sysfs_files(
        &mut self,
        py: Python<'_>,
        area: &str,
    ) -> PyResult<Vec<(&'static str, String)>> {
        self.with(py, |m| Ok(m.cma_sysfs_files(m.cma_area_by_name(area)?)))
    }

    fn trace_header(&self) -> String {
        self.machine.trace.header(self.machine.cfg.cpus)
    }

    fn trace_kept(&self) -> u64 {
        self.machine.trace.kept()
    }

    fn set_area_maps(&mut self, py: Python<'_>, max_bins: u32, every: u32) -> PyResult<()> {
        self.with(py, |m| {
            m.set_area_maps(max_bins, every);
            Ok(())
        })
    }

    /// The sampled area maps (`cma_map.rs`), as JSON.
    fn area_maps_json(&self) -> String {
        serde_json::to_string(&self.machine.area_maps).expect("area maps serialise")
    }
}

/// The engine's default cost model: `{"page_copy_ns": 2000, ...}`, the names of the
/// configuration JSON (Python `CostModel` fields + `_ns`), in nanoseconds.
#[pyfunction]
fn default_costs(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (name, ns) in cmadev_mm::cost::CostModel::DEFAULT.fields() {
        d.set_item(name, ns)?;
    }
    Ok(d)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(default_costs, m)?)?;
    m.add("PAGE_SIZE", cmadev_mm::config::PAGE_SIZE)?;
    m.add("MAX_PAGE_ORDER", cmadev_mm::config::MAX_PAGE_ORDER)?;
    m.add(
        "GFP_NAMES",
        Gfp::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    )?;
    Ok(())
}
