"""A machine is freed by reference counting when its last user drops it: a loop of scenario
runs keeps its memory flat with the cyclic garbage collector off (nothing in cmadev calls
``gc.collect()``, and nothing has to)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run in a fresh process: pytest's own peak RSS would hide the figure.
LOOP = """
import gc, json, resource
import cmadev
from cmadev.specs.base import validate_model
gc.disable()
sc = cmadev.load_scenario("tv_evening")
board = sc.board_spec().model_dump()
board["ram"] = "4GiB"
sc = sc.with_changes(board=validate_model(cmadev.Board, board))
peaks = []
for i in range(50):
    r = sc.run(policy=("legacy", "balanced", "gcma")[i % 3], seed=i)
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"peaks": peaks, "garbage": gc.collect()}))
"""


def test_fifty_runs_on_a_4gib_board_keep_peak_memory_flat() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOOP], capture_output=True, text=True, check=True, cwd=REPO
    )
    figures = json.loads(out.stdout)
    peaks = figures["peaks"]
    growth = peaks[-1] - peaks[0]
    assert growth <= 10 * 2**20, (
        f"peak RSS grew {growth / 2**20:.1f} MiB over 50 runs "
        f"({peaks[0] / 2**20:.0f} -> {peaks[-1] / 2**20:.0f} MiB): a machine outlives its run"
    )
    assert figures["garbage"] < 1000, "runs leave reference cycles for the collector"


def test_nothing_in_the_package_calls_the_cycle_collector() -> None:
    package = REPO / "python" / "cmadev"
    callers = [
        str(path.relative_to(REPO))
        for path in package.rglob("*.py")
        if "gc.collect" in path.read_text(encoding="utf-8")
        or "gc.disable" in path.read_text(encoding="utf-8")
    ]
    assert callers == []
