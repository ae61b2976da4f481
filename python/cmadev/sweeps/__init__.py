"""Sweeps: a scenario over a grid of its fields, policies and seeds, on every local core or
on a Dask cluster, written as Parquet (:func:`cmadev.sweep`; the specification is
:class:`cmadev.specs.sweep.Sweep`).

The floor above :mod:`cmadev.sim` (whose runner the workers call) and :mod:`cmadev.report`.
"""

from cmadev.sweeps.run import SweepResult, SweepWatcher, sweep

__all__ = ["SweepResult", "SweepWatcher", "sweep"]
