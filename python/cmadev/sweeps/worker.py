"""What a worker process does with a batch: run each seed, send the rows back.

Runs on the local pool's processes and on Dask workers alike: :func:`run_batch` takes and
returns plain data. The scenario is validated once per batch (about 2 ms); each run builds
its own machine, and reference counting frees it when the run's rows are made.
"""

from __future__ import annotations

import signal
import time

from cmadev.errors import CmadevError
from cmadev.sim.runner import run_scenario
from cmadev.specs.base import validate_model
from cmadev.specs.policy import Policy
from cmadev.specs.scenario import Scenario
from cmadev.sweeps.plan import BatchTask, package_version
from cmadev.sweeps.rows import Rows, add_run, empty_rows, host_row


def ignore_interrupts() -> None:
    """A local worker's initializer: Ctrl-C reaches every process of the terminal's group,
    and the sweep's own process is the one that stops the others (see
    :mod:`cmadev.sweeps.executors`); a worker interrupted mid-run would only print a
    traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_batch(task: BatchTask) -> Rows:
    """Run every (key, seed) of ``task``; the rows of all its runs."""
    mine = package_version()
    if task["version"] != mine:
        raise CmadevError(
            f"this worker runs cmadev {mine} but the sweep was planned with "
            f"{task['version']}: install the same version everywhere the sweep runs"
        )
    scenario = validate_model(Scenario, task["scenario"], source=f"sweep batch {task['id']}")
    policy = validate_model(Policy, task["policy"], source=f"sweep batch {task['id']}")
    rows = empty_rows()
    for key, seed in task["runs"]:
        started = time.perf_counter()
        try:
            result = run_scenario(scenario, policy, seed=seed)
        except CmadevError as err:
            raise CmadevError(f"{task['label']}, seed {seed}: {err}") from None
        add_run(rows, key, result, task["keep_requests"], task["keep_series"])
        rows["host"].append(host_row(key, result, time.perf_counter() - started))
    return rows


__all__ = ["ignore_interrupts", "run_batch"]
