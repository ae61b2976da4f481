"""The command line: ``python -m cmadev [demo|run|compare|replay|sweep|kernel|devices|schema]``.

With no arguments it runs the demo: the shipped ``tv_evening`` scenario under every placement,
each with the fixes mainline has today and with none, then prints a comparison table and
writes a report folder (plots, ``results.json``, ``summary.md``; see :mod:`cmadev.report`).

Every error a user can cause (a bad scenario file, an unknown policy, a bad argument) ends
the program with a message on stderr that names what was wrong and how to fix it, and a
non-zero exit code: 1 for a bad input, 2 for bad usage (argparse). Never a traceback: the
messages of :class:`~cmadev.errors.CmadevError` are written for people already.

``--json`` writes one JSON document to stdout and nothing else; the progress bars go to
stderr then, and only when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from cmadev.capture import Snapshot, read_meminfo, read_pagetypeinfo, read_trace, read_vmstat
from cmadev.errors import CmadevError, SpecError
from cmadev.kernel import calibrate
from cmadev.report.comparison import Comparison, compare
from cmadev.report.folder import host_document, write_report
from cmadev.report.format import (
    DEVICE_COLUMNS,
    DEVICE_LEGEND,
    HOST_COLUMNS,
    SYSTEM_COLUMNS,
    SYSTEM_LEGEND,
    first_sentence,
)
from cmadev.report.plots import preload as preload_plots
from cmadev.report.trace_export import write_trace
from cmadev.results import ScenarioResult
from cmadev.sim.replay import build_replay, compare_replay
from cmadev.specs.board import Board
from cmadev.specs.catalog import (
    list_boards,
    list_devices,
    list_scenarios,
    list_sweeps,
    load_board,
    load_device,
)
from cmadev.specs.policy import (
    PLACEMENTS,
    PRESETS,
    Policy,
    PolicyChoice,
    parse_policy,
    sensible_fixes,
)
from cmadev.specs.scenario import Scenario, load_scenario
from cmadev.specs.schema import schema, schema_models
from cmadev.specs.sweep import load_sweep
from cmadev.sweeps import SweepResult, sweep
from cmadev.units import NS_PER_S, format_duration, format_size, parse_duration

DEMO_SCENARIO = "tv_evening"
DEFAULT_OUT = "cmadev-report"
PLAIN_WIDTH = 120
"""Columns for tables when stdout is not a terminal (CI logs): wide enough for the policy
labels, which rich would otherwise wrap at its default of 80."""

TRACE_LIMIT = 2_000_000
"""Trace lines a run keeps with ``--trace`` (the ring buffer: the oldest go past it)."""
AREA_BINS = 512
"""Bins of an area picture (report folders record the area maps at this resolution)."""

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------------------------
# The demo's policies


def demo_policies() -> list[PolicyChoice]:
    """Every placement with the fixes mainline has today (those that make sense under it:
    a fix that cannot act under a placement is rejected there) and with none. A placement
    that accepts none of them (gcma) runs once: the two runs would be the same."""
    today = Policy.preset("mainline-today").fixes
    choices: dict[str, PolicyChoice] = {}
    for placement in PLACEMENTS:
        for fixes in (sensible_fixes(placement, today), frozenset()):
            policy = Policy(placement=placement, fixes=fixes)
            choices.setdefault(policy.label, PolicyChoice(policy.label, policy))
    return list(choices.values())


# --------------------------------------------------------------------------------------------
# Progress


class RunProgress:
    """A progress bar per run on a terminal; on anything else (CI logs, pipes, tests) one
    plain line per finished run, because a redrawn bar there is only noise. ``quiet`` (for
    ``--json``) drops the plain lines: a script reading stderr should find only errors."""

    def __init__(self, console: Console, total: int, quiet: bool = False) -> None:
        self.console = console
        self.total = total
        self.quiet = quiet
        self.done = 0
        self.bar: Optional[Progress] = None
        self.task: Optional[TaskID] = None
        if console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[sim]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[host]}"),
                console=console,
            )

    def __enter__(self) -> RunProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, label: str, seed: int, duration_ns: int) -> Callable[[int, int], None]:
        """Show a run; returns the ``progress(now_ns, duration_ns)`` callback of
        :meth:`Scenario.run`."""
        if self.bar is None:
            return lambda now, total: None
        bar = self.bar
        task = bar.add_task(f"{label} seed {seed}", total=duration_ns, sim="", host="")

        def update(now: int, total: int) -> None:
            bar.update(task, completed=min(now, total), sim=_simulated(now, total))

        self.task = task
        return update

    def finish(self, label: str, seed: int, result: ScenarioResult) -> None:
        self.done += 1
        host = result.host
        figures = f"{host['wall_s']:.3f} s wall, {host['speedup']:,.0f}x real time"
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=result.duration_ns, host=figures)
            return
        if self.quiet:
            return
        self.console.print(
            f"[{self.done}/{self.total}] {label} seed {seed}: "
            f"{format_duration(result.end_ns)} simulated, {figures}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _simulated(now: int, total: int) -> str:
    return f"{now / NS_PER_S:.0f}/{total / NS_PER_S:.0f} s"


class SweepProgress:
    """A sweep's bar, with the runs done and the estimated time left, on a terminal; on
    anything else a plain line at the start and each time another tenth is done."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.bar: Optional[Progress] = None
        self.task: Optional[TaskID] = None
        self.total = self.done = self.saved = 0
        self.started = 0.0
        self.next_line = 0

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def begin(self, total: int, saved: int, where: str) -> None:
        self.total, self.done, self.saved = total, saved, saved
        self.started = time.perf_counter()
        self.next_line = saved + max(total // 10, 1)
        before = f", {saved} saved before" if saved else ""
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn(f"{total - saved} runs on {where}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("sweep", total=total, completed=saved)
            self.bar.start()
        elif not self.quiet:
            self._line(f"sweep: {total} runs{before}; {total - saved} to run on {where}")

    def advance(self, runs: int) -> None:
        self.done += runs
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.done)
            return
        if self.quiet or (self.done < self.next_line and self.done < self.total):
            return
        self.next_line = self.done + max(self.total // 10, 1)
        elapsed = time.perf_counter() - self.started
        ran = self.done - self.saved
        left = elapsed / ran * (self.total - self.done) if ran else 0.0
        self._line(
            f"[{self.done}/{self.total}] {100 * self.done / self.total:.0f}% in "
            f"{elapsed:.1f} s, about {left:.0f} s left"
        )

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------
# Running


def _scenario(ref: str, duration: Optional[int]) -> Scenario:
    """The scenario ``ref``, run for ``duration`` if given: a shorter run drops the timeline's
    later steps, and says so on stderr."""
    scenario = load_scenario(ref)
    if duration is None:
        return scenario
    scenario, cut = scenario.cut_to(duration)
    if cut:
        steps = "; ".join(str(step) for step in cut)
        sys.stderr.write(
            f"cmadev: --duration {format_duration(duration)} cuts {len(cut)} timeline "
            f"step{'s' if len(cut) != 1 else ''} of {scenario.name}: {steps}\n"
        )
    return scenario


# --------------------------------------------------------------------------------------------
# Commands


def cmd_run(args: argparse.Namespace) -> int:
    """One run: its summary (or its JSON) and what it cost the host."""
    scenario = _scenario(args.scenario, args.duration)
    choice = parse_policy(args.policy) if args.policy is not None else scenario.policy_choice()
    backend = "kernel" if args.backend == "kernel" or choice.backend == "kernel" else "model"
    options = _kernel_options(args, choice.kernel) if backend == "kernel" else {}
    seed = scenario.seed if args.seed is None else args.seed
    console = _console(stderr=args.json)
    label = "kernel" if backend == "kernel" else choice.label
    with RunProgress(console, 1, quiet=args.json) as progress:
        callback = progress.start(label, seed, scenario.duration)
        policy = None if backend == "kernel" else choice.policy
        run_options = {**options, **_trace_options(args)} if backend == "model" else options
        result = scenario.run(policy, seed=seed, progress=callback, backend=backend, **run_options)
        progress.finish(label, seed, result)
    _write_trace(args, [result])
    if args.json:
        _print_json(result.to_dict(host=True))
        return 0
    text = [result.summary()]
    text += [r.describe() for r in result.requests if r.outcome != "met"]
    text.append(_host_line(result))
    _console().print("\n".join(text), markup=False, highlight=False, soft_wrap=True)
    return 0


def _kernel_options(args: argparse.Namespace, kernel: Optional[str]) -> dict[str, Any]:
    """The kernel backend's options from the command line (``--kernel``, ``--accel``)."""
    options: dict[str, Any] = {"accel": args.accel}
    path = args.kernel or kernel
    if path:
        options["kernel"] = Path(path)
    return options


def cmd_kernel_setup(args: argparse.Namespace) -> int:
    """Check the host packages, then build (or find in the cache) the kernel and the
    initramfs the kernel backend boots."""
    from cmadev.kernel import ensure_initramfs, ensure_kernel, hostdeps

    absent = hostdeps.missing("build", "guest", "run")
    if absent:
        return _fail(
            f"the kernel backend needs {hostdeps.describe(absent)}: install with "
            f"`{hostdeps.install_hint(absent)}`"
        )
    console = _console()
    started = time.perf_counter()
    image = ensure_kernel(progress=lambda line: console.print(line, markup=False))
    initramfs = ensure_initramfs()
    built = f"built in {image.build_seconds:.0f} s" if image.build_seconds else "built"
    state = "reused from the cache" if image.reused else "now cached"
    console.print(
        f"kernel {image.version}: {image.bzimage} ({built}, {state}); initramfs: "
        f"{initramfs.path}; ready in {time.perf_counter() - started:.1f} s",
        markup=False,
        highlight=False,
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Several policies and seeds: the table, and the report folder if asked (the demo
    always writes one)."""
    scenario = _scenario(args.scenario, args.duration)
    policies = args.policies or [choice.policy for choice in demo_policies()]
    if args.out:  # before the runs: a folder that cannot be written fails at once
        Path(args.out).mkdir(parents=True, exist_ok=True)
        preload_plots()
    runs = len(policies) * args.seeds
    options = _trace_options(args)
    if args.out:
        options["area_maps"] = AREA_BINS
    with RunProgress(_console(stderr=args.json), runs, quiet=args.json) as progress:
        comparison = compare(scenario, policies, args.seeds, watcher=progress, run_options=options)
    comparison.command = _command(args)
    _write_trace(args, comparison.runs)
    files = write_report(comparison, Path(args.out)) if args.out else {}
    if args.json:
        _print_json(_comparison_json(comparison, files))
        return 0
    _print_comparison(_console(), comparison, files)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """A captured trace replayed under several policies: each captured request's latency
    beside the modelled ones; the table, and the report folder if asked."""
    trace = read_trace(args.capture)
    snapshot = Snapshot(
        meminfo=read_meminfo(args.meminfo) if args.meminfo else {},
        vmstat=read_vmstat(args.vmstat) if args.vmstat else {},
        pagetypeinfo=read_pagetypeinfo(args.pagetypeinfo) if args.pagetypeinfo else {},
    )
    replay = build_replay(
        trace, args.board, snapshot, areas=_area_map(args.area), deadline=args.deadline
    )
    policies = args.policies or ["legacy", "balanced", "gcma"]
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    options = _trace_options(args)
    if args.out:
        options["area_maps"] = AREA_BINS
    with RunProgress(_console(stderr=args.json), len(policies) * args.seeds, args.json) as p:
        comparison = compare(replay.scenario, policies, args.seeds, watcher=p, run_options=options)
    comparison.command = f"python -m cmadev replay {args.capture} --board {args.board}"
    _write_trace(args, comparison.runs)
    files = write_report(comparison, Path(args.out)) if args.out else {}
    rows = compare_replay(replay, comparison.runs)
    if args.json:
        _print_json(
            {
                "capture": str(args.capture),
                "board": args.board,
                "lines": trace.lines,
                "events": len(trace.events),
                "unknown_events": dict(trace.unknown),
                "notes": replay.notes,
                "requests": [
                    {
                        "device": r.device,
                        "area": r.area,
                        "pages": r.pages,
                        "align": r.align,
                        "captured_ns": r.captured_ns,
                        "captured_ok": r.captured_ok,
                        "modelled": {k: list(v) for k, v in r.modelled.items()},
                    }
                    for r in rows
                ],
                "report": {kind: str(path) for kind, path in files.items()},
            }
        )
        return 0
    console = _console()
    skipped = ", ".join(f"{n} {e}" for e, n in trace.unknown.most_common())
    console.print(
        f"{args.capture}: {trace.lines} lines, {len(trace.events)} events read"
        + (f"; skipped (unknown to the importer): {skipped}" if skipped else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for note in replay.notes:
        console.print(f"  {note}", markup=False, highlight=False, soft_wrap=True)
    table = Table(title="captured vs modelled cma_alloc latency", title_justify="left")
    table.add_column("request", no_wrap=True)
    table.add_column("pages", justify="right")
    table.add_column("captured", justify="right")
    for policy in comparison.policies:
        table.add_column(policy, justify="right")
    for r in rows:
        captured = format_duration(r.captured_ns) + ("" if r.captured_ok else " failed")
        cells = []
        for policy in comparison.policies:
            ns, outcome = r.modelled.get(policy, (None, "missing"))
            cells.append(
                "-"
                if ns is None
                else format_duration(ns) + ("" if outcome == "ok" else f" {outcome}")
            )
        table.add_row(r.device, str(r.pages), captured, *cells)
    console.print(table)
    if files:
        console.print(f"Report: {files['summary'].parent}{os.sep}", markup=False)
    return 0


def _area_map(pairs: Optional[list[str]]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        captured, sep, board = pair.partition("=")
        if not sep or not captured or not board:
            raise SpecError(f"--area {pair!r}: write CAPTURED=BOARD, e.g. --area reserved=camera")
        out[captured] = board
    return out


def _trace_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--trace`` turns the trace on: ``trace_limit`` lines kept (``--trace-limit``), the
    events of ``--trace-events`` (default: all but the per-page kmem events)."""
    if getattr(args, "trace", None) is None:
        return {}
    options: dict[str, Any] = {"trace_limit": args.trace_limit}
    if args.trace_events:
        options["trace_events"] = [e for part in args.trace_events for e in part.split(",") if e]
    return options


def _write_trace(args: argparse.Namespace, runs: Sequence[ScenarioResult]) -> None:
    if getattr(args, "trace", None) is None:
        return
    written = write_trace(runs, Path(args.trace))
    for run in runs:
        header = run.trace_header.splitlines()[2] if run.trace_header else ""
        kept, _, total = header.partition(": ")[2].partition("   ")[0].partition("/")
        if kept and total and kept != total:
            sys.stderr.write(
                f"cmadev: {run.policy} seed {run.seed}: the trace kept the last {kept} of "
                f"{total} lines (raise --trace-limit to keep them all)\n"
            )
    sys.stderr.write(f"cmadev: trace written to {', '.join(str(p) for p in written)}\n")


def cmd_sweep(args: argparse.Namespace) -> int:
    """A sweep: the runs on every core (or a Dask cluster), the tables, the summary."""
    spec = load_sweep(args.sweep)
    out = Path(args.out) if args.out else Path(f"sweep-{spec.name}")
    try:
        with SweepProgress(_console(stderr=args.json), quiet=args.json) as progress:
            result = sweep(
                spec,
                workers=args.workers,
                client=args.dask,
                out=out,
                watcher=progress,
                batch_size=args.batch_size,
            )
    except KeyboardInterrupt:
        sys.stderr.write(
            f"cmadev: the finished batches are saved in {out}{os.sep}: run the same command "
            f"again to run only the rest\n"
        )
        raise
    if args.json:
        _print_json(result.to_dict())
        return 0
    _print_sweep(_console(), result)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """The shipped devices, boards, scenarios, sweeps and policy presets, a line each."""
    catalog = {
        "devices": [_device_entry(name) for name in list_devices()],
        "boards": [_board_entry(name) for name in list_boards()],
        "scenarios": [_scenario_entry(name) for name in list_scenarios()],
        "sweeps": [_sweep_entry(name) for name in list_sweeps()],
        "policies": [_policy_entry(name) for name in PRESETS],
    }
    if args.json:
        _print_json(catalog)
        return 0
    console = _console()
    for section, entries in catalog.items():
        console.print(_catalog_table(section, entries, console.width))
    return 0


def _catalog_table(title: str, entries: list[dict[str, Any]], width: int) -> Table:
    """Name, figures and the description's first sentence, one line each. The description
    is cut to fit here: left to rich, a table too wide shrinks every column, names too."""
    table = Table(title=title, title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("description", no_wrap=True)
    room = width - max((len(e["name"]) for e in entries), default=0) - 10  # borders, padding
    what = min(max((len(e["what"]) for e in entries), default=0), max(room * 3 // 5, 12))
    for entry in entries:
        summary = _cut(entry.get("summary", ""), max(room - what, 12))
        table.add_row(entry["name"], _cut(entry["what"], what), summary)
    return table


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON schema of one model, or of all of them by name."""
    if args.model is None:
        _print_json({name: make() for name, make in schema_models().items()}, indent=2)
        return 0
    _print_json(schema(args.model), indent=2)
    return 0


def cmd_kernel_calibrate(args: argparse.Namespace) -> int:
    """Fit BOARD's cost model in a Linux guest (or from saved measurements) and write it."""
    board = load_board(args.board)
    console = _console(stderr=args.json)
    if args.from_raw:
        raws = [run for path in args.from_raw for run in _raw_runs(Path(path))]
    else:
        raws = []
        for i in range(args.runs):
            console.print(
                f"calibration run {i + 1} of {args.runs} on a {format_size(board.ram)} guest "
                f"({board.cpus} CPUs): about a minute under TCG",
                markup=False,
                highlight=False,
            )
            raws.append(
                calibrate.measure(
                    board,
                    kernel=args.kernel,
                    accel=args.accel,
                    progress=None if args.json else _say(console),
                )
            )
        if args.raw:
            Path(args.raw).write_text(json.dumps(raws, indent=1) + "\n")
    costs = calibrate.fit_runs(raws)
    out = calibrate.calibrated_board(board, costs, name=args.name, as_guest=args.as_guest)
    calibrate.write_board(out, args.out)
    if args.json:
        _print_json({"board": str(args.out), "fit": costs.to_dict()})
        return 0
    _console().print(_calibration_table(board, costs))
    _console().print(_calibration_lines(costs, args.out), markup=False, highlight=False)
    return 0


def _raw_runs(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CmadevError(f"{path}: cannot read saved measurements: {err}") from None
    return data if isinstance(data, list) else [data]


def _say(console: Console) -> Callable[[str], None]:
    return lambda message: console.print(f"  {message}", markup=False, highlight=False)


def _calibration_table(board: Board, costs: calibrate.CostFit) -> Table:
    table = Table(title=f"{board.name}: cost model fitted in the guest", title_justify="left")
    for name in ("cost", "fitted", f"{board.name} had", "from"):
        table.add_column(name, justify="right" if name != "from" else "left")
    before = board.cost.model_dump()
    for name, fitted in costs.costs.items():
        table.add_row(
            name, format_duration(fitted.ns), format_duration(before[name]), fitted.source
        )
    table.add_row(
        f"{calibrate.FIXED_FIELD} (proposed)",
        format_duration(costs.fixed.ns),
        "-",
        costs.fixed.source,
    )
    return table


def _calibration_lines(costs: calibrate.CostFit, out: str) -> str:
    ratio = ", ".join(f"{k.removesuffix('_ns')} x{v:.1f}" for k, v in costs.ratio.items())
    ctx = costs.context
    lines = [
        f"The model has no field for the fixed cost of a contiguous allocation: "
        f"{calibrate.FIXED_FIELD} is the figure it should get.",
        f"Guest / host, measured in the same run: {ratio}. TCG times are not hardware times: "
        f"divide kernel-path costs by x{costs.kernel_ratio or 0:.1f} and memory-bandwidth "
        f"costs by x{costs.memory_ratio or 0:.1f} for this host's hardware.",
        f"Linux {ctx.get('kernel', '?')} ({ctx.get('accel', '?')}), "
        f"{ctx.get('runs', 1)} run(s), {float(ctx.get('wall_s', 0.0)):.0f} s of wall time; "
        f"host load {ctx.get('load', '?')}.",
    ]
    lines += [f"note: {note}" for note in costs.notes]
    lines.append(f"Wrote {out}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The catalog


def _device_entry(name: str) -> dict[str, Any]:
    spec = load_device(name)
    modes = {mode: spec.total_bytes(mode) for mode in spec.modes}
    kind = f"{spec.kind}, " if spec.kind != name else ""
    what = f"{kind}heap {spec.heap}, deadline {format_duration(spec.deadline)}; " + ", ".join(
        f"{mode} {format_size(size)}" for mode, size in modes.items()
    )
    return {
        "name": name,
        "what": what,
        "kind": spec.kind,
        "heap": spec.heap,
        "deadline_ns": spec.deadline,
        "modes": modes,
        "summary": first_sentence(spec.description),
        "description": spec.description,
    }


def _board_entry(name: str) -> dict[str, Any]:
    board = load_board(name)
    areas = {area.name: area.size for area in board.cma_areas}
    what = f"{format_size(board.ram)} RAM, {board.cpus} CPUs; CMA " + ", ".join(
        f"{area} {format_size(size)}" for area, size in areas.items()
    )
    return {
        "name": name,
        "what": what,
        "ram_bytes": board.ram,
        "cpus": board.cpus,
        "cma_areas": areas,
        "summary": first_sentence(board.description),
        "description": board.description,
    }


def _scenario_entry(name: str) -> dict[str, Any]:
    sc = load_scenario(name)
    board = sc.board_spec().name
    devices = [entry.name for entry in sc.devices]
    return {
        "name": name,
        "what": f"board {board}, {format_duration(sc.duration)}, "
        + (f"devices {', '.join(devices)}" if devices else "no devices"),
        "board": board,
        "duration_ns": sc.duration,
        "devices": devices,
        "workloads": [w.name for w in sc.workloads],
        "summary": first_sentence(sc.description),
        "description": sc.description,
    }


def _sweep_entry(name: str) -> dict[str, Any]:
    spec = load_sweep(name)
    grid = ", ".join(f"{path} x{len(values)}" for path, values in spec.grid.items())
    return {
        "name": name,
        "what": f"{spec.scenario_spec().name}, {spec.runs} runs; grid {grid or 'none'}",
        "scenario": spec.scenario_spec().name,
        "runs": spec.runs,
        "grid": {path: list(values) for path, values in spec.grid.items()},
        "summary": first_sentence(spec.description),
        "description": spec.description,
    }


def _policy_entry(name: str) -> dict[str, Any]:
    policy = Policy.preset(name)
    dumped = policy.model_dump(mode="json")
    return {
        "name": name,
        "what": policy.label,
        "summary": PRESETS[name].note,
        "placement": policy.placement,
        "fixes": dumped["fixes"],
        "policy": dumped,
    }


# --------------------------------------------------------------------------------------------
# Output


def _console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr, when stdout carries JSON). Off a terminal, rich
    would wrap tables at 80 columns: use $COLUMNS, or a width that fits the labels."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PLAIN_WIDTH
    return console


def _print_json(data: Any, indent: Optional[int] = None) -> None:
    """Exactly one JSON document on stdout (not through rich, which would wrap lines)."""
    sys.stdout.write(json.dumps(data, indent=indent) + "\n")
    sys.stdout.flush()


def _host_line(result: ScenarioResult) -> str:
    h = result.host
    return (
        f"host: {h['wall_s']:.3f} s wall, {h['cpu_s']:.3f} s CPU, peak RSS "
        f"{format_size(h['peak_rss_bytes'])}: {h['speedup']:,.0f}x real time"
    )


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this comparison (for the summary)."""
    if args.command in (None, "demo"):
        parts = ["python -m cmadev"]
    else:
        parts = ["python -m cmadev compare", args.scenario]
        if args.policies:
            parts += ["--policies", *args.policies]
    if args.seeds != 1:
        parts += ["--seeds", str(args.seeds)]
    if getattr(args, "duration", None) is not None:
        parts += ["--duration", format_duration(args.duration).replace(" ", "")]
    return " ".join(parts)


def _comparison_json(comparison: Comparison, files: dict[str, Path]) -> dict[str, Any]:
    return {
        "scenario": comparison.scenario.name,
        "policies": comparison.policies,
        "seeds": comparison.seeds,
        "comparison": comparison.to_dict(),
        "host": host_document(comparison),
        "report": {kind: str(path) for kind, path in files.items()},
    }


def _print_comparison(console: Console, comparison: Comparison, files: dict[str, Path]) -> None:
    console.print()
    console.print(_device_table(comparison))
    console.print(DEVICE_LEGEND, markup=False, highlight=False)
    console.print(_system_table(comparison))
    console.print(SYSTEM_LEGEND, markup=False, highlight=False)
    for group in comparison.identical():
        console.print(
            f"{', '.join(group)}: identical results ({comparison.why_identical(group)}).",
            markup=False,
            highlight=False,
        )
    policy, speed = comparison.slowest()
    simulated = sum(r.simulated_s for r in comparison.runs)
    slowest = f"; slowest policy {policy} at {speed:,.0f}x real time" if policy else ""
    console.print(
        f"{len(comparison.runs)} runs, {simulated:,.0f} s simulated in "
        f"{comparison.wall_s:.2f} s wall{slowest}.",
        markup=False,
    )
    if files:
        folder = files["summary"].parent
        names = ", ".join(path.name for path in files.values())
        console.print(f"Report: {folder}{os.sep} ({names})", markup=False)


def _print_sweep(console: Console, result: SweepResult) -> None:
    from cmadev.sweeps.summary import SUMMARY_COLUMNS, SUMMARY_LEGEND

    plan = result.plan
    assert plan is not None
    if result.summary and not console.is_terminal:  # a log: the plain table, never cut
        console.print(result.format_summary(), markup=False, highlight=False, soft_wrap=True)
    elif result.summary:
        table = Table(title=f"{result.sweep.name}: devices", title_justify="left")
        for name in (*plan.paths, *SUMMARY_COLUMNS):
            left = name in ("policy", "device")
            table.add_column(name, justify="left" if left else "right", no_wrap=True)
        for row in result.summary:
            cells = [Text(c) for c in row.cells()]
            if row.misses[0] > 0:
                cells[2].stylize("bold red")
            values = [str(row.values[path]) for path in plan.paths]
            table.add_row(*values, row.policy, row.device, *cells)
        console.print(table)
        console.print(SUMMARY_LEGEND, markup=False, highlight=False)
    else:
        console.print("No summary: the sweep keeps no requests (keep.requests = false).")
    rate = f", {result.ran / result.wall_s:.1f} runs/s" if result.ran and result.wall_s else ""
    console.print(
        f"{result.runs} runs ({result.ran} now, {result.reused} saved before) on "
        f"{result.where} in {result.wall_s:.1f} s{rate}.",
        markup=False,
        highlight=False,
    )
    names = ", ".join(path.name for path in result.files.values())
    console.print(f"Output: {result.folder}{os.sep} ({names})", markup=False, highlight=False)


def _device_table(comparison: Comparison) -> Table:
    """Per policy and device: success, latency percentiles against the deadline, misses;
    red where the deadline was missed."""
    table = Table(title=f"{comparison.scenario.name}: devices", title_justify="left")
    for i, name in enumerate(DEVICE_COLUMNS):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
    for row in comparison.rows:
        for i, (device, stats) in enumerate(row.devices.items()):
            cells = [Text(c) for c in stats.cells()]
            for k, value in ((2, stats.p50_ns), (3, stats.p99_ns), (4, stats.max_ns)):
                if stats.over_deadline(value):
                    cells[k].stylize("bold red")
            if stats.deadline_misses:
                cells[6].stylize("bold red")
            if stats.success_rate < 1:
                cells[1].stylize("yellow")
            table.add_row(row.policy if i == 0 else "", device, *cells)
        table.add_section()
    return table


def _system_table(comparison: Comparison) -> Table:
    """Per policy: what the system gets from the area, and what the run cost the host."""
    head = (*SYSTEM_COLUMNS, *HOST_COLUMNS[2:3], HOST_COLUMNS[4], HOST_COLUMNS[5])
    table = Table(title=f"{comparison.scenario.name}: system and host", title_justify="left")
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in comparison.rows:
        host = comparison.host_cells(row.policy)
        table.add_row(row.policy, *row.system_cells(), host[1], host[3], host[4])
    return table


# --------------------------------------------------------------------------------------------
# Arguments


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is from 0 to 2**64 - 1")
    return value


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except SpecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cmadev",
        description="cmadev: an emulated embedded-device testbed for the Linux kernel's "
        "Contiguous Memory Allocator. Without a command: the demo.",
        epilog="SCENARIO is a shipped scenario's name (see 'devices') or a .json/.toml file. "
        "A policy is a preset (mainline-today, legacy, gcma, ...; see 'devices'), a placement "
        "with fixes joined by '+' (legacy+migrate_on_longterm_pin), or a policy file.",
    )
    parser.add_argument("--version", action="version", version=f"cmadev {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument(
        "--json",
        action="store_true",
        help="write JSON to stdout and nothing else (progress bars on stderr, on a terminal only)",
    )
    trace_opt = argparse.ArgumentParser(add_help=False)
    trace_opt.add_argument(
        "--trace",
        metavar="FILE",
        help="write the run's events: FILE.txt as the kernel's ftrace text, FILE.json in the "
        "Chrome trace-event format (Perfetto's UI, chrome://tracing)",
    )
    trace_opt.add_argument(
        "--trace-events",
        nargs="+",
        metavar="EV",
        help="events to record, set_event syntax (cma, migrate, kmem, kmem:mm_page_alloc, "
        "all; default: all but kmem:mm_page_alloc/mm_page_free)",
    )
    trace_opt.add_argument(
        "--trace-limit",
        type=_positive,
        default=TRACE_LIMIT,
        metavar="N",
        help=f"trace lines kept per run (default {TRACE_LIMIT:,}; the oldest go first)",
    )
    duration_opt = argparse.ArgumentParser(add_help=False)
    duration_opt.add_argument(
        "--duration",
        type=_duration,
        help="run for this long instead ('30s'); timeline steps after it are dropped",
    )

    demo = commands.add_parser(
        "demo",
        parents=[json_opt],
        help="the default: tv_evening under every placement, with today's fixes and without",
        description=f"Run {DEMO_SCENARIO} under every placement, with the fixes mainline has "
        "today and with none; print the table and write the report folder.",
    )
    _comparison_options(demo, out_default=DEFAULT_OUT)
    demo.set_defaults(handler=cmd_compare, scenario=DEMO_SCENARIO, policies=None, duration=None)

    run = commands.add_parser(
        "run",
        parents=[json_opt, duration_opt, trace_opt],
        help="run a scenario once",
        description="Run a scenario once: every device request, the system figures, the host.",
    )
    run.add_argument("scenario", metavar="SCENARIO")
    run.add_argument("--policy", metavar="P", help="default: the scenario's own")
    run.add_argument("--seed", type=_seed, metavar="N", help="default: the scenario's own")
    _backend_options(run)
    run.set_defaults(handler=cmd_run)

    compare = commands.add_parser(
        "compare",
        parents=[json_opt, duration_opt, trace_opt],
        help="run a scenario under several policies and seeds",
        description="Run a scenario under several policies and seeds and tabulate them.",
    )
    compare.add_argument("scenario", metavar="SCENARIO")
    compare.add_argument(
        "--policies",
        nargs="+",
        metavar="P",
        help="default: every placement, with today's mainline fixes and without; 'kernel' "
        "adds a row for a real Linux under QEMU",
    )
    _comparison_options(compare, out_default=None)
    compare.set_defaults(handler=cmd_compare)

    replay = commands.add_parser(
        "replay",
        parents=[json_opt, trace_opt],
        help="replay a captured ftrace (cma, kmem, migrate events) under several policies",
        description="Replay a captured trace (ftrace text, trace-cmd report output, or a "
        "trace.dat through trace-cmd): its cma_alloc calls as the device timeline, its page "
        "allocations and pins as background load, optionally from /proc snapshots; print "
        "each request's captured latency beside the modelled one per policy.",
    )
    replay.add_argument("capture", metavar="CAPTURE")
    replay.add_argument("--board", required=True, metavar="BOARD", help="a board name or file")
    replay.add_argument("--policies", nargs="+", metavar="P", help="default: legacy balanced gcma")
    replay.add_argument("--meminfo", metavar="FILE", help="a /proc/meminfo snapshot to start from")
    replay.add_argument("--vmstat", metavar="FILE", help="a /proc/vmstat snapshot")
    replay.add_argument("--pagetypeinfo", metavar="FILE", help="a /proc/pagetypeinfo snapshot")
    replay.add_argument(
        "--area",
        nargs="+",
        metavar="CAPTURED=BOARD",
        help="map the capture's CMA area names to the board's (default: same name, or the "
        "board's only area)",
    )
    replay.add_argument(
        "--deadline",
        type=_duration,
        default=200_000_000,
        help="the deadline a request is judged against (default 200ms)",
    )
    _comparison_options(replay, out_default=None)
    replay.set_defaults(handler=cmd_replay)

    sweep_cmd = commands.add_parser(
        "sweep",
        parents=[json_opt],
        help="run a sweep file: a grid of scenario fields x policies x seeds, to Parquet",
        description="Run a sweep (a .json/.toml file, or a shipped sweep's name) on every "
        "core, or on a Dask cluster; write runs.parquet, requests.parquet, host.parquet, the "
        "summary and its plot into the output folder. Runs saved there already (an "
        "interrupted sweep, fewer seeds) are not run again.",
    )
    sweep_cmd.add_argument("sweep", metavar="SWEEP_FILE")
    sweep_cmd.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="local worker processes (default: one per core)",
    )
    sweep_cmd.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on the Dask scheduler at ADDRESS (tcp://host:8786) instead; needs "
        "pip install 'cmadev[dask]'",
    )
    sweep_cmd.add_argument("--out", metavar="DIR", help="the output folder (default: sweep-<name>)")
    sweep_cmd.add_argument(
        "--batch-size",
        type=_positive,
        metavar="N",
        help="runs sent to a worker at once (default: enough batches to keep every worker busy, "
        "at most 16 runs)",
    )
    sweep_cmd.set_defaults(handler=cmd_sweep)

    devices = commands.add_parser(
        "devices",
        parents=[json_opt],
        help="list the shipped devices, boards, scenarios, sweeps and policy presets",
    )
    devices.set_defaults(handler=cmd_devices)

    kernel = commands.add_parser(
        "kernel",
        help="the real-kernel backend: set it up (host packages, kernel build), calibrate a board",
        description="The kernel backend runs scenarios on Linux 6.1 under QEMU "
        "(run/compare --backend kernel, or the policy 'kernel').",
    )
    kernel_commands = kernel.add_subparsers(dest="kernel_command", metavar="COMMAND", required=True)
    setup = kernel_commands.add_parser(
        "setup",
        help="check the Debian packages, build (or reuse) the kernel and the initramfs",
    )
    setup.set_defaults(handler=cmd_kernel_setup)

    schema = commands.add_parser(
        "schema",
        help="print the JSON schema of the models",
        description="Print the JSON schema of MODEL (Board, CmaArea, CostModel, Policy, "
        "DeviceSpec, Buffer, Scenario, Sweep, Keep, Workload, or a workload: PageCacheReader, "
        "Writer, AnonHog, DirectIO, LongtermPinner, FsMount, KernelAlloc, Build, TmpfsFile), or "
        "of all by name.",
    )
    schema.add_argument("model", nargs="?", metavar="MODEL")
    schema.set_defaults(handler=cmd_schema)

    cal = kernel_commands.add_parser(
        "calibrate",
        parents=[json_opt],
        help="fit a board's cost model in a Linux guest and write the board file",
        description="Boot a guest with BOARD's memory, CPUs and CMA area, measure what the "
        "cost model needs (page copy and clearing, a page's allocation, migration, isolation, "
        "drain, reclaim scanning, storage, the fixed cost of a contiguous allocation) and the "
        "guest/host ratio in the same run, and write BOARD with the fitted costs.",
    )
    cal.add_argument("board", metavar="BOARD", help="a shipped board's name or a board file")
    cal.add_argument("--out", required=True, metavar="FILE", help="the board file to write")
    cal.add_argument(
        "--runs", type=_positive, default=1, metavar="N", help="calibration runs (median)"
    )
    cal.add_argument("--name", help="the written board's name (default: BOARD's)")
    cal.add_argument(
        "--as-guest",
        action="store_true",
        help="the board describes the QEMU guest itself: take its reserved memory and "
        "min_free_kbytes from the guest too",
    )
    cal.add_argument("--raw", metavar="FILE", help="also save the raw measurements here")
    cal.add_argument(
        "--from-raw",
        nargs="+",
        metavar="FILE",
        help="fit saved measurements (--raw) instead of booting a guest",
    )
    cal.add_argument("--kernel", metavar="BZIMAGE", help="boot this kernel (default: cmadev's)")
    cal.add_argument("--accel", default="tcg", choices=("tcg", "kvm"), help="default: tcg")
    cal.set_defaults(handler=cmd_kernel_calibrate)
    return parser


def _backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("model", "kernel"),
        default="model",
        help="run on the Rust model (default) or on a real Linux 6.1 under QEMU",
    )
    parser.add_argument(
        "--kernel", metavar="PATH", help="with --backend kernel: boot this bzImage instead"
    )
    parser.add_argument(
        "--accel",
        choices=("tcg", "kvm"),
        default="tcg",
        help="with --backend kernel: QEMU's accelerator (default tcg: KVM guests hang on some "
        "hosts)",
    )


def _comparison_options(parser: argparse.ArgumentParser, out_default: Optional[str]) -> None:
    parser.add_argument(
        "--seeds",
        type=_positive,
        default=1,
        metavar="N",
        help="runs per policy, seeds from the scenario's own (default: 1)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=out_default,
        help=f"write the report here (default: {out_default})"
        if out_default
        else "write the report (plots, results.json, summary.md) here",
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("cmadev")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


# --------------------------------------------------------------------------------------------
# Entry point


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0, 1 for a bad input, 2 for bad usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in _TOP_FLAGS):
        args_list.insert(0, "demo")  # `python -m cmadev --seeds 3` is the demo's options
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as stop:  # argparse printed the usage and the error (or the help)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return int(args.handler(args))
    except CmadevError as err:
        return _fail(str(err))
    except OSError as err:  # the report folder cannot be written, ...
        where = f"{err.filename}: " if err.filename else ""
        return _fail(f"{where}{err.strerror or err}")
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED


_TOP_FLAGS = ("-h", "--help", "--version")


def _fail(message: str) -> int:
    sys.stderr.write(f"cmadev: error: {message}\n")
    return EXIT_ERROR


__all__ = ["build_parser", "demo_policies", "main"]
