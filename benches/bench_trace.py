"""The trace figures of issue 13: the size of an exported trace of ``tv_evening`` (ftrace text
and Chrome JSON, with the default events and with every event), and how many lines a second
the importer parses (CPU time, the best of three, so that a shared machine's load matters
less than in wall time).

    python benches/bench_trace.py [--policy balanced] [--out target/bench-trace]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cmadev.capture import read_trace
from cmadev.report.trace_export import write_trace
from cmadev.specs.scenario import load_scenario

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent / "tests" / "data" / "kernel-6.1-full" / "trace.txt.gz"


def parse_rate(path: Path) -> tuple[int, float]:
    """(lines, lines per CPU second) of the importer on ``path``, best of three."""
    best, lines = float("inf"), 0
    for _ in range(3):
        started = time.process_time()
        trace = read_trace(path)
        best = min(best, time.process_time() - started)
        lines = trace.lines
    return lines, lines / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="balanced")
    parser.add_argument("--out", type=Path, default=HERE.parent / "target" / "bench-trace")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario("tv_evening")
    figures: dict[str, object] = {"policy": args.policy}
    for label, events in (("default", None), ("all", ["all"])):
        result = scenario.run(args.policy, trace_limit=5_000_000, trace_events=events)
        for suffix in (".txt", ".json"):
            path = args.out / f"tv_evening-{label}{suffix}"
            write_trace([result], path)
            size = path.stat().st_size
            figures[f"{label}{suffix}"] = {"bytes": size, "lines": len(result.trace)}
            print(f"tv_evening {args.policy}, {label} events, {suffix}: {size:,} bytes"
                  f" ({len(result.trace):,} trace lines)")  # fmt: skip
        if label == "all":
            lines, rate = parse_rate(args.out / "tv_evening-all.txt")
            figures["parse_model_all"] = {"lines": lines, "lines_per_cpu_s": rate}
            print(f"importer on the model's trace: {lines:,} lines, {rate:,.0f} lines/CPU s")
    lines, rate = parse_rate(CAPTURE)
    figures["parse_capture"] = {"lines": lines, "lines_per_cpu_s": rate}
    print(f"importer on the 6.1 capture (gzipped): {lines:,} lines, {rate:,.0f} lines/CPU s")
    (args.out / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
