"""The memory side of a simulated machine: the one Python face of the Rust engine.

:class:`Mm` owns one engine (:class:`cmadev._core.Engine`) built from a
:class:`~cmadev.specs.board.Board`, a :class:`~cmadev.specs.policy.Policy` and a seed, and is the
only code that calls it. It adds what the engine leaves to Python: names instead of ids,
handles (pages, holds, ``cma_alloc`` requests, workloads: :mod:`cmadev.sim.handles`, whose
names this module re-exports), callbacks at virtual times, and result objects. Nothing here
runs per page: background load runs inside the engine (:meth:`Mm.start`).

Devices (:mod:`cmadev.sim.devices`) are built on this face; :class:`~cmadev.sim.machine.Machine`
is this face plus attaching devices, which is what users make.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from collections.abc import Callable, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Optional,
    Protocol,
    Union,
    runtime_checkable,
)

from cmadev._core import ALLOC_KINDS, GFP_NAMES, BlockerInfo, Engine, JobInfo
from cmadev.errors import MisuseError
from cmadev.results import Blocker, CmaResult, ContigResult, OfflineResult
from cmadev.sim.handles import CmaRequest, DmaRequestState, Hold, Page, WorkloadHandle
from cmadev.specs.base import check_name
from cmadev.specs.board import DEFAULT_MAX_EVENTS, Board
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
_GFP_INDEX = {name: i for i, name in enumerate(GFP_NAMES)}
_KIND_INDEX = {name: i for i, name in enumerate(ALLOC_KINDS)}
_ALLOC_ARGS: dict[tuple[object, object], tuple[int, int]] = {}
"""``(gfp, kind)`` as a caller wrote them -> the engine's indices: a script allocating page by
page pays for the names once (:meth:`Mm.alloc`)."""


_MOVABLE = "GFP_HIGHUSER_MOVABLE"
_MOVABLE_ANON = (_GFP_INDEX[_MOVABLE], _KIND_INDEX["anon"])
"""The engine's indices of :meth:`Mm.alloc`'s defaults."""


def _alloc_args(gfp: object, kind: object) -> tuple[int, int]:
    """The engine's indices of gfp mask ``gfp`` and page kind ``kind`` (None: ``anon`` for
    movable masks, ``kernel`` for the others); a clear error for a name it does not know."""
    gfp_index = _gfp_index(gfp)
    name = kind
    if name is None:
        name = "anon" if "MOVABLE" in GFP_NAMES[gfp_index] else "kernel"
    kind_index = _KIND_INDEX.get(name) if isinstance(name, str) else None
    if kind_index is None:
        raise MisuseError(f"unknown page kind {name!r}: use {', '.join(ALLOC_KINDS)}")
    if isinstance(gfp, str):  # a hashable name the next call will write the same way
        _ALLOC_ARGS[gfp, kind] = (gfp_index, kind_index)
    return gfp_index, kind_index


def _fields(record: object) -> dict[str, Any]:
    """The attributes of one of the engine's result classes, as a dict."""
    return {name: getattr(record, name) for name in dir(record) if not name.startswith("_")}


def _gfp_index(gfp: object) -> int:
    """The index of gfp mask ``gfp`` in ``GFP_NAMES`` (any case); a clear error if none."""
    index = _GFP_INDEX.get(str(gfp).upper())
    if index is None:
        raise MisuseError(f"unknown gfp mask {gfp!r}: use one of {', '.join(GFP_NAMES)}")
    return index


