"""The report's plots: device latency against the deadline, CMA area use over time, refaults
and reclaim.

Plots use matplotlib's object API with the Agg canvas (no pyplot): no display is needed and
the process's pyplot backend, if any, is left alone.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from cmadev.host import usable_cores
from cmadev.report.comparison import Comparison
from cmadev.report.format import percent
from cmadev.results import DeviceResult, ScenarioResult, cause_blockers
from cmadev.units import NS_PER_MS, NS_PER_S, format_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


class Margins(NamedTuple):
    """Room around the axes of a figure, in inches, and between them as a share of an axes
    (matplotlib's ``subplots_adjust``). A fixed layout: constrained layout measured every
    label and took half of the time a report's plots take."""

    left: float
    right: float
    top: float
    bottom: float
    hspace: float = 0.2
    wspace: float = 0.2


def _figure(width: float, height: float, margins: Margins) -> Figure:
    """A figure on the Agg canvas, without pyplot (no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=margins.left / width,
        right=1 - margins.right / width,
        top=1 - margins.top / height,
        bottom=margins.bottom / height,
        hspace=margins.hspace,
        wspace=margins.wspace,
    )
    return fig


def _colours(comparison: Comparison) -> dict[str, tuple[str, str]]:
    """Colour by placement, solid line with fixes and dashed without, so that each
    placement's two variants read as a pair."""
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    placements: list[str] = []
    styles = {}
    for run in comparison.first_runs():
        placement = str(run.policy_spec["placement"])
        if placement not in placements:
            placements.append(placement)
        colour = palette[placements.index(placement) % len(palette)]
        styles[run.policy] = (colour, "-" if run.policy_spec["fixes"] else "--")
    return styles


def _busy_spans(run: ScenarioResult) -> list[tuple[float, float]]:
    """The union of the devices' busy intervals, in seconds."""
    spans = sorted(run.busy_intervals())
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
    margins = Margins(left=0.8, right=0.2, top=0.75, bottom=0.95, hspace=0.55, wspace=0.08)
    fig = _figure(4.2 * cols, 2.3 * rows + 1.2, margins)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for ax, run in zip(axes.flat, runs):
        _cma_panel(ax, run, comparison.row(run.policy).cma_idle_utilisation)
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of CMA area")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=4, fontsize="small", frameon=False)
    seed = runs[0].seed if runs else 0
    fig.suptitle(f"{comparison.scenario.name}: CMA area use over time (seed {seed})")
    fig.savefig(path, dpi=110)


def _cma_panel(ax: Axes, run: ScenarioResult, idle: Optional[float]) -> None:
    series = run.series
    total = run.cma_pages or 1
    t = [x / NS_PER_S for x in series.get("t_ns", [])]
    movable = [m / total for m in series.get("cma_movable", [])]
    devices = [min(m + d / total, 1.0) for m, d in zip(movable, series.get("cma_device", []))]
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
    devices = comparison.devices
    policies = comparison.policies
    # Tick labels are rotated 35 degrees and end under their tick: about 0.07 inch a
    # character along the text, so sin 35 of that below the axes and cos 35 to the left.
    longest = max((len(p) for p in policies), default=8)
    first = len(policies[0]) if policies else 8
    margins = Margins(
        left=max(1.0, 0.075 * first - 0.3),
        right=0.3,
        top=0.5,
        bottom=0.6 + 0.04 * longest,
        hspace=0.15,
    )
    rows = max(len(devices), 1)
    fig = _figure(
        max(6.0, 0.75 * len(policies) + 2.5), 2.4 * rows + margins.top + margins.bottom, margins
    )
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
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
        fig.legend(handles, labels, loc="lower center", ncols=4, fontsize="small", frameon=False)
    fig.suptitle(f"{comparison.scenario.name}: device allocation latency against the deadline")
    fig.savefig(path, dpi=110)


def _latency_panel(ax: Axes, comparison: Comparison, device: str) -> None:
    stats = comparison.rows[0].devices.get(device) if comparison.rows else None
    seen: set[str] = set()
    for i, policy in enumerate(comparison.policies):
        requests = [req for run in comparison.runs_of(policy) for req in run.requests_of(device)]
        latencies = [req.latency_ns / NS_PER_MS for req in requests]
        if len(latencies) >= 5:
            ax.boxplot([latencies], positions=[i], widths=0.5, showfliers=False, manage_ticks=False)
        spread = min(0.5 / max(len(requests), 1), 0.12)
        points: dict[str, tuple[list[float], list[float]]] = {}
        for j, req in enumerate(requests):
            xs, ys = points.setdefault(req.outcome, ([], []))
            xs.append(i + (j - (len(requests) - 1) / 2) * spread)
            ys.append(max(req.latency_ns / NS_PER_MS, 1e-3))
        for outcome, (xs, ys) in points.items():  # one collection per outcome, not per point
            marker, colour = _OUTCOME_STYLE[outcome]
            label = None if outcome in seen else outcome
            ax.scatter(xs, ys, s=22, zorder=3, marker=marker, color=colour, label=label)
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
        req.latency_ns / NS_PER_MS for run in comparison.runs for req in run.requests_of(device)
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
    time, a line per policy: what an idle CMA area that is not lent costs the system.
    Policies whose lines are the same are drawn once, under all their names."""
    groups = _same_lines(comparison.first_runs())
    legend_room = 0.7 + 0.07 * max(
        (len(" = ".join(r.policy for r in g)) for g in groups), default=10
    )
    fig = _figure(8.0 + legend_room, 4.2, Margins(0.9, legend_room, 0.6, 0.6, wspace=0.3))
    left, right = fig.subplots(1, 2, sharex=True)
    styles = _colours(comparison)
    for runs in groups:
        run = runs[0]
        t = [x / NS_PER_S for x in run.series.get("t_ns", [])]
        colour, dash = styles[run.policy]
        label = run.policy if len(runs) == 1 else " = ".join(r.policy for r in runs)
        left.plot(t, run.series.get("refaults", []), color=colour, ls=dash, lw=1.4, label=label)
        right.plot(t, run.series.get("pgscan", []), color=colour, ls=dash, lw=1.4)
    left.set_title("refaults (cumulative)", fontsize="medium")
    right.set_title("pages scanned by reclaim (cumulative)", fontsize="medium")
    for ax in (left, right):
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(_thousands_formatter())
    seed = comparison.seeds[0] if comparison.seeds else 0
    fig.legend(loc="center right", fontsize="small", frameon=False)
    fig.suptitle(
        f"{comparison.scenario.name}: refaults and reclaim (seed {seed}; solid: with fixes, "
        f"dashed: without; 'a = b': identical lines)"
    )
    fig.savefig(path, dpi=110)


def _same_lines(runs: list[ScenarioResult]) -> list[list[ScenarioResult]]:
    """The runs grouped by identical refault and pgscan series, in first-seen order."""
    groups: dict[tuple[tuple[Any, ...], tuple[Any, ...]], list[ScenarioResult]] = {}
    for run in runs:
        key = (tuple(run.series.get("refaults", [])), tuple(run.series.get("pgscan", [])))
        groups.setdefault(key, []).append(run)
    return list(groups.values())


AREA_COLOURS = {
    "free": "#f2f2f2",
    "movable": "#8fb8de",
    "pinned": "#d62728",
    "device": "#2ca02c",
    "discardable": "#e6c229",
    "unmovable": "#555555",
}
"""The colour of each page state in the area pictures."""

_BLOCKER_MARKERS = ("X", "D", "^", "s", "P", "v", "*", "o")


def area_matrix(maps: dict[str, Any], area: str) -> tuple[list[int], Any, int, int]:
    """The area's samples as a (bins x samples) array of state codes: ``(t_ns, array,
    base_pfn, bin_pages)``."""
    import numpy as np

    names = [a["name"] for a in maps["areas"]]
    i = names.index(area)
    info = maps["areas"][i]
    nbins = -(-info["pages"] // info["bin_pages"])
    grid = np.zeros((nbins, len(maps["t_ns"])), dtype=np.uint8)
    for col, sample in enumerate(maps["runs"]):
        row = 0
        for state, count in sample[i]:
            grid[row : row + count, col] = state
            row += count
    return list(maps["t_ns"]), grid, int(info["base_pfn"]), int(info["bin_pages"])


def plot_area(run: ScenarioResult, request: DeviceResult, path: Path) -> None:
    """The picture of ``request``'s CMA area over the run: pfn against time, coloured by page
    state; the request's span shaded, and its blocking pages marked, one marker per
    responsible owner, named in the legend."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    area = request.heap.rsplit("/", 1)[-1]  # "/dev/dma_heap/tv" -> the area "tv"
    t_ns, grid, base, bin_pages = area_matrix(run.area_maps, area)
    states = list(run.area_maps["states"])
    colours = ListedColormap([AREA_COLOURS[s] for s in states])
    norm = BoundaryNorm([i - 0.5 for i in range(len(states) + 1)], len(states))
    fig = _figure(9.0, 5.2, Margins(left=0.9, right=2.6, top=0.5, bottom=0.6))
    ax = fig.add_subplot(1, 1, 1)
    step = (t_ns[1] - t_ns[0]) if len(t_ns) > 1 else run.sample_interval_ns
    extent = (
        t_ns[0] / NS_PER_S,
        (t_ns[-1] + step) / NS_PER_S,
        base,
        base + grid.shape[0] * bin_pages,
    )
    ax.imshow(
        grid,
        aspect="auto",
        origin="lower",
        extent=extent,
        cmap=colours,
        norm=norm,
        interpolation="nearest",
    )
    ax.axvspan(
        request.issued_ns / NS_PER_S, request.completed_ns / NS_PER_S, color="black", alpha=0.12
    )
    handles: list[Any] = [Patch(color=AREA_COLOURS[s], label=s) for s in states]
    for k, group in enumerate(request.blocker_groups()):
        marker = _BLOCKER_MARKERS[k % len(_BLOCKER_MARKERS)]
        ys = [
            b.pfn
            for b in cause_blockers(request.blockers)
            if (b.holder or b.owner) == group.owner and b.reason == group.reason
        ]
        xs = [request.completed_ns / NS_PER_S] * len(ys)
        handles.append(
            ax.scatter(
                xs,
                ys,
                marker=marker,
                s=36,
                color="black",
                zorder=3,
                label=f"{group.owner}: {group.reason}, {group.pages} page"
                f"{'s' if group.pages != 1 else ''}",
            )
        )
    verdict = request.outcome
    ax.set_title(
        f"{run.scenario} / {run.policy} seed {run.seed}: {request.device} {request.action} "
        f"{request.mode} at {format_duration(request.issued_ns)}: {verdict} in "
        f"{format_duration(request.latency_ns)}",
        fontsize=9,
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"pfn in CMA area {area!r} (bins of {bin_pages} pages)")
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False
    )
    fig.savefig(path, dpi=110)


