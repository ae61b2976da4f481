"""What every workload has: the base class, its bounds on a board, and the checks the kinds share.

:class:`WorkloadBase` holds a workload's name and run time, checks that its sizes and rates
fit a board (:meth:`WorkloadBase.check_fits`) and gives the engine's JSON
(:meth:`WorkloadBase.to_engine`); each kind (the other modules of
:mod:`cmadev.specs.workloads`) adds its fields and their engine form. It is apart so that the
kinds share one base and its helpers without importing one another.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

from typing import Any, ClassVar, Optional

from pydantic import Field, model_validator

from cmadev.errors import SpecError
from cmadev.specs.base import Name, Spec
from cmadev.specs.board import Board
from cmadev.units import Duration, format_duration, format_rate, format_size


def _positive_size(value: int, what: str, example: str) -> int:
    if value <= 0:
        raise ValueError(f"{what} must be positive: use e.g. {example!r}")
    return value


MAX_EVENT_RATE = 1_000_000.0
"""The most I/Os or allocations per second a workload may ask for: more than an eMMC or UFS
device serves, and about what the engine simulates at a useful speed."""

FILE_PER_RAM = 64
"""A file a workload reads or writes may be at most this many times the board's memory: the
engine keeps a slot per page of it, and beyond that every read misses anyway."""


def _positive_rate(value: float, what: str, example: str) -> float:
    if value <= 0:
        raise ValueError(f"{what} must be above zero: use e.g. {example!r}")
    return value


class WorkloadBase(Spec):
    """What every workload has: a name (the owner of its pages) and when it runs."""

    kind: str = Field(description="Which workload this is (fixed by the class).")
    name: Name = Field(
        description="Owner name: every page and pin of the workload is attributed to it, and "
        "reports name it when it blocks a device. Must differ from the other workloads' and "
        "the devices' names."
    )
    start: Duration = Field(
        0,
        description="When the workload starts (virtual time since boot; a time already "
        "passed means now).",
    )
    stop: Optional[Duration] = Field(
        None,
        description="When it stops (null: it runs to the end). Stopping releases its pins and "
        "frees its pages.",
    )

    @model_validator(mode="after")
    def _stops_after_start(self) -> "WorkloadBase":
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(
                f"stop ({format_duration(self.stop)}) must be after start "
                f"({format_duration(self.start)}): move stop later, or leave it out to run "
                f"until the end"
            )
        return self

    _held_fields: ClassVar[tuple[str, ...]] = ()
    """Sizes the workload keeps in memory: at most the board's memory (and its swap, for
    anonymous memory that may be swapped out: :attr:`_swappable`)."""
    _swappable: ClassVar[bool] = False
    _file_fields: ClassVar[tuple[str, ...]] = ()
    """File sizes: at most :data:`FILE_PER_RAM` times the board's memory."""
    _rate_fields: ClassVar[tuple[str, ...]] = ()
    """Data rates: at most what one CPU of the board copies (:attr:`Board.copy_bandwidth`)."""

    def problems_on(self, board: Board) -> list[tuple[str, str]]:
        """What does not fit ``board``: ``(field, why and the fix)`` for each field over its
        bound (the bounds follow from the board: its memory, swap and copy bandwidth)."""
        problems = []
        room = board.ram + (board.swap if self._swappable else 0)
        where = f"board {board.name!r}'s {format_size(board.ram)} of memory" + (
            f" and {format_size(board.swap)} of swap" if self._swappable and board.swap else ""
        )
        for name in self._held_fields:
            value = getattr(self, name)
            if value > room:
                problems.append(
                    (
                        name,
                        f"{format_size(value)} does not fit in {where}: use at most "
                        f"{format_size(room)}",
                    )
                )
        for name in self._file_fields:
            value = getattr(self, name)
            if value > FILE_PER_RAM * board.ram:
                problems.append(
                    (
                        name,
                        f"{format_size(value)} is over {FILE_PER_RAM} times board "
                        f"{board.name!r}'s memory ({format_size(FILE_PER_RAM * board.ram)}): "
                        f"every read past that misses anyway; use a smaller file",
                    )
                )
        for name in self._rate_fields:
            value = getattr(self, name)
            if value > board.copy_bandwidth:
                limit = format_rate(board.copy_bandwidth)
                problems.append(
                    (
                        name,
                        f"{format_rate(value)} is faster than one CPU of board {board.name!r} "
                        f"copies memory ({limit}: 4 KiB per cost.page_copy): use at most that",
                    )
                )
        return problems

    def check_fits(self, board: Board) -> None:
        """:class:`SpecError` naming each field that does not fit ``board``."""
        problems = self.problems_on(board)
        if problems:
            lines = [f"workload {self.name!r} does not fit board {board.name!r}:"]
            lines += [f"  {name}: {why}" for name, why in problems]
            raise SpecError("\n".join(lines))

    def to_engine(self) -> dict[str, Any]:
        """The JSON object the engine's ``WorkloadKind`` deserialises (rust/mm/src/workload/)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "start_ns": self.start,
            "stop_ns": self.stop,
            **self._engine_fields(),
        }

    def _engine_fields(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError


__all__ = ["FILE_PER_RAM", "MAX_EVENT_RATE", "WorkloadBase"]
