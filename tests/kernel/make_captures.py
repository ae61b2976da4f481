"""Regenerate ``tests/kernel/captures/``: the guest kernel's own views from one run.

    python tests/kernel/make_captures.py          # boots the guest once (about 20 s)

The run: a 512 MiB, 2-CPU guest with a 128 MiB CMA area; an anonymous hog brings memory
down to where 6.1 starts placing movable pages in CMA; a process then holds get_page
references (vmsplice) on pages of a 64 MiB buffer, about half of it in CMA, so that a
112 MiB dma-heap allocation fails after busy retries (dmesg: ``cma_alloc ... ret: -16``);
a debugfs allocation then succeeds and is held to the end.

The files are the kernel's text, byte for byte, from the final sample, except
``trace.txt``: an excerpt of the raw trace (whole lines, in order) with every cma,
page_isolation and migrate:mm_migrate_pages* event and the first lines of the high-volume
ones (kmem:mm_page_alloc/free, migration ptes), so that it stays small.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from cmadev.kernel import program_from_scenario, run_program
from cmadev.kernel.parsers import parse_trace
from cmadev.kernel.program import GuestProgram
from cmadev.specs.workloads import AnonHog, DirectIO, PageCacheReader

HERE = Path(__file__).parent / "captures"
MiB = 1 << 20
S = 1_000_000_000
KEEP_PER_EVENT = 60
HIGH_VOLUME = ("mm_page_alloc", "mm_page_free", "set_migration_pte", "remove_migration_pte")


def capture_program(
    *, reader: bool = False, camera_stop: bool = False, options: Optional[dict[str, Any]] = None
) -> GuestProgram:
    """The captures' run: the hog, the get_page I/O, a dma-heap request that fails and a
    debugfs one that succeeds. ``reader`` adds a page-cache reader and ``camera_stop`` the
    camera's release (the full capture in ``tests/data/kernel-6.1-full``)."""
    board = {
        "name": "qemu_512m",
        "ram": 512 * MiB,
        "cpus": 2,
        "cma_areas": [{"name": "reserved", "size": 128 * MiB}],
        "swap": 0,
    }
    workloads = [AnonHog(name="hog", size="220MiB", growth="200MiB/s").to_engine()]
    if reader:
        workloads.append(
            PageCacheReader(
                name="reader", working_set="24MiB", rate="16MiB/s", start="1s"
            ).to_engine()
        )
    workloads.append(
        DirectIO(
            name="gup",
            buffer="64MiB",
            iops="2000/s",
            io_size="4KiB",
            pin_time="3s",
            pin_distribution="fixed",
            hold="get_page",
            start="5s",
            stop="12s",
        ).to_engine()
    )
    timeline = [
        (9 * S, "tv", "start", [(28672, 8)], "reserved"),
        (int(12.5 * S), "tv", "stop", [], "reserved"),
        (13 * S, "camera", "start", [(4096, 0)], "reserved"),
    ]
    if camera_stop:
        timeline.append((14 * S, "camera", "stop", [], "reserved"))
    return program_from_scenario(
        board,
        workloads,
        timeline,
        duration_ns=15 * S,
        sample_interval_ns=S,
        via={"tv": "dma_heap", "camera": "debugfs"},
        options=options,
    )


def main() -> int:
    program = capture_program()
    run = run_program(program, progress=print)
    if not run.cma_failures():
        print("the run has no failed cma_alloc in dmesg: not writing captures", file=sys.stderr)
        return 1
    tmp = HERE.with_name("captures.new")
    shutil.rmtree(tmp, ignore_errors=True)
    run.write_captures(tmp)
    # the excerpt of the trace, and no bulky files the issue does not need
    kept: Counter[str] = Counter()
    lines = []
    for line in run.trace.splitlines():
        event = next((e.event for e in parse_trace(line)), None)
        if event is None:
            continue
        if event in HIGH_VOLUME:
            kept[event] += 1
            if kept[event] > KEEP_PER_EVENT:
                continue
        lines.append(line)
    (tmp / "trace.txt").write_text("\n".join(lines) + "\n")
    for name in ("console.txt", "run.json"):
        (tmp / name).unlink()
    summary = {
        "kernel": run.kernel_version,
        "qemu_command": list(run.qemu_command),
        "requests": [r.__dict__ for r in run.requests],
        "cma_failures": [f.__dict__ for f in run.cma_failures()],
        "trace_lines_total": len(run.trace.splitlines()),
        "trace_lines_kept": len(lines),
    }
    (tmp / "run-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    shutil.rmtree(HERE, ignore_errors=True)
    tmp.rename(HERE)
    print(f"captures written to {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
