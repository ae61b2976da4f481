"""Running a scenario on the Rust model: the ``"model"`` backend of
:meth:`Scenario.run <cmadev.specs.scenario.Scenario.run>`.

A run builds a :class:`~cmadev.sim.machine.Machine`, attaches the devices, starts the
workloads, schedules the timeline's steps with ``machine.call_at`` and runs in virtual time.
The engine runs each device request whole (``rust/mm/src/dma_heap.rs``), so Python is called
only at the timeline's steps and at the progress ticks. The result is plain data
(:class:`~cmadev.results.ScenarioResult`): when it is returned, nothing refers to the machine
any more, and reference counting frees it.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional, Union

import psutil  # type: ignore[import-untyped]

from cmadev.errors import CmadevError, SlowRunWarning
from cmadev.results import ScenarioResult
from cmadev.sim.devices import Device, DeviceRequest
from cmadev.sim.machine import Machine
from cmadev.sim.mm import Mm
from cmadev.specs.policy import Policy, PolicyChoice, parse_policy
from cmadev.specs.scenario import Scenario, Step, register_backend
from cmadev.units import NS_PER_S

AREA_COLUMNS = 64
"""Most samples of the area maps a run records (their cost is a walk over the areas' pages)."""

_FINISH_LIMIT = "3600s"
"""How long after the end a request still in flight may take to finish (they always do)."""

SLOW_RUN_SPEEDUP = 10.0
"""A run slower than this (simulated seconds per wall second) warns with
:class:`~cmadev.errors.SlowRunWarning`, if it took at least :data:`SLOW_RUN_MIN_WALL_S`."""

SLOW_RUN_MIN_WALL_S = 1.0
"""Runs shorter than this (wall seconds) never warn: their speed is mostly fixed costs."""


def policy_choice(scenario: Scenario, policy: Union[Policy, str, None]) -> PolicyChoice:
    """The policy a run uses, with the name results give it (the preset as typed)."""
    if policy is None:
        return scenario.policy_choice()
    if isinstance(policy, Policy):
        return PolicyChoice(policy.label, policy)
    return parse_policy(policy)


class ScenarioRun:
    """One run of a scenario on the model: the machine, its devices, and the loop that drives
    them. :func:`run_scenario` is the short way; this class keeps :attr:`machine` for tests
    that look inside after the run."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Union[Policy, str, None] = None,
        seed: Optional[int] = None,
        progress: Optional[Callable[[int, int], None]] = None,
        trace_limit: int = 0,
        trace_events: Optional[Sequence[str]] = None,
        area_maps: int = 0,
    ) -> None:
        self.scenario = scenario
        self.choice = policy_choice(scenario, policy)
        self.seed = scenario.seed if seed is None else seed
        self.progress = progress
        self.machine = Machine(
            scenario.board_spec(),
            self.choice.policy,
            seed=self.seed,
            trace_limit=trace_limit,
            max_events=scenario.max_events,
            trace_events=trace_events,
        )
        self.trace_limit = trace_limit
        self.area_maps = area_maps
        self.devices: dict[str, Device] = {
            name: self.machine.attach(spec, name=name)
            for name, spec in scenario.device_specs().items()
        }
        self.actions: list[tuple[int, str, str, Optional[str]]] = []

    def run(self) -> ScenarioResult:
        sc, m = self.scenario, self.machine
        wall0, cpu0 = time.perf_counter(), time.process_time()
        m.set_sampling(sc.sample_interval)
        if self.area_maps:
            # At most AREA_COLUMNS columns: each sample walks every page of the areas.
            samples = sc.duration // sc.sample_interval + 1
            m.set_area_maps(self.area_maps, -(-samples // AREA_COLUMNS))
        workloads = [m.start(w) for w in sc.workloads]
        for step in sorted(sc.timeline, key=lambda s: s.at):
            m.call_at(step.at, self._action(self.devices[step.device], step))
        for stop in self._stops():
            m.run_until(stop)  # also runs the timeline steps due at ``stop``
            if self.progress is not None:
                self.progress(m.now, sc.duration)
        self._finish()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        host = {
            "wall_s": wall,
            "cpu_s": cpu,
            "rss_bytes": psutil.Process().memory_info().rss,
            "peak_rss_bytes": peak_rss(),
            "speedup": (m.now / NS_PER_S) / wall if wall > 0 else float("inf"),
        }
        stats = {w.name: w.stats() for w in workloads}
        if wall >= SLOW_RUN_MIN_WALL_S and host["speedup"] < SLOW_RUN_SPEEDUP:
            warnings.warn(
                SlowRunWarning(
                    f"scenario {sc.name!r} under {self.choice.label} ran at "
                    f"{host['speedup']:.1f}x real time ({m.now / NS_PER_S:.1f} s simulated in "
                    f"{wall:.1f} s): below {SLOW_RUN_SPEEDUP:g}x, a slow path in the engine; "
                    f"please report it with the scenario and seed {self.seed}"
                ),
                stacklevel=2,
            )
        return self._result(stats, host)

    def _stops(self) -> list[int]:
        """The times the run comes back to Python: the timeline's steps, the end, and a
        hundred progress ticks when someone watches."""
        sc = self.scenario
        stops = {s.at for s in sc.timeline} | {sc.duration}
        if self.progress is not None:
            tick = max(sc.duration // 100, 1)
            stops |= set(range(tick, sc.duration, tick))
        return sorted(stops)

    def _action(self, device: Device, step: Step) -> Callable[[Mm], None]:
        def act(machine: Mm) -> None:
            self.actions.append((machine.now, device.name, step.action, step.mode or device.mode))
            if step.action == "stop":
                device.stop()
            elif step.action == "start":
                device.start(step.mode)
            else:
                assert step.mode is not None
                device.change_resolution(step.mode)

        return act

    def _requests(self) -> list[DeviceRequest]:
        every = (r for d in self.devices.values() for r in d.requests)
        return sorted(every, key=lambda r: (r.issued_ns, r.device))

    def _finish(self) -> None:
        """Complete the requests still in flight at the end."""
        for request in self._requests():
            if not self.machine.run_until(request, limit=_FINISH_LIMIT):
                raise CmadevError(  # pragma: no cover - cma_alloc always ends
                    f"a device request did not finish within an hour of virtual time after "
                    f"the end of scenario {self.scenario.name!r}"
                )

    def _result(self, workloads: dict[str, Any], host: dict[str, float]) -> ScenarioResult:
        sc, m = self.scenario, self.machine
        return ScenarioResult(
            scenario=sc.name,
            board=m.board.name,
            policy=self.choice.label,
            policy_spec=self.choice.policy.model_dump(mode="json"),
            seed=self.seed,
            duration_ns=sc.duration,
            end_ns=m.now,
            sample_interval_ns=sc.sample_interval,
            requests=tuple(r.result() for r in self._requests()),
            actions=tuple(self.actions),
            busy={name: d.busy for name, d in self.devices.items()},
            series=m.series(),
            counters=m.vmstat(),
            cma={a["name"]: m.cma_sysfs(a["name"]) for a in m.cma_areas()},
            meminfo=m.meminfo(),
            dmesg=tuple(m.dmesg()),
            workloads=workloads,
            trace=tuple(m.trace()) if self.trace_limit else (),
            trace_header=m.trace_header() if self.trace_limit else "",
            model_counters=m.model_counters(),
            area_maps=m.area_maps(),
            host=host,
        )


def run_scenario(
    scenario: Scenario,
    policy: Union[Policy, str, None] = None,
    *,
    seed: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    trace_limit: int = 0,
    trace_events: Optional[Sequence[str]] = None,
    area_maps: int = 0,
    **options: Any,
) -> ScenarioResult:
    """Run ``scenario`` on the model (see :meth:`Scenario.run`). Its options:
    ``trace_events`` (which events a trace keeps, ``set_event`` syntax) and ``area_maps``
    (record the CMA areas' pages by state, in at most that many bins an area)."""
    if options:
        raise CmadevError(
            f"the model backend takes trace_events and area_maps; got {', '.join(sorted(options))}"
        )
    return ScenarioRun(scenario, policy, seed, progress, trace_limit, trace_events, area_maps).run()


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes: getrusage's ru_maxrss (KiB on
    Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


register_backend("model", run_scenario)

__all__ = [
    "SLOW_RUN_MIN_WALL_S",
    "SLOW_RUN_SPEEDUP",
    "ScenarioRun",
    "peak_rss",
    "policy_choice",
    "run_scenario",
]
