"""A sweep's runs, in order, each with its key, and the batches the workers get.

The order is the sweep file's: grid point, then policy (as listed), then seed (as listed or
counted); the tables are sorted by it, so they come out the same whatever ran the runs.

A run's **key** is a hash of everything that decides its rows: the scenario at its grid point
(as plain data), the policy (its name and fields), the seed, what the sweep keeps, the cmadev
version and the rows' layout. Resuming skips the runs whose key is in the output already;
editing the sweep file (more seeds, another grid value) reuses every run that stays the same.

A batch is a few runs of one grid point and policy: one task for a worker, carrying plain
data only (the scenario as a dict, the policy's fields, the seeds), so that it pickles small
and runs anywhere cmadev is installed (a process of this machine, a Dask worker elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypedDict

from cmadev.specs.sweep import GridPoint, Sweep

ROWS_LAYOUT = 1
"""Raise when the rows' columns change, so that saved runs of an older layout run again."""

MAX_BATCH = 16
"""Runs per batch at most: a batch is what is saved at once and lost if interrupted, and
with few batches per worker the last one to finish leaves the other workers idle. 16 runs of
``tv_evening`` take about a second."""

BATCHES_PER_WORKER = 4
"""Aim for at least this many batches per worker (smaller batches for small sweeps)."""


def package_version() -> str:
    """The installed cmadev's version (part of every run's key: results of another version
    are not reused)."""
    try:
        return version("cmadev")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "0+unknown"


class BatchTask(TypedDict):
    """What a worker gets: plain data only."""

    id: str
    version: str
    """The cmadev version that planned it; a worker of another version refuses it."""
    scenario: dict[str, Any]
    policy: dict[str, Any]
    label: str
    """The policy's name and the grid point, for messages."""
    runs: list[tuple[str, int]]
    """(key, seed) of each run."""
    keep_requests: bool
    keep_series: bool


@dataclass(frozen=True)
class PlannedRun:
    key: str
    order: int
    """Position in the sweep: grid point, then policy, then seed."""
    point: int
    policy_index: int
    policy: str
    seed: int


class Plan:
    """The runs of a sweep, in order, and where each stands (grid values, policy, seed)."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.version = package_version()
        self.points: list[GridPoint] = sweep.points()
        self.choices = sweep.policy_choices()
        self.seeds = sweep.seed_list()
        self.paths = list(sweep.grid)
        self._scenarios = [p.scenario.model_dump(mode="json") for p in self.points]
        self._policies = [c.policy.model_dump(mode="json") for c in self.choices]
        self.runs: list[PlannedRun] = []
        for point in self.points:
            text = json.dumps(self._scenarios[point.index], sort_keys=True)
            for p, choice in enumerate(self.choices):
                for seed in self.seeds:
                    key = self._key(text, choice.label, self._policies[p], seed)
                    self.runs.append(
                        PlannedRun(key, len(self.runs), point.index, p, choice.label, seed)
                    )
        self.by_key = {run.key: run for run in self.runs}

    def _key(self, scenario: str, label: str, policy: dict[str, Any], seed: int) -> str:
        keep = self.sweep.keep
        identity = json.dumps(
            {
                "cmadev": self.version,
                "layout": ROWS_LAYOUT,
                "policy": [label, policy],
                "seed": seed,
                "keep": [keep.requests, keep.series],
            },
            sort_keys=True,
        )
        return hashlib.sha256(f"{identity}\n{scenario}".encode()).hexdigest()[:32]

    def grid_values(self, point: int) -> dict[str, Any]:
        """The grid's values at ``point``, by path, as written in the sweep file."""
        return dict(self.points[point].values)

    def batch_size(self, todo: int, workers: int) -> int:
        """Runs per batch: enough batches for every worker to stay busy to the end, none
        larger than :data:`MAX_BATCH`."""
        return max(1, min(MAX_BATCH, math.ceil(todo / (max(workers, 1) * BATCHES_PER_WORKER))))

    def batches(self, todo: list[PlannedRun], size: int) -> list[BatchTask]:
        """``todo`` cut into batches of at most ``size`` runs of one grid point and policy."""
        groups: dict[tuple[int, int], list[PlannedRun]] = {}
        for run in todo:
            groups.setdefault((run.point, run.policy_index), []).append(run)
        tasks = []
        for (point, p), runs in groups.items():
            for start in range(0, len(runs), size):
                tasks.append(self._task(point, p, runs[start : start + size]))
        return tasks

    def _task(self, point: int, p: int, runs: list[PlannedRun]) -> BatchTask:
        keep = self.sweep.keep
        label = f"{self.choices[p].label} at {self.points[point].label()}"
        return BatchTask(
            id=hashlib.sha256("".join(r.key for r in runs).encode()).hexdigest()[:16],
            version=self.version,
            scenario=self._scenarios[point],
            policy=self._policies[p],
            label=label,
            runs=[(r.key, r.seed) for r in runs],
            keep_requests=keep.requests,
            keep_series=keep.series,
        )


__all__ = [
    "BATCHES_PER_WORKER",
    "MAX_BATCH",
    "ROWS_LAYOUT",
    "BatchTask",
    "Plan",
    "PlannedRun",
    "package_version",
]
