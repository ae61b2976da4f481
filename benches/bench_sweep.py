"""Sweep throughput: 1,000 runs of ``tv_evening`` (the five placements x 200 seeds) on one
local worker process, on two, and on a Dask ``LocalCluster`` of two worker processes
(issue 14: at least 1.8x on two cores).

Each configuration writes a fresh output folder (nothing to resume) and is timed whole with
``time.perf_counter`` around :func:`cmadev.sweep`: planning, starting the workers, the runs,
saving each batch, writing the sorted tables, the summary and its plot. Beside it:

- the run phase, from the first batch sent to the last saved (a watcher's ``begin`` to its
  last ``advance``): what the workers' number changes;
- a worker's start-up: a pool of one spawned process, timed until it has run an empty
  batch (Python, cmadev and the scenario's validation);
- the **scheduling overhead per run**: worker time spent neither starting up nor on a run,
  ``(workers x (run phase - start-up) - sum of task_s) / runs`` (pickling, the pool's
  queues, workers idle while the main process saves a batch or the last batches finish);
  ``task_s``, from ``host.parquet``, is a run's whole time in the worker;
- beside it, a run's cost in the worker outside ``Scenario.run`` (``task_s - wall_s``:
  building the machine, making the rows);
- the fixed cost: a second call on the finished folder, which runs nothing (planning,
  reading the tables, writing them again, the summary and plot).

The three folders' ``runs.parquet`` and ``requests.parquet`` must be equal byte for byte.
The load average is printed before and after: the development machine is shared.

On a machine others are loading, one long measurement per configuration compares minutes
of different contention. ``--rounds N`` measures instead N rounds of a smaller sweep
(``--seeds``) on one worker and on two, the two in alternating order and back to back, and
gives each round's speed-up and their median.

    python benches/bench_sweep.py                  # 1,000 runs: ~2 minutes on 2 cores
    python benches/bench_sweep.py --seeds 20       # 100 runs, a quick look
    python benches/bench_sweep.py --no-dask
    python benches/bench_sweep.py --rounds 7 --seeds 20   # 100 runs a round, alternating
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "target" / "bench-sweep.json"
PLACEMENTS = ["legacy", "balanced", "zone_cma", "movable_zone", "gcma"]
SPEEDUP_TARGET = 1.8  # issue 14: two cores against one


class Phase:
    """A watcher that times the run phase: from begin to the last batch saved."""

    def __init__(self) -> None:
        self.started = self.ended = 0.0

    def begin(self, total: int, saved: int, where: str) -> None:
        self.started = self.ended = time.perf_counter()

    def advance(self, runs: int) -> None:
        self.ended = time.perf_counter()


def startup_s(spec: Any) -> float:
    """Seconds for a fresh spawned worker to start and run an empty batch."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from cmadev.sweeps.plan import Plan
    from cmadev.sweeps.worker import run_batch

    plan = Plan(spec)
    [task, *_] = plan.batches(plan.runs[:1], 1)
    task["runs"] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(run_batch, task).result()
        return time.perf_counter() - t0


def measure(label: str, spec: Any, out: Path, startup: float, **where: Any) -> dict[str, Any]:
    """One configuration: a sweep into a fresh folder, then a call that runs nothing."""
    import cmadev

    phase = Phase()
    t0 = time.perf_counter()
    result = cmadev.sweep(spec, out=out, watcher=phase, **where)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = cmadev.sweep(spec, out=out, **where)
    fixed = time.perf_counter() - t1
    assert again.ran == 0, "the second call should find every run saved"
    host = result.table("host")
    run_walls = host.column("wall_s").to_pylist()
    busy = sum(host.column("task_s").to_pylist())
    workers = _workers(result.where)
    run_phase = phase.ended - phase.started
    figures = {
        "label": label,
        "where": result.where,
        "workers": workers,
        "runs": result.ran,
        "wall_s": wall,
        "runs_per_s": result.ran / wall,
        "run_phase_s": run_phase,
        "runs_per_s_run_phase": result.ran / run_phase,
        "mean_run_wall_ms": 1000 * sum(run_walls) / len(run_walls),
        "outside_run_ms": 1000 * (busy - sum(run_walls)) / len(run_walls),
        "overhead_per_run_ms": 1000 * (workers * (run_phase - startup) - busy) / result.ran,
        "fixed_s": fixed,
    }
    print(
        f"{label:<22} {result.ran} runs in {wall:6.1f} s: {figures['runs_per_s']:5.1f} runs/s "
        f"(run phase {run_phase:5.1f} s, {figures['runs_per_s_run_phase']:5.1f} runs/s); "
        f"a run {figures['mean_run_wall_ms']:.1f} ms + {figures['outside_run_ms']:.2f} ms "
        f"around it, scheduling {figures['overhead_per_run_ms']:.2f} ms/run; "
        f"fixed cost {fixed:.2f} s",
        flush=True,
    )
    return figures


