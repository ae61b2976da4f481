"""The sweep's plot: each device's deadline-miss rate against the grid's first parameter, a
line per policy, with the 95% Wilson interval as error bars (``miss_rate.png``).

A row of panels per device, the policies' points side by side so that their bars stay
apart; with more than one grid parameter, a column of panels per combination of the others
(at most :data:`MAX_COLUMNS`). Without a grid, the policies are the x axis. matplotlib's
object API on the Agg canvas, with a fixed layout (constrained layout costs more than the
drawing here).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmadev.sweeps.plan import Plan
from cmadev.sweeps.summary import SummaryRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_COLUMNS = 6
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def plot_miss_rates(plan: Plan, rows: list[SummaryRow], path: Path) -> None:
    """Draw the miss-rate plot of ``rows`` into ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    devices = list(dict.fromkeys(r.device for r in rows)) or ["-"]
    others = _other_combinations(plan)[:MAX_COLUMNS]
    cols = len(others)
    fig = Figure(figsize=(4.2 * cols + 1.8, 2.6 * len(devices) + 1.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(devices), cols, squeeze=False, sharey=True)
    for (r, device), (c, other) in itertools.product(enumerate(devices), enumerate(others)):
        mine = [row for row in rows if row.device == device and _matches(row, other)]
        _panel(axes[r][c], plan, mine)
        title = ", ".join(f"{p}={v}" for p, v in other.items())
        axes[r][c].set_title(f"{device}" + (f"\n{title}" if title else ""), fontsize="small")
    for ax in axes[:, 0]:
        ax.set_ylabel("deadline misses")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize="small")
    fig.suptitle(f"{plan.sweep.name}: deadline misses (late or failed), 95% Wilson intervals")
    fig.subplots_adjust(left=0.9 / fig.get_figwidth() + 0.02, right=1 - 1.7 / fig.get_figwidth())
    fig.subplots_adjust(hspace=0.6, wspace=0.15, top=1 - 1.0 / fig.get_figheight(), bottom=0.12)
    fig.savefig(path, dpi=100, format="png")


def _other_combinations(plan: Plan) -> list[dict[str, Any]]:
    """Each combination of the grid's values beyond the first parameter ([{}] if none)."""
    rest = plan.paths[1:]
    combos = itertools.product(*(plan.sweep.grid[p] for p in rest))
    return [dict(zip(rest, combo)) for combo in combos]


def _matches(row: SummaryRow, other: dict[str, Any]) -> bool:
    return all(row.values.get(p) == v for p, v in other.items())


def _panel(ax: Axes, plan: Plan, rows: list[SummaryRow]) -> None:
    from matplotlib.ticker import PercentFormatter

    first = plan.paths[0] if plan.paths else None
    xs = list(plan.sweep.grid[first]) if first else [c.label for c in plan.choices]
    for i, choice in enumerate(plan.choices):
        mine = [r for r in rows if r.policy == choice.label]
        if not mine:
            continue
        dodge = (i - (len(plan.choices) - 1) / 2) * min(0.3 / len(plan.choices), 0.08)
        positions = [
            (xs.index(r.values[first]) if first else xs.index(r.policy)) + dodge for r in mine
        ]
        rates = [r.misses[0] for r in mine]
        below = [r.misses[0] - r.misses[1] for r in mine]
        above = [r.misses[2] - r.misses[0] for r in mine]
        ax.errorbar(
            positions,
            rates,
            yerr=[below, above],
            color=_PALETTE[i % len(_PALETTE)],
            marker="o",
            ms=4,
            lw=1.3,
            capsize=3,
            ls="-" if first else "none",
            label=choice.label,
        )
    ax.set_xticks(range(len(xs)), [str(x) for x in xs], rotation=0 if first else 30, ha="center")
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_xlabel(first or "policy", fontsize="small")
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.grid(alpha=0.3)


__all__ = ["MAX_COLUMNS", "plot_miss_rates"]
