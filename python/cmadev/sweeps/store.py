"""A sweep's output folder: Parquet tables, saved batch by batch so that a sweep resumes.

::

    DIR/runs.parquet        a row per run               deterministic
    DIR/requests.parquet    a row per device request    deterministic (keep.requests)
    DIR/series.parquet      a row per sample            deterministic (keep.series)
    DIR/host.parquet        the host's figures per run  NOT deterministic
    DIR/sweep.json          the sweep as it last ran
    DIR/parts/<batch>/      batches saved since the tables were last written

Crash safety: a batch is written into ``parts/.tmp-<batch>-<pid>/``, every file synced to
disk, then the folder is renamed to ``parts/<batch>``: a part is whole or is not there, and
the leftovers of a crash (``.tmp-*``) are removed when the folder is opened again. The
tables are each replaced at once (``os.replace`` of a synced temporary file), ``runs``
last, and the parts are removed only after every table is written. A run is saved when its
key is in a runs table, a part's or the folder's; where both hold it, the part's rows are
taken (a crash between two tables' replacements leaves them out of step, never the parts).

The tables are sorted by the plan's order (grid point, policy, seed; then the request or the
sample within a run), and the plan's columns (point, the grid's values, policy, seed) are
joined by key when they are written, so the same sweep file gives the same bytes whatever
the number of workers, the order they finished in, or how many times it was resumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from cmadev.errors import CmadevError, MisuseError
from cmadev.sweeps.plan import Plan
from cmadev.sweeps.rows import ORDER_WITHIN_RUN, PLAN_COLUMNS, TABLES, Columns, Rows

_ARROW_TYPES: dict[str, Callable[[], Any]] = {
    "int64": pa.int64,
    "uint64": pa.uint64,
    "float64": pa.float64,
    "bool": pa.bool_,
    "string": pa.string,
    "list<string>": lambda: pa.list_(pa.string()),
}

COMPRESSION = "zstd"
PARTS = "parts"
SWEEP_FILE = "sweep.json"


def schema_of(columns: Columns) -> Any:
    return pa.schema([(name, _ARROW_TYPES[kind]()) for name, (kind, _) in columns.items()])


def tables_kept(plan: Plan) -> list[str]:
    """The tables this sweep writes: runs and host always, the others if kept."""
    keep = plan.sweep.keep
    wanted = {"runs": True, "requests": keep.requests, "series": keep.series, "host": True}
    return [name for name in TABLES if wanted[name]]


class Store:
    """The output folder of one sweep, locked while it is open (one writer at a time)."""

    def __init__(self, folder: Path, plan: Plan) -> None:
        self.folder = folder
        self.parts = folder / PARTS
        self.plan = plan
        self._lock: Optional[int] = None

    # ----- opening ------------------------------------------------------------------------

    def __enter__(self) -> Store:
        self.parts.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._check_same_sweep()
        for leftover in self.parts.glob(".tmp-*"):  # a batch being written when it stopped
            shutil.rmtree(leftover, ignore_errors=True)
        write_atomic(
            self.folder / SWEEP_FILE,
            lambda path: path.write_text(self.plan.sweep.model_dump_json(indent=2) + "\n"),
        )
        return self

    def __exit__(
        self, kind: Optional[type[BaseException]], err: Optional[BaseException], tb: TracebackType
    ) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the file releases the lock
            self._lock = None

    def _take_lock(self) -> None:
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MisuseError(
                f"{self.folder}: another sweep is writing to this folder; wait for it to end "
                f"or give this one another output folder"
            ) from None
        self._lock = fd

    def _check_same_sweep(self) -> None:
        """Refuse a folder holding another sweep's results: writing the tables would drop
        every run that is not this sweep's."""
        recorded = self.folder / SWEEP_FILE
        if not recorded.exists():
            return
        try:
            name = json.loads(recorded.read_text()).get("name")
        except (OSError, ValueError, AttributeError):
            name = None
        if name != self.plan.sweep.name:
            raise MisuseError(
                f"{self.folder} holds the results of sweep {name!r}, not "
                f"{self.plan.sweep.name!r}: give this sweep another output folder, or delete "
                f"that one"
            )

    # ----- what is saved ------------------------------------------------------------------

    def saved_keys(self) -> set[str]:
        """The keys of this sweep's runs saved in the folder (in its tables or its parts)."""
        saved: set[str] = set()
        for source in self._sources():
            runs = _read(source / "runs.parquet", columns=["key"])
            saved.update(runs.column("key").to_pylist())
        return saved & self.plan.by_key.keys()

    def _sources(self) -> list[Path]:
        """Where saved runs are: each part (oldest name first), then the folder's tables."""
        parts = sorted(p for p in self.parts.iterdir() if p.is_dir() and p.name[0] != ".")
        final = [self.folder] if (self.folder / "runs.parquet").exists() else []
        return [*parts, *final]

    def save(self, batch_id: str, rows: Rows) -> None:
        """Write one batch's rows as a part, whole or not at all."""
        target = self.parts / batch_id
        tmp = self.parts / f".tmp-{batch_id}-{os.getpid()}"
        tmp.mkdir()
        try:
            for name in tables_kept(self.plan):
                table = pa.Table.from_pylist(rows[name], schema=schema_of(TABLES[name]))
                pq.write_table(table, tmp / f"{name}.parquet", compression=COMPRESSION)
                _sync(tmp / f"{name}.parquet")
            _sync(tmp)
            if target.exists():  # the same runs saved before (a resume raced a crash)
                shutil.rmtree(target)
            tmp.rename(target)
            _sync(self.parts)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # ----- the tables ---------------------------------------------------------------------

    def compact(self) -> dict[str, Path]:
        """Write every table from the saved runs of this sweep, sorted, and remove the parts.
        Returns the tables' files by name."""
        kept = tables_kept(self.plan)
        pieces: dict[str, list[Any]] = {name: [] for name in kept}
        taken: set[str] = set()
        sources = self._sources()
        for source in sources:
            runs = _read(source / "runs.parquet", columns=["key"])
            new = set(runs.column("key").to_pylist()) & self.plan.by_key.keys()
            new -= taken
            if not new:
                continue
            wanted = pa.array(sorted(new), pa.string())
            for name in kept:
                table = _read(source / f"{name}.parquet", columns=list(TABLES[name]))
                pieces[name].append(table.filter(pc.is_in(table.column("key"), wanted)))
            taken |= new
        files = {}
        for name in sorted(kept, key=lambda n: n == "runs"):  # runs last: the index of what is done
            files[name] = self.folder / f"{name}.parquet"
            table = self._table(name, pieces[name])
            write_atomic(files[name], functools.partial(write_parquet, table))
        for name in TABLES:
            if name not in kept:  # a table an earlier run of the sweep kept, stale now
                (self.folder / f"{name}.parquet").unlink(missing_ok=True)
        for source in sources:
            if source != self.folder:
                shutil.rmtree(source)
        return {name: files[name] for name in kept}

    def _table(self, name: str, pieces: list[Any]) -> Any:
        """The table ``name`` from its pieces: sorted by the plan, the plan's columns first."""
        columns = TABLES[name]
        schema = schema_of(columns)
        table = (
            pa.concat_tables([p.cast(schema) for p in pieces]) if pieces else schema.empty_table()
        )
        order = [self.plan.by_key[key].order for key in table.column("key").to_pylist()]
        sort = [("_order", "ascending")]
        if name in ORDER_WITHIN_RUN:
            sort.append((ORDER_WITHIN_RUN[name], "ascending"))
        indices = pc.sort_indices(table.append_column("_order", pa.array(order, pa.int64())), sort)
        table = table.take(indices)
        runs = [self.plan.runs[order[i]] for i in indices.to_pylist()]
        front = self._plan_columns(runs)
        return pa.table({**front, **{c: table.column(c) for c in columns}}).combine_chunks()

    def _plan_columns(self, runs: list[Any]) -> dict[str, Any]:
        """point, one column per grid path, policy, seed: for ``runs``, row by row."""
        out: dict[str, Any] = {"point": pa.array([r.point for r in runs], pa.int64())}
        at_point = [self.plan.grid_values(point.index) for point in self.plan.points]
        for path in self.plan.paths:
            values = [at_point[r.point][path] for r in runs]
            out[path] = grid_array(values, self.plan.sweep.grid[path])
        out["policy"] = pa.array([r.policy for r in runs], pa.string())
        out["seed"] = pa.array([r.seed for r in runs], pa.uint64())
        assert list(out)[:1] + list(out)[-2:] == list(PLAN_COLUMNS)
        return out


