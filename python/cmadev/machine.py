"""A simulated machine: the Python face of the Rust memory engine.

``Machine`` owns one engine (:class:`cmadev._core.Engine`) built from a :class:`Board`, a
:class:`Policy` and a seed. It adds what the engine leaves to Python: names instead of ids,
page and hold handles, callbacks at virtual times, and result objects. Nothing here runs per
page: background load runs inside the engine (:meth:`Machine.start`).
"""

from __future__ import annotations

import heapq
import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from cmadev import _core
from cmadev.catalog import load_board
from cmadev.errors import MisuseError
from cmadev.models import Board, Policy
from cmadev.units import NS_PER_MS, PAGE_SIZE, format_duration, parse_duration

if TYPE_CHECKING:
    import os

    from cmadev.device import Device
    from cmadev.models import DeviceSpec
    from cmadev.workloads import WorkloadBase

TimeLike = Union[int, str]
Callback = Callable[["Machine"], Any]


def _ns(value: TimeLike) -> int:
    return parse_duration(value)


_U32_MAX = 2**32 - 1


def _whole(what: str, value: int, limit: int = _U32_MAX) -> int:
    """Check an integer argument before it reaches the engine (which takes unsigned 32-bit
    numbers), so a wrong value is a MisuseError that says so, not an OverflowError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise MisuseError(f"{what} must be a whole number from 0 to {limit}; got {value!r}")
    return value


@dataclass(frozen=True)
class Page:
    """A page owned by someone: ``owner``'s page ``index``. Its frame (:attr:`pfn`) may change
    when the page is migrated, so a handle names the page, not the frame."""

    machine: Machine = field(repr=False, compare=False)
    owner: str
    owner_id: int = field(repr=False)
    index: int
    order: int = 0

    @property
    def pfn(self) -> Optional[int]:
        """The frame holding the page now, or None if it was reclaimed."""
        return self.machine.engine.pfn_of(self.owner_id, self.index)

    def info(self) -> dict[str, Any]:
        """The frame's state: kind, flags, migratetype, zone, refcount, pincount."""
        return self.machine.page_info(self._resident_pfn())

    def access(self, write: bool = False) -> str:
        """Touch the page; returns what happened (hit, refault, swapin, ...)."""
        _, how, _cost = self.machine.engine.access(self.owner_id, self.index, write)
        return str(how)

    def dirty(self) -> None:
        self.access(write=True)

    def writeback(self) -> int:
        """Start writing the dirty page back now; returns when the write completes (ns)."""
        return int(self.machine.engine.writeback(self.owner_id, self.index))

    def pin(
        self,
        holder: Optional[str] = None,
        longterm: bool = False,
        duration: Optional[TimeLike] = None,
    ) -> Hold:
        """``pin_user_pages`` (FOLL_PIN, or FOLL_LONGTERM with ``longterm``)."""
        return self.machine._hold(self, holder, "longterm" if longterm else "pin", duration)

    def get(
        self, holder: Optional[str] = None, short: bool = False, duration: Optional[TimeLike] = None
    ) -> Hold:
        """``get_page`` (or the annotated ``get_page_short`` with ``short``)."""
        return self.machine._hold(self, holder, "get_page_short" if short else "get_page", duration)

    def free(self) -> None:
        self.machine.engine.free(self.owner_id, self.index)

    def _resident_pfn(self) -> int:
        pfn = self.pfn
        if pfn is None:
            raise MisuseError(f"{self.owner}'s page {self.index} is not resident (reclaimed)")
        return pfn


@dataclass(frozen=True)
class Hold:
    """A reference or pin on a page, released with :meth:`release`."""

    machine: Machine = field(repr=False, compare=False)
    id: int
    pfn: int
    kind: str
    holder: str
    cost_ns: int = 0

    def release(self) -> None:
        """``put_page`` / ``unpin_user_page``."""
        self.machine.engine.release(self.id)


@dataclass(frozen=True)
class Blocker:
    """A page that kept a contiguous range from being freed, and who is responsible."""

    pfn: int
    reason: str
    page_kind: str
    owner: str
    holder: Optional[str]
    hold_kind: Optional[str]
    since_ns: Optional[int]

    def __str__(self) -> str:
        who = f" by {self.holder} ({self.hold_kind})" if self.holder else ""
        return f"pfn {self.pfn:#x}: {self.reason} {self.page_kind} page of {self.owner}{who}"


