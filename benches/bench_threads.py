"""Threads, Ctrl-C and the Python-level page pair: what releasing the GIL buys.

- **Two machines in two threads**: the same busy run (``tv_evening``'s board with a reader and
  slab churn, 20 s of virtual time) on two machines, one after the other and then in two
  threads at once; the speed-up is the first wall time over the second.
- **Ctrl-C latency**: a long run interrupted by ``_thread.interrupt_main()`` (what SIGINT
  does); the time from the interrupt to ``KeyboardInterrupt`` reaching Python.
- **A Python-level order-0 pair**: ``page = m.alloc(owner); page.free()`` through the public
  API, per pair.

Medians of ``--runs`` rounds; run it on a quiet machine and say on which::

    python benches/bench_threads.py --runs 5
"""

from __future__ import annotations

import _thread
import argparse
import statistics
import threading
import time

import cmadev


def busy_machine(seed: int) -> cmadev.Machine:
    m = cmadev.Machine("tv_1g", seed=seed)
    m.start(cmadev.PageCacheReader(name="reader", working_set="900MiB", rate="24MiB/s"))
    m.start(cmadev.KernelAlloc(name="slab", rate="20000/s", lifetime="10ms"))
    return m


def two_threads(duration: str) -> tuple[float, float]:
    """(wall seconds one after the other, wall seconds in two threads)."""
    machines = [busy_machine(1), busy_machine(2)]
    start = time.perf_counter()
    for m in machines:
        m.run_for(duration)
    sequential = time.perf_counter() - start
    machines = [busy_machine(1), busy_machine(2)]
    threads = [threading.Thread(target=m.run_for, args=(duration,)) for m in machines]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sequential, time.perf_counter() - start


def ctrl_c_latency() -> float:
    """Seconds from an interrupt to KeyboardInterrupt out of a long run."""
    m = busy_machine(1)
    sent: list[float] = []

    def interrupt() -> None:
        sent.append(time.perf_counter())
        _thread.interrupt_main()

    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        m.run_for("36000s")
    except KeyboardInterrupt:
        arrived = time.perf_counter()
    else:  # pragma: no cover - the run would take hours
        raise AssertionError("the run was not interrupted")
    timer.join()
    return arrived - sent[0]


def page_pair(n: int = 200_000) -> float:
    """Nanoseconds per ``alloc`` + ``free`` pair through the Python API."""
    m = cmadev.Machine("tv_1g", seed=1)
    alloc = m.alloc
    start = time.perf_counter()
    for _ in range(n):
        alloc("app").free()
    return (time.perf_counter() - start) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()
    seq, par, lat, pair = [], [], [], []
    for _ in range(args.runs):
        s, p = two_threads(args.duration)
        seq.append(s)
        par.append(p)
        lat.append(ctrl_c_latency())
        pair.append(page_pair())
    s, p = statistics.median(seq), statistics.median(par)
    print(
        f"two machines, {args.duration} each: {s:.3f} s one after the other, {p:.3f} s in two "
        f"threads: {s / p:.2f}x"
    )
    print(
        f"Ctrl-C to KeyboardInterrupt: median {statistics.median(lat) * 1000:.1f} ms, "
        f"max {max(lat) * 1000:.1f} ms"
    )
    print(f"Python-level alloc + free pair: {statistics.median(pair):.0f} ns")


if __name__ == "__main__":
    main()
