"""Running a sweep: :func:`sweep`, the Python face of ``python -m cmadev sweep``.

It plans the runs (:mod:`cmadev.sweeps.plan`), skips those already saved in the output
folder, sends the others in batches to the workers (:mod:`cmadev.sweeps.executors`), saves
each batch as it comes back (:mod:`cmadev.sweeps.store`), and at the end writes the tables,
the summary and its plot. Interrupted, it leaves the batches it finished in the folder; the
same call again runs only the rest.

pyarrow and matplotlib are imported when a sweep runs, not with cmadev.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union

from cmadev.errors import MisuseError
from cmadev.specs.sweep import Sweep, load_sweep
from cmadev.sweeps.executors import DaskPool, Executor, LocalPool
from cmadev.sweeps.plan import Plan

if TYPE_CHECKING:
    from cmadev.sweeps.summary import SummaryRow

SUMMARY_FILES = {
    "summary": "summary.parquet",
    "summary_text": "summary.txt",
    "plot": "miss_rate.png",
}
"""The summary's files in the output folder, by kind."""


class SweepWatcher(Protocol):
    """Told how a sweep goes (the command line's progress bar)."""

    def begin(self, total: int, saved: int, where: str) -> None:
        """The sweep has ``total`` runs, ``saved`` of them in the folder already; the
        others go to ``where``."""

    def advance(self, runs: int) -> None:
        """``runs`` more runs are done and saved."""


@dataclass
class SweepResult:
    """What a sweep wrote: the tables and the summary, and how it went."""

    sweep: Sweep
    folder: Path
    files: dict[str, Path]
    """The output files by kind: runs, requests, series, host (tables); summary,
    summary_text, plot."""
    runs: int
    """Runs in the sweep."""
    ran: int
    """Runs made by this call (the others were saved already)."""
    wall_s: float
    where: str
    """Where the runs went ("2 local processes", "dask tcp://...")."""
    summary: list[SummaryRow] = field(default_factory=list)
    plan: Optional[Plan] = field(default=None, repr=False)

    @property
    def reused(self) -> int:
        return self.runs - self.ran

    def table(self, name: str = "runs") -> Any:
        """A table of the output as an Arrow table (``.to_pandas()``, ``polars.from_arrow``)."""
        from cmadev.sweeps.store import read_table

        if name not in self.files:
            raise MisuseError(
                f"no table {name!r} in {self.folder}; tables: {', '.join(self.files)}"
            )
        return read_table(self.files[name])

    def format_summary(self) -> str:
        from cmadev.sweeps.summary import format_summary

        assert self.plan is not None
        return format_summary(self.plan, self.summary)

    def to_dict(self) -> dict[str, Any]:
        """The files, the counts and the summary, as plain data (for ``--json``)."""
        return {
            "sweep": self.sweep.name,
            "folder": str(self.folder),
            "files": {kind: str(path) for kind, path in self.files.items()},
            "runs": self.runs,
            "ran": self.ran,
            "reused": self.reused,
            "where": self.where,
            "wall_s": self.wall_s,
            "summary": [vars(row) for row in self.summary],
        }


def sweep(
    spec: Union[Sweep, str, os.PathLike[str]],
    workers: Optional[int] = None,
    client: Any = None,
    out: Union[str, os.PathLike[str], None] = None,
    watcher: Optional[SweepWatcher] = None,
    batch_size: Optional[int] = None,
) -> SweepResult:
    """Run the sweep ``spec`` (a Sweep, a sweep file, or a shipped sweep's name) and write
    its tables, summary and plot into ``out`` (default ``sweep-<name>``).

    The runs go to ``workers`` local processes (default: one per core), or to a Dask
    cluster: ``client`` is a ``distributed.Client`` or a scheduler's address
    (``"tcp://host:8786"``). Runs saved in ``out`` by an earlier call (interrupted, or with
    fewer seeds) are not run again. ``batch_size`` runs go to a worker at once (default:
    enough batches to keep every worker busy, at most 16 runs each).
    """
    started = time.perf_counter()
    plan = Plan(load_sweep(spec))
    folder = Path(out) if out is not None else Path(f"sweep-{plan.sweep.name}")
    if folder.suffix == ".parquet":
        raise MisuseError(
            f"out={str(folder)!r}: a sweep writes a folder of tables (runs.parquet, "
            f"requests.parquet, host.parquet, ...) so that it can resume; give a folder, such "
            f"as {str(folder.with_suffix(''))!r}"
        )
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise MisuseError(f"batch_size={batch_size!r}: give at least 1 run per batch")
    executor = _executor(workers, client)
    try:
        files, ran = _run(plan, folder, executor, watcher, batch_size)
    finally:
        executor.close()
    summary = _write_summary(plan, folder, files)
    return SweepResult(
        sweep=plan.sweep,
        folder=folder,
        files={**files, **{k: folder / SUMMARY_FILES[k] for k in SUMMARY_FILES if summary}},
        runs=len(plan.runs),
        ran=ran,
        wall_s=time.perf_counter() - started,
        where=executor.where,
        summary=summary,
        plan=plan,
    )


def _executor(workers: Optional[int], client: Any) -> Executor:
    if client is None:
        return LocalPool(workers)
    if workers is not None:
        raise MisuseError(
            "give workers (local processes) or client (a Dask cluster), not both: a Dask "
            "cluster has its own workers"
        )
    return DaskPool.connect(client) if isinstance(client, str) else DaskPool(client)


def _run(
    plan: Plan,
    folder: Path,
    executor: Executor,
    watcher: Optional[SweepWatcher],
    batch_size: Optional[int],
) -> tuple[dict[str, Path], int]:
    """Run what is not saved yet, save it batch by batch, write the tables; returns the
    tables' files and how many runs ran."""
    from cmadev.sweeps.store import Store

    with Store(folder, plan) as store:
        saved = store.saved_keys()
        todo = [run for run in plan.runs if run.key not in saved]
        size = batch_size or plan.batch_size(len(todo), executor.workers)
        if watcher is not None:
            watcher.begin(len(plan.runs), len(plan.runs) - len(todo), executor.where)
        with contextlib.closing(executor.run(plan.batches(todo, size))) as finished:
            for task, rows in finished:
                store.save(task["id"], rows)
                if watcher is not None:
                    watcher.advance(len(task["runs"]))
        return store.compact(), len(todo)


def _write_summary(plan: Plan, folder: Path, files: dict[str, Path]) -> list[SummaryRow]:
    """The summary from the requests table, as Parquet, text and a plot (none when the
    sweep keeps no requests: stale summary files are removed)."""
    from cmadev.sweeps.store import read_table, write_atomic, write_parquet
    from cmadev.sweeps.summary import format_summary, summarise, summary_table

    paths = {kind: folder / name for kind, name in SUMMARY_FILES.items()}
    if "requests" not in files:
        for path in paths.values():
            path.unlink(missing_ok=True)
        return []
    from cmadev.sweeps.plots import plot_miss_rates

    rows = summarise(plan, read_table(files["requests"]))
    table = summary_table(plan, rows)
    write_atomic(paths["summary"], lambda path: write_parquet(table, path))
    text = format_summary(plan, rows) + "\n"
    write_atomic(paths["summary_text"], lambda path: path.write_text(text))
    write_atomic(paths["plot"], lambda path: plot_miss_rates(plan, rows, path))
    return rows


__all__ = ["SUMMARY_FILES", "SweepResult", "SweepWatcher", "sweep"]
