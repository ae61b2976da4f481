"""The terminal side of the command line: consoles, JSON output, progress bars, exit codes."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cmadev.results import ScenarioResult
from cmadev.units import NS_PER_S, format_duration

PLAIN_WIDTH = 120
"""Columns for tables when stdout is not a terminal (CI logs): wide enough for the policy
labels, which rich would otherwise wrap at its default of 80."""


EXIT_ERROR = 1


EXIT_USAGE = 2


EXIT_INTERRUPTED = 130


class RunProgress:
    """A progress bar per run on a terminal; on anything else (CI logs, pipes, tests) one
    plain line per finished run, because a redrawn bar there is only noise. ``quiet`` (for
    ``--json``) drops the plain lines: a script reading stderr should find only errors."""

    def __init__(self, console: Console, total: int, quiet: bool = False) -> None:
        self.console = console
        self.total = total
        self.quiet = quiet
        self.done = 0
        self.bar: Optional[Progress] = None
        self.task: Optional[TaskID] = None
        if console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[sim]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[host]}"),
                console=console,
            )

    def __enter__(self) -> RunProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, label: str, seed: int, duration_ns: int) -> Callable[[int, int], None]:
        """Show a run; returns the ``progress(now_ns, duration_ns)`` callback of
        :meth:`Scenario.run`."""
        if self.bar is None:
            return lambda now, total: None
        bar = self.bar
        task = bar.add_task(f"{label} seed {seed}", total=duration_ns, sim="", host="")

        def update(now: int, total: int) -> None:
            bar.update(task, completed=min(now, total), sim=_simulated(now, total))

        self.task = task
        return update

    def finish(self, label: str, seed: int, result: ScenarioResult) -> None:
        self.done += 1
        host = result.host
        figures = f"{host['wall_s']:.3f} s wall, {host['speedup']:,.0f}x real time"
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=result.duration_ns, host=figures)
            return
        if self.quiet:
            return
        self.console.print(
            f"[{self.done}/{self.total}] {label} seed {seed}: "
            f"{format_duration(result.end_ns)} simulated, {figures}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _simulated(now: int, total: int) -> str:
    return f"{now / NS_PER_S:.0f}/{total / NS_PER_S:.0f} s"


class SweepProgress:
    """A sweep's bar, with the runs done and the estimated time left, on a terminal; on
    anything else a plain line at the start and each time another tenth is done."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.bar: Optional[Progress] = None
        self.task: Optional[TaskID] = None
        self.total = self.done = self.saved = 0
        self.started = 0.0
        self.next_line = 0

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def begin(self, total: int, saved: int, where: str) -> None:
        self.total, self.done, self.saved = total, saved, saved
        self.started = time.perf_counter()
        self.next_line = saved + max(total // 10, 1)
        before = f", {saved} saved before" if saved else ""
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn(f"{total - saved} runs on {where}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("sweep", total=total, completed=saved)
            self.bar.start()
        elif not self.quiet:
            self._line(f"sweep: {total} runs{before}; {total - saved} to run on {where}")

    def advance(self, runs: int) -> None:
        self.done += runs
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.done)
            return
        if self.quiet or (self.done < self.next_line and self.done < self.total):
            return
        self.next_line = self.done + max(self.total // 10, 1)
        elapsed = time.perf_counter() - self.started
        ran = self.done - self.saved
        left = elapsed / ran * (self.total - self.done) if ran else 0.0
        self._line(
            f"[{self.done}/{self.total}] {100 * self.done / self.total:.0f}% in "
            f"{elapsed:.1f} s, about {left:.0f} s left"
        )

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def make_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr, when stdout carries JSON). Off a terminal, rich
    would wrap tables at 80 columns: use $COLUMNS, or a width that fits the labels."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PLAIN_WIDTH
    return console


def print_json(data: Any, indent: Optional[int] = None) -> None:
    """Exactly one JSON document on stdout (not through rich, which would wrap lines)."""
    sys.stdout.write(json.dumps(data, indent=indent) + "\n")
    sys.stdout.flush()


def fail(message: str) -> int:
    sys.stderr.write(f"cmadev: error: {message}\n")
    return EXIT_ERROR
