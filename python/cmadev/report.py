"""The report of a comparison: PNG plots, ``results.json`` and a Markdown summary.

The report is written from plain data (:class:`RunRecord`: a run's ``to_dict()`` and its host
figures), not from live :class:`~cmadev.scenario.ScenarioResult` objects, so that a comparison
over many seeds need not keep every simulated machine in memory, and so that everything the
report shows is in ``results.json`` too.

``results.json`` has two parts: the simulation results (the same bytes for the same scenario,
policies and seeds) and, apart under ``"host"``, the figures that change from run to run: wall
and CPU time, resident memory and the speed-up over real time.

Plots use matplotlib's object API with the Agg canvas (no pyplot): no display is needed and
the process's pyplot backend, if any, is left alone.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import psutil  # type: ignore[import-untyped]

from cmadev.scenario import ComparisonTable, DeviceStats, Scenario, ScenarioResult
from cmadev.units import NS_PER_MS, NS_PER_S, format_duration, format_size

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SPEEDUP_TARGET = 1000.0
"""SPEC section 6: the shipped TV scenario runs at least this many times faster than real
time under every policy."""

PLOTS = {
    "latency": "latency.png",
    "cma": "cma_utilisation.png",
    "refaults": "refaults.png",
}
"""The plot files of a report folder, by what they show."""

_OUTCOME_STYLE = {  # marker, colour
    "met": ("o", "#2a9d3f"),
    "late": ("o", "#e08a00"),
    "failed": ("x", "#c8102e"),
}


# --------------------------------------------------------------------------------------------
# What a report is made of


@dataclass(frozen=True)
class RunRecord:
    """One run as data: the deterministic result (``ScenarioResult.to_dict()``) and the
    host figures, kept apart because they differ from run to run."""

    policy: str
    seed: int
    data: dict[str, Any]
    host: dict[str, float]

    @classmethod
    def of(cls, policy: str, result: ScenarioResult) -> RunRecord:
        return cls(policy, result.seed, result.to_dict(), dict(result.host))

    @property
    def simulated_s(self) -> float:
        return float(self.data["end_ns"]) / NS_PER_S

    @property
    def cma_pages(self) -> int:
        return sum(int(area["total_pages"]) for area in self.data["cma"].values())

    @property
    def placement(self) -> str:
        return str(self.data["policy_spec"]["placement"])

    @property
    def has_fixes(self) -> bool:
        return bool(self.data["policy_spec"]["fixes"])


@dataclass
class Comparison:
    """A scenario run under several policies and seeds: the table and every run."""

    scenario: Scenario
    table: ComparisonTable
    runs: list[RunRecord]
    wall_s: float = 0.0
    """Wall time of all the runs (and their bookkeeping), filled in by the caller."""
    plots_s: float = 0.0
    """Wall time of drawing the plots (set by :func:`write_report`)."""
    command: str = ""
    """The command line that reproduces the comparison, for the summary."""
    started: float = field(default_factory=time.time)

    @property
    def policies(self) -> list[str]:
        return [row.policy for row in self.table.rows]

    @property
    def seeds(self) -> list[int]:
        return list(self.table.rows[0].seeds) if self.table.rows else []

    def runs_of(self, policy: str) -> list[RunRecord]:
        return [r for r in self.runs if r.policy == policy]

    def first_runs(self) -> list[RunRecord]:
        """The first seed's run of each policy, in table order (what the timelines show)."""
        return [self.runs_of(p)[0] for p in self.policies if self.runs_of(p)]


def policy_host(runs: list[RunRecord]) -> dict[str, float]:
    """Host figures of one policy's runs: mean wall and CPU seconds per run, the highest
    peak RSS, and the speed-up as total simulated seconds over total wall seconds (a mean of
    ratios would let one lucky short run dominate)."""
    wall = sum(r.host["wall_s"] for r in runs)
    simulated = sum(r.simulated_s for r in runs)
    return {
        "runs": float(len(runs)),
        "simulated_s": simulated,
        "wall_s": wall / len(runs) if runs else 0.0,
        "cpu_s": sum(r.host["cpu_s"] for r in runs) / len(runs) if runs else 0.0,
        "peak_rss_bytes": float(max((r.host["peak_rss_bytes"] for r in runs), default=0)),
        "speedup": simulated / wall if wall > 0 else float("inf"),
    }


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