def summarize_blockers(blockers: list[Blocker]) -> list[tuple[str, str, int]]:
    """(responsible owner, reason, pages) groups, largest first."""
    counts: dict[tuple[str, str], int] = {}
    for b in blockers:
        key = (b.holder or b.owner, b.reason)
        counts[key] = counts.get(key, 0) + 1
    return sorted(((o, r, n) for (o, r), n in counts.items()), key=lambda x: (-x[2], x[0], x[1]))


@dataclass(frozen=True)
class CmaResult:
    """What a finished ``cma_alloc`` did."""

    id: int
    area: str
    count: int
    align: int
    owner: str
    issued_ns: int
    completed_ns: int
    pfn: Optional[int]
    errno: Optional[str]
    busy_retries: int
    passes: int
    pages_migrated: int
    pages_reclaimed: int
    pages_discarded: int
    failed_attempts: int
    lock_wait_ns: int
    cancelled: bool
    blockers: tuple[Blocker, ...]

    @property
    def ok(self) -> bool:
        return self.pfn is not None

    @property
    def latency_ns(self) -> int:
        return self.completed_ns - self.issued_ns

    @property
    def outcome(self) -> str:
        return "OK" if self.ok else "FAILED"

    def __str__(self) -> str:
        text = (
            f"cma_alloc({self.area}, {self.count} pages) by {self.owner}: {self.outcome}"
            f" in {format_duration(self.latency_ns)}, {self.pages_migrated} pages migrated,"
            f" {self.busy_retries} busy retries"
        )
        if self.errno:
            text += f", -{self.errno}"
        groups = summarize_blockers(list(self.blockers))
        if groups:
            text += "; blocked by " + ", ".join(f"{o} ({r}, {n} pages)" for o, r, n in groups)
        return text


class CmaRequest:
    """A ``cma_alloc`` in progress. ``machine.run_until(request)`` runs until it is done."""

    def __init__(self, machine: Machine, job_id: int) -> None:
        self.machine = machine
        self.id = job_id

    @property
    def done(self) -> bool:
        return bool(self.machine.engine.job_done(self.id))

    def result(self) -> CmaResult:
        """The result; the request must be done (run the machine until it is)."""
        if not self.done:
            raise MisuseError(
                f"cma_alloc request #{self.id} is still running: call "
                "machine.run_until(request) first"
            )
        raw = dict(self.machine.engine.job(self.id))
        raw.pop("state")
        raw["blockers"] = tuple(Blocker(**b) for b in raw["blockers"])
        return CmaResult(**raw)

    def release(self) -> None:
        """``cma_release`` the buffer."""
        r = self.result()
        if r.pfn is None:
            raise MisuseError(f"cma_alloc request #{self.id} failed: there is nothing to release")
        self.machine.engine.cma_release(r.area, r.pfn, r.count)

    def _until_done(self) -> Callable[[], bool]:
        return lambda: self.done

    def __repr__(self) -> str:
        return f"<CmaRequest #{self.id} {'done' if self.done else 'running'}>"


class WorkloadHandle:
    """A background workload running inside the engine."""

    def __init__(self, machine: Machine, wid: int, name: str) -> None:
        self.machine = machine
        self.id = wid
        self.name = name

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self.machine.engine.workload_stats(self.id)))

    def stop(self) -> None:
        self.machine.engine.stop_workload(self.id)


