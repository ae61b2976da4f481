"""The parallel build workload (:class:`Build`, ``make -jN``): short processes, each faulting a
heap, reading a source tree and writing an object file.

Apart from the other kinds: it is a mix of them (anonymous memory, page cache reads and
writes, kernel memory) with a CPU time, and the largest of the workload models.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from cmadev.specs.base import Name
from cmadev.specs.board import Board
from cmadev.specs.workloads.base import WorkloadBase, _positive_size
from cmadev.units import Duration, Size, format_size, pages_for


class Build(WorkloadBase):
    """A parallel build (``make -jN``): ``jobs`` short processes at a time, each compiling one
    unit and exiting, ``processes`` of them in all (or until the workload stops).

    A process starts with its kernel memory (stack, page tables: unmovable), faults its heap
    (anonymous, movable), re-touches it, reads the source tree (shared page cache, Zipf-skewed:
    headers stay hot; with ``source_file_size``, whole files in order, with readahead), writes
    its object file (dirty page cache) and exits, freeing its heap:
    the churn of short-lived movable memory that the 2015 CMA papers ran under. Each process
    has a CPU time (within +-50% of ``cpu_time``); its processes share the board's CPUs with
    kswapd and with a ``cma_alloc`` in progress (CFS fair share), so the build slows when
    processes wait for swap or storage, and the kernel's work slows while the build runs.
    The build's elapsed time is its statistics' ``finished_ns``.
    """

    kind: Literal["build"] = Field("build", description="The workload kind.")
    _file_fields = ("source_tree",)
    name: Name = Field("make", description=WorkloadBase.model_fields["name"].description)
    jobs: int = Field(ge=1, le=1024, description="Processes at a time (make -j), e.g. 16.")
    processes: Optional[int] = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Processes in all (compile units); null: start new ones until it stops.",
    )
    cpu_time: Duration = Field(
        description="Mean CPU time of one process (e.g. '1s'), drawn within +-50%."
    )
    heap: Size = Field(
        description="Mean anonymous memory of one process (e.g. '24MiB'), drawn within +-50%."
    )
    touches_per_page: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="Re-touches of its heap per heap page over its life (its working set).",
    )
    source_tree: Size = Field(description="The source tree it reads (e.g. '384MiB').")
    reads_per_process: Size = Field(
        0, description="Source read by one process: headers and its own file (e.g. '8MiB')."
    )
    source_zipf: float = Field(
        0.6,
        ge=0,
        le=10,
        description="Skew of the reads over the tree: Zipf exponent (0: uniform), over its "
        "files when it has them.",
    )
    source_file_size: Optional[Size] = Field(
        None,
        description="Size of one file of the tree (e.g. '16KiB'): a process reads whole files "
        "in order, with the kernel's readahead, as a compiler does; null: the tree is read a "
        "page at a time at random, one storage request per miss.",
    )
    output: Size = Field(
        0, description="Object file written by one process at its end (e.g. '400KiB')."
    )
    output_space: Optional[Size] = Field(
        None,
        description="Space the objects are written in, around (null: as much as the build "
        "writes in all).",
    )

    @field_validator("cpu_time")
    @classmethod
    def _cpu_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("cpu_time must be positive: use e.g. '1s'")
        return value

    @field_validator("heap")
    @classmethod
    def _heap_positive(cls, value: int) -> int:
        return _positive_size(value, "heap", "24MiB")

    @field_validator("source_tree")
    @classmethod
    def _tree_positive(cls, value: int) -> int:
        return _positive_size(value, "source_tree", "384MiB")

    @model_validator(mode="after")
    def _file_within_tree(self) -> "Build":
        size = self.source_file_size
        if size is not None and not 0 < size <= self.source_tree:
            raise ValueError(
                f"source_file_size {format_size(size)} must be positive and at most the "
                f"source_tree ({format_size(self.source_tree)}): use e.g. '16KiB'"
            )
        return self

    def problems_on(self, board: Board) -> list[tuple[str, str]]:
        """Besides the file bound: the heaps of ``jobs`` processes at their largest (1.5 times
        ``heap``) must fit the board's memory and swap."""
        problems = super().problems_on(board)
        peak = self.jobs * (self.heap * 3 // 2)
        room = board.ram + board.swap
        if peak > room:
            problems.append(
                (
                    "heap",
                    f"{self.jobs} jobs with heaps up to {format_size(self.heap * 3 // 2)} need "
                    f"{format_size(peak)}, more than board {board.name!r}'s "
                    f"{format_size(board.ram)} of memory and {format_size(board.swap)} of "
                    f"swap: use fewer jobs or a smaller heap",
                )
            )
        return problems

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "processes": self.processes,
            "cpu_ns": self.cpu_time,
            "anon_pages": pages_for(self.heap),
            "touches_per_page": self.touches_per_page,
            "source_pages": pages_for(self.source_tree),
            "reads_per_process": pages_for(self.reads_per_process),
            "source_zipf": self.source_zipf,
            "source_file_pages": 0
            if self.source_file_size is None
            else pages_for(self.source_file_size),
            "output_pages": pages_for(self.output),
            "output_space_pages": 0 if self.output_space is None else pages_for(self.output_space),
        }


__all__ = ["Build"]
