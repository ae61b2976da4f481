"""The 2015 papers' two experiments on the model, per policy (README: "The 2015 papers").

    python benches/papers.py                     # all three, seed 1 (about 3 minutes)
    python benches/papers.py --seeds 3 --only gcma
    python benches/papers.py --json target/papers.json
    python benches/papers.py --only disk         # build time against the disk request cost

- ``gcma``: the GCMA RFC's ``cma_alloc`` latency under ``make -j16`` (scenario
  ``gcma_rfc_make_j16``): per policy, the CMA area's use just before the first allocation, and
  the median and worst latency of the 16, 32 and 64 MiB allocations (four each per seed).
- ``zone_cma``: the ZONE_CMA RFC's build time (scenarios ``zone_cma_rfc_make_j16_nocma`` and
  ``zone_cma_rfc_make_j16``): per policy, the build's elapsed time, swap-ins and swap-outs,
  pages scanned by kswapd and by direct reclaim.
- ``disk``: the same build time against the cost of one read request of the guest's disk,
  which the cover letter does not give (the board's 50 us is an estimate): without the area,
  with it under the RFC's kernel (``legacy_2014``) and with ``zone_cma``.

Each run is deterministic; the figures are medians over the seeds (worst cases: the largest).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cmadev import Scenario, load_scenario
from cmadev.specs.fieldpath import with_value

GCMA_POLICIES = ["legacy_2014", "legacy", "balanced", "zone_cma", "gcma"]
ZONE_POLICIES = ["legacy_2014", "legacy", "balanced", "zone_cma", "gcma"]
SIZES = ["16m", "32m", "64m"]
DISK_REQUESTS = ["50us", "500us", "1ms", "2ms"]
ZONE_RUNS = [("no CMA area", "zone_cma_rfc_make_j16_nocma", "legacy")]


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
    runs = ZONE_RUNS + [(p, "zone_cma_rfc_make_j16", p) for p in ZONE_POLICIES]
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


def build_seconds(sc: Scenario, policy: str, seed: int) -> float:
    """The build's elapsed time in one run (NaN if it did not finish within the scenario)."""
    done = sc.run(policy, seed=seed).workloads["make"]["finished_ns"]
    return float("nan") if done is None else done / 1e9


def disk_rows(seeds: list[int]) -> list[dict[str, Any]]:
    runs = ZONE_RUNS + [(p, "zone_cma_rfc_make_j16", p) for p in ("legacy_2014", "zone_cma")]
    rows = []
    for label, name, policy in runs:
        row: dict[str, Any] = {"run": label}
        plain = load_scenario(name).model_dump(mode="json")
        for request in DISK_REQUESTS:
            data = with_value(plain, "board.cost.storage_read_request", request)
            sc = Scenario.model_validate(data)
            times = [build_seconds(sc, policy, seed) for seed in seeds]
            row[f"{request} request"] = round(statistics.median(times), 1)
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
    ap.add_argument("--only", choices=["gcma", "zone_cma", "disk"])
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
    if args.only in (None, "disk"):
        out["zone_cma_rfc_disk"] = disk_rows(seeds)
        print("zone_cma_rfc_make_j16: build time (s) against the disk's read request cost")
        print(table(out["zone_cma_rfc_disk"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
