"""The report folder of a comparison: PNG plots, ``results.json`` and a Markdown summary.

Everything the report shows is in ``results.json`` too. It has two parts: the simulation
results (the same bytes for the same scenario, policies and seeds) and, apart under
``"host"``, the figures that change from run to run: wall and CPU time, resident memory and
the speed-up over real time.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Optional

import psutil  # type: ignore[import-untyped]

from cmadev.report.comparison import SPEEDUP_TARGET, Comparison
from cmadev.report.format import (
    DEVICE_COLUMNS,
    DEVICE_LEGEND,
    HOST_COLUMNS,
    SYSTEM_COLUMNS,
    SYSTEM_LEGEND,
    first_sentence,
    markdown_table,
)
from cmadev.report.plots import PLOTS, PlotStandby, draw_plots
from cmadev.units import format_duration


def host_info() -> dict[str, Any]:
    """The machine the figures were measured on: they mean little without it."""
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": psutil.cpu_count(logical=True),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
    }


def _cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def results_document(comparison: Comparison) -> dict[str, Any]:
    """Everything as plain data; all but ``"host"`` is the same for the same inputs."""
    return {
        "format": "cmadev-report/1",
        "scenario": comparison.scenario.model_dump(mode="json"),
        "policies": comparison.policies,
        "seeds": comparison.seeds,
        "comparison": comparison.to_dict(),
        "runs": [r.to_dict() for r in comparison.runs],
        "host": host_document(comparison),
    }


def host_document(comparison: Comparison) -> dict[str, Any]:
    """The host figures: the machine, each run's, each policy's and the whole command's."""
    return {
        "machine": host_info(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(comparison.started)),
        "runs_wall_s": comparison.wall_s,
        "plots_wall_s": comparison.plots_s,
        "speedup_target": SPEEDUP_TARGET,
        "runs": [
            {"policy": r.policy, "seed": r.seed, "simulated_s": r.simulated_s, **r.host}
            for r in comparison.runs
        ],
        "policies": {p: comparison.host(p) for p in comparison.policies},
    }


def _device_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for row in comparison.rows:
        for i, (name, stats) in enumerate(row.devices.items()):
            cells = stats.cells()
            for k, value in ((2, stats.p50_ns), (3, stats.p99_ns), (4, stats.max_ns)):
                if stats.over_deadline(value):
                    cells[k] = f"**{cells[k]}**"
            if stats.deadline_misses:
                cells[6] = f"**{cells[6]}**"
            rows.append([f"`{row.policy}`" if i == 0 else "", name, *cells])
    return rows


def summary_markdown(comparison: Comparison) -> str:
    """The short Markdown summary: the tables with their legends, the plots (relative paths),
    the host figures and how to reproduce."""
    sc = comparison.scenario
    seeds = comparison.seeds
    policy, speed = comparison.slowest()
    lines = [
        f"# cmadev report: `{sc.name}`",
        "",
        first_sentence(sc.description),
        "",
        f"Board `{sc.board_spec().name}`, {format_duration(sc.duration)} simulated per run, "
        f"{len(comparison.policies)} policies x {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
        f" ({', '.join(map(str, seeds))}): {len(comparison.runs)} runs.",
    ]
    if comparison.command:
        lines += ["", f"Reproduce: `{comparison.command}`"]
    lines += [
        "",
        "## Devices",
        "",
        f"{DEVICE_LEGEND} **Bold**: past the deadline.",
        "",
        *markdown_table(DEVICE_COLUMNS, _device_rows(comparison)),
        "",
        f"![Device latency against the deadline]({PLOTS['latency']})",
        "",
        "## System",
        "",
        SYSTEM_LEGEND,
        "",
        *markdown_table(
            SYSTEM_COLUMNS, [[f"`{r.policy}`", *r.system_cells()] for r in comparison.rows]
        ),
        "",
    ]
    for group in comparison.identical():
        names = ", ".join(f"`{p}`" for p in group)
        lines += [f"{names}: identical results ({comparison.why_identical(group)}).", ""]
    lines += [
        f"![CMA area use over time]({PLOTS['cma']})",
        "",
        f"![Refaults and reclaim scanning over time]({PLOTS['refaults']})",
        "",
        "## Host",
        "",
        *markdown_table(
            HOST_COLUMNS,
            [[f"`{p}`", *comparison.host_cells(p)] for p in comparison.policies],
        ),
        "",
        _host_line(comparison),
        "",
        f"Slowest policy: `{policy}` at {speed:,.0f}x real time (the project aims at "
        f"{SPEEDUP_TARGET:,.0f}x or more): {'met' if speed >= SPEEDUP_TARGET else 'NOT met'}.",
        "Speed-up: simulated seconds per wall second. Peak RSS: the process's high-water mark "
        "after the run (getrusage). Host figures vary from run to run; everything else in "
        "`results.json` is the same for the same inputs.",
        "",
    ]
    return "\n".join(lines)


def _host_line(comparison: Comparison) -> str:
    info = host_info()
    return (
        f"Measured on {info['cpu']} ({info['cpus']} CPUs), {info['platform']}, Python "
        f"{info['python']}. The runs took {comparison.wall_s:.2f} s of wall time, the plots "
        f"{comparison.plots_s:.2f} s."
    )


def write_report(
    comparison: Comparison, out: Path, standby: Optional[PlotStandby] = None
) -> dict[str, Path]:
    """Write the plots (drawn by ``standby`` if given, see :class:`PlotStandby`),
    ``results.json`` and ``summary.md`` into ``out`` (created if need be); returns the
    files by kind."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = draw_plots(comparison, out, standby=standby)
    comparison.plots_s = time.perf_counter() - started
    files["results"] = out / "results.json"
    files["results"].write_text(
        json.dumps(results_document(comparison), sort_keys=True, indent=1) + "\n",
        encoding="utf-8",
    )
    files["summary"] = out / "summary.md"
    files["summary"].write_text(summary_markdown(comparison), encoding="utf-8")
    return files


__all__ = ["host_document", "host_info", "results_document", "summary_markdown", "write_report"]
