"""Devices that need contiguous DMA buffers now and then: camera, video decoder, TV pipeline.

A :class:`Device` is bound to a :class:`~cmadev.machine.Machine` and a
:class:`~cmadev.models.DeviceSpec`. It allocates its buffers the way a driver that uses the
CMA dma-heap does (``/dev/dma_heap/<area>``, ``drivers/dma-buf/heaps/cma_heap.c`` in Linux
5.6 and later): one ``cma_alloc`` per buffer, aligned to ``get_order(size)`` capped at
``CONFIG_CMA_ALIGNMENT``, each buffer cleared before it is handed out. The engine charges the
clearing after the allocation lock is released, as ``cma_heap_allocate`` clears after
``cma_alloc`` returns.

A device action (start, change of resolution) allocates its buffers one after the other, as a
driver's ``REQBUFS`` loop does (the engine chains the ``cma_alloc`` calls: each starts when the
previous one is done, and a failure cancels the rest). Several devices acting at once have
their calls in flight together: they queue for the allocation lock in the engine
(``cma_mutex``), and that wait is part of the action's latency. The action's result is a
:class:`DeviceRequest`: issued and completed times, latency against the device's deadline, an
outcome (``"met"``, ``"late"``, ``"failed"``), each buffer's
:class:`~cmadev.machine.CmaResult` and the pages that blocked it. If any buffer fails, the
action fails as a whole and the buffers it did get are released at once: a camera that cannot
get all its frame buffers does not start.

The classes are meant to be subclassed: override :meth:`Device.buffer_sizes` to size buffers
differently, or add actions that call :meth:`Device._allocate` and :meth:`Device._release`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from cmadev.catalog import load_device
from cmadev.errors import MisuseError, SpecError
from cmadev.machine import Blocker, CmaRequest, CmaResult, Machine
from cmadev.models import DeviceSpec
from cmadev.units import PAGE_SIZE, format_duration, format_size, parse_size

CONFIG_CMA_ALIGNMENT = 8
"""The largest alignment order the CMA dma-heap asks for (Kconfig default 8: 1 MiB)."""

OUTCOMES = ("met", "late", "failed")


def get_order(size: int) -> int:
    """The kernel's ``get_order()``: the smallest order with ``PAGE_SIZE << order >= size``."""
    pages = -(-size // PAGE_SIZE)
    return max(0, (pages - 1).bit_length())


# --------------------------------------------------------------------------------------------
# The dma-heap


class DmaHeap:
    """``/dev/dma_heap/<name>``: the CMA dma-heap of the area called ``name``.

    >>> heap = DmaHeap(machine, "tv")
    >>> request = heap.allocate("12MiB", owner="decoder")   # a CmaRequest
    """

    def __init__(self, machine: Machine, name: str) -> None:
        areas = {area["name"]: area for area in machine.cma_areas()}
        if name not in areas:
            known = ", ".join(repr(a) for a in areas) or "none"
            raise SpecError(
                f"there is no dma-heap /dev/dma_heap/{name}: board {machine.board.name!r} has no "
                f"CMA area {name!r} (its areas: {known}); use one of those, e.g. with "
                f"spec.with_heap(...) or a scenario's heap override"
            )
        self.machine = machine
        self.name = name
        self.pages: int = int(areas[name]["pages"])

    @property
    def path(self) -> str:
        return f"/dev/dma_heap/{self.name}"

    @staticmethod
    def align_order(size: int) -> int:
        """The alignment ``cma_heap_allocate`` asks for: ``min(get_order(size), 8)``."""
        return min(get_order(size), CONFIG_CMA_ALIGNMENT)

    def allocate(
        self,
        size: int | str,
        owner: str = "dma_heap",
        zero: bool = True,
        align: int | str | None = None,
    ) -> CmaRequest:
        """Start ``cma_alloc(area, PAGE_ALIGN(size) / PAGE_SIZE, align)`` for ``owner`` now.

        ``zero`` charges the clearing of every page after the allocation, as the heap does.
        ``align`` (bytes) asks for a stricter alignment than the heap's own, as a driver
        calling ``cma_alloc`` directly may.
        """
        nbytes = parse_size(size)
        if nbytes <= 0:
            raise MisuseError(f"{self.path}: cannot allocate {nbytes} bytes; ask for 4 KiB or more")
        pages = -(-nbytes // PAGE_SIZE)
        order = self.align_order(nbytes)
        if align is not None:
            order = max(order, get_order(parse_size(align)))
        return self.machine.cma_alloc(self.name, pages, align=order, owner=owner, zero=zero)

    def allocate_chain(
        self,
        sizes: list[int],
        aligns: list[int],
        owner: str = "dma_heap",
        zero: bool = True,
    ) -> list[CmaRequest]:
        """Allocate buffers one after the other (a driver's allocation loop): each
        ``cma_alloc`` starts when the previous one succeeded; a failure cancels the rest."""
        if not sizes or any(n <= 0 for n in sizes):
            raise MisuseError(f"{self.path}: buffer sizes must be positive, got {sizes}")
        chain = []
        for nbytes, align in zip(sizes, aligns):
            order = max(self.align_order(nbytes), get_order(align))
            chain.append((-(-nbytes // PAGE_SIZE), order))
        owner_id = self.machine.owner_id(owner)
        ids = self.machine.engine.cma_alloc_chain(self.name, chain, owner_id, zero)
        return [CmaRequest(self.machine, int(i)) for i in ids]

    def __repr__(self) -> str:
        return f"<DmaHeap {self.path} ({format_size(self.pages * PAGE_SIZE)})>"


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class BlockerGroup:
    """Pages that blocked a request for the same reason, under the same responsible owner."""

    owner: str
    """Who is responsible: the holder of the pin or reference, else the page's owner."""
    reason: str
    """Why the page could not be freed: pinned, longterm_pinned, referenced, writeback, ..."""
    hold_kind: str | None
    """FOLL_PIN, FOLL_LONGTERM, get_page, ...; None when no hold was taken."""
    page_kind: str
    """anon, file, kernel, ..."""
    page_owner: str
    """Who the pages belong to (the workload that allocated them)."""
    pages: int
    """Distinct pages."""
    first_pfn: int
    oldest_since_ns: int | None

    def __str__(self) -> str:
        hold = f" ({self.hold_kind})" if self.hold_kind else ""
        page_of = f"{self.page_kind} pages of {self.page_owner}"
        since = (
            f", held since {format_duration(self.oldest_since_ns)}"
            if self.oldest_since_ns is not None
            else ""
        )
        return (
            f"{self.owner}{hold}: {self.pages} {self.reason} page{'s' if self.pages != 1 else ''}"
            f" ({page_of}, first pfn {self.first_pfn:#x}{since})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "reason": self.reason,
            "hold_kind": self.hold_kind,
            "page_kind": self.page_kind,
            "page_owner": self.page_owner,
            "pages": self.pages,
            "first_pfn": self.first_pfn,
            "oldest_since_ns": self.oldest_since_ns,
        }


def cause_blockers(blockers: tuple[Blocker, ...]) -> tuple[Blocker, ...]:
    """The blockers of one ``cma_alloc`` that caused its failures: all of them, except the
    plain ``"busy"`` movable pages when there are pages with a stronger reason (pinned,
    referenced, unmovable, writeback), which is what ended the attempt."""
    causes = tuple(b for b in blockers if b.reason != "busy")
    return causes if causes else blockers


def group_blockers(blockers: tuple[Blocker, ...]) -> list[BlockerGroup]:
    """Blockers grouped by responsible owner, reason and hold kind, largest group first.

    A page that blocked several attempts (or several buffers) counts once."""
    groups: dict[tuple[str, str, str | None, str, str], dict[int, Blocker]] = {}
    for b in blockers:
        key = (b.holder or b.owner, b.reason, b.hold_kind, b.page_kind, b.owner)
        groups.setdefault(key, {}).setdefault(b.pfn, b)
    out = []
    for (owner, reason, hold_kind, page_kind, page_owner), pages in groups.items():
        since = [b.since_ns for b in pages.values() if b.since_ns is not None]
        out.append(
            BlockerGroup(
                owner=owner,
                reason=reason,
                hold_kind=hold_kind,
                page_kind=page_kind,
                page_owner=page_owner,
                pages=len(pages),
                first_pfn=min(pages),
                oldest_since_ns=min(since) if since else None,
            )
        )
    return sorted(out, key=lambda g: (-g.pages, g.owner, g.reason, g.page_owner))


class _JobsDone:
    """A condition for :meth:`Machine.run_until`: true when all of ``job_ids`` are done.

    ``job_ids`` lets the machine run the engine until each job finishes (no Python call per
    event); ``on_done`` runs once, when the condition is first seen true."""

    def __init__(
        self, machine: Machine, job_ids: list[int], on_done: Callable[[], object] | None = None
    ) -> None:
        self.machine = machine
        self._job_ids = job_ids
        self._on_done = on_done

    @property
    def job_ids(self) -> list[int]:
        return [j for j in self._job_ids if not self.machine.engine.job_done(j)]

    def _until_done(self) -> _JobsDone:
        return self

    def __call__(self) -> bool:
        if self.job_ids:
            return False
        if self._on_done is not None:
            self._on_done()
        return True


class RequestDone:
    """``request.done``: true once every buffer's ``cma_alloc`` has finished.

    Usable as a bool (``if request.done:``) and as the target of
    ``machine.run_until(request.done)``."""

    def __init__(self, request: DeviceRequest) -> None:
        self.request = request

    def __bool__(self) -> bool:
        return self.request._settle()

    def _until_done(self) -> Callable[[], bool]:
        return self.request._until_done()

    def __repr__(self) -> str:
        return f"<done: {bool(self)}>"


class DeviceRequest:
    """One device action (start or change of resolution): all its buffers, allocated in turn.

    Figures are available once the request is done (``machine.run_until(request)``); reading
    them earlier raises :class:`~cmadev.errors.MisuseError`.
    """

    def __init__(
        self,
        device: Device,
        action: str,
        mode: str,
        issued_ns: int,
        deadline_ns: int,
        buffers: list[CmaRequest],
    ) -> None:
        self.device = device
        self.action = action
        self.mode = mode
        self.issued_ns = issued_ns
        self.deadline_ns = deadline_ns
        self.buffers: tuple[CmaRequest, ...] = tuple(buffers)
        self.cancelled = False
        """The device was stopped while the request was in flight: its buffers go back."""
        self._results: tuple[CmaResult, ...] | None = None

    # ----- progress ---------------------------------------------------------------------

    @property
    def done(self) -> RequestDone:
        """True once every buffer is allocated or has failed; ``run_until(request.done)``."""
        return RequestDone(self)

    @property
    def job_ids(self) -> list[int]:
        """The ``cma_alloc`` jobs of this request that are still running."""
        engine = self.device.machine.engine
        return [b.id for b in self.buffers if not engine.job_done(b.id)]

    def _until_done(self) -> Callable[[], bool]:
        return _JobsDone(self.device.machine, [b.id for b in self.buffers], self._settle)

    def _settle(self) -> bool:
        """If every job is done, collect the results once and let the device act on them
        (release the buffers of a failed or cancelled request). Returns whether done."""
        if self._results is not None:
            return True
        if self.job_ids:
            return False
        self._results = tuple(self.device._result(b) for b in self.buffers)
        self.device._settled(self)
        return True

    def _need(self) -> tuple[CmaResult, ...]:
        if not self._settle():
            raise MisuseError(
                f"{self.device.name} {self.action} ({self.mode}) is still running: call "
                f"machine.run_until(request) first"
            )
        assert self._results is not None
        return self._results

    # ----- figures ------------------------------------------------------------------------

    @property
    def results(self) -> tuple[CmaResult, ...]:
        """Each buffer's ``cma_alloc`` result, in the order they were issued."""
        return self._need()

    @property
    def completed_ns(self) -> int:
        """When the last buffer was ready (allocated and cleared) or failed."""
        return max(r.completed_ns for r in self._need())

    @property
    def latency_ns(self) -> int:
        return self.completed_ns - self.issued_ns

    @property
    def ok(self) -> bool:
        """Every buffer was allocated."""
        return all(r.ok for r in self._need())

    @property
    def outcome(self) -> str:
        """``"met"`` (all buffers within the deadline), ``"late"`` or ``"failed"``."""
        if not self.ok:
            return "failed"
        return "met" if self.latency_ns <= self.deadline_ns else "late"

    @property
    def pages(self) -> int:
        """Pages asked for, over all buffers."""
        return sum(b.count for b in self.results)

    @property
    def pages_migrated(self) -> int:
        return sum(r.pages_migrated for r in self._need())

    @property
    def busy_retries(self) -> int:
        return sum(r.busy_retries for r in self._need())

    @property
    def lock_wait_ns(self) -> int:
        """Time the buffers spent queued for the allocation lock, summed over buffers (a
        device's own buffers queue behind each other too)."""
        return sum(r.lock_wait_ns for r in self._need())

    @property
    def failed_buffers(self) -> list[CmaResult]:
        return [r for r in self._need() if not r.ok]

    @property
    def blockers(self) -> tuple[Blocker, ...]:
        """The pages that kept a range from being freed, over all buffers and attempts.

        When an attempt fails on a pinned, referenced, unmovable or writeback page, the engine
        also lists the movable pages it had not migrated yet (reason ``"busy"``): they did not
        cause the failure, so they are left out here (see :func:`cause_blockers`)."""
        return tuple(b for r in self._need() for b in cause_blockers(r.blockers))

    def blocker_groups(self) -> list[BlockerGroup]:
        """The blockers grouped by who is responsible and why (largest group first)."""
        return group_blockers(self.blockers)

    # ----- reports ------------------------------------------------------------------------

    def describe(self) -> str:
        """Several lines saying what happened: latency against the deadline, the work done,
        the failed buffers and what blocked the request."""
        if not self.done:
            return (
                f"{self.device.name} {self.action} ({self.mode}): still running "
                f"(issued at {format_duration(self.issued_ns)})"
            )
        lines = [str(self)]
        sizes = ", ".join(
            f"{n} x {format_size(s)}" for s, n in _count_sizes([r.count for r in self.results])
        )
        lines.append(
            f"  buffers: {sizes} from {self.device.heap.path}; {self.pages_migrated} pages "
            f"migrated, {self.busy_retries} busy retries, "
            f"{format_duration(self.lock_wait_ns)} waiting for the allocation lock (summed "
            f"over buffers)"
        )
        results = self.results
        for i, r in enumerate(results):
            if not r.ok:
                lines.append(
                    f"  buffer {i + 1} of {len(results)} ({format_size(r.count * PAGE_SIZE)}, "
                    f"cma_alloc #{r.id}) failed: -{r.errno} after "
                    f"{format_duration(r.latency_ns)}, {r.busy_retries} busy retries"
                )
        groups = self.blocker_groups()
        if groups:
            lines.append("  blocked by:")
            lines.extend(f"    {g}" for g in groups)
        else:
            lines.append("  nothing blocked it")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The request as plain data (deterministic: no host figures)."""
        results = self.results
        return {
            "device": self.device.name,
            "kind": self.device.spec.kind,
            "action": self.action,
            "mode": self.mode,
            "issued_ns": self.issued_ns,
            "completed_ns": self.completed_ns,
            "latency_ns": self.latency_ns,
            "deadline_ns": self.deadline_ns,
            "outcome": self.outcome,
            "cancelled": self.cancelled,
            "pages": self.pages,
            "pages_migrated": self.pages_migrated,
            "busy_retries": self.busy_retries,
            "lock_wait_ns": self.lock_wait_ns,
            "buffers": [
                {
                    "pages": r.count,
                    "align": r.align,
                    "pfn": r.pfn,
                    "errno": r.errno,
                    "issued_ns": r.issued_ns,
                    "completed_ns": r.completed_ns,
                    "lock_wait_ns": r.lock_wait_ns,
                    "pages_migrated": r.pages_migrated,
                    "busy_retries": r.busy_retries,
                    "passes": r.passes,
                }
                for r in results
            ],
            "blockers": [g.to_dict() for g in self.blocker_groups()],
        }

    def __str__(self) -> str:
        head = f"{self.device.name} {self.action} ({self.mode})"
        if not self.done:
            return f"{head}: running"
        verdict = {"met": "met its deadline", "late": "missed its deadline", "failed": "FAILED"}
        return (
            f"{head}: {verdict[self.outcome]}, {format_duration(self.latency_ns)} against "
            f"{format_duration(self.deadline_ns)}"
        )

    def __repr__(self) -> str:
        state = self.outcome if self.done else "running"
        return f"<DeviceRequest {self.device.name} {self.action} {self.mode} {state}>"


def _count_sizes(counts: list[int]) -> list[tuple[int, int]]:
    """(bytes, how many) for a list of buffer sizes in pages, in first-seen order."""
    seen: dict[int, int] = {}
    for c in counts:
        seen[c * PAGE_SIZE] = seen.get(c * PAGE_SIZE, 0) + 1
    return list(seen.items())


# --------------------------------------------------------------------------------------------
# Devices


class Device:
    """A device drawing contiguous buffers from a CMA area, bound to a machine.

    ``start(mode)`` allocates the mode's buffers, ``stop()`` gives them back, and
    ``change_resolution(mode)`` frees them and allocates the new mode's. Actions return a
    :class:`DeviceRequest` at once; run the machine to let it complete.
    """

    kind: ClassVar[str | None] = None
    """The :attr:`DeviceSpec.kind` this class models (None: any)."""

    def __init__(
        self,
        machine: Machine,
        spec: DeviceSpec | str | os.PathLike[str],
        name: str | None = None,
        heap: str | None = None,
    ) -> None:
        spec = load_device(spec)
        if heap is not None and heap != spec.heap:
            spec = spec.with_heap(heap)
        if self.kind is not None and spec.kind != self.kind:
            raise SpecError(
                f"{type(self).__name__} models {self.kind!r} devices, but {spec.name!r} is a "
                f"{spec.kind!r}: use attach(machine, spec), which picks the class by kind"
            )
        self.machine = machine
        self.spec = spec
        self.name = name or spec.name
        # A machine's device names are its owner names in reports, so they must be unique.
        attached = machine._devices
        if self.name in attached:
            raise MisuseError(
                f"a device called {self.name!r} is already attached to this machine; give the "
                f"second one another name (attach(machine, spec, name=...))"
            )
        self.heap = DmaHeap(machine, spec.heap)
        self.mode: str | None = None
        """The mode of the buffers the device holds or is allocating; None when stopped."""
        self.requests: list[DeviceRequest] = []
        """Every action that allocated, in order."""
        self.log: list[tuple[int, str, str | None]] = []
        """(time, action, mode) of every action, stops included."""
        self.busy: list[tuple[int, int | None]] = []
        """Intervals [from, to) during which the device claimed or held buffers (to is None
        while it still does)."""
        self._active: DeviceRequest | None = None
        self._held: list[CmaRequest] = []
        self._unsettled: list[DeviceRequest] = []
        self._results: dict[int, CmaResult] = {}
        attached[self.name] = self

    # ----- actions ------------------------------------------------------------------------

    def start(self, mode: str | None = None) -> DeviceRequest:
        """Allocate ``mode``'s buffers (default: the spec's default mode)."""
        if self._active is not None:
            raise MisuseError(
                f"{self.name} is already started (mode {self.mode!r}); stop() it first, or "
                f"change_resolution(mode)"
            )
        return self._allocate(mode, "start")

    def stop(self) -> None:
        """Give the buffers back (``cma_release``). A request still in flight is cancelled:
        its buffers are released as soon as it completes."""
        self.log.append((self.machine.now, "stop", self.mode))
        self._release()

    def change_resolution(self, mode: str) -> DeviceRequest:
        """Free the current buffers and allocate ``mode``'s: the new allocation has its own
        deadline. On a stopped device this allocates ``mode`` as start would."""
        self._release()
        return self._allocate(mode, "change_resolution")

    @property
    def running(self) -> bool:
        """Started (or starting) and not stopped, and the last action has not failed."""
        self.settle()
        return self._active is not None

    @property
    def held_pages(self) -> int:
        """Pages of the buffers the device holds now (allocated ones)."""
        self.settle()
        return sum(r.count for r in (self._result(b) for b in self._held if b.done) if r.ok)

    def settle(self) -> None:
        """Act on every request that has completed since the last look: release the buffers
        of failed and cancelled ones. (Done for you by ``machine.run_until(request)``.)"""
        for request in list(self._unsettled):
            request._settle()

    # ----- what subclasses may override ---------------------------------------------------

    def buffer_sizes(self, mode: str) -> list[int]:
        """The size in bytes of every buffer ``mode`` needs, in allocation order."""
        return [b.size for b in self.spec.buffers(mode) for _ in range(b.count)]

    def buffer_align(self, mode: str) -> list[int]:
        """The alignment in bytes each buffer asks for, besides the heap's own."""
        return [b.align for b in self.spec.buffers(mode) for _ in range(b.count)]

    def deadline_ns(self, action: str, mode: str) -> int:
        """The deadline of an action: the spec's, whatever the action."""
        return self.spec.deadline

    # ----- mechanics ----------------------------------------------------------------------

    def _allocate(self, mode: str | None, action: str) -> DeviceRequest:
        self.settle()
        mode = self.spec.default_mode if mode is None else mode
        self.spec.buffers(mode)  # SpecError naming the modes if there is no such mode
        now = self.machine.now
        buffers = self.heap.allocate_chain(
            self.buffer_sizes(mode),
            self.buffer_align(mode),
            owner=self.name,
            zero=self.spec.zero_buffers,
        )
        request = DeviceRequest(self, action, mode, now, self.deadline_ns(action, mode), buffers)
        self.requests.append(request)
        self._unsettled.append(request)
        self.log.append((now, action, mode))
        self._active = request
        self.mode = mode
        self._held.extend(buffers)
        if not self.busy or self.busy[-1][1] is not None:
            self.busy.append((now, None))
        return request

    def _release(self) -> None:
        """Release every buffer held; cancel the request in flight, if any."""
        self.settle()
        active = self._active
        if active is not None and not active.done:
            active.cancelled = True
        for buf in list(self._held):
            if buf.done:
                self._free(buf)
        self._active = None
        self.mode = None
        self._close_busy()

    def _result(self, buf: CmaRequest) -> CmaResult:
        """``buf.result()``, converted once: a result carries its blockers, which can be many."""
        result = self._results.get(buf.id)
        if result is None:
            result = self._results[buf.id] = buf.result()
        return result

    def _free(self, buf: CmaRequest) -> None:
        """``cma_release`` a finished buffer (nothing to do for a failed one)."""
        self._held.remove(buf)
        r = self._result(buf)
        if r.pfn is not None:
            self.machine.engine.cma_release(r.area, r.pfn, r.count)

    def _close_busy(self) -> None:
        if not self._held and self.busy and self.busy[-1][1] is None:
            self.busy[-1] = (self.busy[-1][0], self.machine.now)

    def _settled(self, request: DeviceRequest) -> None:
        """Called once when all of ``request``'s buffers are done: a failed or cancelled
        request gives back what it got, and a failed one leaves the device stopped."""
        self._unsettled.remove(request)
        if request.cancelled or not request.ok:
            for buf in request.buffers:
                if buf in self._held:
                    self._free(buf)
            if self._active is request:
                self._active = None
                self.mode = None
            self._close_busy()

    def __repr__(self) -> str:
        state = f"running {self.mode}" if self._active is not None else "stopped"
        return f"<{type(self).__name__} {self.name} on {self.heap.path}: {state}>"


class CameraSensor(Device):
    """A camera sensor: its frame buffers are allocated at start, within the start-up
    deadline, and freed at stop. A camera that cannot get every buffer does not start."""

    kind = "camera_sensor"


class VideoDecoder(Device):
    """A video decoder: a decoded-picture pool sized by the stream's resolution.

    On a resolution change (V4L2's ``V4L2_EVENT_SOURCE_CHANGE``: streamoff, ``REQBUFS(0)``,
    ``REQBUFS(n)``) the pool is freed and the new one allocated, with a deadline per
    (re)allocation."""

    kind = "video_decoder"


class TvPipeline(Device):
    """A TV's 3D / high-resolution display pipeline: a large share of the area claimed when a
    3D or 4K stream starts, within the channel-switch deadline, given back when it stops."""

    kind = "tv_pipeline"


DEVICE_CLASSES: dict[str, type[Device]] = {
    "camera_sensor": CameraSensor,
    "video_decoder": VideoDecoder,
    "tv_pipeline": TvPipeline,
}
"""The class :func:`attach` uses for each :attr:`DeviceSpec.kind`."""


def attach(
    machine: Machine,
    spec: DeviceSpec | str | os.PathLike[str],
    name: str | None = None,
    heap: str | None = None,
    cls: type[Device] | None = None,
) -> Device:
    """Attach a device to ``machine``: the class for its kind (or ``cls``), bound to it.

    ``spec`` is a :class:`DeviceSpec`, a shipped device's name or a file; ``name`` names this
    instance in reports (default: the spec's name); ``heap`` draws the buffers from another
    CMA area.
    """
    spec = load_device(spec)
    device_cls = cls if cls is not None else DEVICE_CLASSES.get(spec.kind, Device)
    return device_cls(machine, spec, name=name, heap=heap)


def attached(machine: Machine) -> dict[str, Device]:
    """The devices attached to ``machine``, by name."""
    return dict(machine._devices)


__all__ = [
    "CONFIG_CMA_ALIGNMENT",
    "DEVICE_CLASSES",
    "OUTCOMES",
    "BlockerGroup",
    "CameraSensor",
    "Device",
    "DeviceRequest",
    "DmaHeap",
    "RequestDone",
    "TvPipeline",
    "VideoDecoder",
    "attach",
    "attached",
    "cause_blockers",
    "get_order",
    "group_blockers",
]
