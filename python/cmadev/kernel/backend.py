"""The ``"kernel"`` backend of :meth:`Scenario.run <cmadev.specs.scenario.Scenario.run>`: the
scenario's load on a real Linux kernel under QEMU, its results in the model's schema.

The scenario's board, workloads and device timeline become a guest program
(:func:`~cmadev.kernel.program.program_from_scenario`); the guest's captures become a
:class:`~cmadev.results.ScenarioResult`, so that a comparison puts the kernel beside the
model's policies in one table and one set of plots:

- each device action is a :class:`~cmadev.results.DeviceResult` whose buffers are the
  ``cma_alloc`` calls the agent timed (busy retries and pages migrated from the kernel's own
  trace, matched to the calls in order; the pfn is not known: 6.1's ``cma_alloc_finish``
  prints the last pfn tried either way);
- the time series come from ``/proc/meminfo``, ``/proc/vmstat`` and the debugfs ``cma/*/used``
  sampled by the agent; the model's ``kswapd_busy_ns`` and ``cma_cache`` have no kernel
  counterpart and are absent;
- counters are ``/proc/vmstat``'s growth over the scenario (the agent's own set-up before
  time 0 left out);
- the policy is the kernel's own: its name is ``kernel-<uname -r>``, and a model policy asked
  for is noted and ignored.

An x86-64 guest reproduces the board's memory size, CPUs and CMA area, not its architecture:
every result says so in its ``notes``, with everything else the guest could not reproduce.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional, Union

from cmadev.kernel.program import GuestProgram, Value, program_from_scenario
from cmadev.kernel.results import BufferRequest, GuestRun, Sample
from cmadev.kernel.runner import run_program
from cmadev.results import CmaResult, DeviceResult, ScenarioResult
from cmadev.sim.dma_heap import DmaHeap, get_order
from cmadev.specs.policy import Policy
from cmadev.specs.scenario import Scenario, register_backend
from cmadev.units import NS_PER_S

ARCH_NOTE = (
    "an x86-64 guest under QEMU: it reproduces the board's memory size, CPUs and CMA area, "
    "not its architecture or its costs (TCG is slower than hardware: see 'cmadev kernel "
    "calibrate')"
)

_OPTIONS = ("kernel", "accel", "time_scale", "via", "merge_areas", "fs_types", "timeout")


TimelineEntry = tuple[int, str, str, list[tuple[int, int]], str, str]


def scenario_timeline(scenario: Scenario) -> list[TimelineEntry]:
    """The timeline as the guest program takes it: ``(time, device, action, buffers, heap,
    mode)``, each buffer ``(pages, align order)`` as the CMA dma-heap asks for it."""
    specs = scenario.device_specs()
    running: dict[str, str] = {}
    out: list[TimelineEntry] = []
    for step in sorted(scenario.timeline, key=lambda s: s.at):
        spec = specs[step.device]
        mode = step.mode or running.get(step.device) or spec.default_mode
        buffers: list[tuple[int, int]] = []
        if step.action == "stop":
            running.pop(step.device, None)
        else:
            running[step.device] = mode
            buffers = [
                (b.pages, max(DmaHeap.align_order(b.size), get_order(b.align)))
                for b in spec.buffers(mode)
                for _ in range(b.count)
            ]
        out.append((step.at, step.device, step.action, buffers, spec.heap, mode))
    return out


def device_paths(scenario: Scenario) -> dict[str, str]:
    """The request path of each device in the timeline: ``debugfs`` (``cma_alloc`` without
    clearing) for a device whose buffers are not cleared (``zero_buffers`` false), else the
    CMA dma-heap, which clears every page as the model's dma-heap does."""
    specs = scenario.device_specs()
    return {
        step.device: "dma_heap" if specs[step.device].zero_buffers else "debugfs"
        for step in scenario.timeline
    }


def scenario_program(
    scenario: Scenario,
    seed: Optional[int] = None,
    *,
    workloads: Optional[Sequence[Mapping[str, Any]]] = None,
    time_scale: float = 1.0,
    via: Union[str, Mapping[str, str], None] = None,
    merge_areas: bool = False,
    fs_types: Optional[Mapping[str, str]] = None,
    options: Optional[Mapping[str, Value]] = None,
) -> GuestProgram:
    """The guest program of ``scenario``: its board, workloads (``workloads``: their engine
    form instead, e.g. with a field the model does not have yet) and timeline. ``via``: the
    request path of every device or of each (default: :func:`device_paths`). ``options``:
    run options (:data:`cmadev.kernel.program.RUN_OPTIONS`)."""
    seed = scenario.seed if seed is None else seed
    # The model runs requests still in flight at the end to completion: let the guest run
    # on by the longest deadline, so that they finish there too.
    grace = max((spec.deadline for spec in scenario.device_specs().values()), default=0)
    return program_from_scenario(
        scenario.board_spec().to_engine("balanced", seed=seed),
        [w.to_engine() for w in scenario.workloads] if workloads is None else workloads,
        scenario_timeline(scenario),
        duration_ns=scenario.duration + grace,
        sample_interval_ns=scenario.sample_interval,
        seed=seed,
        time_scale=time_scale,
        via=device_paths(scenario) if via is None else via,
        merge_areas=merge_areas,
        fs_types=fs_types,
        options=options,
    )


