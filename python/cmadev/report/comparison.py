"""Comparing policies: one scenario run under several policies and seeds, tabulated.

:func:`compare` is the one run loop (the command line's ``compare`` and the demo use it too):
it runs every policy and seed and keeps each run's :class:`~cmadev.results.ScenarioResult`,
which is plain data, so memory grows with the results, never with simulated machines. The
:class:`Comparison` it returns is the table (a :class:`ComparisonRow` per policy) and the runs
behind it; the report folder (:mod:`cmadev.report.folder`) is written from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Protocol, Union

from cmadev.errors import MisuseError
from cmadev.report.format import (
    DEVICE_COLUMNS,
    DEVICE_LEGEND,
    SYSTEM_COLUMNS,
    SYSTEM_LEGEND,
    count,
    ms,
    percent,
    text_table,
)
from cmadev.results import DeviceResult, ScenarioResult
from cmadev.specs.policy import PLACEMENTS, Policy, PolicyChoice, parse_policy
from cmadev.specs.scenario import Scenario, load_scenario
from cmadev.units import format_size

SPEEDUP_TARGET = 1000.0
"""The shipped TV scenario runs at least this many times faster than real time under every
policy (the project's figure; ``benches/bench_scenario.py`` measures it)."""


def percentile(values: list[int], q: float) -> Optional[int]:
    """The nearest-rank percentile ``q`` (0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


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
    def of(cls, device: str, requests: list[DeviceResult]) -> DeviceStats:
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

    def over_deadline(self, value: Optional[int]) -> bool:
        return value is not None and self.deadline_ns > 0 and value > self.deadline_ns

    def cells(self) -> list[str]:
        """requests, success, p50, p99, max, deadline, misses."""
        return [
            str(self.requests),
            percent(self.success_rate),
            ms(self.p50_ns),
            ms(self.p99_ns),
            ms(self.max_ns),
            ms(self.deadline_ns),
            str(self.deadline_misses),
        ]


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

    @classmethod
    def of(cls, policy: str, devices: list[str], runs: list[ScenarioResult]) -> ComparisonRow:
        idle = [u for u in (run.cma_idle_utilisation() for run in runs) if u is not None]
        return cls(
            policy=policy,
            seeds=tuple(run.seed for run in runs),
            devices={
                name: DeviceStats.of(name, [r for run in runs for r in run.requests_of(name)])
                for name in devices
            },
            cma_idle_utilisation=_mean(idle) if idle else None,
            refaults=_mean([run.refaults for run in runs]),
            pages_migrated=_mean([run.pages_migrated for run in runs]),
            pgscan=_mean([run.pgscan for run in runs]),
        )

    def system_cells(self) -> list[str]:
        """CMA use while idle, refaults, pages migrated, pages scanned (means per run)."""
        return [
            percent(self.cma_idle_utilisation),
            count(self.refaults),
            count(self.pages_migrated),
            count(self.pgscan),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "seeds": list(self.seeds),
            "devices": {
                name: {
                    **vars(s),
                    "success_rate": s.success_rate,
                    "deadline_misses": s.deadline_misses,
                }
                for name, s in self.devices.items()
            },
            "cma_idle_utilisation": self.cma_idle_utilisation,
            "refaults": self.refaults,
            "pages_migrated": self.pages_migrated,
            "pgscan": self.pgscan,
        }


def policy_host(runs: list[ScenarioResult]) -> dict[str, float]:
    """Host figures of one policy's runs: mean wall and CPU seconds per run, the highest
    peak RSS, and the speed-up as total simulated seconds over total wall seconds (a mean of
    ratios would let one lucky short run dominate)."""
    wall = sum(r.host.get("wall_s", 0.0) for r in runs)
    simulated = sum(r.simulated_s for r in runs)
    return {
        "runs": float(len(runs)),
        "simulated_s": simulated,
        "wall_s": wall / len(runs) if runs else 0.0,
        "cpu_s": sum(r.host.get("cpu_s", 0.0) for r in runs) / len(runs) if runs else 0.0,
        "peak_rss_bytes": float(max((r.host.get("peak_rss_bytes", 0) for r in runs), default=0)),
        "speedup": simulated / wall if wall > 0 else math.inf,
    }


def _speedup(x: float) -> str:
    """Simulated seconds per wall second: "1,150x", or "0.43x" for a real kernel under TCG."""
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def _fingerprint(run: ScenarioResult) -> str:
    """What a run produced, apart from the policy's name: equal for runs that did the same."""
    data = run.to_dict()
    for key in ("policy", "policy_spec"):
        data.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class Comparison:
    """A scenario run under several policies and seeds: a row per policy, and every run."""

    scenario: Scenario
    rows: list[ComparisonRow]
    runs: list[ScenarioResult]
    wall_s: float = 0.0
    """Wall time of all the runs (and their bookkeeping)."""
    plots_s: float = 0.0
    """Wall time of drawing the plots (set by :func:`cmadev.report.folder.write_report`)."""
    command: str = ""
    """The command line that reproduces the comparison, for the summary."""
    started: float = field(default_factory=time.time)

    @property
    def policies(self) -> list[str]:
        return [row.policy for row in self.rows]

    @property
    def seeds(self) -> list[int]:
        return list(self.rows[0].seeds) if self.rows else []

    @property
    def devices(self) -> list[str]:
        return [entry.name for entry in self.scenario.devices]

    def row(self, policy: str) -> ComparisonRow:
        for row in self.rows:
            if row.policy == policy:
                return row
        raise KeyError(f"no row for policy {policy!r}; rows: {self.policies}")

    def runs_of(self, policy: str) -> list[ScenarioResult]:
        return [r for r in self.runs if r.policy == policy]

    def first_runs(self) -> list[ScenarioResult]:
        """The first seed's run of each policy, in table order (what the timelines show)."""
        return [self.runs_of(p)[0] for p in self.policies if self.runs_of(p)]

    def host(self, policy: str) -> dict[str, float]:
        return policy_host(self.runs_of(policy))

    def host_cells(self, policy: str) -> list[str]:
        """runs, wall and CPU per run, peak RSS, speed-up over real time."""
        h = self.host(policy)
        return [
            f"{h['runs']:.0f}",
            f"{h['wall_s'] * 1000:.0f} ms",
            f"{h['cpu_s'] * 1000:.0f} ms",
            format_size(h["peak_rss_bytes"]) if h["peak_rss_bytes"] else "-",
            _speedup(h["speedup"]),
        ]

    def slowest(self) -> tuple[str, float]:
        """The model policy with the lowest speed-up over real time, and that speed-up (a
        real kernel's rows run at its own pace and are left out); ``("", 0.0)`` without one."""
        model = [p for p in self.policies if all(r.backend == "model" for r in self.runs_of(p))]
        speeds = {p: self.host(p)["speedup"] for p in model}
        if not speeds:
            return "", 0.0
        policy = min(speeds, key=lambda p: speeds[p])
        return policy, speeds[policy]

    def identical(self) -> list[list[str]]:
        """Groups of policies whose runs produced exactly the same results, seed by seed
        (the table shows them as identical rows): each group has two policies or more."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for policy in self.policies:
            key = tuple(_fingerprint(run) for run in self.runs_of(policy))
            groups.setdefault(key, []).append(policy)
        return [group for group in groups.values() if len(group) > 1]

    def why_identical(self, group: list[str]) -> str:
        """A sentence on why the policies of ``group`` came out the same."""
        specs = {p: self.runs_of(p)[0].policy_spec for p in group}
        placements = {str(s["placement"]) for s in specs.values()}
        fixes = [set(s["fixes"]) for s in specs.values()]
        differing = sorted(set.union(*fixes) - set.intersection(*fixes))
        reasons = []
        if placements == {"zone_cma", "movable_zone"}:
            reasons.append(
                "zone_cma and movable_zone place pages alike (both route GFP_HIGHUSER_MOVABLE "
                "to the area's zone); they differ only in memory offlining, which this "
                "scenario does not do"
            )
        if differing:
            reasons.append(
                f"{', '.join(differing)} found nothing to act on in this scenario (no page "
                f"the fix would move or keep out of CMA met it)"
            )
        return "; ".join(reasons) or "the policies happen to make the same choices here"

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "rows": [r.to_dict() for r in self.rows]}

    def format(self) -> str:
        """The tables as plain text, with the legend."""
        dev_rows = [
            [row.policy if i == 0 else "", name, *stats.cells()]
            for row in self.rows
            for i, (name, stats) in enumerate(row.devices.items())
        ]
        sys_rows = [[row.policy, *row.system_cells()] for row in self.rows]
        seeds = self.seeds
        plural = "s" if len(seeds) != 1 else ""
        title = f"{self.scenario.name}: {len(seeds)} seed{plural} per policy"
        notes = [
            f"{', '.join(g)}: identical results ({self.why_identical(g)})."
            for g in self.identical()
        ]
        parts = [
            title,
            "",
            text_table(DEVICE_COLUMNS, dev_rows),
            DEVICE_LEGEND,
            "",
            text_table(SYSTEM_COLUMNS, sys_rows),
            SYSTEM_LEGEND,
        ]
        return "\n".join(parts + notes)

    def __str__(self) -> str:
        return self.format()


class RunWatcher(Protocol):
    """Told about each run of a comparison (the command line's progress bars)."""

    def start(
        self, label: str, seed: int, duration_ns: int
    ) -> Optional[Callable[[int, int], None]]:
        """A run begins; returns the ``progress(now_ns, duration_ns)`` callback for it."""

    def finish(self, label: str, seed: int, result: ScenarioResult) -> None:
        """A run ended."""


def seed_list(scenario: Scenario, seeds: Union[int, Sequence[int], None]) -> list[int]:
    """The seeds to run: ``None`` is the scenario's own; a count ``n`` is ``n`` seeds from the
    scenario's own (as the command line's ``--seeds N``); a list is itself."""
    if seeds is None:
        return [scenario.seed]
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)) or isinstance(seeds, str):
        raise MisuseError(f"seeds must be a count or a list of seeds; got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise MisuseError(f"seeds={seeds}: give at least 1 (a count), or a list of seeds")
        return [scenario.seed + i for i in range(seeds)]
    chosen = list(seeds)
    if not chosen:
        raise MisuseError("seeds=[]: give at least one seed")
    for seed in chosen:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise MisuseError(f"a seed is a whole number from 0 to 2**64 - 1; got {seed!r}")
    return chosen


def policy_choices(policies: Optional[Sequence[Union[str, Policy]]]) -> list[PolicyChoice]:
    """The policies to run (default: the five placements), each once."""
    chosen = [
        PolicyChoice(p.label, p) if isinstance(p, Policy) else parse_policy(p)
        for p in (policies if policies else PLACEMENTS)
    ]
    return list({choice.label: choice for choice in chosen}.values())


def compare(
    scenario: Union[Scenario, str, os.PathLike[str]],
    policies: Optional[Sequence[Union[str, Policy]]] = None,
    seeds: Union[int, Sequence[int], None] = None,
    watcher: Optional[RunWatcher] = None,
    run_options: Optional[dict[str, Any]] = None,
) -> Comparison:
    """Run ``scenario`` under each policy (default: the five placements) and each seed
    (default: the scenario's; a count ``n``: ``n`` seeds from it; or a list), and tabulate
    per policy: each device's success, latency percentiles against its deadline and misses;
    the CMA area's use while the devices are idle, refaults, pages migrated and pages
    scanned (means per run). ``watcher`` is told about each run; ``run_options`` go to each
    :meth:`Scenario.run` (``trace_limit``, ``trace_events``, ``area_maps``)."""
    sc = load_scenario(scenario)
    choices = policy_choices(policies)
    seeds_to_run = seed_list(sc, seeds)
    started = time.perf_counter()
    runs: list[ScenarioResult] = []
    rows = []
    for choice in choices:
        mine = [_run(sc, choice, seed, watcher, run_options or {}) for seed in seeds_to_run]
        label = mine[0].policy if choice.backend == "kernel" else choice.label
        rows.append(ComparisonRow.of(label, [d.name for d in sc.devices], mine))
        runs.extend(mine)
    return Comparison(sc, rows, runs, wall_s=time.perf_counter() - started)


def _run(
    sc: Scenario,
    choice: PolicyChoice,
    seed: int,
    watcher: Optional[RunWatcher],
    options: dict[str, Any],
) -> ScenarioResult:
    progress = watcher.start(choice.label, seed, sc.duration) if watcher is not None else None
    if choice.backend == "kernel":
        kernel: dict[str, Any] = {"kernel": choice.kernel} if choice.kernel else {}
        result = sc.run("kernel", seed=seed, progress=progress, backend="kernel", **kernel)
    else:
        result = sc.run(choice.policy, seed=seed, progress=progress, **options)
        result = _named(result, choice.label)
    if watcher is not None:
        watcher.finish(choice.label, seed, result)
    return result


def _named(result: ScenarioResult, label: str) -> ScenarioResult:
    """The result under the name the comparison gives its policy (the preset as typed)."""
    return result if result.policy == label else replace(result, policy=label)


__all__ = [
    "SPEEDUP_TARGET",
    "Comparison",
    "ComparisonRow",
    "DeviceStats",
    "RunWatcher",
    "compare",
    "percentile",
    "policy_choices",
    "policy_host",
    "seed_list",
]
