"""The commands that run scenarios (``demo``, ``run``, ``compare``, ``replay``) and what they
print: the comparison tables, the report folder, the trace files."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cmadev.cli.console import RunProgress, make_console, print_json
from cmadev.cli.kernel import kernel_options
from cmadev.errors import SpecError
from cmadev.report.comparison import Comparison, compare
from cmadev.report.folder import host_document, write_report
from cmadev.report.format import (
    DEVICE_COLUMNS,
    DEVICE_LEGEND,
    HOST_COLUMNS,
    SYSTEM_COLUMNS,
    SYSTEM_LEGEND,
)
from cmadev.report.plots import PlotStandby
from cmadev.results import ScenarioResult
from cmadev.specs.policy import (
    PLACEMENTS,
    Policy,
    PolicyChoice,
    parse_policy,
    sensible_fixes,
)
from cmadev.specs.scenario import Scenario, load_scenario
from cmadev.units import format_duration, format_size

DEMO_SCENARIO = "tv_evening"


DEFAULT_OUT = "cmadev-report"


TRACE_LIMIT = 2_000_000
"""Trace lines a run keeps with ``--trace`` (the ring buffer: the oldest go past it)."""


AREA_BINS = 512
"""Bins of an area picture (report folders record the area maps at this resolution)."""


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


def cmd_run(args: argparse.Namespace) -> int:
    """One run: its summary (or its JSON) and what it cost the host."""
    scenario = _scenario(args.scenario, args.duration)
    choice = parse_policy(args.policy) if args.policy is not None else scenario.policy_choice()
    backend = "kernel" if args.backend == "kernel" or choice.backend == "kernel" else "model"
    options = kernel_options(args, choice.kernel) if backend == "kernel" else {}
    seed = scenario.seed if args.seed is None else args.seed
    console = make_console(stderr=args.json)
    label = "kernel" if backend == "kernel" else choice.label
    with RunProgress(console, 1, quiet=args.json) as progress:
        callback = progress.start(label, seed, scenario.duration)
        policy = None if backend == "kernel" else choice.policy
        run_options = {**options, **_trace_options(args)} if backend == "model" else options
        result = scenario.run(policy, seed=seed, progress=callback, backend=backend, **run_options)
        progress.finish(label, seed, result)
    _write_trace(args, [result])
    if args.json:
        print_json(result.to_dict(host=True))
        return 0
    text = [result.summary()]
    text += [r.describe() for r in result.requests if r.outcome != "met"]
    text.append(_host_line(result))
    make_console().print("\n".join(text), markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Several policies and seeds: the table, and the report folder if asked (the demo
    always writes one)."""
    scenario = _scenario(args.scenario, args.duration)
    policies = args.policies or [choice.policy for choice in demo_policies()]
    if args.out:  # before the runs: a folder that cannot be written fails at once
        Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = len(policies) * args.seeds
    options = _trace_options(args)
    if args.out:
        options["area_maps"] = AREA_BINS
    # Forked before the progress bars start a thread: matplotlib loads while the runs go.
    standby = PlotStandby.start() if args.out else None
    try:
        with RunProgress(make_console(stderr=args.json), runs, quiet=args.json) as progress:
            comparison = compare(
                scenario, policies, args.seeds, watcher=progress, run_options=options
            )
        comparison.command = _command(args)
        _write_trace(args, comparison.runs)
        files = write_report(comparison, Path(args.out), standby) if args.out else {}
    finally:
        if standby is not None:
            standby.close()
    if args.json:
        print_json(_comparison_json(comparison, files))
        return 0
    _print_comparison(make_console(), comparison, files)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """A captured trace replayed under several policies: each captured request's latency
    beside the modelled ones; the table, and the report folder if asked."""
    # imported here: the start-up of other commands (the demo) does not pay for them
    from cmadev.capture import Snapshot, read_meminfo, read_pagetypeinfo, read_trace, read_vmstat
    from cmadev.sim.replay import build_replay, compare_replay

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
    with RunProgress(make_console(stderr=args.json), len(policies) * args.seeds, args.json) as p:
        comparison = compare(replay.scenario, policies, args.seeds, watcher=p, run_options=options)
    comparison.command = f"python -m cmadev replay {args.capture} --board {args.board}"
    _write_trace(args, comparison.runs)
    files = write_report(comparison, Path(args.out)) if args.out else {}
    rows = compare_replay(replay, comparison.runs)
    if args.json:
        print_json(
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
    console = make_console()
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
    from cmadev.report.trace_export import write_trace  # only when a trace is asked for

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
