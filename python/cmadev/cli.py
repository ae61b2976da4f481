"""The command line: ``python -m cmadev [demo|run|compare|devices|schema]``.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cmadev.errors import CmadevError, SpecError
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
from cmadev.results import ScenarioResult
from cmadev.specs.catalog import list_boards, list_devices, list_scenarios, load_board, load_device
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
from cmadev.units import NS_PER_S, format_duration, format_size, parse_duration

DEMO_SCENARIO = "tv_evening"
DEFAULT_OUT = "cmadev-report"
PLAIN_WIDTH = 120
"""Columns for tables when stdout is not a terminal (CI logs): wide enough for the policy
labels, which rich would otherwise wrap at its default of 80."""

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
    seed = scenario.seed if args.seed is None else args.seed
    console = _console(stderr=args.json)
    with RunProgress(console, 1, quiet=args.json) as progress:
        callback = progress.start(choice.label, seed, scenario.duration)
        result = scenario.run(choice.policy, seed=seed, progress=callback)
        progress.finish(choice.label, seed, result)
    if args.json:
        _print_json(result.to_dict(host=True))
        return 0
    text = [result.summary()]
    text += [r.describe() for r in result.requests if r.outcome != "met"]
    text.append(_host_line(result))
    _console().print("\n".join(text), markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Several policies and seeds: the table, and the report folder if asked (the demo
    always writes one)."""
    scenario = _scenario(args.scenario, args.duration)
    policies = args.policies or [choice.policy for choice in demo_policies()]
    if args.out:  # before the runs: a folder that cannot be written fails at once
        Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = len(policies) * args.seeds
    with RunProgress(_console(stderr=args.json), runs, quiet=args.json) as progress:
        comparison = compare(scenario, policies, args.seeds, watcher=progress)
    comparison.command = _command(args)
    files = write_report(comparison, Path(args.out)) if args.out else {}
    if args.json:
        _print_json(_comparison_json(comparison, files))
        return 0
    _print_comparison(_console(), comparison, files)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """The shipped devices, boards, scenarios and policy presets, a line each."""
    catalog = {
        "devices": [_device_entry(name) for name in list_devices()],
        "boards": [_board_entry(name) for name in list_boards()],
        "scenarios": [_scenario_entry(name) for name in list_scenarios()],
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
        "what": f"board {board}, {format_duration(sc.duration)}, devices {', '.join(devices)}",
        "board": board,
        "duration_ns": sc.duration,
        "devices": devices,
        "workloads": [w.name for w in sc.workloads],
        "summary": first_sentence(sc.description),
        "description": sc.description,
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
    console.print(
        f"{len(comparison.runs)} runs, {simulated:,.0f} s simulated in "
        f"{comparison.wall_s:.2f} s wall; slowest policy {policy} at {speed:,.0f}x real time.",
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
        parents=[json_opt, duration_opt],
        help="run a scenario once",
        description="Run a scenario once: every device request, the system figures, the host.",
    )
    run.add_argument("scenario", metavar="SCENARIO")
    run.add_argument("--policy", metavar="P", help="default: the scenario's own")
    run.add_argument("--seed", type=_seed, metavar="N", help="default: the scenario's own")
    run.set_defaults(handler=cmd_run)

    compare = commands.add_parser(
        "compare",
        parents=[json_opt, duration_opt],
        help="run a scenario under several policies and seeds",
        description="Run a scenario under several policies and seeds and tabulate them.",
    )
    compare.add_argument("scenario", metavar="SCENARIO")
    compare.add_argument(
        "--policies",
        nargs="+",
        metavar="P",
        help="default: every placement, with today's mainline fixes and without",
    )
    _comparison_options(compare, out_default=None)
    compare.set_defaults(handler=cmd_compare)

    devices = commands.add_parser(
        "devices",
        parents=[json_opt],
        help="list the shipped devices, boards, scenarios and policy presets",
    )
    devices.set_defaults(handler=cmd_devices)

    schema = commands.add_parser(
        "schema",
        help="print the JSON schema of the models",
        description="Print the JSON schema of MODEL (Board, CmaArea, CostModel, Policy, "
        "DeviceSpec, Buffer, Scenario, Workload, or a workload: PageCacheReader, Writer, "
        "AnonHog, DirectIO, LongtermPinner, FsMount, KernelAlloc, TmpfsFile), or of all by name.",
    )
    schema.add_argument("model", nargs="?", metavar="MODEL")
    schema.set_defaults(handler=cmd_schema)
    return parser


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
