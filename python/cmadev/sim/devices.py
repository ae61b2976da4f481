"""Devices that need contiguous DMA buffers now and then: camera, video decoder, TV pipeline.

A :class:`Device` is bound to a machine and a :class:`~cmadev.specs.device.DeviceSpec`. It
allocates its buffers the way a driver that uses the CMA dma-heap does
(:class:`~cmadev.sim.dma_heap.DmaHeap`): one ``cma_alloc`` per buffer, one after the other, as
a driver's ``REQBUFS`` loop does. The engine runs the whole loop as one request
(``rust/mm/src/dma_heap.rs``): each ``cma_alloc`` starts when the previous one succeeded; if a
buffer fails, the request fails as a whole and the buffers it did get are released at once (a
camera that cannot get all its frame buffers does not start). Several devices acting at once
have their calls in flight together: they queue for the allocation lock in the engine
(``cma_mutex``), and that wait is part of the action's latency.

An action returns a :class:`DeviceRequest` at once; run the machine until it is done
(``machine.run_until(request)``), then read its figures, or its
:class:`~cmadev.results.DeviceResult` (plain data).

The classes are meant to be subclassed: override :meth:`Device.buffer_sizes` to size buffers
differently, :meth:`Device.deadline_ns` for a deadline per action, or add actions that call
:meth:`Device.allocate` and :meth:`Device.release`.
"""

from __future__ import annotations

import os
from typing import ClassVar, Optional

from cmadev.errors import MisuseError, SpecError
from cmadev.results import Blocker, BlockerGroup, CmaResult, DeviceResult
from cmadev.sim.dma_heap import DmaHeap
from cmadev.sim.mm import CmaRequest, DmaRequestState, Mm
from cmadev.specs.catalog import load_device
from cmadev.specs.device import DeviceSpec
from cmadev.units import format_duration


class RequestDone:
    """``request.done``: true once every buffer's ``cma_alloc`` has finished. Usable as a bool
    (``if request.done:``) and as the target of ``machine.run_until(request.done)``."""

    def __init__(self, request: DeviceRequest) -> None:
        self.request = request

    def __bool__(self) -> bool:
        return self.request.is_done()

    def is_done(self) -> bool:
        """Part of :class:`~cmadev.sim.mm.Condition`."""
        return self.request.is_done()

    def pending_jobs(self) -> list[int]:
        """Part of :class:`~cmadev.sim.mm.Condition`."""
        return self.request.pending_jobs()

    def __repr__(self) -> str:
        return f"<done: {bool(self)}>"


class DeviceRequest:
    """One device action (start or change of resolution): all its buffers, allocated in turn
    by one engine request.

    ``machine.run_until(request)`` runs until every buffer is allocated or the request has
    failed. Figures are available once it is done; reading them earlier raises
    :class:`~cmadev.errors.MisuseError`. It is a :class:`~cmadev.sim.mm.Condition`.
    """

    def __init__(
        self,
        machine: Mm,
        state: DmaRequestState,
        device: str,
        kind: str,
        heap: str,
        action: str,
        mode: str,
        deadline_ns: int,
    ) -> None:
        self.machine = machine
        self.id = state.id
        self.device = device
        """The device's name."""
        self.kind = kind
        self.heap = heap
        self.action = action
        self.mode = mode
        self.issued_ns = machine.now
        self.deadline_ns = deadline_ns
        self.buffers: tuple[CmaRequest, ...] = tuple(
            CmaRequest(machine, j, device) for j in state.jobs
        )
        self._result: Optional[DeviceResult] = None

    # ----- progress ---------------------------------------------------------------------

    def state(self) -> DmaRequestState:
        """The engine's view of the request now."""
        return self.machine.dma_request(self.id)

    @property
    def done(self) -> RequestDone:
        """True once every buffer is allocated or the request has failed; also a condition
        for ``machine.run_until(request.done)``."""
        return RequestDone(self)

    def is_done(self) -> bool:
        """Part of :class:`~cmadev.sim.mm.Condition`."""
        return self._result is not None or self.state().done

    def pending_jobs(self) -> list[int]:
        """Part of :class:`~cmadev.sim.mm.Condition`: the buffers still being allocated."""
        if self._result is not None:
            return []
        return [b.id for b in self.buffers if not b.done]

    def result(self) -> DeviceResult:
        """What the request did, as plain data; it must be done."""
        if self._result is None:
            state = self.state()
            if not state.done:
                raise MisuseError(
                    f"{self.device} {self.action} ({self.mode}) is still running: call "
                    f"machine.run_until(request) first"
                )
            self._result = DeviceResult(
                device=self.device,
                kind=self.kind,
                heap=self.heap,
                action=self.action,
                mode=self.mode,
                issued_ns=self.issued_ns,
                deadline_ns=self.deadline_ns,
                cancelled=state.cancelled,
                buffers=tuple(b.result() for b in self.buffers),
            )
        return self._result

    # ----- figures (see DeviceResult) -------------------------------------------------------

    @property
    def results(self) -> tuple[CmaResult, ...]:
        """Each buffer's ``cma_alloc`` result, in the order they were issued."""
        return self.result().buffers

    @property
    def completed_ns(self) -> int:
        return self.result().completed_ns

    @property
    def latency_ns(self) -> int:
        return self.result().latency_ns

    @property
    def ok(self) -> bool:
        return self.result().ok

    @property
    def outcome(self) -> str:
        """``"met"`` (all buffers within the deadline), ``"late"`` or ``"failed"``."""
        return self.result().outcome

    @property
    def cancelled(self) -> bool:
        """The device let go of the request while it was in flight."""
        return self.state().cancelled

    @property
    def pages(self) -> int:
        return self.result().pages

    @property
    def pages_migrated(self) -> int:
        return self.result().pages_migrated

    @property
    def busy_retries(self) -> int:
        return self.result().busy_retries

    @property
    def lock_wait_ns(self) -> int:
        return self.result().lock_wait_ns

    @property
    def failed_buffers(self) -> list[CmaResult]:
        return self.result().failed_buffers

    @property
    def blockers(self) -> tuple[Blocker, ...]:
        """The pages that caused the request's failures (see :attr:`DeviceResult.blockers`)."""
        return self.result().blockers

    def blocker_groups(self) -> list[BlockerGroup]:
        return self.result().blocker_groups()

    def describe(self) -> str:
        if not self.done:
            return (
                f"{self.device} {self.action} ({self.mode}): still running "
                f"(issued at {format_duration(self.issued_ns)})"
            )
        return self.result().describe()

    def __str__(self) -> str:
        if not self.done:
            return f"{self.device} {self.action} ({self.mode}): running"
        return str(self.result())

    def __repr__(self) -> str:
        state = self.outcome if self.done else "running"
        return f"<DeviceRequest {self.device} {self.action} {self.mode} {state}>"


