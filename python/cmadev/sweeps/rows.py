"""A run's result as table rows: what a worker sends back and the Parquet tables hold.

Each table's columns are declared here once, with their type and meaning (the README's
column list and the Arrow schemas of :mod:`cmadev.sweeps.store` come from these). A row
holds what the run produced and its ``key``; the columns that say where the run stands in
the sweep (grid point, grid values, policy, seed) are joined from the plan when the tables
are written, so that a run saved by an earlier version of the sweep file keeps its figures
and takes the current file's names.

Nothing here depends on the host: the host's figures (wall and CPU time, memory, which
worker) are a table of their own, ``host``, which is not deterministic.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Optional

from cmadev.results import SERIES_FIELDS, DeviceResult, ScenarioResult

Columns = dict[str, tuple[str, str]]
"""Column name -> (Arrow type: int64, uint64, float64, bool, string, list<string>; meaning)."""

PLAN_COLUMNS: Columns = {
    "point": ("int64", "the grid point's position (the grid's last path varies fastest)"),
    # then one column per grid path, named by the path, holding the value as written
    "policy": ("string", "the policy as the sweep file names it"),
    "seed": ("uint64", "the run's seed"),
}
"""Where a run stands in the sweep: the first columns of every table."""

_COUNTERS = {
    "pgmigrate_fail": "pages that failed to migrate (/proc/vmstat)",
    "pgscan_kswapd": "pages scanned by kswapd",
    "pgscan_direct": "pages scanned by direct reclaim",
    "pgsteal_kswapd": "pages reclaimed by kswapd",
    "pgsteal_direct": "pages reclaimed by direct reclaim",
    "kswapd_wakeups": "times kswapd was woken",
    "pgmajfault": "major faults (storage reads on access)",
    "cma_alloc_success": "cma_alloc calls that succeeded",
    "cma_alloc_fail": "cma_alloc calls that failed",
    "pin_migrations": "pages migrated out of CMA before a pin (migrate_on_*pin)",
    "dirty_migrations": "pages migrated out of CMA when dirtied (migrate_on_first_dirty)",
    "cleancache_hits": "page-cache reads served by gcma's cleancache",
    "oom_kill": "OOM kills",
    "alloc_fail": "page allocations that failed",
}

RUN_COLUMNS: Columns = {
    "scenario": ("string", "the scenario's name"),
    "board_name": ("string", "the board's name"),
    "placement": ("string", "the policy's placement"),
    "fixes": ("list<string>", "the policy's fixes"),
    "duration_ns": ("int64", "the scenario's duration"),
    "end_ns": ("int64", "virtual time at the end (after the requests in flight finished)"),
    "requests": ("int64", "device requests"),
    "requests_met": ("int64", "requests that got every buffer within the deadline"),
    "requests_late": ("int64", "requests that got every buffer, late"),
    "requests_failed": ("int64", "requests that did not get every buffer"),
    "cma_idle_utilisation": (
        "float64",
        "mean share of the CMA areas in use (movable and gcma cache pages) while no device "
        "claimed or held a buffer; null without such samples",
    ),
    "refaults": ("int64", "workingset_refault_file + workingset_refault_anon"),
    "pages_migrated": ("int64", "pgmigrate_success"),
    "pgscan": ("int64", "pgscan_kswapd + pgscan_direct"),
    **{name: ("int64", meaning) for name, meaning in _COUNTERS.items()},
    "key": ("string", "the run's identity: a hash of its scenario, policy, seed and options"),
}
"""One row per run (``runs.parquet``)."""

REQUEST_COLUMNS: Columns = {
    "request": ("int64", "the request's position in its run, by issue time"),
    "device": ("string", "the device's name in the scenario"),
    "kind": ("string", "the device's kind (camera_sensor, video_decoder, tv_pipeline)"),
    "heap": ("string", "the dma-heap (CMA area) its buffers came from"),
    "action": ("string", "start or change_resolution"),
    "mode": ("string", "the mode asked for (1080p, 4k, 3d, ...)"),
    "issued_ns": ("int64", "when the request was issued"),
    "completed_ns": ("int64", "when its last buffer was ready or failed"),
    "latency_ns": ("int64", "completed_ns - issued_ns"),
    "deadline_ns": ("int64", "the device's deadline"),
    "outcome": ("string", "met, late or failed"),
    "cancelled": ("bool", "the device stopped while the request was in flight"),
    "buffers": ("int64", "buffers asked for (one cma_alloc each)"),
    "failed_buffers": ("int64", "buffers not allocated"),
    "errno": ("string", "the first failed buffer's error (EBUSY, ENOMEM); null if none"),
    "pages": ("int64", "pages asked for, over all buffers"),
    "pages_migrated": ("int64", "pages migrated to clear the ranges"),
    "busy_retries": ("int64", "cma_alloc busy retries (a range found busy, the next tried)"),
    "lock_wait_ns": ("int64", "time queued for the allocation lock, summed over buffers"),
    "blocker_owners": (
        "list<string>",
        "who held the pages that blocked it (the pin's or reference's holder, else the page's "
        "owner), largest group first",
    ),
    "blocker_pages": ("int64", "distinct pages that blocked it"),
    "key": ("string", "the run's key (joins runs.parquet)"),
}
"""One row per device request (``requests.parquet``)."""

SERIES_COLUMNS: Columns = {
    **{name: ("int64", "time-series sample (see ScenarioResult.series)") for name in SERIES_FIELDS},
    "key": ("string", "the run's key (joins runs.parquet)"),
}
"""One row per time-series sample, only when the sweep keeps them (``series.parquet``)."""

HOST_COLUMNS: Columns = {
    "wall_s": ("float64", "wall seconds the run took (Scenario.run's own figure)"),
    "task_s": (
        "float64",
        "wall seconds the worker spent on the run: building the machine, the run, its rows",
    ),
    "cpu_s": ("float64", "CPU seconds the run took"),
    "peak_rss_bytes": ("int64", "the worker's peak resident memory so far"),
    "worker": ("string", "host:pid of the worker process"),
    "key": ("string", "the run's key (joins runs.parquet)"),
}
"""The host's figures, one row per run (``host.parquet``): NOT deterministic."""

