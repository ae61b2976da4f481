"""Declarative scenarios: a board, devices, background load and a device timeline.

A :class:`Scenario` is a frozen pydantic model, so a scenario file is checked before anything
runs: an unknown device, a mode the device does not have, a step after the end, or a device
started twice is an error naming the file, the field and the fix.

:meth:`Scenario.run` hands the scenario to the simulation floor
(:func:`cmadev.sim.runner.run_scenario`), which builds a machine, attaches the devices, starts
the workloads and plays the timeline in virtual time.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Optional, Protocol, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from cmadev.errors import SpecError
from cmadev.results import ScenarioResult
from cmadev.specs.base import Name, Spec, is_path, read_document, validate_model
from cmadev.specs.board import DEFAULT_MAX_EVENTS, Board
from cmadev.specs.catalog import find, load_board, load_device
from cmadev.specs.device import DeviceSpec
from cmadev.specs.policy import Policy, PolicyChoice, parse_policy
from cmadev.specs.workloads import Workload
from cmadev.units import Duration, format_duration, format_size, parse_duration

Action = Literal["start", "stop", "change_resolution"]

DEFAULT_MAX_SAMPLES = 1_000_000
"""A run's time series may hold this many samples unless the scenario raises
``max_samples``: about 100 MB, and a few seconds to sample."""


class Backend(Protocol):
    """What runs a scenario: the Rust model (``"model"``, :mod:`cmadev.sim.runner`) or a real
    kernel under QEMU (``"kernel"``, :mod:`cmadev.kernel`). Each registers itself with
    :func:`register_backend`; both return results in one schema."""

    def __call__(
        self,
        scenario: "Scenario",
        policy: Union["Policy", str, None],
        *,
        seed: Optional[int],
        progress: Optional[Callable[[int, int], None]],
        trace_limit: int,
        **options: Any,
    ) -> ScenarioResult: ...


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, run: Backend) -> None:
    """Make ``run`` the backend called ``name`` for :meth:`Scenario.run`. The floors that
    run scenarios register themselves, so that this one never imports them."""
    _BACKENDS[name] = run


def backends() -> list[str]:
    """The names :meth:`Scenario.run` accepts as ``backend``."""
    return list(_BACKENDS)


def _resolve_path(ref: str, info: ValidationInfo) -> Path:
    """``ref`` relative to the scenario file's folder (when the scenario came from a file)."""
    base = (info.context or {}).get("base_dir")
    path = Path(ref)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


# --------------------------------------------------------------------------------------------
# The model


class ScenarioDevice(Spec):
    """A device in a scenario: its name in reports, its declaration, and where its buffers
    come from."""

    name: Name = Field(description="This device's name in the scenario's timeline and reports.")
    device: Union[str, DeviceSpec] = Field(
        description="A shipped device's name ('camera_sensor'), the path of a device file "
        "(relative to the scenario file), or an inline DeviceSpec."
    )
    heap: Optional[Name] = Field(
        None,
        description="Take the buffers from this CMA area instead of the device's own heap "
        "(the board must have it).",
    )

    @field_validator("device")
    @classmethod
    def _device_loads(
        cls, value: Union[str, DeviceSpec], info: ValidationInfo
    ) -> Union[str, DeviceSpec]:
        if isinstance(value, DeviceSpec):
            return value
        try:
            if is_path(value):
                return load_device(_resolve_path(value, info))
            load_device(value)
        except SpecError as err:
            raise ValueError(str(err)) from None
        return value

    def spec(self) -> DeviceSpec:
        """The device declaration, with the heap override applied."""
        spec = load_device(self.device)
        return spec.with_heap(self.heap) if self.heap and self.heap != spec.heap else spec


class Step(Spec):
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