class Device:
    """A device drawing contiguous buffers from a CMA area, bound to a machine.

    ``start(mode)`` allocates the mode's buffers, ``stop()`` gives them back, and
    ``change_resolution(mode)`` frees them and allocates the new mode's. Actions return a
    :class:`DeviceRequest` at once; run the machine to let it complete.
    """

    kind: ClassVar[Optional[str]] = None
    """The :attr:`DeviceSpec.kind` this class models (None: any)."""

    def __init__(
        self,
        machine: Mm,
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
                f"{spec.kind!r}: use machine.attach(spec), which picks the class by kind"
            )
        self.machine = machine
        self.spec = spec
        self.name = name or spec.name
        self.heap = DmaHeap(machine, spec.heap)
        machine.reserve_device_name(self.name)
        self.requests: list[DeviceRequest] = []
        """Every action that allocated, in order."""
        self.log: list[tuple[int, str, str | None]] = []
        """(time, action, mode) of every action, stops included."""
        self._active: DeviceRequest | None = None
        self._stops: list[int] = []

    # ----- actions ------------------------------------------------------------------------

    def start(self, mode: str | None = None) -> DeviceRequest:
        """Allocate ``mode``'s buffers (default: the spec's default mode)."""
        if self.running:
            raise MisuseError(
                f"{self.name} is already started (mode {self.mode!r}); stop() it first, or "
                f"change_resolution(mode)"
            )
        return self.allocate(mode, "start")

    def stop(self) -> None:
        """Give the buffers back (``cma_release``). A request still in flight is cancelled:
        a buffer being allocated is released when it comes back."""
        self.log.append((self.machine.now, "stop", self.mode))
        self.release()

    def change_resolution(self, mode: str) -> DeviceRequest:
        """Free the current buffers and allocate ``mode``'s: the new allocation has its own
        deadline. On a stopped device this allocates ``mode`` as start would."""
        self.release()
        return self.allocate(mode, "change_resolution")

    @property
    def mode(self) -> str | None:
        """The mode of the buffers the device holds or is allocating; None when stopped (or
        when its last action failed)."""
        return self._active.mode if self.running and self._active is not None else None

    @property
    def running(self) -> bool:
        """Started (or starting) and not stopped, and the last action has not failed."""
        active = self._active
        if active is None:
            return False
        state = active.state()
        return not state.done or state.ok

    @property
    def held_pages(self) -> int:
        """Pages of the buffers the device holds now (allocated ones)."""
        return sum(r.state().held_pages for r in self.requests)

    @property
    def busy(self) -> list[tuple[int, int | None]]:
        """Intervals [from, to) during which the device claimed or held buffers (to is None
        while it still does): a request from its issue to when it held nothing any more
        (released, or failed); a request issued while the previous one still held buffers
        extends its interval."""
        intervals: list[tuple[int, int | None]] = []
        for request in self.requests:
            end = request.state().released_ns
            if intervals and (intervals[-1][1] is None or intervals[-1][1] > request.issued_ns):
                start, last = intervals[-1]
                intervals[-1] = (start, None if last is None or end is None else max(last, end))
            else:
                intervals.append((request.issued_ns, end))
        return intervals

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

    def allocate(self, mode: str | None, action: str) -> DeviceRequest:
        """Ask for ``mode``'s buffers now, as ``action``; the request becomes the active one."""
        mode = self.spec.default_mode if mode is None else mode
        self.spec.buffers(mode)  # SpecError naming the modes if there is no such mode
        state = self.heap.allocate_buffers(
            self.buffer_sizes(mode),
            self.buffer_align(mode),
            owner=self.name,
            zero=self.spec.zero_buffers,
        )
        request = DeviceRequest(
            self.machine,
            state,
            device=self.name,
            kind=self.spec.kind,
            heap=self.heap.path,
            action=action,
            mode=mode,
            deadline_ns=self.deadline_ns(action, mode),
        )
        self.requests.append(request)
        self.log.append((request.issued_ns, action, mode))
        self._active = request
        return request

    def release(self) -> None:
        """Let go of the active request: what it holds is released now; a buffer in flight
        is released when it comes back."""
        active, self._active = self._active, None
        if active is not None and active.state().released_ns is None:
            self.machine.dma_heap_release(active.id)

    def __repr__(self) -> str:
        state = f"running {self.mode}" if self.running else "stopped"
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
"""The class :meth:`Machine.attach <cmadev.sim.machine.Machine.attach>` uses for each
:attr:`DeviceSpec.kind`."""


__all__ = [
    "DEVICE_CLASSES",
    "CameraSensor",
    "Device",
    "DeviceRequest",
    "RequestDone",
    "TvPipeline",
    "VideoDecoder",
]
