"""The 2015 papers' two experiments on the model, per policy (README: "The 2015 papers").

    python benches/papers.py                     # both, seed 1 (about 2 minutes)
    python benches/papers.py --seeds 3 --only gcma
    python benches/papers.py --json target/papers.json

- ``gcma``: the GCMA RFC's ``cma_alloc`` latency under ``make -j16`` (scenario
  ``gcma_rfc_make_j16``): per policy, the CMA area's use just before the first allocation, and
  the median and worst latency of the 16, 32 and 64 MiB allocations (four each per seed).
- ``zone_cma``: the ZONE_CMA RFC's build time (scenarios ``zone_cma_rfc_make_j16_nocma`` and
  ``zone_cma_rfc_make_j16``): per policy, the build's elapsed time, swap-ins and swap-outs,
  pages scanned by kswapd and by direct reclaim.

Each run is deterministic; the figures are medians over the seeds (worst cases: the largest).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cmadev import load_scenario

GCMA_POLICIES = ["legacy_2014", "legacy", "balanced", "zone_cma", "gcma"]
ZONE_POLICIES = ["legacy_2014", "legacy", "balanced", "zone_cma", "gcma"]
SIZES = ["16m", "32m", "64m"]


def gcma_rows(seeds: list[int]) -> list[dict[str, Any]]:
    sc = load_scenario("gcma_rfc_make_j16")
    first = min(step.at for step in sc.timeline)
    rows = []
    for policy in GCMA_POLICIES:
        lat: dict[str, list[float]] = {s: [] for s in SIZES}
        used, failed, host = [], 0, 0.0
        for seed in seeds:
            t0 = time.perf_counter()
            r = sc.run(policy, seed=seed)
            host += time.perf_counter() - t0
            i = max(k for k, t in enumerate(r.series["t_ns"]) if t < first)
            total = r.cma_pages
            used.append(100 * (1 - r.series["cma_free"][i] / total))
            for req in r.requests:
                lat[req.device.removeprefix("cma_")].append(req.latency_ns / 1e6)
                failed += req.outcome == "failed"
        row: dict[str, Any] = {
            "policy": policy,
            "cma_used_pct": round(statistics.median(used), 1),
            "failed": failed,
            "host_s": round(host, 1),
        }
        for s in SIZES:
            row[f"{s}_p50_ms"] = round(statistics.median(lat[s]), 1)
            row[f"{s}_max_ms"] = round(max(lat[s]), 1)
        rows.append(row)
        print_row(row, file=sys.stderr)
    return rows


def zone_rows(seeds: list[int]) -> list[dict[str, Any]]:
    runs = [("no CMA area", "zone_cma_rfc_make_j16_nocma", "legacy")]
    runs += [(p, "zone_cma_rfc_make_j16", p) for p in ZONE_POLICIES]
    rows = []
    for label, name, policy in runs:
        sc = load_scenario(name)
        figures: dict[str, list[float]] = {}
        host = 0.0
        for seed in seeds:
            t0 = time.perf_counter()
            r = sc.run(policy, seed=seed)
            host += time.perf_counter() - t0
            make = r.workloads["make"]
            done = make["finished_ns"]
            for key, value in (
                ("build_s", None if done is None else done / 1e9),
                ("pswpin", r.counters.get("pswpin", 0)),
                ("pswpout", r.counters.get("pswpout", 0)),
                ("pgscan_kswapd", r.counters.get("pgscan_kswapd", 0)),
                ("pgscan_direct", r.counters.get("pgscan_direct", 0)),
                ("refaults", r.refaults),
            ):
                figures.setdefault(key, []).append(float("nan") if value is None else value)
        row: dict[str, Any] = {"policy": label, "host_s": round(host, 1)}
        for key, values in figures.items():
            row[key] = round(statistics.median(values), 1)
        rows.append(row)
        print_row(row, file=sys.stderr)
    return rows


def print_row(row: dict[str, Any], file: Any = sys.stdout) -> None:
    print("  ".join(f"{k}={v}" for k, v in row.items()), file=file, flush=True)


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--only", choices=["gcma", "zone_cma"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    seeds = list(range(1, args.seeds + 1))
    out: dict[str, Any] = {"seeds": seeds}
    if args.only in (None, "gcma"):
        out["gcma_rfc_make_j16"] = gcma_rows(seeds)
        print("gcma_rfc_make_j16: cma_alloc latency under make -j16 (ms)")
        print(table(out["gcma_rfc_make_j16"]))
    if args.only in (None, "zone_cma"):
        out["zone_cma_rfc_make_j16"] = zone_rows(seeds)
        print("zone_cma_rfc_make_j16: build time of make -j16 (s)")
        print(table(out["zone_cma_rfc_make_j16"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