def area_plots(comparison: Comparison, folder: Path) -> list[Path]:
    """One area picture per failed or late request of every run that recorded area maps."""
    jobs = _area_jobs(comparison, folder)
    _draw_all([job for _, job in jobs])
    return [path for path, _ in jobs]


def _area_jobs(comparison: Comparison, folder: Path) -> list[tuple[Path, Callable[[], None]]]:
    """The area pictures to draw: each file and the call that draws it."""
    jobs: list[tuple[Path, Callable[[], None]]] = []
    for run in comparison.runs:
        if not run.area_maps:
            continue
        for n, request in enumerate(run.requests):
            if request.outcome == "met" or request.cancelled:
                continue
            label = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run.policy)
            path = folder / f"area-{label}-seed{run.seed}-{request.device}-{n}.png"
            jobs.append((path, functools.partial(plot_area, run, request, path)))
    return jobs


def _plot_jobs(comparison: Comparison, folder: Path) -> list[tuple[str, Path, Callable[[], None]]]:
    """Every plot of a report folder: its kind (the area pictures as ``area:<file name>``),
    its file and the call that draws it, in the order the summary shows them."""
    files = {kind: folder / name for kind, name in PLOTS.items()}
    draw = {"latency": plot_latencies, "cma": plot_cma_utilisation, "refaults": plot_refaults}
    jobs: list[tuple[str, Path, Callable[[], None]]] = [
        (kind, path, functools.partial(draw[kind], comparison, path))
        for kind, path in files.items()
    ]
    jobs += [(f"area:{path.name}", path, job) for path, job in _area_jobs(comparison, folder)]
    return jobs


