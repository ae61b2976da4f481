"""Remake this capture with the kernel backend: ``python make_capture.py OUT_DIR`` (about
25 s under TCG), then ``gzip -9 OUT_DIR/trace.txt`` and copy the files here. The run is
``tests/kernel/make_captures.py``'s with a page-cache reader, the camera's release and every
kmem event in the trace."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kernel"))

from make_captures import capture_program

from cmadev.kernel import run_program


def main(out: Path) -> None:
    program = capture_program(
        reader=True,
        camera_stop=True,
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
