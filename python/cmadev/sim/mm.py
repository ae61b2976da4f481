"""The memory side of a simulated machine: the one Python face of the Rust engine.

:class:`Mm` owns one engine (:class:`cmadev._core.Engine`) built from a
:class:`~cmadev.specs.board.Board`, a :class:`~cmadev.specs.policy.Policy` and a seed, and is the
only code that calls it. It adds what the engine leaves to Python: names instead of ids,
handles (pages, holds, ``cma_alloc`` requests, workloads), callbacks at virtual times, and
result objects. Nothing here runs per page: background load runs inside the engine
(:meth:`Mm.start`).

Devices (:mod:`cmadev.sim.devices`) are built on this face; :class:`~cmadev.sim.machine.Machine`
is this face plus attaching devices, which is what users make.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    NamedTuple,
    Optional,
    Protocol,
    Union,
    runtime_checkable,
)

from cmadev._core import Engine
from cmadev.errors import MisuseError
from cmadev.results import Blocker, CmaResult
from cmadev.specs.base import check_name
from cmadev.specs.board import Board
from cmadev.specs.catalog import load_board
from cmadev.specs.policy import Policy
from cmadev.units import NS_PER_MS, PAGE_SIZE, format_duration, parse_duration

if TYPE_CHECKING:
    from cmadev.specs.workloads import WorkloadBase

TimeLike = Union[int, str]
Callback = Callable[["Mm"], Any]

_U32_MAX = 2**32 - 1

AREA_STATES = ("free", "movable", "pinned", "device", "discardable", "unmovable")
"""The page states of :meth:`Mm.area_maps`, by code (``rust/mm/src/cma_map.rs``)."""
_HOUR_NS = 3600 * 10**9


def _check_owner_name(name: object) -> None:
    if not isinstance(name, str):
        raise MisuseError(f"an owner is named by a string; got {type(name).__name__} {name!r}")
    try:
        check_name(name)
    except ValueError as err:
        raise MisuseError(f"owner name {err}") from None


def _whole(what: str, value: int, limit: int = _U32_MAX) -> int:
    """Check an integer argument before it reaches the engine (which takes unsigned 32-bit
    numbers), so a wrong value is a MisuseError that says so, not an OverflowError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise MisuseError(f"{what} must be a whole number from 0 to {limit}; got {value!r}")
    return value


@runtime_checkable
class Condition(Protocol):
    """What :meth:`Mm.run_until` can wait for besides a time: a ``cma_alloc`` request, a
    device request, or a condition of your own.

    ``is_done()`` says whether it holds. ``pending_jobs()`` names the engine jobs (``cma_alloc``
    requests) whose completion may make it hold: the machine runs the engine until each of them
    finishes without coming back to Python in between. A condition with no pending jobs is
    checked after every engine event.
    """

    def is_done(self) -> bool: ...

    def pending_jobs(self) -> Sequence[int]: ...


# --------------------------------------------------------------------------------------------
# Handles


class DmaRequestState(NamedTuple):
    """A device request in the engine (``rust/mm/src/dma_heap.rs``), as seen now."""

    id: int
    jobs: tuple[int, ...]
    """The buffers' ``cma_alloc`` jobs, in allocation order."""
    done: bool
    """Every buffer's ``cma_alloc`` has finished (or was never asked for)."""
    ok: bool
    """Every buffer was allocated."""
    released_ns: Optional[int]
    """When the request stopped holding buffers (failure or release); None while it holds."""
    cancelled: bool
    """The device let go of it while it was in flight."""
    held_pages: int


