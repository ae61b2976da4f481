"""Speed of the shipped TV scenario per policy: simulated seconds per wall second (SPEC §6
asks for at least 1000x), with CPU time and peak resident memory.

    python benches/bench_scenario.py [--runs 5] [--scenario tv_evening]

Medians over ``--runs`` runs per policy (the machine may be shared: medians, not means).
Writes ``target/bench-scenario.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

from cmadev.scenario import load_scenario

POLICIES = ("legacy", "balanced", "zone_cma", "movable_zone", "gcma", "mainline-today")


def measure(scenario_name: str, policy: str, runs: int) -> dict[str, float]:
    """Median wall and CPU time of ``runs`` runs of the scenario under ``policy``."""
    scenario = load_scenario(scenario_name)
    simulated_s = scenario.duration / 1e9
    walls, cpus = [], []
    for _ in range(runs):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        scenario.run(policy=policy)
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    wall = statistics.median(walls)
    return {
        "simulated_s": simulated_s,
        "wall_ms": wall * 1e3,
        "cpu_ms": statistics.median(cpus) * 1e3,
        "speedup": simulated_s / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", default="tv_evening")
    args = parser.parse_args()
    results = {p: measure(args.scenario, p, args.runs) for p in POLICIES}
    print(f"{args.scenario}: median of {args.runs} runs per policy (SPEC §6: >= 1000x)\n")
    print(f"  {'policy':<16}{'wall ms':>9}{'cpu ms':>9}{'speed-up':>10}{'peak RSS':>11}")
    for policy, r in results.items():
        verdict = "ok" if r["speedup"] >= 1000 else "below target"
        print(
            f"  {policy:<16}{r['wall_ms']:>9.1f}{r['cpu_ms']:>9.1f}{r['speedup']:>9.0f}x"
            f"{r['peak_rss_mib']:>8.1f} MiB  {verdict}"
        )
    out = Path("target") / "bench-scenario.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"scenario": args.scenario, "results": results}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
