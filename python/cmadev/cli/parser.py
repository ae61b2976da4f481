"""The argument parser: every command, its options and their types."""

from __future__ import annotations

import argparse
from typing import Optional

from cmadev.cli.catalog import cmd_devices, cmd_schema
from cmadev.cli.kernel import cmd_kernel_calibrate, cmd_kernel_setup
from cmadev.cli.run import DEFAULT_OUT, DEMO_SCENARIO, TRACE_LIMIT, cmd_compare, cmd_replay, cmd_run
from cmadev.cli.sweep import cmd_sweep
from cmadev.errors import SpecError
from cmadev.units import parse_duration


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