@dataclass(frozen=True)
class Page:
    """A page owned by someone: ``owner``'s page ``index``. Its frame (:attr:`pfn`) may change
    when the page is migrated, so a handle names the page, not the frame."""

    machine: Mm = field(repr=False, compare=False)
    owner: str
    owner_id: int = field(repr=False)
    index: int
    order: int = 0

    @property
    def pfn(self) -> Optional[int]:
        """The frame holding the page now, or None if it was reclaimed."""
        return self.machine.page_pfn(self)

    def info(self) -> dict[str, Any]:
        """The frame's state: kind, flags, migratetype, zone, refcount, pincount."""
        return self.machine.page_info(self.resident_pfn())

    def access(self, write: bool = False) -> str:
        """Touch the page; returns what happened (hit, refault, swapin, ...)."""
        return self.machine.access(self, write)

    def dirty(self) -> None:
        self.access(write=True)

    def writeback(self) -> int:
        """Start writing the dirty page back now; returns when the write completes (ns)."""
        return self.machine.writeback(self)

    def pin(
        self,
        holder: Optional[str] = None,
        longterm: bool = False,
        duration: Optional[TimeLike] = None,
    ) -> Hold:
        """``pin_user_pages`` (FOLL_PIN, or FOLL_LONGTERM with ``longterm``)."""
        return self.machine.hold(self, holder, "longterm" if longterm else "pin", duration)

    def get(
        self, holder: Optional[str] = None, short: bool = False, duration: Optional[TimeLike] = None
    ) -> Hold:
        """``get_page`` (or the annotated ``get_page_short`` with ``short``)."""
        kind = "get_page_short" if short else "get_page"
        return self.machine.hold(self, holder, kind, duration)

    def free(self) -> None:
        self.machine.free(self)

    def resident_pfn(self) -> int:
        """The frame holding the page; :class:`MisuseError` if it was reclaimed."""
        pfn = self.pfn
        if pfn is None:
            raise MisuseError(f"{self.owner}'s page {self.index} is not resident (reclaimed)")
        return pfn


@dataclass(frozen=True)
class Hold:
    """A reference or pin on a page, released with :meth:`release`."""

    machine: Mm = field(repr=False, compare=False)
    id: int
    pfn: int
    kind: str
    holder: str
    cost_ns: int = 0

    def release(self) -> None:
        """``put_page`` / ``unpin_user_page``."""
        self.machine.release_hold(self)


class CmaRequest:
    """A ``cma_alloc`` in progress. ``machine.run_until(request)`` runs until it is done."""

    def __init__(self, machine: Mm, job_id: int) -> None:
        self.machine = machine
        self.id = job_id

    @property
    def done(self) -> bool:
        return self.machine.job_done(self.id)

    def is_done(self) -> bool:
        """Part of :class:`Condition`."""
        return self.done

    def pending_jobs(self) -> list[int]:
        """Part of :class:`Condition`: this job, until it is done."""
        return [] if self.done else [self.id]

    def result(self) -> CmaResult:
        """The result; the request must be done (run the machine until it is)."""
        if not self.done:
            raise MisuseError(
                f"cma_alloc request #{self.id} is still running: call "
                "machine.run_until(request) first"
            )
        return self.machine.cma_result(self.id)

    def release(self) -> None:
        """``cma_release`` the buffer."""
        r = self.result()
        if r.pfn is None:
            raise MisuseError(f"cma_alloc request #{self.id} failed: there is nothing to release")
        self.machine.cma_release(r.area, r.pfn, r.count)

    def __repr__(self) -> str:
        return f"<CmaRequest #{self.id} {'done' if self.done else 'running'}>"


class WorkloadHandle:
    """A background workload running inside the engine."""

    def __init__(self, machine: Mm, wid: int, name: str) -> None:
        self.machine = machine
        self.id = wid
        self.name = name

    def stats(self) -> dict[str, Any]:
        return self.machine.workload_stats(self)

    def stop(self) -> None:
        self.machine.stop_workload(self)


# --------------------------------------------------------------------------------------------
# The machine's memory