class Machine:
    """A board running under a policy, in virtual time.

    >>> m = Machine("tv_1g", policy="balanced", seed=7)
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
    ) -> None:
        self.board = load_board(board)
        self.policy = Policy.coerce(policy)
        self.seed = seed
        config = self.board.to_engine(self.policy, seed=seed, trace_limit=trace_limit)
        self.engine = _core.Engine(json.dumps(config))
        self._callbacks: list[tuple[int, int, Callback]] = []
        self._seq = itertools.count()
        self._owner_ids: dict[str, int] = {}
        self._pages_per_owner: dict[str, int] = {}
        # The attached devices by name (cmadev.device.attached). Kept here rather than in a
        # module-level WeakKeyDictionary, whose values (devices, which refer to their machine)
        # would keep every machine alive for the life of the process.
        self._devices: dict[str, Device] = {}

    # ----- time --------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Virtual time in nanoseconds."""
        return int(self.engine.now_ns)

    @property
    def now_ms(self) -> float:
        return self.now / NS_PER_MS

    def call_at(self, at: TimeLike, callback: Callback) -> None:
        """Run ``callback(machine)`` when the clock reaches ``at``."""
        t = _ns(at)
        if t < self.now:
            raise MisuseError(
                f"call_at({format_duration(t)}) is in the past (now {format_duration(self.now)})"
            )
        heapq.heappush(self._callbacks, (t, next(self._seq), callback))

    def call_after(self, delay: TimeLike, callback: Callback) -> None:
        self.call_at(self.now + _ns(delay), callback)

    def run_for(self, duration: TimeLike) -> None:
        self.run_until(self.now + _ns(duration))

    def run_until(
        self, target: Union[TimeLike, CmaRequest, Any], limit: Optional[TimeLike] = None
    ) -> bool:
        """Run until a time, or until a request (anything with ``_until_done``) completes.

        For a request, ``limit`` (default: 1 hour of virtual time) bounds the run; returns
        whether the request completed.
        """
        if hasattr(target, "_until_done"):
            done = target._until_done()
            end = self.now + _ns(limit if limit is not None else "3600s")
            return self._run(end, done)
        end = _ns(target)
        if end < self.now:
            raise MisuseError(
                f"run_until({format_duration(end)}) is in the past "
                f"(now {format_duration(self.now)})"
            )
        self._run(end, None)
        return True

    def _run(self, end: int, done: Optional[Callable[[], bool]]) -> bool:
        while True:
            if done is not None and done():
                return True
            next_cb = self._callbacks[0][0] if self._callbacks else None
            stop = end if next_cb is None else min(end, next_cb)
            self._engine_run(stop, done)
            if done is not None and done():
                return True
            if next_cb is not None and next_cb <= end and self.now >= next_cb:
                _, _, callback = heapq.heappop(self._callbacks)
                callback(self)
                continue
            if self.now >= end:
                return done() if done is not None else True

    def _engine_run(self, stop: int, done: Optional[Callable[[], bool]]) -> None:
        """Advance the engine to ``stop``, stopping early when ``done`` becomes true.

        Requests are checked in the engine when the condition is a single request; other
        conditions are checked after every engine event horizon."""
        if done is None:
            self.engine.run_until(stop)
            return
        job_ids = getattr(done, "job_ids", None)
        if job_ids is not None:
            for jid in job_ids:
                if not self.engine.run_until_job(jid, stop):
                    return
            return
        # Generic condition: step from event to event.
        while self.now < stop and not done():
            nxt = self.engine.next_event_ns()
            target = stop if nxt is None else min(stop, max(nxt, self.now))
            self.engine.run_until(target)
            if nxt is None or target == stop:
                break

    # ----- owners and pages ----------------------------------------------------------------

    def owner_id(self, name: str) -> int:
        if name not in self._owner_ids:
            self._owner_ids[name] = int(self.engine.owner(name))
        return self._owner_ids[name]

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
        index = int(self.engine.alloc(oid, gfp, order, kind))
        return Page(self, owner, oid, index, order)

    def alloc_many(self, owner: str, count: int, **kwargs: Any) -> list[Page]:
        return [self.alloc(owner, **kwargs) for _ in range(count)]

    def free(self, page: Page) -> None:
        page.free()

    def _hold(
        self, page: Page, holder: Optional[str], kind: str, duration: Optional[TimeLike]
    ) -> Hold:
        holder = holder or page.owner
        hid = self.owner_id(holder)
        dur = None if duration is None else _ns(duration)
        hold_id, pfn, cost = self.engine.hold(page._resident_pfn(), hid, kind, dur)
        return Hold(self, int(hold_id), int(pfn), kind, holder, int(cost))

    def page_info(self, pfn: int) -> dict[str, Any]:
        return dict(self.engine.page_info(_whole("pfn", pfn)))

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
        job = self.engine.cma_alloc(area, count, align, self.owner_id(owner), zero)
        return CmaRequest(self, int(job))

    def alloc_contig_range(
        self, start: int, end: int, migratetype: str = "Movable", owner: str = "alloc_contig"
    ) -> dict[str, Any]:
        """``alloc_contig_range([start, end))`` run to completion (the clock advances)."""
        _whole("start", start)
        _whole("end", end)
        out = dict(self.engine.alloc_contig_range(start, end, migratetype, self.owner_id(owner)))
        out["blockers"] = [Blocker(**b) for b in out["blockers"]]
        return out

    def free_contig_range(self, start: int, count: int) -> None:
        self.engine.free_contig_range(_whole("start", start), _whole("count", count))

    def offline_pages(self, start: int, end: int) -> dict[str, Any]:
        """Memory hot-remove of ``[start, end)`` (4 MiB aligned, one zone), run to completion:
        ``errno`` is None when the range went offline."""
        out = dict(self.engine.offline_pages(_whole("start", start), _whole("end", end)))
        out["blockers"] = [Blocker(**b) for b in out["blockers"]]
        return out

    def online_pages(self, start: int, end: int) -> None:
        self.engine.online_pages(_whole("start", start), _whole("end", end))

    def cma_areas(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "base_pfn": b, "pages": c, "bytes": c * PAGE_SIZE}
            for n, b, c in self.engine.cma_areas()
        ]

    # ----- devices and workloads ---------------------------------------------------------------

    def attach(
        self,
        device: Union[DeviceSpec, str, os.PathLike[str]],
        name: Optional[str] = None,
        heap: Optional[str] = None,
        cls: Optional[type[Device]] = None,
    ) -> Device:
        """Attach a device (a DeviceSpec, a shipped device's name or a file): the class for
        its kind (or ``cls``) bound to this machine. See :func:`cmadev.device.attach`."""
        from cmadev.device import attach  # cmadev.device imports this module

        return attach(self, device, name=name, heap=heap, cls=cls)

    def start(self, workload: WorkloadBase) -> WorkloadHandle:
        """Start a background workload (runs inside the engine)."""
        spec = workload.to_engine()
        if spec.get("start_ns", 0) < self.now:
            spec["start_ns"] = self.now
        wid = int(self.engine.start_workload(json.dumps(spec)))
        return WorkloadHandle(self, wid, str(spec["name"]))

    # ----- views -------------------------------------------------------------------------------

    def meminfo(self) -> dict[str, int]:
        """``/proc/meminfo`` lines, in kB."""
        return dict(self.engine.meminfo())

    def meminfo_text(self) -> str:
        return str(self.engine.meminfo_text())

    def buddyinfo(self) -> str:
        """``/proc/buddyinfo``."""
        return str(self.engine.buddyinfo_text())

    def pagetypeinfo(self) -> str:
        """``/proc/pagetypeinfo``."""
        return str(self.engine.pagetypeinfo_text())

    def vmstat(self) -> dict[str, int]:
        """``/proc/vmstat``."""
        return dict(self.engine.vmstat())

    def cma_sysfs(self, area: str) -> dict[str, int]:
        """``/sys/kernel/mm/cma/<area>/*``."""
        return dict(self.engine.cma_sysfs(area))

    def cma_usage(self, area: str) -> dict[str, int]:
        """Pages of the area by what holds them (free, anon, file, device, cache, other)."""
        return dict(self.engine.cma_usage(area))

    def zones(self) -> list[dict[str, Any]]:
        keys = ("name", "start_pfn", "end_pfn", "managed", "free", "free_cma", "watermarks")
        return [dict(zip(keys, z)) for z in self.engine.zones()]

    def trace(self, since: int = 0) -> list[str]:
        """Trace lines (ftrace format), those emitted after the first ``since``."""
        return list(self.engine.trace(since))

    def trace_lines_emitted(self) -> int:
        return int(self.engine.trace_emitted())

    def dmesg(self) -> list[str]:
        """Kernel log lines: warnings from the pin instrumentation."""
        return list(self.engine.dmesg())

    def check_invariants(self) -> None:
        """Raise :class:`EngineBugError` if any frame is accounted for wrongly."""
        self.engine.check_invariants()