def _costliest_first(jobs: list[Callable[[], None]]) -> list[Callable[[], None]]:
    """The jobs in the order workers should take them: the area use (eleven panels, about
    twice the time of any other figure) first, so that the workers finish together."""
    first = [job for job in jobs if getattr(job, "func", None) is plot_cma_utilisation]
    return first + [job for job in jobs if job not in first]


def draw_plots(
    comparison: Comparison,
    folder: Path,
    workers: Optional[int] = None,
    standby: Optional[PlotStandby] = None,
) -> dict[str, Path]:
    """Draw every plot into ``folder``; returns the files by kind (the area pictures as
    ``area:<file name>``). The figures are drawn by ``workers`` processes (default: one per
    core the process may use; each figure on its own, so the files are the same however
    many draw them): those of ``standby`` when it has them ready (:class:`PlotStandby`),
    else processes forked now."""
    jobs = _plot_jobs(comparison, folder)
    if standby is not None and standby.ready:
        standby.draw(comparison, folder, workers)
    else:
        _draw_all([job for _, _, job in jobs], workers)
    return {kind: path for kind, path, _ in jobs}


def _forkable(workers: int) -> bool:
    """Whether ``workers`` forked processes may draw: more than one, where ``fork`` exists,
    and this process has no other thread (forking one that has may copy a lock another
    thread holds)."""
    return (
        workers > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )


