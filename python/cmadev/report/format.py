"""Formatting for every table cmadev prints (the terminal's, the Markdown summary's, the plain
text of ``str(comparison)``): one set of cells, two renderers, and the legend that says what
the columns mean."""

from __future__ import annotations

from typing import Optional

from cmadev.units import format_duration

DEVICE_COLUMNS = (
    *("policy", "device", "requests", "success"),
    *("p50", "p99", "max", "deadline", "misses"),
)
SYSTEM_COLUMNS = ("policy", "CMA use idle", "refaults", "migrated", "pgscan")
HOST_COLUMNS = ("policy", "runs", "wall/run", "CPU/run", "peak RSS", "speed-up")

DEVICE_LEGEND = (
    "requests: device actions (start, change of resolution) over all seeds; success: share "
    "that got every buffer, in time or late; p50/p99/max: latency from the request to its last "
    "buffer ready, over the requests that got their buffers (a failure can be quick, so "
    "failures are left out of the percentiles and counted in misses); misses: requests late "
    "or failed."
)
SYSTEM_LEGEND = (
    "CMA use idle: mean share of the CMA areas put to use (movable pages; under gcma, "
    "discardable cleancache pages) over the samples taken while no device claimed or held a "
    "buffer. refaults, migrated (pgmigrate_success), pgscan (pgscan_kswapd + pgscan_direct): "
    "means per run."
)


def ms(ns: Optional[float]) -> str:
    """A latency for a table ("37.2 ms"); "-" when there is none."""
    return "-" if ns is None else format_duration(ns)


def percent(x: Optional[float]) -> str:
    """A share for a table ("74%"); "-" when there is none."""
    return "-" if x is None else f"{100 * x:.0f}%"


def count(x: float) -> str:
    """A count or a mean count for a table ("38,775")."""
    return f"{x:,.0f}"


def text_table(
    head: tuple[str, ...], rows: list[list[str]], names: tuple[int, ...] = (0, 1)
) -> str:
    """A plain-text table: names (the columns ``names``, the first two by default)
    left-aligned, figures right."""
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]

    def line(cells: tuple[str, ...] | list[str]) -> str:
        parts = [
            c.ljust(w) if i in names and not c[:1].isdigit() else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(head), *(line(r) for r in rows)])


def markdown_table(head: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines: names left-aligned, figures right."""
    align = ["---" if h in ("policy", "device") else "---:" for h in head]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def first_sentence(text: str) -> str:
    """The first sentence of a description: the one-line summary in listings and reports
    (a full stop followed by a capital, so that "e.g. 4 x 12 MiB" does not end it)."""
    text = text.strip()
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " "):
            following = text[i + 2 : i + 3]
            if not following or following.isupper() or following in "'\"(":
                return text[: i + 1]
    return text


__all__ = [
    "DEVICE_COLUMNS",
    "DEVICE_LEGEND",
    "HOST_COLUMNS",
    "SYSTEM_COLUMNS",
    "SYSTEM_LEGEND",
    "count",
    "first_sentence",
    "markdown_table",
    "ms",
    "percent",
    "text_table",
]
