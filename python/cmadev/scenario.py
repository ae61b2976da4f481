"""Declarative scenarios: a board, devices, background load and a device timeline, run under a
policy, with every device request, time series and counters as the result.

A :class:`Scenario` is a frozen pydantic model, so a scenario file is checked before anything
runs: an unknown device, a mode the device does not have, a step after the end, or a device
started twice is an error naming the file, the field and the fix.

:meth:`Scenario.run` builds a :class:`~cmadev.machine.Machine`, attaches the devices, starts
the workloads, schedules the timeline with ``machine.call_at`` and runs in virtual time.
:func:`compare` runs one scenario under several policies and seeds and tabulates what the
policies trade: device latency against deadlines, success, CMA use while the devices are idle,
refaults, migration and reclaim scanning.

This module has no ``from __future__ import annotations``, for the same reason as
:mod:`cmadev.models`: pydantic evaluates the annotations at run time, on Python 3.9 too.
"""

import difflib
import gc
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import psutil  # type: ignore[import-untyped]
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from cmadev.catalog import load_board, load_device
from cmadev.device import Device, DeviceRequest, _JobsDone, attach
from cmadev.errors import CmadevError, SpecError
from cmadev.machine import Machine
from cmadev.models import (
    PLACEMENTS,
    Board,
    DeviceSpec,
    Policy,
    _check_name,
    _Spec,
    describe_validation_error,
    read_document,
)
from cmadev.units import NS_PER_S, Duration, format_duration

try:
    from cmadev.workloads import Workload
except ModuleNotFoundError as _err:  # pragma: no cover - written alongside this module
    if _err.name != "cmadev.workloads":
        raise
    Workload = Any  # type: ignore[misc]
    _HAVE_WORKLOADS = False
else:
    _HAVE_WORKLOADS = True

Action = Literal["start", "stop", "change_resolution"]

_SUFFIXES = (".json", ".toml")


def _is_path(ref: str) -> bool:
    return ref.endswith(_SUFFIXES) or "/" in ref or os.sep in ref


def _resolve_path(ref: str, info: ValidationInfo) -> Path:
    """``ref`` relative to the scenario file's folder (when the scenario came from a file)."""
    base = (info.context or {}).get("base_dir")
    path = Path(ref)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


# --------------------------------------------------------------------------------------------
# The model


class ScenarioDevice(_Spec):
    """A device in a scenario: its name in reports, its declaration, and where its buffers
    come from."""

    name: str = Field(description="This device's name in the scenario's timeline and reports.")
    device: Union[str, DeviceSpec] = Field(
        description="A shipped device's name ('camera_sensor'), the path of a device file "
        "(relative to the scenario file), or an inline DeviceSpec."
    )
    heap: Optional[str] = Field(
        None,
        description="Take the buffers from this CMA area instead of the device's own heap "
        "(the board must have it).",
    )

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        return _check_name(value, "device name")

    @field_validator("device")
    @classmethod
    def _device_loads(
        cls, value: Union[str, DeviceSpec], info: ValidationInfo
    ) -> Union[str, DeviceSpec]:
        if isinstance(value, DeviceSpec):
            return value
        try:
            if _is_path(value):
                return load_device(_resolve_path(value, info))
            load_device(value)
        except SpecError as err:
            raise ValueError(str(err)) from None
        return value

    def spec(self) -> DeviceSpec:
        """The device declaration, with the heap override applied."""
        spec = load_device(self.device)
        return spec.with_heap(self.heap) if self.heap and self.heap != spec.heap else spec


class Step(_Spec):
    """One action of the timeline: at ``at``, ``device`` does ``action``."""

    at: Duration = Field(description="When, from the start of the scenario ('12s').")
    device: str = Field(description="The name of one of the scenario's devices.")
    action: Action = Field(
        description="start (allocate the mode's buffers), stop (release them) or "
        "change_resolution (release, then allocate the new mode's buffers)."
    )
    mode: Optional[str] = Field(
        None,
        description="The mode for start (default: the device's default mode) and "
        "change_resolution (required); not allowed for stop.",
    )

    def __str__(self) -> str:
        mode = f" {self.mode}" if self.mode else ""
        return f"at {format_duration(self.at)}: {self.device} {self.action}{mode}"


