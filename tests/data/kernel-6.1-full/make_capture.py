"""Remake this capture with the kernel backend (branch ``kernel-backend``, whose
``cmadev.kernel`` this needs): ``python make_capture.py OUT_DIR`` (about 25 s under TCG), then
``gzip -9 OUT_DIR/trace.txt`` and copy the files here."""

import sys
import time
from pathlib import Path

from cmadev.workloads import AnonHog, DirectIO, PageCacheReader

from cmadev.kernel import program_from_scenario, run_program  # type: ignore[import-not-found]

MiB = 1 << 20
S = 1_000_000_000


def main(out: Path) -> None:
    board = {
        "name": "qemu_512m",
        "ram": 512 * MiB,
        "cpus": 2,
        "cma_areas": [{"name": "reserved", "size": 128 * MiB}],
        "swap": 0,
    }
    workloads = [
        AnonHog(name="hog", size="220MiB", growth="200MiB/s").to_engine(),
        PageCacheReader(name="reader", working_set="24MiB", rate="16MiB/s", start="1s").to_engine(),
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
        ).to_engine(),
    ]
    timeline = [
        (9 * S, "tv", "start", [(28672, 8)], "reserved"),
        (int(12.5 * S), "tv", "stop", [], "reserved"),
        (13 * S, "camera", "start", [(4096, 0)], "reserved"),
        (14 * S, "camera", "stop", [], "reserved"),
    ]
    program = program_from_scenario(
        board,
        workloads,
        timeline,
        duration_ns=15 * S,
        sample_interval_ns=S,
        via={"tv": "dma_heap", "camera": "debugfs"},
        options={"trace_kmem": "all", "trace_limit_bytes": 96 << 20, "trace_buffer_kb": 16384},
    )
    started = time.time()
    run = run_program(program, progress=print)
    out.mkdir(parents=True, exist_ok=True)
    run.write_captures(out)
    print("requests", [r.__dict__ for r in run.requests])
    print("trace lines", len(run.trace.splitlines()), "wall", time.time() - started)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
