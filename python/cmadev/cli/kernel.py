"""The ``kernel`` commands: ``setup`` (host packages, the kernel build) and ``calibrate``."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from rich.console import Console
from rich.table import Table

from cmadev.cli.console import fail, make_console, print_json
from cmadev.errors import CmadevError
from cmadev.specs.board import Board
from cmadev.specs.catalog import (
    load_board,
)
from cmadev.units import format_duration, format_size

if TYPE_CHECKING:
    from cmadev.kernel import calibrate


def kernel_options(args: argparse.Namespace, kernel: Optional[str]) -> dict[str, Any]:
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
        return fail(
            f"the kernel backend needs {hostdeps.describe(absent)}: install with "
            f"`{hostdeps.install_hint(absent)}`"
        )
    console = make_console()
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


def cmd_kernel_calibrate(args: argparse.Namespace) -> int:
    """Fit BOARD's cost model in a Linux guest (or from saved measurements) and write it."""
    # imported here, so that the other commands' start-up does not pay for it
    from cmadev.kernel import board_file, calibrate

    board = load_board(args.board)
    console = make_console(stderr=args.json)
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
    out = board_file.calibrated_board(board, costs, name=args.name, as_guest=args.as_guest)
    board_file.write_board(out, args.out)
    if args.json:
        print_json({"board": str(args.out), "fit": costs.to_dict()})
        return 0
    make_console().print(_calibration_table(board, costs))
    make_console().print(_calibration_lines(costs, args.out), markup=False, highlight=False)
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
    from cmadev.kernel.calibrate import FIXED_FIELD

    table = Table(title=f"{board.name}: cost model fitted in the guest", title_justify="left")
    for name in ("cost", "fitted", f"{board.name} had", "from"):
        table.add_column(name, justify="right" if name != "from" else "left")
    before = board.cost.model_dump()
    for name, fitted in costs.costs.items():
        table.add_row(
            name, format_duration(fitted.ns), format_duration(before[name]), fitted.source
        )
    table.add_row(
        f"{FIXED_FIELD} (back to back)",
        format_duration(costs.fixed.ns),
        "-",
        costs.fixed.source,
    )
    return table


def _calibration_lines(costs: calibrate.CostFit, out: str) -> str:
    from cmadev.kernel.calibrate import FIXED_FIELD

    ratio = ", ".join(f"{k.removesuffix('_ns')} x{v:.1f}" for k, v in costs.ratio.items())
    ctx = costs.context
    lines = [
        f"The model charges one per-call cost (lru_cache_disable, from calls after a pause); "
        f"{FIXED_FIELD} is the same cost of calls right after one another.",
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
