"""The ``sweep`` command and its summary table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cmadev.cli.console import SweepProgress, make_console, print_json
from cmadev.specs.sweep import load_sweep

if TYPE_CHECKING:
    from cmadev.sweeps import SweepResult


def cmd_sweep(args: argparse.Namespace) -> int:
    """A sweep: the runs on every core (or a Dask cluster), the tables, the summary."""
    # imported here, so that the other commands' start-up does not pay for it
    from cmadev.sweeps import sweep

    spec = load_sweep(args.sweep)
    out = Path(args.out) if args.out else Path(f"sweep-{spec.name}")
    try:
        with SweepProgress(make_console(stderr=args.json), quiet=args.json) as progress:
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
        print_json(result.to_dict())
        return 0
    _print_sweep(make_console(), result)
    return 0


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