def _draw_all(jobs: list[Callable[[], None]], workers: Optional[int] = None) -> None:
    """Run ``jobs`` (each draws one figure): in ``workers`` processes, this one and forks of
    it (default: one per core), when :func:`_forkable`; else one after another."""
    workers = min(len(jobs), usable_cores() if workers is None else workers)
    if not _forkable(workers):
        for job in jobs:
            job()
        return
    error = _draw_shared(jobs, workers)
    if error is not None:
        raise error


class PlotStandby:
    """A process forked before the runs that imports matplotlib and draws a throwaway
    figure (fonts, caches) while they go, on a core the runs leave idle, then draws the
    report's plots with as many forks of itself as there are workers.

    Its alternatives cost more: importing matplotlib after the runs adds about 0.3 s to
    the demo; importing it in a thread of this process during the runs slowed them by more
    than that (each return from the engine waits for the GIL the importing thread holds).
    Start it with :meth:`start` (``None`` where it cannot help: one core, no ``fork``,
    another thread already running), use it once with :func:`draw_plots`, and
    :meth:`close` it (a context manager)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_standby_main, args=(child, self._conn), name="cmadev-plots", daemon=True
        )
        self._process.start()
        child.close()
        self.ready = True

    @classmethod
    def start(cls) -> Optional[PlotStandby]:
        """A standby, or ``None`` where drawing in this process after the runs is as quick."""
        return cls() if _forkable(usable_cores()) else None

    def draw(self, comparison: Comparison, folder: Path, workers: Optional[int] = None) -> None:
        """Draw the plots of ``comparison`` into ``folder`` (with ``workers`` processes,
        default one per core); raises what drawing raised."""
        if not self.ready:
            raise RuntimeError("the plot standby has drawn already; start another")
        self.ready = False
        workers = usable_cores() if workers is None else workers
        self._conn.send_bytes(pickle.dumps((comparison, folder, workers), pickle.HIGHEST_PROTOCOL))
        try:
            error = pickle.loads(self._conn.recv_bytes())
        except EOFError:
            self._process.join()
            code = self._process.exitcode
            raise RuntimeError(
                f"the plot process ended (exit code {code}) before the plots were drawn"
            ) from None
        finally:
            self.close()
        if error is not None:
            raise error

    def close(self) -> None:
        """Let the process go (it ends once it sees the pipe closed) and wait for it."""
        self.ready = False
        self._conn.close()
        self._process.join()

    def __enter__(self) -> PlotStandby:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _standby_main(conn: Connection, parents: Connection) -> None:
    """The standby process: warm up, wait for the comparison, draw its plots (in
    ``workers`` processes: this one and forks of it, taking the figures in turn), answer
    ``None`` or what was raised. (``parents`` is the parent's end of the pipe, closed here
    at once: while this process holds it, closing it in the parent would not end this.)"""
    parents.close()
    try:
        with contextlib.suppress(Exception):  # drawing raises it again, and reports it
            _warm_up()
        comparison, folder, workers = pickle.loads(conn.recv_bytes())
        try:
            error = _draw_shared([job for _, _, job in _plot_jobs(comparison, folder)], workers)
        except Exception as err:
            error = err
        conn.send_bytes(_pickled_error(error))
    except (EOFError, OSError, KeyboardInterrupt):  # let go unused, or interrupted
        pass


def _draw_shared(jobs: list[Callable[[], None]], workers: int) -> Optional[BaseException]:
    """Run ``jobs`` (each draws one figure) in ``workers`` processes, this one and forks of
    it, taking them in turn, the costliest first; returns the first exception one of them
    raised."""
    jobs = _costliest_first(jobs)
    taken = multiprocessing.get_context("fork").Value("i", 0)
    helpers = []
    for _ in range(min(workers, len(jobs)) - 1):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a helper: draw, say what went wrong (if anything), leave
            os.close(read)
            try:
                error = _take_jobs(jobs, taken)
                with os.fdopen(write, "wb") as out:
                    out.write(_pickled_error(error))
            finally:
                os._exit(0)
        os.close(write)
        helpers.append((pid, read))
    errors = []
    try:
        errors.append(_take_jobs(jobs, taken))
    finally:  # even when interrupted: the helpers are reaped, not left to init as zombies
        for pid, read in helpers:
            with os.fdopen(read, "rb") as answer:
                data = answer.read()
            os.waitpid(pid, 0)
            errors.append(pickle.loads(data) if data else RuntimeError("a plot process died"))
    return next((e for e in errors if e is not None), None)


def _take_jobs(jobs: list[Callable[[], None]], taken: Any) -> Optional[BaseException]:
    """Draw the figures not yet taken, one at a time, until none is left or one fails."""
    while True:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if index >= len(jobs):
            return None
        try:
            jobs[index]()
        except Exception as err:  # handed to the parent, which raises it
            return err


def _pickled_error(error: Optional[BaseException]) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:  # an exception that cannot be pickled: its text
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


def _warm_up() -> None:
    """Import what the plots use and draw a small figure: the fonts are loaded, the caches
    filled, before the figures are asked for."""
    import io

    import matplotlib.backends.backend_agg
    import matplotlib.colors
    import matplotlib.figure
    import matplotlib.patches
    import matplotlib.ticker  # noqa: F401

    fig = _figure(2.0, 1.5, Margins(0.5, 0.1, 0.3, 0.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [1, 2], label="warm")
    ax.set_title("warm", fontsize="small")
    ax.set_yscale("log")
    fig.savefig(io.BytesIO(), format="png", dpi=30)


__all__ = [
    "AREA_COLOURS",
    "PLOTS",
    "PlotStandby",
    "area_matrix",
    "area_plots",
    "draw_plots",
    "plot_area",
    "plot_cma_utilisation",
    "plot_latencies",
    "plot_refaults",
]
