"""Where a sweep's batches run: a pool of local processes, or a Dask distributed cluster.

A run spends much of its time in Python around the engine (specs, devices, results), which
holds the GIL, so threads would mostly take turns: a sweep runs on processes. The local pool
starts them with ``spawn``: a forked child would inherit the parent's threads' locks (rich's
refresh thread, a Dask client's event loop) in whatever state they were, and ``spawn``
behaves the same on Linux and macOS. A worker imports cmadev once (about 0.3 s) and then runs
batch after batch.

Both executors yield each batch's rows as it finishes, in whatever order; the store sorts.
Stopping early (an error, Ctrl-C) cancels the batches not started; a local worker finishes
the batch it is running and exits.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Optional, Protocol

from cmadev.errors import CmadevError, MisuseError
from cmadev.host import usable_cores
from cmadev.sweeps.plan import BatchTask
from cmadev.sweeps.rows import Rows
from cmadev.sweeps.worker import ignore_interrupts, run_batch

DASK_EXTRA = "pip install 'cmadev[dask]'"


class Executor(Protocol):
    """Runs batches somewhere and hands back their rows as they finish."""

    workers: int
    """How many runs go on at once (to size the batches)."""
    where: str
    """Where the runs go, for messages ("2 local processes", "dask tcp://...")."""

    def run(self, tasks: list[BatchTask]) -> Generator[tuple[BatchTask, Rows], None, None]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    """One worker per core this process may run on."""
    return usable_cores()


class LocalPool:
    """A pool of ``workers`` processes on this machine."""

    def __init__(self, workers: Optional[int] = None) -> None:
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise MisuseError(f"workers={workers!r}: give at least 1 (default: one per core)")
        self.workers = workers or default_workers()
        plural = "es" if self.workers != 1 else ""
        self.where = f"{self.workers} local process{plural}"

    def run(self, tasks: list[BatchTask]) -> Generator[tuple[BatchTask, Rows], None, None]:
        if not tasks:
            return
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=ignore_interrupts,
        )
        pending: dict[Future[Rows], BatchTask] = {pool.submit(run_batch, t): t for t in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: pending[f]["id"]):
                    task = pending.pop(future)
                    yield task, _result(future)
        finally:
            # on an error or an interrupt: drop the batches not started, don't wait for the
            # ones running (their workers finish them and exit)
            pool.shutdown(wait=not pending, cancel_futures=True)

    def close(self) -> None:
        pass


def _result(future: Future[Rows]) -> Rows:
    try:
        return future.result()
    except BrokenProcessPool:
        raise CmadevError(
            "a sweep worker process died: killed, out of memory, or it could not start (a "
            "worker imports the main script again: call cmadev.sweep under "
            "'if __name__ == \"__main__\":', from a file, not from standard input); the "
            "batches finished before are saved: run the sweep again to resume"
        ) from None


class DaskPool:
    """The workers of a Dask distributed cluster, through ``client``."""

    def __init__(self, client: Any, own: bool = False) -> None:
        self.client = client
        self.own = own
        self.workers = max(1, sum(client.nthreads().values()))
        self.where = f"dask {client.scheduler.address} ({self.workers} worker threads)"

    @classmethod
    def connect(cls, address: str) -> DaskPool:
        """A client of the scheduler at ``address`` (``tcp://host:8786``), closed with the pool."""
        distributed = import_distributed()
        try:
            client = distributed.Client(address, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise CmadevError(
                f"cannot reach the Dask scheduler at {address}: {err}; check the address "
                f"(tcp://host:8786) and that the scheduler runs"
            ) from None
        return cls(client, own=True)

    def run(self, tasks: list[BatchTask]) -> Generator[tuple[BatchTask, Rows], None, None]:
        distributed = import_distributed()
        futures = {self.client.submit(run_batch, t, pure=False): t for t in tasks}
        try:
            for future in distributed.as_completed(list(futures)):
                yield futures[future], future.result()
                future.release()
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        if self.own:
            self.client.close()


def import_distributed() -> Any:
    """The ``distributed`` package, or an error naming the extra that installs it."""
    try:
        import distributed
    except ImportError:
        raise MisuseError(
            f"running a sweep on Dask needs the 'distributed' package: {DASK_EXTRA}"
        ) from None
    return distributed


__all__ = ["DASK_EXTRA", "DaskPool", "Executor", "LocalPool", "default_workers"]