class Mm:
    """A board's memory running under a policy, in virtual time (see
    :class:`~cmadev.sim.machine.Machine`, which adds devices).

    >>> m = Mm("tv_1g", policy="balanced", seed=7)
    >>> page = m.alloc("app")
    >>> req = m.cma_alloc("tv", count=1024)
    >>> m.run_until(req)
    """

    def __init__(
        self,
        board: Union[Board, str],
        policy: Union[Policy, str, dict[str, Any]] = "balanced",
        seed: int = 0,
        trace_limit: int = 200_000,
        trace_events: Optional[Sequence[str]] = None,
    ) -> None:
        self.board = load_board(board)
        self.policy = Policy.coerce(policy)
        self.seed = seed
        config = self.board.to_engine(
            self.policy, seed=seed, trace_limit=trace_limit, trace_events=trace_events
        )
        self._engine = Engine(json.dumps(config))
        self._callbacks: list[tuple[int, int, Callback]] = []
        self._seq = itertools.count()
        self._owner_ids: dict[str, int] = {}
        self.device_names: set[str] = set()
        """Names of the devices attached (owner names in reports: each is unique)."""

    @property
    def nr_pages(self) -> int:
        """Page frames of the board (pfns ``[0, nr_pages)``)."""
        return int(self._engine.nr_pages)

    # ----- time --------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Virtual time in nanoseconds."""
        return int(self._engine.now_ns)

    @property
    def now_ms(self) -> float:
        return self.now / NS_PER_MS

    def call_at(self, at: TimeLike, callback: Callback) -> None:
        """Run ``callback(machine)`` when the clock reaches ``at``."""
        t = parse_duration(at)
        if t < self.now:
            raise MisuseError(
                f"call_at({format_duration(t)}) is in the past (now {format_duration(self.now)})"
            )
        heapq.heappush(self._callbacks, (t, next(self._seq), callback))

    def call_after(self, delay: TimeLike, callback: Callback) -> None:
        self.call_at(self.now + parse_duration(delay), callback)

    def run_for(self, duration: TimeLike) -> None:
        self.run_until(self.now + parse_duration(duration))

    def run_until(
        self, target: Union[TimeLike, Condition], limit: Optional[TimeLike] = None
    ) -> bool:
        """Run until a time, or until a :class:`Condition` holds (a request completes).

        For a condition, ``limit`` (default: 1 hour of virtual time) bounds the run; returns
        whether the condition held.
        """
        if isinstance(target, Condition):
            end = self.now + (parse_duration(limit) if limit is not None else _HOUR_NS)
            return self._run(end, target)
        end = parse_duration(target)
        if end < self.now:
            raise MisuseError(
                f"run_until({format_duration(end)}) is in the past "
                f"(now {format_duration(self.now)})"
            )
        self._run(end, None)
        return True

    def _run(self, end: int, until: Optional[Condition]) -> bool:
        while True:
            if until is not None and until.is_done():
                return True
            next_cb = self._callbacks[0][0] if self._callbacks else None
            stop = end if next_cb is None else min(end, next_cb)
            self._engine_run(stop, until)
            if until is not None and until.is_done():
                return True
            if next_cb is not None and next_cb <= end and self.now >= next_cb:
                _, _, callback = heapq.heappop(self._callbacks)
                callback(self)
                continue
            if self.now >= end:
                return until.is_done() if until is not None else True

    def _engine_run(self, stop: int, until: Optional[Condition]) -> None:
        """Advance the engine to ``stop``, stopping early when ``until`` holds: in the engine,
        job by job, for a condition on jobs; from event to event for any other."""
        if until is None:
            self._engine.run_until(stop)
            return
        jobs = until.pending_jobs()
        if jobs:
            for job in jobs:
                if not self._engine.run_until_job(job, stop):
                    return
            return
        while self.now < stop and not until.is_done():
            nxt = self._engine.next_event_ns()
            target = stop if nxt is None else min(stop, max(nxt, self.now))
            self._engine.run_until(target)
            if nxt is None or target == stop:
                break

    # ----- owners and pages ----------------------------------------------------------------

    def owner_id(self, name: str) -> int:
        """The engine's id of owner ``name`` (a workload, a device, a caller of the API).

        An owner's name appears in trace lines and reports, so it must be a kernel name
        (letters, digits, ``_``, ``.``, ``-``): anything else is a :class:`MisuseError`."""
        oid = self._owner_ids.get(name)
        if oid is None:
            _check_owner_name(name)
            oid = self._owner_ids[name] = int(self._engine.owner(name))
        return oid

    def alloc(
        self,
        owner: str,
        gfp: str = "GFP_HIGHUSER_MOVABLE",
        order: int = 0,
        kind: Optional[str] = None,
    ) -> Page:
        """Allocate a page (2^order pages) for ``owner``: ``alloc_pages(gfp, order)``.

        ``kind`` defaults to ``anon`` for movable masks and ``kernel`` for the others."""
        if kind is None:
            kind = "anon" if "MOVABLE" in gfp.upper() else "kernel"
        _whole("order", order)
        oid = self.owner_id(owner)
        index = int(self._engine.alloc(oid, gfp, order, kind))
        return Page(self, owner, oid, index, order)

    def alloc_many(self, owner: str, count: int, **kwargs: Any) -> list[Page]:
        return [self.alloc(owner, **kwargs) for _ in range(count)]

    def free(self, page: Page) -> None:
        self._engine.free(page.owner_id, page.index)

    def page_pfn(self, page: Page) -> Optional[int]:
        """The frame holding ``page`` now, or None if it was reclaimed."""
        pfn = self._engine.pfn_of(page.owner_id, page.index)
        return None if pfn is None else int(pfn)

    def access(self, page: Page, write: bool = False) -> str:
        """Touch ``page``; returns what happened (hit, refault, swapin, ...)."""
        _, how, _cost = self._engine.access(page.owner_id, page.index, write)
        return str(how)

    def writeback(self, page: Page) -> int:
        """Start writing the dirty ``page`` back now; returns when the write completes (ns)."""
        return int(self._engine.writeback(page.owner_id, page.index))

    def hold(
        self, page: Page, holder: Optional[str], kind: str, duration: Optional[TimeLike]
    ) -> Hold:
        """Take a reference or pin of ``kind`` on ``page`` (see :meth:`Page.pin`)."""
        holder = holder or page.owner
        hid = self.owner_id(holder)
        dur = None if duration is None else parse_duration(duration)
        hold_id, pfn, cost = self._engine.hold(page.resident_pfn(), hid, kind, dur)
        return Hold(self, int(hold_id), int(pfn), kind, holder, int(cost))

    def holds(self, pfn: int) -> list[Hold]:
        """The references and pins held on frame ``pfn`` now."""
        return [
            Hold(self, int(hid), pfn, str(kind), str(holder))
            for hid, holder, kind, _since in self._engine.holds(_whole("pfn", pfn))
        ]

    def release_hold(self, hold: Hold) -> None:
        """``put_page`` / ``unpin_user_page``."""
        self._engine.release(hold.id)

    def page_info(self, pfn: int) -> dict[str, Any]:
        return dict(self._engine.page_info(_whole("pfn", pfn)))

    # ----- CMA -------------------------------------------------------------------------------

    def cma_alloc(
        self,
        area: str,
        count: int,
        align: int = 0,
        owner: str = "cma_alloc",
        zero: bool = False,
    ) -> CmaRequest:
        """Start ``cma_alloc(area, count, align)`` now (``align`` is an order, as in the
        kernel); run the machine to make it progress."""
        _whole("count", count)
        _whole("align", align)
        job = self._engine.cma_alloc(area, count, align, self.owner_id(owner), zero)
        return CmaRequest(self, int(job))

    def dma_heap_alloc(
        self, area: str, buffers: list[tuple[int, int]], owner: str, zero: bool = True
    ) -> DmaRequestState:
        """Start a device's allocation loop: ``cma_alloc`` of each ``(pages, align order)``
        one after the other, each starting when the previous one succeeded; a failure
        releases what was got and asks for nothing more (see ``rust/mm/src/dma_heap.rs``)."""
        rid = int(self._engine.dma_heap_alloc(area, buffers, self.owner_id(owner), zero))
        return self.dma_request(rid)

    def dma_request(self, request: int) -> DmaRequestState:
        """The state of device request ``request`` now."""
        jobs, done, ok, released_ns, cancelled, held = self._engine.dma_request(request)
        return DmaRequestState(request, tuple(jobs), done, ok, released_ns, cancelled, held)

    def dma_heap_release(self, request: int) -> None:
        """The device lets go of ``request``: what it holds is released now, a buffer in
        flight when it comes back, and nothing more is asked for."""
        self._engine.dma_heap_release(request)

    def job_done(self, job: int) -> bool:
        """Whether ``cma_alloc`` request ``job`` has finished."""
        return bool(self._engine.job_done(job))

    def cma_result(self, job: int) -> CmaResult:
        """What the finished ``cma_alloc`` request ``job`` did."""
        raw = dict(self._engine.job(job))
        raw.pop("state")
        raw["blockers"] = tuple(Blocker(**b) for b in raw["blockers"])
        return CmaResult(**raw)

    def cma_release(self, area: str, pfn: int, count: int) -> None:
        """``cma_release(area, pfn, count)``: give a buffer back, without migration."""
        self._engine.cma_release(area, pfn, count)

    def alloc_contig_range(
        self, start: int, end: int, migratetype: str = "Movable", owner: str = "alloc_contig"
    ) -> dict[str, Any]:
        """``alloc_contig_range([start, end))`` run to completion (the clock advances)."""
        _whole("start", start)
        _whole("end", end)
        out = dict(self._engine.alloc_contig_range(start, end, migratetype, self.owner_id(owner)))
        out["blockers"] = [Blocker(**b) for b in out["blockers"]]
        return out

    def free_contig_range(self, start: int, count: int) -> None:
        self._engine.free_contig_range(_whole("start", start), _whole("count", count))

    def offline_pages(self, start: int, end: int) -> dict[str, Any]:
        """Memory hot-remove of ``[start, end)`` (4 MiB aligned, one zone), run to completion:
        ``errno`` is None when the range went offline."""
        out = dict(self._engine.offline_pages(_whole("start", start), _whole("end", end)))
        out["blockers"] = [Blocker(**b) for b in out["blockers"]]
        return out

    def online_pages(self, start: int, end: int) -> None:
        self._engine.online_pages(_whole("start", start), _whole("end", end))

    def cma_areas(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "base_pfn": b, "pages": c, "bytes": c * PAGE_SIZE}
            for n, b, c in self._engine.cma_areas()
        ]

    # ----- devices and workloads ---------------------------------------------------------------

    def reserve_device_name(self, name: str) -> None:
        """Claim ``name`` for a device: device names are owner names in reports, so each must
        be unique on a machine."""
        _check_owner_name(name)
        if name in self.device_names:
            raise MisuseError(
                f"a device called {name!r} is already attached to this machine; give the "
                f"second one another name (machine.attach(spec, name=...))"
            )
        self.device_names.add(name)

    def start(self, workload: WorkloadBase) -> WorkloadHandle:
        """Start a background workload (runs inside the engine); it must fit the board
        (:meth:`~cmadev.specs.workloads.WorkloadBase.check_fits`)."""
        workload.check_fits(self.board)
        spec = workload.to_engine()
        if spec.get("start_ns", 0) < self.now:
            spec["start_ns"] = self.now
        wid = int(self._engine.start_workload(json.dumps(spec)))
        return WorkloadHandle(self, wid, str(spec["name"]))

    def workload_stats(self, workload: WorkloadHandle) -> dict[str, Any]:
        return dict(json.loads(self._engine.workload_stats(workload.id)))

    def stop_workload(self, workload: WorkloadHandle) -> None:
        self._engine.stop_workload(workload.id)

    # ----- time series and views ---------------------------------------------------------------

    def set_sampling(self, interval: TimeLike) -> None:
        """Sample the time series (:data:`cmadev.results.SERIES_FIELDS`) every ``interval``."""
        self._engine.set_sampling(parse_duration(interval))

    def series(self) -> dict[str, list[Any]]:
        """The time series sampled so far, as columns."""
        data = json.loads(self._engine.series_json())
        return {k: list(v) for k, v in data.items() if isinstance(v, list)}

    def meminfo(self) -> dict[str, int]:
        """``/proc/meminfo`` lines, in kB."""
        return dict(self._engine.meminfo())

    def meminfo_text(self) -> str:
        return str(self._engine.meminfo_text())

    def buddyinfo(self) -> str:
        """``/proc/buddyinfo``."""
        return str(self._engine.buddyinfo_text())

    def pagetypeinfo(self) -> str:
        """``/proc/pagetypeinfo``."""
        return str(self._engine.pagetypeinfo_text())

    def vmstat(self) -> dict[str, int]:
        """``/proc/vmstat``: the kernel's names only, in its order (6.1's list; what the model
        does not track is 0). The model's own counters are :meth:`model_counters`."""
        return dict(self._engine.vmstat())

    def vmstat_text(self) -> str:
        """``/proc/vmstat`` as the kernel prints it."""
        return str(self._engine.vmstat_text())

    def model_counters(self) -> dict[str, int]:
        """The model's counters that have no kernel name (``pgalloc_cma``, ``pgskip_cma``,
        ``kswapd_wakeups``, ``cleancache_*``, ``frontswap_*``, ``pin_migrations``, ...;
        ``rust/mm/src/vmstat.rs`` ``MODEL_COUNTERS`` says what each counts)."""
        return dict(self._engine.model_counters())

    def zoneinfo(self) -> str:
        """``/proc/zoneinfo``."""
        return str(self._engine.zoneinfo_text())

    def cma_debugfs(self, area: str) -> dict[str, str]:
        """``/sys/kernel/debug/cma/<area>/*``: each file's text (``base_pfn``, ``count``,
        ``order_per_bit``, ``used``, ``maxchunk``, ``bitmap``)."""
        return dict(self._engine.cma_debugfs(area))

    def cma_sysfs_files(self, area: str) -> dict[str, str]:
        """The files of ``/sys/kernel/mm/cma/<area>/`` the board's kernel version has, each
        as it prints it (6.1: ``alloc_pages_success``, ``alloc_pages_fail``)."""
        return dict(self._engine.cma_sysfs_files(area))

    def trace_header(self) -> str:
        """The header ``/sys/kernel/tracing/trace`` starts with (nop tracer): lines kept and
        written, CPUs."""
        return str(self._engine.trace_header())

    def trace_kept(self) -> int:
        """Trace lines kept (the oldest go once ``trace_limit`` is reached)."""
        return int(self._engine.trace_kept())

    def set_area_maps(self, max_bins: int, every: int = 1) -> None:
        """Record every CMA area's pages by state at every ``every``-th time-series sample,
        cut into at most ``max_bins`` bins (0 stops); see :meth:`area_maps`."""
        self._engine.set_area_maps(_whole("max_bins", max_bins), _whole("every", every))

    def area_maps(self) -> dict[str, Any]:
        """What :meth:`set_area_maps` recorded: ``states`` (names by code), per area its
        ``name``, ``base_pfn``, ``pages`` and ``bin_pages``, the sample times ``t_ns`` and, per
        sample and area, runs of ``[state, bins]``."""
        raw = json.loads(self._engine.area_maps_json())
        if not raw["max_bins"]:
            return {}
        areas = [
            {"name": a["name"], "base_pfn": a["base_pfn"], "pages": a["pages"], "bin_pages": b}
            for a, b in zip(self.cma_areas(), raw["bin_pages"])
        ]
        return {
            "states": list(AREA_STATES),
            "areas": areas,
            "t_ns": raw["t_ns"],
            "runs": raw["samples"],
        }

    def cma_sysfs(self, area: str) -> dict[str, int]:
        """``/sys/kernel/mm/cma/<area>/*``."""
        return dict(self._engine.cma_sysfs(area))

    def cma_usage(self, area: str) -> dict[str, int]:
        """Pages of the area by what holds them (free, anon, file, device, cache, other)."""
        return dict(self._engine.cma_usage(area))

    def zones(self) -> list[dict[str, Any]]:
        keys = ("name", "start_pfn", "end_pfn", "managed", "free", "free_cma", "watermarks")
        return [dict(zip(keys, z)) for z in self._engine.zones()]

    def trace(self, since: int = 0) -> list[str]:
        """Trace lines (ftrace format), those emitted after the first ``since``."""
        return list(self._engine.trace(_whole("since", since, 2**64 - 1)))

    def trace_lines_emitted(self) -> int:
        return int(self._engine.trace_emitted())

    def dmesg(self) -> list[str]:
        """Kernel log lines (``[seconds.micros] message``): a failed ``cma_alloc``'s (as 6.1
        prints it, ratelimited), the pin instrumentation's warnings, memory offlining."""
        return list(self._engine.dmesg())

    def check_invariants(self) -> None:
        """Raise :class:`EngineBugError` if any frame is accounted for wrongly."""
        self._engine.check_invariants()


__all__ = [
    "AREA_STATES",
    "CmaRequest",
    "Condition",
    "DmaRequestState",
    "Hold",
    "Mm",
    "Page",
    "TimeLike",
    "WorkloadHandle",
]
