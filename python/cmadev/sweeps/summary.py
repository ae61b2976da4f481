"""A sweep's summary: per grid point, policy and device, success and misses with Wilson
intervals, p50 and p99 latency with order-statistics intervals (95%, over the requests of
every seed; see :mod:`cmadev.report.intervals`).

It is computed from the requests table, so it is the same whether the runs were made now or
saved by an earlier, interrupted sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pyarrow as pa  # type: ignore[import-untyped]

from cmadev.report.format import ms, text_table
from cmadev.report.intervals import nearest_rank, quantile_interval, wilson_interval
from cmadev.sweeps.plan import Plan
from cmadev.sweeps.store import grid_array

SUMMARY_LEGEND = (
    "Over every seed's requests of the device at that grid point and policy. success: share "
    "that got every buffer (in time or late); misses: share late or failed; both with a 95% "
    "Wilson interval. p50/p99: latency of the requests that got their buffers, with a 95% "
    "distribution-free order-statistics interval ('-': too few requests for that bound; a "
    "p99 upper bound needs at least 368)."
)


@dataclass(frozen=True)
class SummaryRow:
    """One device under one policy at one grid point, over all seeds."""

    point: int
    values: dict[str, Any]
    """The grid's values at the point, by path, as written."""
    policy: str
    device: str
    seeds: int
    requests: int
    met: int
    late: int
    failed: int
    deadline_ns: int
    success: tuple[float, float, float]
    """Rate, then the 95% Wilson interval's low and high."""
    misses: tuple[float, float, float]
    p50_ns: tuple[Optional[int], Optional[int], Optional[int]]
    """Value, then the 95% interval's low and high (None: too few requests for it)."""
    p99_ns: tuple[Optional[int], Optional[int], Optional[int]]

    def cells(self) -> list[str]:
        """requests, success, misses, p50, p99, deadline."""
        return [
            str(self.requests),
            _rate(self.success),
            _rate(self.misses),
            _latency(self.p50_ns),
            _latency(self.p99_ns),
            ms(self.deadline_ns),
        ]


def _rate(rate: tuple[float, float, float]) -> str:
    """``"2.5% [0.9, 7.1]"``: the rate and its interval, in percent."""
    value, low, high = rate
    return f"{100 * value:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _latency(figure: tuple[Optional[int], Optional[int], Optional[int]]) -> str:
    """``"14.2 ms [14.2, 37.9]"``: the latency and its interval in the same unit ('-' for
    a bound the sample cannot give)."""
    value, low, high = figure
    if value is None:
        return "-"
    shown = ms(value)
    unit = shown.split()[-1]
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}.get(unit, 1e6)

    def bound(x: Optional[int]) -> str:
        return "-" if x is None else f"{x / scale:.3g}"

    return f"{shown} [{bound(low)}, {bound(high)}]"


SUMMARY_COLUMNS = ("policy", "device", "requests", "success", "misses", "p50", "p99", "deadline")


def summarise(plan: Plan, requests: Any) -> list[SummaryRow]:
    """The summary rows from the requests table (sorted as the store writes it: by grid
    point, policy, seed), in that order, devices in the order they first appear."""
    cols = {
        name: requests.column(name).to_pylist()
        for name in ("point", "policy", "seed", "device", "outcome", "latency_ns", "deadline_ns")
    }
    groups: dict[tuple[int, str, str], list[int]] = {}
    for i in range(requests.num_rows):
        groups.setdefault((cols["point"][i], cols["policy"][i], cols["device"][i]), []).append(i)
    rows = []
    for (point, policy, device), members in groups.items():
        outcomes = [cols["outcome"][i] for i in members]
        ok = sorted(cols["latency_ns"][i] for i in members if cols["outcome"][i] != "failed")
        n, met, late = len(members), outcomes.count("met"), outcomes.count("late")
        rows.append(
            SummaryRow(
                point=point,
                values=plan.grid_values(point),
                policy=policy,
                device=device,
                seeds=len({cols["seed"][i] for i in members}),
                requests=n,
                met=met,
                late=late,
                failed=n - met - late,
                deadline_ns=max(cols["deadline_ns"][i] for i in members),
                success=(_share(met + late, n), *wilson_interval(met + late, n)),
                misses=(_share(n - met, n), *wilson_interval(n - met, n)),
                p50_ns=(nearest_rank(ok, 0.5), *quantile_interval(ok, 0.5)),
                p99_ns=(nearest_rank(ok, 0.99), *quantile_interval(ok, 0.99)),
            )
        )
    return rows


def _share(k: int, n: int) -> float:
    return k / n if n else 0.0


def format_summary(plan: Plan, rows: list[SummaryRow]) -> str:
    """The summary as a plain-text table, with its legend."""
    head = (*plan.paths, *SUMMARY_COLUMNS)
    body = [
        [*(_value(row.values[p]) for p in plan.paths), row.policy, row.device, *row.cells()]
        for row in rows
    ]
    title = f"{plan.sweep.name}: {len(plan.runs)} runs ({_shape(plan)})"
    names = (len(plan.paths), len(plan.paths) + 1)  # policy and device
    return "\n".join([title, "", text_table(head, body, names), "", SUMMARY_LEGEND])


def _value(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _shape(plan: Plan) -> str:
    points = len(plan.points)
    parts = [
        f"{points} grid point{'s' if points != 1 else ''}",
        f"{len(plan.choices)} polic{'ies' if len(plan.choices) != 1 else 'y'}",
        f"{len(plan.seeds)} seed{'s' if len(plan.seeds) != 1 else ''}",
    ]
    return " x ".join(parts)


def summary_table(plan: Plan, rows: list[SummaryRow]) -> Any:
    """The summary as an Arrow table (``summary.parquet``): a column per figure and bound."""
    data: dict[str, Any] = {"point": pa.array([r.point for r in rows], pa.int64())}
    for path in plan.paths:  # typed as in the other tables
        data[path] = grid_array([r.values[path] for r in rows], plan.sweep.grid[path])
    data["policy"] = pa.array([r.policy for r in rows], pa.string())
    data["device"] = pa.array([r.device for r in rows], pa.string())
    for name in ("seeds", "requests", "met", "late", "failed", "deadline_ns"):
        data[name] = pa.array([getattr(r, name) for r in rows], pa.int64())
    for name in ("success", "misses"):
        for i, suffix in enumerate(("", "_low", "_high")):
            data[f"{name}{suffix}"] = pa.array([getattr(r, name)[i] for r in rows], pa.float64())
    for name in ("p50", "p99"):
        for i, suffix in enumerate(("_ns", "_low_ns", "_high_ns")):
            values = [getattr(r, f"{name}_ns")[i] for r in rows]
            data[f"{name}{suffix}"] = pa.array(values, pa.int64())
    return pa.table(data)


__all__ = [
    "SUMMARY_COLUMNS",
    "SUMMARY_LEGEND",
    "SummaryRow",
    "format_summary",
    "summarise",
    "summary_table",
]