class Scenario(Spec):
    """A board, its devices and background load, and a timeline of device actions."""

    name: Name = Field(description="Short name of the scenario, used in reports.")
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
    max_events: int = Field(
        DEFAULT_MAX_EVENTS,
        ge=1,
        le=2**63 - 1,
        description="The most events a run may simulate: a run that would pass it stops with "
        "EventBudgetError instead of running for hours (the default, a billion, is a few "
        "minutes of host time).",
    )
    max_samples: int = Field(
        DEFAULT_MAX_SAMPLES,
        ge=1,
        le=10**9,
        description="The most samples the time series may take (duration / sample_interval): "
        "each costs about 100 bytes; raise it to sample a long run finely.",
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
            if is_path(value):
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
        for i, entry in enumerate(devices):
            _check_modes_fit(i, entry.spec(), board)
        return devices

    @field_validator("workloads")
    @classmethod
    def _workloads_available(cls, workloads: tuple[Any, ...], info: ValidationInfo) -> Any:
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
        board = info.data.get("board")
        if board is not None:
            board = load_board(board)
            problems = [
                f"[{i}].{field}: {why}"
                for i, w in enumerate(workloads)
                for field, why in w.problems_on(board)
            ]
            if problems:
                raise ValueError("; ".join(problems))
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

    @model_validator(mode="after")
    def _series_fits_its_budget(self) -> "Scenario":
        samples = self.duration // self.sample_interval + 1
        if samples > self.max_samples:
            finest = -(-self.duration // (self.max_samples - 1)) if self.max_samples > 1 else 0
            raise ValueError(
                f"sample_interval {format_duration(self.sample_interval)} over duration "
                f"{format_duration(self.duration)} takes {samples:,} samples, more than "
                f"max_samples ({self.max_samples:,}, about 100 bytes each): sample every "
                f"{format_duration(finest)} or more, or raise max_samples"
            )
        return self

    # ----- resolved parts -----------------------------------------------------------------

    def board_spec(self) -> Board:
        return load_board(self.board)

    def device_specs(self) -> dict[str, DeviceSpec]:
        """Each device's declaration by name, heap overrides applied."""
        return {entry.name: entry.spec() for entry in self.devices}

    def policy_spec(self) -> Policy:
        return Policy.coerce(self.policy)

    def policy_choice(self) -> PolicyChoice:
        """The scenario's own policy with the name results give it."""
        if isinstance(self.policy, Policy):
            return PolicyChoice(self.policy.label, self.policy)
        return parse_policy(self.policy)

    def with_changes(self, **changes: Any) -> "Scenario":
        """A copy with some fields changed, validated again (``duration="10s"``, ...)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        return _validate(data, source=f"scenario {self.name!r}")

    def cut_to(self, duration: Union[int, str]) -> tuple["Scenario", list[Step]]:
        """The scenario run for ``duration`` instead: a longer one keeps every step, a shorter
        one drops the steps after its end. Returns it and the steps dropped."""
        end = parse_duration(duration)
        kept = [step for step in self.timeline if step.at <= end]
        cut = [step for step in self.timeline if step.at > end]
        return self.with_changes(duration=end, timeline=kept), cut

    # ----- running ------------------------------------------------------------------------

    def run(
        self,
        policy: Union[Policy, str, None] = None,
        seed: Optional[int] = None,
        progress: Optional[Callable[[int, int], None]] = None,
        trace_limit: int = 0,
        backend: str = "model",
        **options: Any,
    ) -> ScenarioResult:
        """Run the scenario under ``policy`` (default: the scenario's) with ``seed``, on the
        Rust model (``backend="model"``) or on a real kernel (``backend="kernel"``).

        ``progress(now_ns, duration_ns)`` is called about a hundred times during the run.
        ``trace_limit`` keeps that many trace lines in the result (0: none, fastest; the
        command line's ``--trace`` sets 2,000,000, ftrace's ring buffer: the oldest go first).
        Device requests still in flight at ``duration`` are run to completion, so every
        request has an outcome. ``options`` go to the backend; the model takes
        ``trace_events`` (``set_event`` syntax: ``["cma", "kmem:mm_page_alloc"]``, ``["all"]``;
        default every event but the per-page ``kmem`` ones) and ``area_maps`` (record the CMA
        areas' pages by state for the area pictures, in at most that many bins an area).
        """
        run = _BACKENDS.get(backend)
        if run is None:
            known = ", ".join(map(repr, _BACKENDS)) or "none (import cmadev)"
            raise SpecError(f"unknown backend {backend!r}; the backends are: {known}")
        return run(self, policy, seed=seed, progress=progress, trace_limit=trace_limit, **options)


def _check_modes_fit(index: int, spec: DeviceSpec, board: Board) -> None:
    """Every buffer of every mode fits the device's area, and so does each mode's total: a
    request that could never be met is a mistake in the file, not an outcome to simulate."""
    area = board.cma_area(spec.heap)
    for mode, buffers in spec.modes.items():
        for buffer in buffers:
            if buffer.size > area.size:
                raise ValueError(
                    f"[{index}]: device {spec.name!r} mode {mode!r} asks for a buffer of "
                    f"{format_size(buffer.size)}, larger than its area {area.name!r} "
                    f"({format_size(area.size)}): make the buffer smaller or the area larger"
                )
        total = sum(b.size * b.count for b in buffers)
        if total > area.size:
            raise ValueError(
                f"[{index}]: device {spec.name!r} mode {mode!r} needs {format_size(total)} in "
                f"all, more than its area {area.name!r} ({format_size(area.size)}) holds: it "
                f"could never start; shrink the mode's buffers or grow the area"
            )


def _validate(data: Any, source: str = "", base_dir: Optional[Path] = None) -> Scenario:
    context = {"base_dir": base_dir} if base_dir is not None else None
    return validate_model(Scenario, data, source=source, context=context)


def load_scenario(ref: Union[Scenario, str, "os.PathLike[str]"]) -> Scenario:
    """A :class:`Scenario` from a shipped name ("tv_evening"), a ``.json``/``.toml`` file, or
    a Scenario (returned as is). Any problem is a :class:`SpecError` naming the file, the
    field and the fix; paths inside the file are relative to the file's folder."""
    if isinstance(ref, Scenario):
        return ref
    if isinstance(ref, os.PathLike):
        path = Path(ref)
        return _validate(read_document(path), source=str(path), base_dir=path.parent)
    if not isinstance(ref, str):
        raise SpecError(
            f"a scenario must be a Scenario, a shipped scenario's name or a path; got "
            f"{type(ref).__name__} {ref!r}"
        )
    entry = find("scenario", ref)
    if isinstance(entry, str):  # a path
        path = Path(entry)
        return _validate(read_document(path), source=str(path), base_dir=path.parent)
    return _validate(read_document(entry), source=str(entry))


__all__ = [
    "Action",
    "Backend",
    "Scenario",
    "ScenarioDevice",
    "Step",
    "backends",
    "load_scenario",
    "register_backend",
]