def run_on_kernel(
    scenario: Scenario,
    policy: Union[Policy, str, None] = None,
    *,
    seed: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    trace_limit: int = 0,
    **options: Any,
) -> ScenarioResult:
    """Run ``scenario`` on a real kernel (see the module docstring). ``options``: ``kernel``
    (a bzImage path: a vendor tree, a kernel with GCMA or ZONE_CMA patches; default: the
    cmadev kernel, built and cached), ``accel`` (``tcg`` or ``kvm``), ``time_scale``,
    ``via`` (``dma_heap`` or ``debugfs``, or a mapping per device; default: debugfs for a
    device that does not clear its buffers, else the dma-heap), ``merge_areas``,
    ``fs_types``, ``timeout``."""
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown kernel backend options {sorted(unknown)}; use {_OPTIONS}")
    seed = scenario.seed if seed is None else seed
    program = scenario_program(
        scenario,
        seed,
        time_scale=float(options.get("time_scale", 1.0)),
        via=options.get("via"),
        merge_areas=bool(options.get("merge_areas", False)),
        fs_types=options.get("fs_types"),
    )
    wall0 = time.perf_counter()
    run = run_program(
        program,
        kernel=options.get("kernel"),
        accel=str(options.get("accel", "tcg")),
        timeout=options.get("timeout"),
    )
    if progress is not None:
        progress(scenario.duration, scenario.duration)
    notes = [ARCH_NOTE, *run.notes]
    if policy is not None and str(policy) not in ("kernel", ""):
        notes.append(f"policy {policy!s} asked for: a real kernel runs its own placement")
    return guest_result(scenario, run, seed, notes, trace_limit, time.perf_counter() - wall0)


# --------------------------------------------------------------------------------------------
# A guest run in the model's schema


def guest_result(
    scenario: Scenario,
    run: GuestRun,
    seed: int,
    notes: list[str],
    trace_limit: int,
    wall_s: float,
) -> ScenarioResult:
    """The guest's captures as a :class:`ScenarioResult`."""
    area = _area(scenario)
    final = run.final_sample or Sample(0, 0)
    first = run.first_sample or final
    end_ns = max(scenario.duration, run.scenario_ns(final.t_ns))
    requests = _requests(scenario, run, area)
    trace = tuple(run.trace.splitlines()[-trace_limit:]) if trace_limit else ()
    return ScenarioResult(
        scenario=scenario.name,
        board=scenario.board_spec().name,
        policy=f"kernel-{run.kernel_version}",
        policy_spec={
            "placement": "kernel",
            "fixes": [],
            "kernel_version": run.kernel_version,
            "notes": notes,
        },
        seed=seed,
        duration_ns=scenario.duration,
        end_ns=end_ns,
        sample_interval_ns=scenario.sample_interval,
        requests=tuple(sorted(requests, key=lambda r: (r.issued_ns, r.device))),
        actions=tuple(
            (run.scenario_ns(a.scheduled_ns), a.device, a.action, a.mode) for a in run.actions
        ),
        busy=_busy(run, end_ns),
        series=_series(run),
        counters=_growth(first.vmstat(), final.vmstat()),
        cma={area: _cma_files(final)},
        meminfo=final.meminfo(),
        dmesg=tuple(run.dmesg.splitlines()),
        workloads={
            w.name: {"kind": w.kind, "ops": w.ops, "failures": w.failures, **w.counters}
            for w in run.workloads
        },
        trace=trace,
        backend="kernel",
        host={
            "wall_s": wall_s,
            "cpu_s": 0.0,
            "peak_rss_bytes": 0.0,
            "speedup": scenario.duration / NS_PER_S / wall_s if wall_s > 0 else 0.0,
            "boot_s": run.boot_s or 0.0,
        },
    )


def _area(scenario: Scenario) -> str:
    areas = scenario.board_spec().cma_areas
    return areas[0].name if areas else "reserved"