class Scenario(_Spec):
    """A board, its devices and background load, and a timeline of device actions."""

    name: str = Field(description="Short name of the scenario, used in reports.")
    description: str = Field(
        "", description="What the scenario models and where its figures come from."
    )
    board: Union[str, Board] = Field(
        description="A shipped board's name ('tv_1g'), the path of a board file (relative to "
        "the scenario file), or an inline Board."
    )
    policy: Union[str, Policy] = Field(
        "balanced",
        description="The policy to run under unless run() is given another: a preset name "
        "('legacy', 'mainline-today', ...) or a Policy.",
    )
    duration: Duration = Field(gt=0, description="How long to run, in virtual time ('60s').")
    seed: int = Field(0, ge=0, lt=2**64, description="Seed of the machine's random generator.")
    sample_interval: Duration = Field(
        100_000_000, gt=0, description="Interval of the time series samples ('100ms')."
    )
    devices: tuple[ScenarioDevice, ...] = Field(
        (), description="The devices; each name must be unique."
    )
    workloads: tuple[Workload, ...] = Field(
        (), description="Background workloads, started at the beginning (cmadev.workloads)."
    )
    timeline: tuple[Step, ...] = Field(
        (), description="Device actions, in time order (steps at the same time run in order)."
    )

    @field_validator("board")
    @classmethod
    def _board_loads(cls, value: Union[str, Board], info: ValidationInfo) -> Union[str, Board]:
        if isinstance(value, Board):
            return value
        try:
            if _is_path(value):
                return load_board(_resolve_path(value, info))
            load_board(value)
        except SpecError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("policy")
    @classmethod
    def _policy_exists(cls, value: Union[str, Policy]) -> Union[str, Policy]:
        try:
            Policy.coerce(value)
        except SpecError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("devices")
    @classmethod
    def _devices_fit_board(
        cls, devices: tuple[ScenarioDevice, ...], info: ValidationInfo
    ) -> tuple[ScenarioDevice, ...]:
        seen: set[str] = set()
        for i, entry in enumerate(devices):
            if entry.name in seen:
                raise ValueError(
                    f"[{i}]: two devices are called {entry.name!r}: give each a unique name"
                )
            seen.add(entry.name)
        board = info.data.get("board")
        if board is None:
            return devices  # the board is invalid: that error is reported already
        board = load_board(board)
        areas = [a.name for a in board.cma_areas]
        for i, entry in enumerate(devices):
            spec = entry.spec()
            if spec.heap in areas:
                continue
            where = "heap" if entry.heap else "device"
            fix = (
                f'set "heap" to one of its areas ({", ".join(map(repr, areas))})'
                if areas
                else "give the board a CMA area"
            )
            raise ValueError(
                f"[{i}].{where}: device {entry.name!r} takes its buffers from heap "
                f"{spec.heap!r}, but board {board.name!r} has no CMA area of that name: {fix}"
            )
        return devices

    @field_validator("workloads")
    @classmethod
    def _workloads_available(cls, workloads: tuple[Any, ...], info: ValidationInfo) -> Any:
        if workloads and not _HAVE_WORKLOADS:
            raise ValueError(
                "this cmadev has no workloads module (cmadev.workloads): remove the workloads"
            )
        devices = {d.name for d in info.data.get("devices") or ()}
        seen: set[str] = set()
        for i, w in enumerate(workloads):
            name = getattr(w, "name", None)
            if name in devices or name in seen:
                other = "a device's" if name in devices else "another workload's"
                raise ValueError(
                    f"[{i}].name: {name!r} is also {other} name; reports name what blocked a "
                    f"device by owner, so give each workload and device its own name"
                )
            seen.add(str(name))
        return workloads

    @field_validator("timeline")
    @classmethod
    def _timeline_makes_sense(
        cls, timeline: tuple[Step, ...], info: ValidationInfo
    ) -> tuple[Step, ...]:
        entries = info.data.get("devices")
        duration = info.data.get("duration")
        if entries is None:
            return timeline
        specs = {e.name: e.spec() for e in entries}
        running: dict[str, bool] = dict.fromkeys(specs, False)
        for i, step in sorted(enumerate(timeline), key=lambda x: x[1].at):
            what = f"[{i}] ({step})"
            if step.device not in specs:
                known = ", ".join(map(repr, specs)) or "none declared"
                raise ValueError(
                    f"{what}: no device called {step.device!r} in devices ({known}): "
                    f"use one of them or declare it"
                )
            if duration is not None and step.at > duration:
                raise ValueError(
                    f"{what}: the step comes after the end of the scenario (duration "
                    f"{format_duration(duration)}): make duration longer or move the step"
                )
            spec = specs[step.device]
            if step.action == "stop":
                if step.mode is not None:
                    raise ValueError(f"{what}: stop takes no mode: remove mode")
                if not running[step.device]:
                    raise ValueError(f"{what}: {step.device} is not started: remove this stop")
                running[step.device] = False
                continue
            if step.action == "change_resolution" and step.mode is None:
                raise ValueError(
                    f"{what}: change_resolution needs the new mode: add mode (one of "
                    f"{', '.join(map(repr, spec.modes))})"
                )
            if step.mode is not None and step.mode not in spec.modes:
                raise ValueError(
                    f"{what}: {step.device} ({spec.name}) has no mode {step.mode!r}: use one "
                    f"of {', '.join(map(repr, spec.modes))}"
                )
            if step.action == "start" and running[step.device]:
                raise ValueError(
                    f"{what}: {step.device} is already started: stop it first, or use "
                    f"change_resolution"
                )
            if step.action == "change_resolution" and not running[step.device]:
                raise ValueError(f"{what}: {step.device} is not started: use start with this mode")
            running[step.device] = True
        return timeline

    # ----- resolved parts -----------------------------------------------------------------

    def board_spec(self) -> Board:
        return load_board(self.board)

    def device_specs(self) -> dict[str, DeviceSpec]:
        """Each device's declaration by name, heap overrides applied."""
        return {entry.name: entry.spec() for entry in self.devices}

    def policy_spec(self) -> Policy:
        return Policy.coerce(self.policy)

    def with_changes(self, **changes: Any) -> "Scenario":
        """A copy with some fields changed, validated again (``duration="10s"``, ...)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        return _validate(data, source=f"scenario {self.name!r}")

    # ----- running ------------------------------------------------------------------------

    def run(
        self,
        policy: Union[Policy, str, None] = None,
        seed: Optional[int] = None,
        progress: Optional[Callable[[int, int], None]] = None,
        trace_limit: int = 0,
    ) -> "ScenarioResult":
        """Run the scenario under ``policy`` (default: the scenario's) with ``seed``.

        ``progress(now_ns, duration_ns)`` is called about a hundred times during the run.
        ``trace_limit`` keeps that many trace lines on ``result.machine`` (0: none, fastest).
        Device requests still in flight at ``duration`` are run to completion, so every
        request has an outcome.
        """
        return _Run(self, policy, seed, progress, trace_limit).run()


def _validate(data: Any, source: str = "", base_dir: Optional[Path] = None) -> Scenario:
    context = {"base_dir": base_dir} if base_dir is not None else None
    try:
        return Scenario.model_validate(data, context=context)
    except ValidationError as err:
        raise SpecError(describe_validation_error(Scenario, err, source)) from None


def _shipped() -> dict[str, Any]:
    folder = files("cmadev").joinpath("devices").joinpath("scenarios")
    found: dict[str, Any] = {}
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_file() and entry.name.endswith(_SUFFIXES):
            found.setdefault(entry.name.rsplit(".", 1)[0], entry)
    return found


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios: ``["tv_evening", ...]``."""
    return list(_shipped())


def load_scenario(ref: Union[Scenario, str, "os.PathLike[str]"]) -> Scenario:
    """A :class:`Scenario` from a shipped name ("tv_evening"), a ``.json``/``.toml`` file, or
    a Scenario (returned as is). Any problem is a :class:`SpecError` naming the file, the
    field and the fix; paths inside the file are relative to the file's folder."""
    if isinstance(ref, Scenario):
        return ref
    shipped = _shipped()
    if isinstance(ref, str) and ref in shipped:
        entry = shipped[ref]
        return _validate(read_document(entry), source=str(entry))
    if isinstance(ref, os.PathLike) or (isinstance(ref, str) and _is_path(ref)):
        path = Path(ref)
        return _validate(read_document(path), source=str(path), base_dir=path.parent)
    if not isinstance(ref, str):
        raise SpecError(
            f"a scenario must be a Scenario, a shipped scenario's name or a path; got "
            f"{type(ref).__name__} {ref!r}"
        )
    close = difflib.get_close_matches(ref, list(shipped), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SpecError(
        f"unknown scenario {ref!r}.{hint} The shipped scenarios are: "
        f"{', '.join(shipped) or 'none'}; or give the path of a .json or .toml file."
    )


# --------------------------------------------------------------------------------------------
# Running


class _Run:
    """One run of a scenario: the machine, its devices, and the loop that drives them."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Union[Policy, str, None],
        seed: Optional[int],
        progress: Optional[Callable[[int, int], None]],
        trace_limit: int,
    ) -> None:
        self.scenario = scenario
        self.policy_name = policy if isinstance(policy, str) else None
        self.policy = Policy.coerce(policy if policy is not None else scenario.policy)
        if policy is None and isinstance(scenario.policy, str):
            self.policy_name = scenario.policy
        self.seed = scenario.seed if seed is None else seed
        self.progress = progress
        self.trace_limit = trace_limit
        self.pending: list[DeviceRequest] = []
        self.actions: list[tuple[int, str, str, Optional[str]]] = []

    def run(self) -> "ScenarioResult":
        """Run with the cyclic garbage collector paused (see :func:`_gc_paused`)."""
        with _gc_paused():
            return self._run()

    def _run(self) -> "ScenarioResult":
        sc = self.scenario
        wall0, cpu0 = time.perf_counter(), time.process_time()
        m = Machine(sc.board_spec(), self.policy, seed=self.seed, trace_limit=self.trace_limit)
        m.engine.set_sampling(sc.sample_interval)
        devices = {name: attach(m, spec, name=name) for name, spec in sc.device_specs().items()}
        handles = [m.start(w) for w in sc.workloads]
        for step in sorted(sc.timeline, key=lambda s: s.at):
            m.call_at(step.at, self._action(devices[step.device], step))
        stops = {s.at for s in sc.timeline} | {sc.duration}
        if self.progress is not None:
            tick = max(sc.duration // 100, 1)
            stops |= set(range(tick, sc.duration, tick))
        for stop in sorted(stops):
            self._advance(m, stop)
            if self.progress is not None:
                self.progress(m.now, sc.duration)
        self._finish(m)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        host = {
            "wall_s": wall,
            "cpu_s": cpu,
            "rss_bytes": psutil.Process().memory_info().rss,
            "peak_rss_bytes": _peak_rss(),
            "speedup": (m.now / NS_PER_S) / wall if wall > 0 else math.inf,
        }
        stats = {}
        for h in handles:
            try:
                stats[h.name] = h.stats()
            except CmadevError:  # pragma: no cover - an engine without workload statistics
                stats[h.name] = {}
        return ScenarioResult(
            scenario=sc,
            policy=self.policy,
            policy_name=self.policy_name or self.policy.label,
            seed=self.seed,
            machine=m,
            devices=devices,
            workload_stats=stats,
            host=host,
            actions=self.actions,
        )

    def _action(self, device: Device, step: Step) -> Callable[[Machine], None]:
        def act(machine: Machine) -> None:
            self.actions.append((machine.now, device.name, step.action, step.mode or device.mode))
            if step.action == "stop":
                device.stop()
            elif step.action == "start":
                self.pending.append(device.start(step.mode))
            else:
                assert step.mode is not None
                self.pending.append(device.change_resolution(step.mode))

        return act

    def _settle(self) -> None:
        self.pending = [r for r in self.pending if not r._settle()]

    def _advance(self, m: Machine, stop: int) -> None:
        """Run to ``stop``, stopping as each pending buffer completes so that a request is
        settled (a failed one releases its buffers) at the time it completes.

        Jobs are awaited in the order they were issued, which is about the order in which
        they take the allocation lock; the engine runs without Python in between."""
        self._settle()
        while self.pending and m.now < stop:
            job = min(j for r in self.pending for j in r.job_ids)
            m.run_until(_JobsDone(m, [job]), limit=stop - m.now)
            self._settle()
        if m.now <= stop:
            m.run_until(stop)  # also runs the callbacks due at ``stop`` (timeline steps)

    def _finish(self, m: Machine) -> None:
        """Complete the requests still in flight at the end."""
        self._settle()
        while self.pending:
            job = min(j for r in self.pending for j in r.job_ids)
            if not m.run_until(_JobsDone(m, [job]), limit="3600s"):
                raise CmadevError(  # pragma: no cover - cma_alloc always ends
                    f"a device request did not finish within an hour of virtual time after "
                    f"the end of scenario {self.scenario.name!r}"
                )
            self._settle()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one run, after collecting the young
    generations.

    A machine and its devices refer to each other, so a dropped result's machine (a few MiB
    of engine memory per GiB simulated) waits for the collector. Run after run, the objects
    of a run survive the collections made during it and reach the oldest generation, which
    is collected rarely: dropped machines pile up, and every new machine's memory is fresh
    from the system (a page fault per 4 KiB, about 2 ms a run on a 1 GiB board). With the
    collector paused during the run, the run's objects are still young when the run ends,
    so the collection of the young generations at the start of the next run frees a result
    dropped in between (and the new machine reuses its memory), at the cost of scanning
    those young objects once. The run itself makes no collector passes either. Nothing is
    changed if the collector was disabled by the caller.
    """
    if not gc.isenabled():
        yield
        return
    gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes: getrusage's ru_maxrss (KiB on
    Linux, bytes on macOS); where there is none, the current RSS (psutil)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return int(psutil.Process().memory_info().rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --------------------------------------------------------------------------------------------
# Results


SERIES_FIELDS = (
    "t_ns",
    "mem_free",
    "cma_free",
    "cma_movable",
    "cma_cache",
    "kswapd_busy_ns",
    "refaults",
    "pgscan",
    "nr_dirty",
    "nr_writeback",
)
"""The time-series columns the engine samples (``Engine.series_json``)."""


def _series(raw: str) -> dict[str, list[Any]]:
    """The engine's series as columns, whether it gives columns or a list of samples."""
    data = json.loads(raw) if raw else {}
    if isinstance(data, dict) and isinstance(data.get("samples"), list):
        data = data["samples"]
    if isinstance(data, list):
        columns: dict[str, list[Any]] = {}
        for sample in data:
            for key, value in sample.items():
                columns.setdefault(key, []).append(value)
        return columns
    return {k: list(v) for k, v in data.items() if isinstance(v, list)}


class ScenarioResult:
    """What a scenario run produced: every device request, the time series, the counters,
    the kernel log, and (apart) how long the host took.

    :meth:`to_json` is deterministic: the same scenario, policy and seed give the same bytes.
    The host figures (:attr:`host`: wall and CPU seconds, resident memory, speed-up over real
    time) differ from run to run, so they are left out unless asked for.
    """

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        policy_name: str,
        seed: int,
        machine: Machine,
        devices: dict[str, Device],
        workload_stats: dict[str, Any],
        host: dict[str, float],
        actions: list[tuple[int, str, str, Optional[str]]],
    ) -> None:
        self.scenario = scenario
        self.policy = policy
        self.policy_name = policy_name
        self.seed = seed
        self.machine = machine
        self.devices = devices
        self.host = host
        self.end_ns = machine.now
        self.requests: list[DeviceRequest] = sorted(
            (r for d in devices.values() for r in d.requests),
            key=lambda r: (r.issued_ns, r.device.name),
        )
        self.series = _series(machine.engine.series_json())
        self.counters = machine.vmstat()
        self.cma = {a["name"]: machine.cma_sysfs(a["name"]) for a in machine.cma_areas()}
        self.meminfo = machine.meminfo()
        self.dmesg = machine.dmesg()
        self.workload_stats = workload_stats
        self.actions = actions
        """(time, device, action, mode) of each timeline step, in the order they ran."""

    # ----- questions ----------------------------------------------------------------------

    def requests_of(self, device: str) -> list[DeviceRequest]:
        return [r for r in self.requests if r.device.name == device]

    @property
    def cma_pages(self) -> int:
        return sum(area["total_pages"] for area in self.cma.values())

    def busy_intervals(self) -> list[tuple[int, int]]:
        """[from, to) intervals during which some device claimed or held buffers."""
        return [
            (start, self.end_ns if end is None else end)
            for d in self.devices.values()
            for start, end in d.busy
        ]

    def cma_idle_utilisation(self) -> Optional[float]:
        """Mean share of the CMA areas put to use (movable pages, and gcma's discardable cache
        pages) over the samples taken while no device claimed or held a buffer; None without
        such samples."""
        t = self.series.get("t_ns") or []
        movable = self.series.get("cma_movable") or []
        cache = self.series.get("cma_cache") or [0] * len(movable)
        used = [m + c for m, c in zip(movable, cache)]
        busy = self.busy_intervals()
        idle = [u for ts, u in zip(t, used) if not any(start <= ts < end for start, end in busy)]
        if not idle or not self.cma_pages:
            return None
        return float(sum(idle)) / len(idle) / self.cma_pages

    @property
    def refaults(self) -> int:
        c = self.counters
        return c.get("workingset_refault_file", 0) + c.get("workingset_refault_anon", 0)

    @property
    def pages_migrated(self) -> int:
        return self.counters.get("pgmigrate_success", 0)

    @property
    def pgscan(self) -> int:
        return self.counters.get("pgscan_kswapd", 0) + self.counters.get("pgscan_direct", 0)

    # ----- output -------------------------------------------------------------------------

    def to_dict(self, host: bool = False) -> dict[str, Any]:
        """Everything as plain data; the host figures only with ``host=True``."""
        out: dict[str, Any] = {
            "scenario": self.scenario.name,
            "board": self.machine.board.name,
            "policy": self.policy_name,
            "policy_spec": self.policy.model_dump(mode="json"),
            "seed": self.seed,
            "duration_ns": self.scenario.duration,
            "end_ns": self.end_ns,
            "sample_interval_ns": self.scenario.sample_interval,
            "requests": [r.to_dict() for r in self.requests],
            "actions": [list(a) for a in self.actions],
            "busy": {name: [list(iv) for iv in d.busy] for name, d in self.devices.items()},
            "series": self.series,
            "counters": self.counters,
            "cma": self.cma,
            "meminfo": self.meminfo,
            "dmesg": self.dmesg,
            "workloads": self.workload_stats,
        }
        if host:
            out["host"] = self.host
        return out

    def to_json(self, host: bool = False, indent: Optional[int] = None) -> str:
        """JSON with sorted keys: byte-identical for the same scenario, policy and seed
        (unless ``host=True`` adds the wall-time figures)."""
        return json.dumps(self.to_dict(host=host), sort_keys=True, indent=indent)

    def summary(self) -> str:
        """One line per device request, then the system figures."""
        lines = [
            f"{self.scenario.name} under {self.policy_name} (seed {self.seed}): "
            f"{format_duration(self.end_ns)} simulated"
        ]
        for r in self.requests:
            lines.append(
                f"  {format_duration(r.issued_ns):>8}  {r.device.name:<14} {r.action:<17} "
                f"{r.mode:<6} {r.outcome:<6} {format_duration(r.latency_ns):>9} / "
                f"{format_duration(r.deadline_ns)}  migrated {r.pages_migrated}, "
                f"retries {r.busy_retries}"
            )
        idle = self.cma_idle_utilisation()
        lines.append(
            f"  CMA use while idle {_percent(idle)}, refaults {self.refaults}, "
            f"pages migrated {self.pages_migrated}, pgscan {self.pgscan}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"<ScenarioResult {self.scenario.name} {self.policy_name} seed={self.seed}: "
            f"{len(self.requests)} requests>"
        )


# --------------------------------------------------------------------------------------------
# Comparing policies


def percentile(values: list[int], q: float) -> Optional[int]:
    """The nearest-rank percentile ``q`` (0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class DeviceStats:
    """One device's requests under one policy, over all seeds."""

    device: str
    requests: int
    met: int
    late: int
    failed: int
    deadline_ns: int
    p50_ns: Optional[int]
    p99_ns: Optional[int]
    max_ns: Optional[int]
    """Latency percentiles of the requests that got their buffers (failures are counted
    apart: a failure can be quick)."""

    @property
    def success_rate(self) -> float:
        """Share of requests that got all their buffers (in time or late)."""
        return (self.met + self.late) / self.requests if self.requests else 1.0

    @property
    def deadline_misses(self) -> int:
        """Requests late or failed."""
        return self.late + self.failed

    @classmethod
    def of(cls, device: str, requests: list[DeviceRequest]) -> "DeviceStats":
        outcomes = [r.outcome for r in requests]
        ok = [r.latency_ns for r in requests if r.outcome != "failed"]
        return cls(
            device=device,
            requests=len(requests),
            met=outcomes.count("met"),
            late=outcomes.count("late"),
            failed=outcomes.count("failed"),
            deadline_ns=max((r.deadline_ns for r in requests), default=0),
            p50_ns=percentile(ok, 50),
            p99_ns=percentile(ok, 99),
            max_ns=max(ok, default=None),
        )


@dataclass(frozen=True)
class ComparisonRow:
    """One policy: device figures over all seeds, system figures as means per run."""

    policy: str
    seeds: tuple[int, ...]
    devices: dict[str, DeviceStats]
    cma_idle_utilisation: Optional[float]
    refaults: float
    pages_migrated: float
    pgscan: float
    host: dict[str, float] = field(default_factory=dict, compare=False)
    """Mean wall and CPU seconds per run, and the mean speed-up over real time."""

    @classmethod
    def of(
        cls, policy: str, scenario: "Scenario", results: list["ScenarioResult"]
    ) -> "ComparisonRow":
        """The row of runs made elsewhere: ``python -m cmadev`` runs each with its own
        progress bar and drops each policy's results (and machines) once tabulated."""
        return _row(policy, [r.seed for r in results], scenario, results)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class ComparisonTable:
    """:func:`compare`'s result: a row per policy; ``str(table)`` is a text table."""

    scenario: str
    rows: list[ComparisonRow]

    def row(self, policy: str) -> ComparisonRow:
        for row in self.rows:
            if row.policy == policy:
                return row
        raise KeyError(f"no row for policy {policy!r}; rows: {[r.policy for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "rows": [
                {
                    "policy": r.policy,
                    "seeds": list(r.seeds),
                    "devices": {
                        name: {
                            **vars(s),
                            "success_rate": s.success_rate,
                            "deadline_misses": s.deadline_misses,
                        }
                        for name, s in r.devices.items()
                    },
                    "cma_idle_utilisation": r.cma_idle_utilisation,
                    "refaults": r.refaults,
                    "pages_migrated": r.pages_migrated,
                    "pgscan": r.pgscan,
                }
                for r in self.rows
            ],
        }

    def format(self, host: bool = False) -> str:
        """The table as text; ``host=True`` adds wall time and speed-up per run."""
        dev_head = ("policy", "device", "ok", "met", "p50", "p99", "max", "deadline", "misses")
        dev_rows: list[tuple[str, ...]] = []
        for row in self.rows:
            for i, (name, s) in enumerate(row.devices.items()):
                dev_rows.append(
                    (
                        row.policy if i == 0 else "",
                        name,
                        f"{s.met + s.late}/{s.requests}",
                        f"{s.met}",
                        _ms(s.p50_ns),
                        _ms(s.p99_ns),
                        _ms(s.max_ns),
                        _ms(s.deadline_ns),
                        f"{s.deadline_misses}",
                    )
                )
        sys_head: tuple[str, ...] = ("policy", "CMA use idle", "refaults", "migrated", "pgscan")
        if host:
            sys_head += ("wall/run", "x real time")
        sys_rows: list[tuple[str, ...]] = []
        for row in self.rows:
            cells: tuple[str, ...] = (
                row.policy,
                _percent(row.cma_idle_utilisation),
                f"{row.refaults:,.0f}",
                f"{row.pages_migrated:,.0f}",
                f"{row.pgscan:,.0f}",
            )
            if host:
                cells += (
                    f"{row.host.get('wall_s', 0):.3f} s",
                    f"{row.host.get('speedup', 0):,.0f}",
                )
            sys_rows.append(cells)
        seeds = self.rows[0].seeds if self.rows else ()
        title = f"{self.scenario}: {len(seeds)} seed{'s' if len(seeds) != 1 else ''} per policy"
        return "\n".join([title, "", _table(dev_head, dev_rows), "", _table(sys_head, sys_rows)])

    def __str__(self) -> str:
        return self.format()


