"""The ``devices`` and ``schema`` commands: what is shipped and what a file may hold."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from cmadev.cli.console import cut, make_console, print_json
from cmadev.report.format import (
    first_sentence,
)
from cmadev.specs.catalog import (
    list_boards,
    list_devices,
    list_scenarios,
    list_sweeps,
    load_board,
    load_device,
)
from cmadev.specs.policy import (
    PRESETS,
    Policy,
)
from cmadev.specs.scenario import load_scenario
from cmadev.specs.schema import schema, schema_models
from cmadev.specs.sweep import load_sweep
from cmadev.units import format_duration, format_size


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
        print_json(catalog)
        return 0
    console = make_console()
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
        summary = cut(entry.get("summary", ""), max(room - what, 12))
        table.add_row(entry["name"], cut(entry["what"], what), summary)
    return table


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON schema of one model, or of all of them by name."""
    if args.model is None:
        print_json({name: make() for name, make in schema_models().items()}, indent=2)
        return 0
    print_json(schema(args.model), indent=2)
    return 0


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
