"""A run's events in files people open: ftrace text and the Chrome JSON trace-event format.

- ``.txt``: the trace as the kernel's ``/sys/kernel/tracing/trace`` file prints it (its
  header, then one line an event), so ``grep`` and ``awk`` scripts written for a device's
  trace work on the model's.
- ``.json``: ``{"traceEvents": [...]}`` (the Trace Event Format Perfetto's UI and
  ``chrome://tracing`` open): each run is a process (its policy and seed), each device a
  thread whose ``cma_alloc`` calls are complete slices named after the tracepoint (from its
  ``cma_alloc_start`` to its ``cma_alloc_finish``, with the area, size, alignment, result and
  busy retries as arguments; ``cma_alloc_busy_retry`` as instants on it), and the time series
  are counter tracks: CMA use (pages lent to movable pages, held by devices, gcma's cache,
  free), free memory and kswapd's share of each sampling interval.

Timestamps are microseconds of virtual time. The slices come from the run's results, so they
are there whether or not the run kept trace lines; the instants need the lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cmadev.capture import parse_trace_text
from cmadev.errors import CmadevError
from cmadev.results import ScenarioResult
from cmadev.units import PAGE_SIZE

TRACE_SUFFIXES = (".txt", ".json")

_MIB = 1024 * 1024


def ftrace_text(result: ScenarioResult) -> str:
    """The run's trace as the kernel's ``trace`` file."""
    if not result.trace_header:
        raise CmadevError(
            f"run {result.policy} seed {result.seed} kept no trace: run it with trace_limit > 0 "
            f"(the command line's --trace does)"
        )
    return result.trace_header + "".join(line + "\n" for line in result.trace)


def _us(ns: int) -> float:
    return ns / 1000.0


def chrome_events(result: ScenarioResult, pid: int) -> list[dict[str, Any]]:
    """One run's events (see the module comment) as process ``pid``."""
    name = f"{result.policy} seed {result.seed}"
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": pid, "name": "process_name", "args": {"name": name}},
        {"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}},
    ]
    tids: dict[str, int] = {}
    for req in result.requests:
        tid = tids.setdefault(req.device, len(tids) + 1)
        for buf in req.buffers:
            if buf.cancelled:
                continue
            events.append(
                {
                    "ph": "X",
                    "pid": pid,
                    "tid": tid,
                    "name": "cma_alloc",
                    "cat": "cma",
                    "ts": _us(buf.issued_ns),
                    "dur": _us(buf.latency_ns),
                    "args": {
                        "name": buf.area,
                        "count": buf.count,
                        "align": buf.align,
                        "result": "ok" if buf.ok else f"-{buf.errno}",
                        "pfn": buf.pfn,
                        "busy_retries": buf.busy_retries,
                        "pages_migrated": buf.pages_migrated,
                        "request": f"{req.action} {req.mode}",
                        "outcome": req.outcome,
                    },
                }
            )
    for device, tid in tids.items():
        events.append(
            {"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": device}}
        )
    if result.trace:
        parsed = parse_trace_text("\n".join(result.trace), f"{name} trace")
        by_comm = {device[:15]: tid for device, tid in tids.items()}  # TASK_COMM_LEN
        for e in parsed.of("cma_alloc_busy_retry"):
            found = by_comm.get(e.comm)
            if found is None:
                continue
            events.append(
                {
                    "ph": "i",
                    "s": "t",
                    "pid": pid,
                    "tid": found,
                    "name": "cma_alloc_busy_retry",
                    "cat": "cma",
                    "ts": _us(e.ts_ns),
                    "args": dict(e.fields),
                }
            )
    s = result.series
    t = s.get("t_ns", [])
    prev_busy = 0
    for i, ts in enumerate(t):
        cma = {
            "movable": s["cma_movable"][i],
            "device": s["cma_device"][i],
            "discardable": s.get("cma_cache", [0] * len(t))[i],
            "free": s["cma_free"][i],
        }
        events.append(
            {"ph": "C", "pid": pid, "name": "CMA use (pages)", "ts": _us(ts), "args": cma}
        )
        events.append(
            {
                "ph": "C",
                "pid": pid,
                "name": "free memory (MiB)",
                "ts": _us(ts),
                "args": {"MemFree": round(s["mem_free"][i] * PAGE_SIZE / _MIB, 2)},
            }
        )
        busy = s["kswapd_busy_ns"][i]
        share = 0.0 if i == 0 else (busy - prev_busy) / max(ts - t[i - 1], 1)
        prev_busy = busy
        events.append(
            {
                "ph": "C",
                "pid": pid,
                "name": "kswapd (busy share)",
                "ts": _us(ts),
                "args": {"kswapd0": round(share, 4)},
            }
        )
    return events


def chrome_json(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    for pid, result in enumerate(results, 1):
        events.extend(chrome_events(result, pid))
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_trace(results: Sequence[ScenarioResult], path: Path) -> list[Path]:
    """Write the runs' traces to ``path`` by its suffix: ``.json`` one file for all runs;
    ``.txt`` one file a run (``name-<policy>-seed<N>.txt`` when there are several)."""
    suffix = path.suffix.lower()
    if suffix not in TRACE_SUFFIXES:
        raise CmadevError(
            f"--trace {path}: give a file ending in .txt (ftrace text) or .json (Chrome "
            f"trace-event JSON, for Perfetto's UI)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(chrome_json(results)) + "\n", encoding="utf-8")
        return [path]
    if len(results) == 1:
        path.write_text(ftrace_text(results[0]), encoding="utf-8")
        return [path]
    written = []
    for r in results:
        label = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in r.policy)
        out = path.with_name(f"{path.stem}-{label}-seed{r.seed}{path.suffix}")
        out.write_text(ftrace_text(r), encoding="utf-8")
        written.append(out)
    return written


__all__ = ["TRACE_SUFFIXES", "chrome_events", "chrome_json", "ftrace_text", "write_trace"]