def _requests(scenario: Scenario, run: GuestRun, area: str) -> list[DeviceResult]:
    """Each device action with its buffers' ``cma_alloc`` calls, in the model's schema."""
    specs = scenario.device_specs()
    traced = iter(run.cma_calls())
    calls = {}
    for request in sorted(run.requests, key=lambda r: r.issue_ns):
        calls[(request.device, request.seq, request.buffer)] = next(traced, None)
    out = []
    for action in run.actions:
        spec = specs[action.device]
        buffers = [r for r in run.requests if (r.device, r.seq) == (action.device, action.seq)]
        results = tuple(
            _buffer(run, r, area, calls.get((r.device, r.seq, r.buffer)))
            for r in sorted(buffers, key=lambda r: r.buffer)
        )
        if not results:
            continue
        out.append(
            DeviceResult(
                device=action.device,
                kind=spec.kind,
                heap=f"/dev/dma_heap/{spec.heap}",
                action=action.action,
                mode=action.mode,
                issued_ns=run.scenario_ns(action.issue_ns),
                deadline_ns=spec.deadline,
                cancelled=False,
                buffers=results,
            )
        )
    return out


def _buffer(run: GuestRun, r: BufferRequest, area: str, call: Any) -> CmaResult:
    return CmaResult(
        id=r.seq * 1000 + r.buffer,
        area=area,
        count=r.pages,
        align=r.align,
        owner=r.device,
        # The agent's /proc/vmstat reads before the call are not the kernel's time: the
        # device's latency (issue to last completion) leaves them out.
        issued_ns=run.scenario_ns(r.issue_ns - r.probe_ns),
        completed_ns=run.scenario_ns(r.done_ns - r.probe_ns),
        pfn=None,
        errno=None if r.ok else r.errno.lstrip("-") or "ENOMEM",
        busy_retries=call.busy_retries if call is not None else 0,
        passes=1,
        pages_migrated=call.migrated if call is not None else r.migrated or 0,
        pages_reclaimed=0,
        pages_discarded=0,
        failed_attempts=call.isolation_failures if call is not None else 0,
        lock_wait_ns=0,
        cancelled=False,
        blockers=(),
    )


def _busy(run: GuestRun, end_ns: int) -> dict[str, list[tuple[int, Optional[int]]]]:
    """Each device's intervals from an allocating action to the release of its buffers."""
    busy: dict[str, list[tuple[int, Optional[int]]]] = {}
    releases = sorted(run.releases, key=lambda r: r.done_ns)
    for action in sorted(run.actions, key=lambda a: a.issue_ns):
        start = run.scenario_ns(action.issue_ns)
        later = [r for r in releases if r.device == action.device and r.issue_ns >= action.issue_ns]
        stop = run.scenario_ns(later[0].done_ns) if later else None
        intervals = busy.setdefault(action.device, [])
        if intervals and (intervals[-1][1] is None or (intervals[-1][1] or 0) > start):
            continue
        intervals.append((start, stop))
    return busy


def _series(run: GuestRun) -> dict[str, list[Any]]:
    """The model's series columns that the kernel has, in pages and scenario time."""
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "t_ns",
            "mem_free",
            "cma_free",
            "cma_movable",
            "cma_device",
            "refaults",
            "pgscan",
            "nr_dirty",
            "nr_writeback",
        )
    }
    for s in run.samples:
        if s.t_ns < 0:
            continue
        info, vm = s.meminfo(), s.vmstat()
        used = s.cma_value("used") or 0
        total, free = info.get("CmaTotal", 0) // 4, info.get("CmaFree", 0) // 4
        columns["t_ns"].append(run.scenario_ns(s.t_ns))
        columns["mem_free"].append(info.get("MemFree", 0) // 4)
        columns["cma_free"].append(free)
        columns["cma_movable"].append(max(total - free - used, 0))
        columns["cma_device"].append(used)
        columns["refaults"].append(
            vm.get("workingset_refault_file", 0) + vm.get("workingset_refault_anon", 0)
        )
        columns["pgscan"].append(vm.get("pgscan_kswapd", 0) + vm.get("pgscan_direct", 0))
        columns["nr_dirty"].append(vm.get("nr_dirty", 0))
        columns["nr_writeback"].append(vm.get("nr_writeback", 0))
    return columns


def _growth(first: Mapping[str, int], last: Mapping[str, int]) -> dict[str, int]:
    """Each counter's growth over the scenario; gauges (``nr_*``) as they were at the end."""
    return {
        name: value if name.startswith("nr_") else value - first.get(name, 0)
        for name, value in last.items()
    }


def _cma_files(sample: Sample) -> dict[str, int]:
    """The area's sysfs figures (6.1 has two) with its size and use from debugfs."""
    count = sample.cma_value("count") or 0
    used = sample.cma_value("used") or 0
    return {
        "alloc_pages_success": sample.cma_value("alloc_pages_success") or 0,
        "alloc_pages_fail": sample.cma_value("alloc_pages_fail") or 0,
        "total_pages": count,
        "available_pages": count - used,
    }


register_backend("kernel", run_on_kernel)

__all__ = [
    "ARCH_NOTE",
    "device_paths",
    "guest_result",
    "run_on_kernel",
    "scenario_program",
    "scenario_timeline",
]