# --------------------------------------------------------------------------------------------
# Table cells (shared by the terminal table and the Markdown summary)

DEVICE_COLUMNS = (
    *("policy", "device", "requests", "success"),
    *("p50", "p99", "max", "deadline", "misses"),
)
SYSTEM_COLUMNS = ("policy", "CMA use idle", "refaults", "migrated", "pgscan")
HOST_COLUMNS = ("policy", "runs", "wall/run", "CPU/run", "peak RSS", "speed-up")


def ms(ns: Optional[float]) -> str:
    """A latency for a table ("37.2 ms"); "-" when there is none."""
    return "-" if ns is None else format_duration(ns)


def percent(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def device_cells(stats: DeviceStats) -> list[str]:
    """requests, success, p50, p99, max, deadline, misses."""
    return [
        str(stats.requests),
        percent(stats.success_rate),
        ms(stats.p50_ns),
        ms(stats.p99_ns),
        ms(stats.max_ns),
        ms(stats.deadline_ns),
        str(stats.deadline_misses),
    ]


def over_deadline(stats: DeviceStats, value: Optional[int]) -> bool:
    return value is not None and stats.deadline_ns > 0 and value > stats.deadline_ns


def system_cells(comparison: Comparison, policy: str) -> list[str]:
    """CMA use while idle, refaults, pages migrated, pages scanned (means per run)."""
    row = comparison.table.row(policy)
    return [
        percent(row.cma_idle_utilisation),
        f"{row.refaults:,.0f}",
        f"{row.pages_migrated:,.0f}",
        f"{row.pgscan:,.0f}",
    ]


def host_cells(comparison: Comparison, policy: str) -> list[str]:
    """runs, wall and CPU per run, peak RSS, speed-up over real time."""
    h = policy_host(comparison.runs_of(policy))
    return [
        f"{h['runs']:.0f}",
        f"{h['wall_s'] * 1000:.0f} ms",
        f"{h['cpu_s'] * 1000:.0f} ms",
        format_size(h["peak_rss_bytes"]),
        f"{h['speedup']:,.0f}x",
    ]


def slowest(comparison: Comparison) -> tuple[str, float]:
    """The policy with the lowest speed-up over real time, and that speed-up."""
    speeds = {p: policy_host(comparison.runs_of(p))["speedup"] for p in comparison.policies}
    policy = min(speeds, key=lambda p: speeds[p])
    return policy, speeds[policy]


# --------------------------------------------------------------------------------------------
# results.json


def results_document(comparison: Comparison) -> dict[str, Any]:
    """Everything as plain data; all but ``"host"`` is the same for the same inputs."""
    return {
        "format": "cmadev-report/1",
        "scenario": comparison.scenario.model_dump(mode="json"),
        "policies": comparison.policies,
        "seeds": comparison.seeds,
        "comparison": comparison.table.to_dict(),
        "runs": [r.data for r in comparison.runs],
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
        "policies": {p: policy_host(comparison.runs_of(p)) for p in comparison.policies},
    }


# --------------------------------------------------------------------------------------------
# Plots


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, without pyplot (no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colours(comparison: Comparison) -> dict[str, tuple[str, str]]:
    """Colour by placement, solid line with fixes and dashed without, so that each
    placement's two variants read as a pair."""
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    placements: list[str] = []
    styles = {}
    for run in comparison.first_runs():
        if run.placement not in placements:
            placements.append(run.placement)
        colour = palette[placements.index(run.placement) % len(palette)]
        styles[run.policy] = (colour, "-" if run.has_fixes else "--")
    return styles


def _busy_spans(run: RunRecord) -> list[tuple[float, float]]:
    """The union of the devices' busy intervals, in seconds."""
    end = run.data["end_ns"]
    spans = sorted(
        (start, end if stop is None else stop)
        for intervals in run.data["busy"].values()
        for start, stop in intervals
    )
    merged: list[list[int]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(a / NS_PER_S, b / NS_PER_S) for a, b in merged]


def plot_cma_utilisation(comparison: Comparison, path: Path) -> None:
    """One panel per policy: the share of the CMA area lent to movable pages, and the share
    otherwise in use (device buffers; gcma's cleancache), with the devices' busy time
    shaded. Idle-time lending is what the placements differ in."""
    runs = comparison.first_runs()
    cols = min(3, len(runs)) or 1
    rows = -(-len(runs) // cols) or 1
    fig = _figure(4.2 * cols, 2.3 * rows + 0.6)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for ax, run in zip(axes.flat, runs):
        _cma_panel(ax, run, comparison.table.row(run.policy).cma_idle_utilisation)
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of CMA area")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    seed = runs[0].seed if runs else 0
    fig.suptitle(f"{comparison.scenario.name}: CMA area use over time (seed {seed})")
    fig.savefig(path, dpi=110)


def _cma_panel(ax: Axes, run: RunRecord, idle: Optional[float]) -> None:
    series = run.data["series"]
    total = run.cma_pages or 1
    times = series.get("t_ns", [])
    t = [x / NS_PER_S for x in times]
    movable = [m / total for m in series.get("cma_movable", [])]
    devices = [min(m + d / total, 1.0) for m, d in zip(movable, _device_pages(run, times))]
    used = [max(1 - f / total, d) for f, d in zip(series.get("cma_free", []), devices)]
    for start, stop in _busy_spans(run):
        ax.axvspan(start, stop, color="#e4e4e4", zorder=0, lw=0)
    ax.axvspan(0, 0, color="#e4e4e4", label="a device is busy")
    ax.fill_between(t, 0, movable, color="#1f77b4", alpha=0.85, lw=0, label="movable pages")
    ax.fill_between(t, movable, devices, color="#ff7f0e", alpha=0.8, lw=0, label="device buffers")
    ax.fill_between(
        t, devices, used, color="#2ca02c", alpha=0.6, lw=0, label="other (gcma: cleancache)"
    )
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, t[-1] if t else 1)
    ax.set_title(f"{run.policy}\nidle use {percent(idle)}", fontsize="small")
    ax.yaxis.set_major_formatter(_percent_formatter())


def _device_pages(run: RunRecord, times: list[int]) -> list[int]:
    """Pages the devices hold at each time: each allocated buffer from when it was ready
    to the end of its device's busy interval (a stop, a change of resolution, or the failure
    of its request, which gives back what was allocated)."""
    holds = []
    for req in run.data["requests"]:
        intervals = run.data["busy"].get(req["device"], [])
        end = _busy_end(intervals, req["issued_ns"], run.data["end_ns"])
        holds += [(b["completed_ns"], end, b["pages"]) for b in req["buffers"] if not b["errno"]]
    return [sum(pages for start, stop, pages in holds if start <= t < stop) for t in times]


def _busy_end(intervals: list[list[Optional[int]]], issued: int, end_ns: int) -> int:
    for start, stop in intervals:
        if start is not None and start <= issued and (stop is None or issued < stop):
            return end_ns if stop is None else stop
    return end_ns


def _thousands_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1, decimals=0)


def plot_latencies(comparison: Comparison, path: Path) -> None:
    """One panel per device: every request's latency under each policy (all seeds), by
    outcome, against the device's deadline; a box where there are enough points to make
    one. Log scale: latencies span microseconds (an idle area) to seconds (blocked ranges)."""
    devices = [entry.name for entry in comparison.scenario.devices]
    policies = comparison.policies
    fig = _figure(max(6.0, 0.75 * len(policies) + 2.5), 2.4 * max(len(devices), 1) + 1.2)
    axes = fig.subplots(max(len(devices), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, device in zip(axes, devices):
        _latency_panel(ax, comparison, device)
    axes[-1].set_xticks(range(len(policies)), policies, rotation=35, ha="right")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # an outcome may appear on another device only
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
    fig.suptitle(f"{comparison.scenario.name}: device allocation latency against the deadline")
    fig.savefig(path, dpi=110)


def _latency_panel(ax: Axes, comparison: Comparison, device: str) -> None:
    stats = comparison.table.rows[0].devices.get(device) if comparison.table.rows else None
    seen: set[str] = set()
    for i, policy in enumerate(comparison.policies):
        requests = [
            req
            for run in comparison.runs_of(policy)
            for req in run.data["requests"]
            if req["device"] == device
        ]
        latencies = [req["latency_ns"] / NS_PER_MS for req in requests]
        if len(latencies) >= 5:
            ax.boxplot([latencies], positions=[i], widths=0.5, showfliers=False, manage_ticks=False)
        for j, req in enumerate(requests):
            outcome = str(req["outcome"])
            marker, colour = _OUTCOME_STYLE[outcome]
            x = i + (j - (len(requests) - 1) / 2) * min(0.5 / max(len(requests), 1), 0.12)
            ax.scatter(
                [x],
                [max(req["latency_ns"] / NS_PER_MS, 1e-3)],
                s=22,
                zorder=3,
                marker=marker,
                color=colour,
                label=None if outcome in seen else outcome,
            )
            seen.add(outcome)
    if stats is not None and stats.deadline_ns:
        deadline = stats.deadline_ns / NS_PER_MS
        ax.axhline(deadline, color="#c8102e", ls="--", lw=1, zorder=2)
        ax.annotate(
            f"deadline {format_duration(stats.deadline_ns)}",
            (1.0, deadline),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize="small",
            color="#c8102e",
        )
    _log_ms_axis(ax, latencies_of(comparison, device), stats.deadline_ns if stats else 0)
    ax.set_ylabel(f"{device}\nlatency (ms)")
    ax.set_xlim(-0.6, len(comparison.policies) - 0.4)
    ax.grid(axis="y", which="major", alpha=0.3)


def latencies_of(comparison: Comparison, device: str) -> list[float]:
    """Every latency of ``device``'s requests, over all policies and seeds, in ms."""
    return [
        req["latency_ns"] / NS_PER_MS
        for run in comparison.runs
        for req in run.data["requests"]
        if req["device"] == device
    ]


def _log_ms_axis(ax: Axes, latencies: list[float], deadline_ns: int) -> None:
    """A log axis in plain milliseconds (1, 2, 5, 10, ...), with room above the deadline
    line and below the quickest request."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = [v for v in [*latencies, deadline_ns / NS_PER_MS] if v > 0] or [1.0]
    ax.set_yscale("log")
    ax.set_ylim(min(values) / 2, max(values) * 2.5)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_refaults(comparison: Comparison, path: Path) -> None:
    """Refaults (page cache thrown away and read back) and pages scanned by reclaim over
    time, a line per policy: what an idle CMA area that is not lent costs the system."""
    fig = _figure(11.0, 4.2)
    left, right = fig.subplots(1, 2, sharex=True)
    styles = _colours(comparison)
    for run in comparison.first_runs():
        series = run.data["series"]
        t = [x / NS_PER_S for x in series.get("t_ns", [])]
        colour, dash = styles[run.policy]
        left.plot(t, series.get("refaults", []), color=colour, ls=dash, lw=1.4, label=run.policy)
        right.plot(t, series.get("pgscan", []), color=colour, ls=dash, lw=1.4)
    left.set_title("refaults (cumulative)", fontsize="medium")
    right.set_title("pages scanned by reclaim (cumulative)", fontsize="medium")
    for ax in (left, right):
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(_thousands_formatter())
    seed = comparison.seeds[0] if comparison.seeds else 0
    fig.legend(loc="outside right center", fontsize="small")
    fig.suptitle(
        f"{comparison.scenario.name}: refaults and reclaim (seed {seed}; solid: with fixes, "
        f"dashed: without)"
    )
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------------------------
# summary.md


def _md_table(head: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    right = ["---" if h in ("policy", "device") else "---:" for h in head]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(right) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _md_device_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for row in comparison.table.rows:
        for i, (name, stats) in enumerate(row.devices.items()):
            cells = device_cells(stats)
            for k, value in ((2, stats.p50_ns), (3, stats.p99_ns), (4, stats.max_ns)):
                if over_deadline(stats, value):
                    cells[k] = f"**{cells[k]}**"
            if stats.deadline_misses:
                cells[6] = f"**{cells[6]}**"
            rows.append([f"`{row.policy}`" if i == 0 else "", name, *cells])
    return rows


def first_sentence(text: str) -> str:
    """The first sentence of a description: the one-line summary in listings and reports
    (a full stop followed by a capital, so that "e.g. 4 x 12 MiB" does not end it)."""
    text = text.strip()
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " "):
            following = text[i + 2 : i + 3]
            if not following or following.isupper() or following in "'\"(":
                return text[: i + 1]
    return text


def summary_markdown(comparison: Comparison) -> str:
    """The short Markdown summary: the tables, the plots (relative paths), the host figures
    and how to reproduce."""
    sc = comparison.scenario
    seeds = comparison.seeds
    policy, speed = slowest(comparison)
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
        "Latency: from the request to its last buffer ready (failed requests are counted in "
        "misses, not in the percentiles). **Bold**: past the deadline.",
        "",
        *_md_table(DEVICE_COLUMNS, _md_device_rows(comparison)),
        "",
        f"![Device latency against the deadline]({PLOTS['latency']})",
        "",
        "## System",
        "",
        "CMA use idle: mean share of the CMA area put to use while no device holds buffers: "
        "movable pages, or, under gcma, discardable cleancache pages. Refaults, pages migrated "
        "and pages scanned by reclaim (pgscan): means per run.",
        "",
        *_md_table(
            SYSTEM_COLUMNS,
            [[f"`{p}`", *system_cells(comparison, p)] for p in comparison.policies],
        ),
        "",
        f"![CMA area use over time]({PLOTS['cma']})",
        "",
        f"![Refaults and reclaim scanning over time]({PLOTS['refaults']})",
        "",
        "## Host",
        "",
        *_md_table(
            HOST_COLUMNS, [[f"`{p}`", *host_cells(comparison, p)] for p in comparison.policies]
        ),
        "",
        _host_line(comparison),
        "",
        f"Slowest policy: `{policy}` at {speed:,.0f}x real time (SPEC section 6 asks for at "
        f"least {SPEEDUP_TARGET:,.0f}x): {'met' if speed >= SPEEDUP_TARGET else 'NOT met'}.",
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


# --------------------------------------------------------------------------------------------
# Writing the folder


def write_report(comparison: Comparison, out: Path) -> dict[str, Path]:
    """Write the plots, ``results.json`` and ``summary.md`` into ``out`` (created if need
    be); returns the files by kind."""
    out.mkdir(parents=True, exist_ok=True)
    files = {kind: out / name for kind, name in PLOTS.items()}
    started = time.perf_counter()
    plot_latencies(comparison, files["latency"])
    plot_cma_utilisation(comparison, files["cma"])
    plot_refaults(comparison, files["refaults"])
    comparison.plots_s = time.perf_counter() - started
    files["results"] = out / "results.json"
    files["results"].write_text(
        json.dumps(results_document(comparison), sort_keys=True, indent=1) + "\n",
        encoding="utf-8",
    )
    files["summary"] = out / "summary.md"
    files["summary"].write_text(summary_markdown(comparison), encoding="utf-8")
    return files


__all__ = [
    "PLOTS",
    "SPEEDUP_TARGET",
    "Comparison",
    "RunRecord",
    "first_sentence",
    "host_document",
    "plot_cma_utilisation",
    "plot_latencies",
    "plot_refaults",
    "policy_host",
    "results_document",
    "summary_markdown",
    "write_report",
]