def _ms(ns: Optional[int]) -> str:
    return "-" if ns is None else format_duration(ns)


def _percent(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]

    def line(cells: tuple[str, ...]) -> str:
        # The first two columns are names (left-aligned), the rest figures (right-aligned).
        parts = [
            c.ljust(w) if i < 2 and not c[:1].isdigit() else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(head), *(line(r) for r in rows)])


def compare(
    scenario: Union[Scenario, str, "os.PathLike[str]"],
    policies: Optional[list[Union[str, Policy]]] = None,
    seeds: Optional[list[int]] = None,
    progress: Optional[Callable[[str, int, "ScenarioResult"], None]] = None,
) -> ComparisonTable:
    """Run ``scenario`` under each policy (default: the five placements) and each seed
    (default: the scenario's), and tabulate per policy: each device's success, latency
    percentiles against its deadline and misses; the CMA area's use while the devices are
    idle, refaults, pages migrated and pages scanned (means per run).

    ``progress(policy, seed, result)`` is called after each run.
    """
    sc = load_scenario(scenario)
    policy_list: list[Union[str, Policy]] = list(policies) if policies else list(PLACEMENTS)
    seed_list = list(seeds) if seeds else [sc.seed]
    rows = []
    for policy in policy_list:
        label = policy if isinstance(policy, str) else policy.label
        results = []
        for seed in seed_list:
            result = sc.run(policy=policy, seed=seed)
            if progress is not None:
                progress(label, seed, result)
            results.append(result)
        rows.append(_row(label, seed_list, sc, results))
    return ComparisonTable(sc.name, rows)


def _row(
    label: str, seeds: list[int], sc: Scenario, results: list[ScenarioResult]
) -> ComparisonRow:
    devices = {
        entry.name: DeviceStats.of(
            entry.name, [r for res in results for r in res.requests_of(entry.name)]
        )
        for entry in sc.devices
    }
    idle = [u for u in (res.cma_idle_utilisation() for res in results) if u is not None]
    return ComparisonRow(
        policy=label,
        seeds=tuple(seeds),
        devices=devices,
        cma_idle_utilisation=_mean(idle) if idle else None,
        refaults=_mean([res.refaults for res in results]),
        pages_migrated=_mean([res.pages_migrated for res in results]),
        pgscan=_mean([res.pgscan for res in results]),
        host={
            key: _mean([res.host[key] for res in results]) for key in ("wall_s", "cpu_s", "speedup")
        },
    )


__all__ = [
    "SERIES_FIELDS",
    "ComparisonRow",
    "ComparisonTable",
    "DeviceStats",
    "Scenario",
    "ScenarioDevice",
    "ScenarioResult",
    "Step",
    "compare",
    "list_scenarios",
    "load_scenario",
    "percentile",
]