TABLES: dict[str, Columns] = {
    "runs": RUN_COLUMNS,
    "requests": REQUEST_COLUMNS,
    "series": SERIES_COLUMNS,
    "host": HOST_COLUMNS,
}
"""Every table by name; ``runs`` is the index of what is done (see :mod:`cmadev.sweeps.store`)."""

ORDER_WITHIN_RUN = {"requests": "request", "series": "t_ns"}
"""The column that orders a run's rows in a table that has several per run."""

Row = dict[str, Any]
Rows = dict[str, list[Row]]
"""Rows by table name: what a batch of runs sends back."""


def empty_rows() -> Rows:
    return {name: [] for name in TABLES}


def add_run(rows: Rows, key: str, result: ScenarioResult, requests: bool, series: bool) -> None:
    """Append ``result``'s deterministic rows to ``rows`` (a row per request and per sample
    only if asked); its host row is :func:`host_row`'s."""
    rows["runs"].append(run_row(key, result))
    if requests:
        rows["requests"].extend(request_row(key, i, r) for i, r in enumerate(result.requests))
    if series:
        rows["series"].extend(series_rows(key, result))


def run_row(key: str, result: ScenarioResult) -> Row:
    outcomes = [r.outcome for r in result.requests]
    counters = result.counters
    return {
        "scenario": result.scenario,
        "board_name": result.board,
        "placement": str(result.policy_spec["placement"]),
        "fixes": [str(f) for f in result.policy_spec["fixes"]],
        "duration_ns": result.duration_ns,
        "end_ns": result.end_ns,
        "requests": len(outcomes),
        "requests_met": outcomes.count("met"),
        "requests_late": outcomes.count("late"),
        "requests_failed": outcomes.count("failed"),
        "cma_idle_utilisation": result.cma_idle_utilisation(),
        "refaults": result.refaults,
        "pages_migrated": result.pages_migrated,
        "pgscan": result.pgscan,
        **{name: int(counters.get(name, 0)) for name in _COUNTERS},
        "key": key,
    }


def request_row(key: str, index: int, request: DeviceResult) -> Row:
    failed = request.failed_buffers
    groups = request.blocker_groups()
    return {
        "request": index,
        "device": request.device,
        "kind": request.kind,
        "heap": request.heap,
        "action": request.action,
        "mode": request.mode,
        "issued_ns": request.issued_ns,
        "completed_ns": request.completed_ns,
        "latency_ns": request.latency_ns,
        "deadline_ns": request.deadline_ns,
        "outcome": request.outcome,
        "cancelled": request.cancelled,
        "buffers": len(request.buffers),
        "failed_buffers": len(failed),
        "errno": _first_errno(failed),
        "pages": request.pages,
        "pages_migrated": request.pages_migrated,
        "busy_retries": request.busy_retries,
        "lock_wait_ns": request.lock_wait_ns,
        "blocker_owners": list(dict.fromkeys(g.owner for g in groups)),
        "blocker_pages": len({b.pfn for b in request.blockers}),
        "key": key,
    }


def _first_errno(failed: list[Any]) -> Optional[str]:
    return next((str(r.errno) for r in failed if r.errno), None)


def series_rows(key: str, result: ScenarioResult) -> list[Row]:
    columns = [result.series.get(name, []) for name in SERIES_FIELDS]
    return [
        {**dict(zip(SERIES_FIELDS, (int(v) for v in sample))), "key": key}
        for sample in zip(*columns)
    ]


def host_row(key: str, result: ScenarioResult, task_s: float) -> Row:
    host = result.host
    return {
        "wall_s": float(host.get("wall_s", 0.0)),
        "task_s": task_s,
        "cpu_s": float(host.get("cpu_s", 0.0)),
        "peak_rss_bytes": int(host.get("peak_rss_bytes", 0)),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "key": key,
    }


__all__ = [
    "HOST_COLUMNS",
    "ORDER_WITHIN_RUN",
    "PLAN_COLUMNS",
    "REQUEST_COLUMNS",
    "RUN_COLUMNS",
    "SERIES_COLUMNS",
    "TABLES",
    "Row",
    "Rows",
    "add_run",
    "empty_rows",
    "host_row",
]