def _blockers(infos: list[BlockerInfo]) -> tuple[Blocker, ...]:
    return tuple(Blocker(**_fields(b)) for b in infos)


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
        max_events: int = DEFAULT_MAX_EVENTS,
        trace_events: Optional[Sequence[str]] = None,
    ) -> None:
        self.board = load_board(board)
        self.policy = Policy.coerce(policy)
        self.seed = seed
        config = self.board.to_engine(
            self.policy,
            seed=seed,
            trace_limit=trace_limit,
            max_events=max_events,
            trace_events=trace_events,
        )
        self._engine = Engine(json.dumps(config))
        # Bound once: the page-by-page path (Mm.alloc, Page.free).
        self._engine_alloc = self._engine.alloc
        self._engine_free = self._engine.free
        self._busy = threading.Lock()
        self._callbacks: list[tuple[int, int, Callback]] = []
        self._seq = itertools.count()
        self._owner_ids: dict[str, int] = {}
        self.device_names: set[str] = set()
        """Names of the devices attached (owner names in reports: each is unique)."""

    @property
    def nr_pages(self) -> int:
        """Page frames of the board (pfns ``[0, nr_pages)``)."""
        return self._engine.nr_pages

    # ----- time --------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Virtual time in nanoseconds."""
        return self._engine.now_ns

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
            self._own(target, "run_until")
            end = self.now + (parse_duration(limit) if limit is not None else _HOUR_NS)
            return self._run_alone(end, target)
        end = parse_duration(target)
        if end < self.now:
            raise MisuseError(
                f"run_until({format_duration(end)}) is in the past "
                f"(now {format_duration(self.now)})"
            )
        self._run_alone(end, None)
        return True

    def _run_alone(self, end: int, until: Optional[Condition]) -> bool:
        """Run, refusing a second thread: a machine serves one thread at a time."""
        if not self._busy.acquire(blocking=False):
            raise MisuseError(
                "this machine is running in another thread: a machine serves one thread at a "
                "time (give each thread its own machine)"
            )
        try:
            return self._run(end, until)
        finally:
            self._busy.release()

    def _own(self, handle: object, what: str) -> None:
        """``handle`` (a page, hold, request) must be one of this machine's."""
        theirs = getattr(handle, "machine", self)
        if theirs is not self:
            raise MisuseError(
                f"{what}: {handle!r} belongs to another machine; use it with the machine "
                f"that made it"
            )

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
            oid = self._owner_ids[name] = self._engine.owner(name)
        return oid

    def alloc(
        self,
        owner: str,
        gfp: str = _MOVABLE,
        order: int = 0,
        kind: Optional[str] = None,
    ) -> Page:
        """Allocate a page (2^order pages) for ``owner``: ``alloc_pages(gfp, order)``.

        ``kind`` defaults to ``anon`` for movable masks and ``kernel`` for the others."""
        # The hot path of a script that allocates page by page: one cache lookup for the
        # names, the handle's slots set one by one (no __init__ to call, no tuple to unpack).
        if gfp is _MOVABLE and kind is None:  # the defaults: no lookup at all
            gfp_index, kind_index = _MOVABLE_ANON
        else:
            gfp_index, kind_index = _ALLOC_ARGS.get((gfp, kind)) or _alloc_args(gfp, kind)
        if order.__class__ is not int or not 0 <= order < _U32_MAX:
            _whole("order", order)
        try:  # a subscript, not .get(): no method call
            oid = self._owner_ids[owner]
        except KeyError:
            oid = self.owner_id(owner)
        page = Page()
        page.index = self._engine_alloc(oid, gfp_index, order, kind_index)
        page.machine = self
        page.owner = owner
        page.owner_id = oid
        page.order = order
        return page

    def alloc_many(self, owner: str, count: int, **kwargs: Any) -> list[Page]:
        return [self.alloc(owner, **kwargs) for _ in range(count)]

    def free(self, page: Page) -> None:
        if page.machine is not self:
            self._own(page, "free")
        self._engine.free(page.owner_id, page.index)

    def page_pfn(self, page: Page) -> Optional[int]:
        """The frame holding ``page`` now, or None if it was reclaimed."""
        self._own(page, "pfn")
        return self._engine.pfn_of(page.owner_id, page.index)

    def access(self, page: Page, write: bool = False) -> str:
        """Touch ``page``; returns what happened (hit, refault, swapin, ...)."""
        self._own(page, "access")
        return self._engine.access(page.owner_id, page.index, write).how

    def writeback(self, page: Page) -> int:
        """Start writing the dirty ``page`` back now; returns when the write completes (ns)."""
        self._own(page, "writeback")
        return self._engine.writeback(page.owner_id, page.index)

    def hold(
        self, page: Page, holder: Optional[str], kind: str, duration: Optional[TimeLike]
    ) -> Hold:
        """Take a reference or pin of ``kind`` on ``page`` (see :meth:`Page.pin`)."""
        self._own(page, "pin")
        holder = holder or page.owner
        hid = self.owner_id(holder)
        dur = None if duration is None else parse_duration(duration)
        taken = self._engine.hold(page.resident_pfn(), hid, kind, dur)
        return Hold(self, taken.id, taken.pfn, kind, holder, taken.cost_ns)

    def holds(self, pfn: int) -> list[Hold]:
        """The references and pins held on frame ``pfn`` now."""
        return [
            Hold(self, h.id, pfn, h.kind, h.holder) for h in self._engine.holds(_whole("pfn", pfn))
        ]

    def release_hold(self, hold: Hold) -> None:
        """``put_page`` / ``unpin_user_page``."""
        self._own(hold, "release")
        self._engine.release(_whole("hold id", hold.id, 2**64 - 1))

    def page_info(self, pfn: int) -> dict[str, Any]:
        """The frame's state (``dump_page``): kind, owner, flags, migratetype, zone, counts."""
        return _fields(self._engine.page_info(_whole("pfn", pfn)))

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
        return CmaRequest(self, job, owner)

    def dma_heap_alloc(
        self, area: str, buffers: list[tuple[int, int]], owner: str, zero: bool = True
    ) -> DmaRequestState:
        """Start a device's allocation loop: ``cma_alloc`` of each ``(pages, align order)``
        one after the other, each starting when the previous one succeeded; a failure
        releases what was got and asks for nothing more (see ``rust/mm/src/dma_heap.rs``)."""
        rid = self._engine.dma_heap_alloc(area, buffers, self.owner_id(owner), zero)
        return self.dma_request(rid)

    def dma_request(self, request: int) -> DmaRequestState:
        """The state of device request ``request`` now."""
        r = self._engine.dma_request(request)
        return DmaRequestState(
            r.id, tuple(r.jobs), r.done, r.ok, r.released_ns, r.cancelled, r.held_pages
        )

    def dma_heap_release(self, request: int) -> None:
        """The device lets go of ``request``: what it holds is released now, a buffer in
        flight when it comes back, and nothing more is asked for."""
        self._engine.dma_heap_release(request)

    def job_done(self, job: int) -> bool:
        """Whether ``cma_alloc`` request ``job`` has finished."""
        return self._engine.job_done(job)

    def cma_result(self, job: int) -> CmaResult:
        """What the finished ``cma_alloc`` request ``job`` did."""
        return _cma_result(self._engine.job(job))

    def release_request(self, request: CmaRequest) -> None:
        """``cma_release`` the buffer of ``request``, by its owner (see
        :meth:`CmaRequest.release`)."""
        self._own(request, "cma_release")
        self._engine.cma_release_job(request.id, self.owner_id(request.owner))

    def cma_release(self, area: str, pfn: int, count: int, owner: str = "cma_alloc") -> None:
        """``cma_release(area, pfn, count)`` by ``owner``: give a buffer back, without
        migration. The range must be exactly one live ``cma_alloc`` buffer of ``owner``;
        anything else is a :class:`MisuseError` that changes nothing."""
        self._engine.cma_release(
            area, _whole("pfn", pfn), _whole("count", count), self.owner_id(owner)
        )

    def alloc_contig_range(
        self, start: int, end: int, migratetype: str = "Movable", owner: str = "alloc_contig"
    ) -> ContigResult:
        """``alloc_contig_range([start, end))`` run to completion (the clock advances)."""
        _whole("start", start)
        _whole("end", end)
        r = self._engine.alloc_contig_range(start, end, migratetype, self.owner_id(owner))
        return ContigResult(
            start=start,
            count=end - start if r.errno is None else 0,
            owner=owner,
            errno=r.errno,
            allocation=r.allocation,
            pages_migrated=r.pages_migrated,
            pages_reclaimed=r.pages_reclaimed,
            pages_discarded=r.pages_discarded,
            blockers=_blockers(r.blockers),
        )

    def free_contig_range(self, start: int, count: int, owner: str = "alloc_contig") -> None:
        """``free_contig_range(start, count)`` by ``owner``: give back a range it took with
        :meth:`alloc_contig_range`; anything but exactly one live range of ``owner`` is a
        :class:`MisuseError` that changes nothing."""
        self._engine.free_contig_range(
            _whole("start", start), _whole("count", count), self.owner_id(owner)
        )

    def offline_pages(self, start: int, end: int) -> OfflineResult:
        """Memory hot-remove of ``[start, end)`` (4 MiB aligned, one zone), run to completion:
        ``errno`` is None when the range went offline."""
        r = self._engine.offline_pages(_whole("start", start), _whole("end", end))
        fields = _fields(r)
        fields["blockers"] = _blockers(r.blockers)
        return OfflineResult(**fields)

    def online_pages(self, start: int, end: int) -> None:
        self._engine.online_pages(_whole("start", start), _whole("end", end))

    def cma_areas(self) -> list[dict[str, Any]]:
        return [
            {"name": a.name, "base_pfn": a.base_pfn, "pages": a.pages, "bytes": a.pages * PAGE_SIZE}
            for a in self._engine.cma_areas()
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
        wid = self._engine.start_workload(json.dumps(spec))
        return WorkloadHandle(self, wid, str(spec["name"]))

    def workload_stats(self, workload: WorkloadHandle) -> dict[str, Any]:
        self._own(workload, "workload_stats")
        return _fields(self._engine.workload_stats(workload.id))

    def stop_workload(self, workload: WorkloadHandle) -> None:
        self._own(workload, "stop")
        self._engine.stop_workload(workload.id)

    # ----- time series and views ---------------------------------------------------------------

    def set_sampling(self, interval: TimeLike) -> None:
        """Sample the time series (:data:`cmadev.results.SERIES_FIELDS`) every ``interval``."""
        self._engine.set_sampling(parse_duration(interval))

    def series(self) -> dict[str, list[Any]]:
        """The time series sampled so far, as columns."""
        return _fields(self._engine.series())

    def meminfo(self) -> dict[str, int]:
        """``/proc/meminfo`` lines, in kB."""
        return self._engine.meminfo()

    def meminfo_text(self) -> str:
        return self._engine.meminfo_text()

    def buddyinfo(self) -> str:
        """``/proc/buddyinfo``."""
        return self._engine.buddyinfo_text()

    def pagetypeinfo(self) -> str:
        """``/proc/pagetypeinfo``."""
        return self._engine.pagetypeinfo_text()

    def vmstat(self) -> dict[str, int]:
        """``/proc/vmstat``: the kernel's names only, in its order (6.1's list; what the model
        does not track is 0). The model's own counters are :meth:`model_counters`."""
        return self._engine.vmstat()

    def vmstat_text(self) -> str:
        """``/proc/vmstat`` as the kernel prints it."""
        return self._engine.vmstat_text()

    def model_counters(self) -> dict[str, int]:
        """The model's counters that have no kernel name (``pgalloc_cma``, ``pgskip_cma``,
        ``kswapd_wakeups``, ``cleancache_*``, ``frontswap_*``, ``pin_migrations``, ...;
        ``rust/mm/src/vmstat.rs`` ``MODEL_COUNTERS`` says what each counts)."""
        return self._engine.model_counters()

    def zoneinfo(self) -> str:
        """``/proc/zoneinfo``."""
        return self._engine.zoneinfo_text()

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
        return self._engine.trace_header()

    def trace_kept(self) -> int:
        """Trace lines kept (the oldest go once ``trace_limit`` is reached)."""
        return self._engine.trace_kept()

    def set_area_maps(self, max_bins: int, every: int = 1) -> None:
        """Record every CMA area's pages by state at every ``every``-th time-series sample,
        cut into at most ``max_bins`` bins (0 stops); see :meth:`area_maps`."""
        self._engine.set_area_maps(_whole("max_bins", max_bins), _whole("every", every))

    def area_maps(self) -> dict[str, Any]:
        """What :meth:`set_area_maps` recorded: ``states`` (names by code), per area its
        ``name``, ``base_pfn``, ``pages`` and ``bin_pages``, the sample times ``t_ns`` and, per
        sample and area, runs of ``[state, bins]``."""
        raw = self._engine.area_maps()
        if not raw.max_bins:
            return {}
        areas = [
            {"name": a["name"], "base_pfn": a["base_pfn"], "pages": a["pages"], "bin_pages": b}
            for a, b in zip(self.cma_areas(), raw.bin_pages)
        ]
        return {
            "states": list(AREA_STATES),
            "areas": areas,
            "t_ns": list(raw.t_ns),
            "runs": [[[list(run) for run in area] for area in sample] for sample in raw.samples],
        }

    def cma_sysfs(self, area: str) -> dict[str, int]:
        """``/sys/kernel/mm/cma/<area>/*``."""
        return self._engine.cma_sysfs(area)

    def cma_usage(self, area: str) -> dict[str, int]:
        """Pages of the area by what holds them (free, anon, file, device, cache, other)."""
        return _fields(self._engine.cma_usage(area))

    def zones(self) -> list[dict[str, Any]]:
        return [_fields(z) for z in self._engine.zones()]

    def trace(self, since: int = 0) -> list[str]:
        """Trace lines (ftrace format), those emitted after the first ``since``."""
        return list(self._engine.trace(_whole("since", since, 2**64 - 1)))

    def trace_lines_emitted(self) -> int:
        return self._engine.trace_emitted()

    def dmesg(self) -> list[str]:
        """Kernel log lines (``[seconds.micros] message``): a failed ``cma_alloc``'s (as 6.1
        prints it, ratelimited), the pin instrumentation's warnings, memory offlining."""
        return list(self._engine.dmesg())

    def check_invariants(self) -> None:
        """Raise :class:`EngineBugError` if any frame is accounted for wrongly."""
        self._engine.check_invariants()


def _cma_result(job: JobInfo) -> CmaResult:
    """One ``cma_alloc`` as a record of :mod:`cmadev.results`."""
    fields = _fields(job)
    for engine_only in ("state", "released"):
        fields.pop(engine_only)
    fields["blockers"] = _blockers(job.blockers)
    return CmaResult(**fields)


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
