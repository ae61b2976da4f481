"""The workloads whose memory only swap can take: :class:`AnonHog` (anonymous memory, a
process heap) and :class:`TmpfsFile` (a file on tmpfs: shmem page cache).

Two kinds of one family, apart from the others: what they hold is bounded by the board's
memory and swap (``_swappable``).

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

from typing import Any, Literal

from pydantic import Field, field_validator

from cmadev.specs.base import Name
from cmadev.specs.board import Board
from cmadev.specs.workloads.base import WorkloadBase, _positive_rate, _positive_size
from cmadev.units import PAGE_SIZE, Rate, Size, format_size, pages_for


class AnonHog(WorkloadBase):
    """Anonymous memory (a process heap) growing to a size, then re-touched at random.

    Without swap its pages cannot be reclaimed; with swap, reclaim swaps them out and a touch
    swaps them back in. With ``mlock`` the whole buffer is locked before it grows
    (``mlock2(MLOCK_ONFAULT)``): each page is mlocked as it is faulted in (``Mlocked``,
    ``Unevictable``), never reclaimed or swapped, but still migrated by a contiguous
    allocation: mlock does not block ``cma_alloc``.
    """

    kind: Literal["anon_hog"] = Field("anon_hog", description="The workload kind.")
    _held_fields = ("size",)
    _swappable = True
    _rate_fields = ("growth", "touch_rate")
    name: Name = Field("anon_hog", description=WorkloadBase.model_fields["name"].description)
    size: Size = Field(description="How much anonymous memory it grows to (e.g. '300MiB').")
    growth: Rate = Field(description="How fast it grows (first-touch faults, e.g. '100MiB/s').")
    touch_rate: Rate = Field(
        0, description="Random re-touches of its memory once allocated (e.g. '50MiB/s'; 0: none)."
    )
    write_fraction: float = Field(
        0.0, ge=0, le=1, description="Share of the re-touches that write (0 to 1)."
    )
    mlock: bool = Field(
        False,
        description="Lock the whole buffer (mlock2 with MLOCK_ONFAULT): its pages are "
        "mlocked as they are faulted in, never reclaimed or swapped, still migratable.",
    )

    @field_validator("size")
    @classmethod
    def _size_positive(cls, value: int) -> int:
        return _positive_size(value, "size", "300MiB")

    @field_validator("growth")
    @classmethod
    def _growth_positive(cls, value: int) -> int:
        return int(_positive_rate(value, "growth", "100MiB/s"))

    def problems_on(self, board: Board) -> list[tuple[str, str]]:
        """As :meth:`WorkloadBase.problems_on`; mlocked memory cannot be swapped, so it must
        fit the board's memory alone."""
        problems = super().problems_on(board)
        if self.mlock and self.size > board.ram and not any(f == "size" for f, _ in problems):
            problems.append(
                (
                    "size",
                    f"{format_size(self.size)} of mlocked memory does not fit in board "
                    f"{board.name!r}'s {format_size(board.ram)} of memory (mlocked pages are "
                    f"never swapped): use at most {format_size(board.ram)}",
                )
            )
        return problems

    def _engine_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "target_pages": pages_for(self.size),
            "growth_pages_per_s": self.growth / PAGE_SIZE,
            "touch_rate_pages_per_s": self.touch_rate / PAGE_SIZE,
            "write_fraction": self.write_fraction,
        }
        if self.mlock:
            fields["mlock"] = True
        return fields


class TmpfsFile(WorkloadBase):
    """A file on tmpfs (shmem), written in order at ``rate`` until it has its ``size``, and
    read (a share of the accesses rewriting) at random at ``access_rate`` over what is
    written.

    Its pages are page cache (``Cached``, ``Shmem`` in /proc/meminfo) but swap-backed: on the
    anonymous LRU lists, reclaimed only to swap, not counted in ``MemAvailable``; movable, so
    they may sit in CMA and a contiguous allocation migrates them. Stopping the workload
    deletes the file. A tmpfs file belongs to no process: the OOM killer never chooses it.
    """

    kind: Literal["tmpfs_file"] = Field("tmpfs_file", description="The workload kind.")
    _held_fields = ("size",)
    _swappable = True
    _rate_fields = ("rate", "access_rate")
    name: Name = Field("tmpfs", description=WorkloadBase.model_fields["name"].description)
    size: Size = Field(description="Size of the file once written (e.g. '64MiB').")
    rate: Rate = Field(description="How fast the file is written (e.g. '50MiB/s').")
    access_rate: Rate = Field(
        0,
        description="Random reads and rewrites of what is written, per second (e.g. "
        "'10MiB/s'; 0: none).",
    )
    write_fraction: float = Field(
        0.0, ge=0, le=1, description="Share of the accesses that rewrite the page (0 to 1)."
    )

    @field_validator("size")
    @classmethod
    def _size_positive(cls, value: int) -> int:
        return _positive_size(value, "size", "64MiB")

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: int) -> int:
        return int(_positive_rate(value, "rate", "50MiB/s"))

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "file_pages": pages_for(self.size),
            "rate_pages_per_s": self.rate / PAGE_SIZE,
            "access_rate_pages_per_s": self.access_rate / PAGE_SIZE,
            "write_fraction": self.write_fraction,
        }


__all__ = ["AnonHog", "TmpfsFile"]