def _workers(where: str) -> int:
    """2 from "2 local processes" or "dask tcp://... (2 worker threads)"."""
    if where.startswith("dask"):
        return int(where.rsplit("(", 1)[1].split()[0])
    return int(where.split()[0])


def tables(out: Path) -> dict[str, bytes]:
    return {name: (out / f"{name}.parquet").read_bytes() for name in ("runs", "requests")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per policy (default 200)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write figures here")
    parser.add_argument(
        "--rounds", type=int, default=0, help="alternate 1 and 2 workers this many times"
    )
    args = parser.parse_args()
    if args.rounds:
        return rounds(args.rounds, args.seeds, args.json)

    from cmadev.specs.sweep import Sweep

    spec = Sweep(name="bench", scenario="tv_evening", policies=tuple(PLACEMENTS), seeds=args.seeds)
    load_before = os.getloadavg()
    print(f"{spec.runs} runs of tv_evening; load average {_load(load_before)}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        folder = Path(tmp)
        startup = startup_s(spec)
        print(f"a worker starts in {startup:.2f} s (spawn, import, an empty batch)", flush=True)
        results.append(measure("1 local worker", spec, folder / "one", startup, workers=1))
        results.append(measure("2 local workers", spec, folder / "two", startup, workers=2))
        same = tables(folder / "one") == tables(folder / "two")
        if not args.no_dask:
            results.append(_dask(spec, folder / "dask", startup))
            same = same and tables(folder / "dask") == tables(folder / "one")
        load_after = os.getloadavg()
    one, two = results[0], results[1]
    speedup = two["runs_per_s"] / one["runs_per_s"]
    speedup_phase = two["runs_per_s_run_phase"] / one["runs_per_s_run_phase"]
    print(
        f"speed-up on 2 workers: {speedup:.2f}x whole sweep, {speedup_phase:.2f}x run phase "
        f"(target {SPEEDUP_TARGET}x)"
    )
    if len(results) > 2:
        dask = results[2]["runs_per_s"] / one["runs_per_s"]
        print(f"Dask LocalCluster / 1 local worker: {dask:.2f}x")
    print(f"tables equal byte for byte: {same}; load average after {_load(load_after)}")
    document = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_before,
        "load_after": load_after,
        "results": results,
        "startup_s": startup,
        "speedup": speedup,
        "speedup_run_phase": speedup_phase,
        "tables_equal": same,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if same else 1


def rounds(count: int, seeds: int, json_path: Path) -> int:
    """``count`` rounds of 1 and 2 workers back to back (alternating which goes first); each
    round's speed-up, and the median."""
    from cmadev.specs.sweep import Sweep

    spec = Sweep(name="bench", scenario="tv_evening", policies=tuple(PLACEMENTS), seeds=seeds)
    print(f"{count} rounds of {spec.runs} runs on 1 and 2 workers", flush=True)
    startup = startup_s(spec)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for i in range(count):
            load = os.getloadavg()
            figures: dict[int, dict[str, Any]] = {}
            for workers in (1, 2) if i % 2 == 0 else (2, 1):
                out = Path(tmp) / f"round{i}-{workers}"
                label = f"round {i + 1}, {workers} worker{'s' if workers > 1 else ''}"
                figures[workers] = measure(label, spec, out, startup, workers=workers)
            speedup = figures[2]["runs_per_s"] / figures[1]["runs_per_s"]
            print(f"round {i + 1}: speed-up {speedup:.2f}x (load before {_load(load)})", flush=True)
            results.append(
                {"load": load, "speedup": speedup, **{str(w): f for w, f in figures.items()}}
            )
    ratios = sorted(r["speedup"] for r in results)
    median = ratios[len(ratios) // 2]
    spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
    print(f"median speed-up {median:.2f}x over {count} rounds (range {spread})")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    document = {"rounds": results, "median_speedup": median, "startup_s": startup}
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def _dask(spec: Any, out: Path, startup: float) -> dict[str, Any]:
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # the cluster's workers have started before the sweep: no start-up in its run phase
        return measure("Dask LocalCluster (2)", spec, out, 0.0, client=client)


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    raise SystemExit(main())