def grid_array(values: list[Any], all_values: tuple[Any, ...]) -> Any:
    """A grid path's column: the values as written, typed by what all of its values are
    (whole numbers, numbers, booleans, strings; anything else as JSON text)."""
    if all(isinstance(v, bool) for v in all_values):
        return pa.array(values, pa.bool_())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in all_values):
        return pa.array(values, pa.int64())
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in all_values):
        return pa.array([float(v) for v in values], pa.float64())
    if all(isinstance(v, str) for v in all_values):
        return pa.array(values, pa.string())
    return pa.array([json.dumps(v, sort_keys=True) for v in values], pa.string())


def read_table(path: Path) -> Any:
    """A table of a sweep's output folder, as an Arrow table."""
    return _read(path)


def _read(path: Path, columns: Optional[list[str]] = None) -> Any:
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as err:
        raise CmadevError(
            f"{path}: cannot read this part of the sweep's output ({err}); delete "
            f"{path.parent if path.parent.parent.name == PARTS else path} and run the sweep "
            f"again: its runs run again"
        ) from None


def write_parquet(table: Any, path: Path) -> None:
    """``table`` as Parquet: the same table gives the same bytes."""
    pq.write_table(table, path, compression=COMPRESSION)


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """``write`` a temporary file beside ``path``, sync it, and put it in ``path``'s place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        _sync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _sync(path.parent)


def _sync(path: Path) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "COMPRESSION",
    "Store",
    "grid_array",
    "read_table",
    "schema_of",
    "tables_kept",
    "write_atomic",
    "write_parquet",
]
