"""Background workloads: the load a device's contiguous allocations compete with.

Each class describes one kind of load in human units (``"900MiB"``, ``"200MiB/s"``,
``"2ms"``); the Rust engine runs it inside its event loop, page by page, with no Python call
per page (:meth:`cmadev.Machine.start`). Every workload is an *owner*: its name is attached to
each page it maps and each pin it takes, which is how a report names what blocked a device.

=================== ==========================================================================
kind                what it reproduces
=================== ==========================================================================
page_cache_reader   ``read()`` through the page cache: hits, first reads, refaults after
                    reclaim; random (optionally Zipf-skewed) or streaming
writer              ``write()`` of whole pages: dirty page cache, writeback, ``fsync``
anon_hog            anonymous memory growing to a size, re-touched at random
direct_io           ``O_DIRECT`` I/O: short ``pin_user_pages`` pins (FOLL_PIN) on its buffer
longterm_pinner     RDMA / vfio / io_uring fixed buffers: FOLL_LONGTERM pins
fs_mount            a mounted filesystem's superblock and group-descriptor buffers, held for
                    the life of the mount (movable block-device page cache, the ext4 case)
kernel_alloc        slab-like unmovable kernel allocations with a lifetime
build               a parallel build (``make -jN``): short processes, each faulting a heap,
                    reading a source tree and writing an object file, then exiting; CPU-bound,
                    sharing the CPUs with the kernel's work
tmpfs_file          a file on tmpfs written and read: shmem pages, page cache that only swap
                    can take
=================== ==========================================================================

Every model is frozen with ``extra="forbid"``; :meth:`WorkloadBase.to_engine` gives the JSON
the engine takes (sizes in pages, rates per second, times in nanoseconds). In a scenario file
the ``kind`` field says which class a workload is (:data:`Workload`, :func:`load_workload`).

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import AliasChoices, Field, field_validator, model_validator

from cmadev.errors import SpecError
from cmadev.specs.base import Name, Spec, read_document, validate_model
from cmadev.specs.board import Board
from cmadev.units import (
    PAGE_SIZE,
    Duration,
    PerSecond,
    Rate,
    Size,
    format_duration,
    format_rate,
    format_size,
    pages_for,
)


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


class PageCacheReader(WorkloadBase):
    """Reads files through the page cache, at random over its working set or streaming.

    A page read for the first time comes from storage; a resident page is a hit; a page read
    again after reclaim dropped it is a *refault* (counted, with its storage read). The rate
    is a ceiling: reads that miss wait for storage, so a thrashing reader reads less.
    """

    kind: Literal["page_cache_reader"] = Field(
        "page_cache_reader", description="The workload kind."
    )
    _file_fields = ("working_set",)
    _rate_fields = ("rate",)
    name: Name = Field("reader", description=WorkloadBase.model_fields["name"].description)
    working_set: Size = Field(
        description="Size of the file set it reads (e.g. '900MiB'); rounded up to pages."
    )
    rate: Rate = Field(
        description="Read throughput it aims at (e.g. '200MiB/s'); misses slow it down."
    )
    zipf: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Access skew over the working set's pages: Zipf exponent (0: uniform, 1: "
        "classic Zipf, higher: a smaller hot set). Ignored when sequential.",
    )
    sequential: bool = Field(
        False, description="Stream through the files in order (and around) instead."
    )

    @field_validator("working_set")
    @classmethod
    def _working_set_positive(cls, value: int) -> int:
        return _positive_size(value, "working_set", "900MiB")

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: int) -> int:
        return int(_positive_rate(value, "rate", "200MiB/s"))

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "file_pages": pages_for(self.working_set),
            "rate_pages_per_s": self.rate / PAGE_SIZE,
            "zipf_s": self.zipf,
            "sequential": self.sequential,
        }


class Writer(WorkloadBase):
    """Writes whole pages of a file in order (and around): dirty page cache.

    Dirty pages are written back by the flusher after ``dirty_expire``, by reclaim, by the
    writer itself when dirty memory passes ``dirty_ratio`` (throttling), or at each ``fsync``.
    A page under writeback cannot be migrated until the write completes.
    """

    kind: Literal["writer"] = Field("writer", description="The workload kind.")
    _file_fields = ("file_size",)
    _rate_fields = ("rate",)
    name: Name = Field("writer", description=WorkloadBase.model_fields["name"].description)
    file_size: Size = Field(description="Size of the file it rewrites (e.g. '64MiB').")
    rate: Rate = Field(description="Write throughput it aims at (e.g. '20MiB/s').")
    fsync_every: Optional[Size] = Field(
        None,
        description="fsync after writing this much (e.g. '1MiB'): write back its dirty pages "
        "and wait. Null: leave writeback to the flusher.",
    )

    @field_validator("file_size")
    @classmethod
    def _file_size_positive(cls, value: int) -> int:
        return _positive_size(value, "file_size", "64MiB")

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: int) -> int:
        return int(_positive_rate(value, "rate", "20MiB/s"))

    @field_validator("fsync_every")
    @classmethod
    def _fsync_positive(cls, value: Optional[int]) -> Optional[int]:
        if value is not None:
            _positive_size(value, "fsync_every", "1MiB")
        return value

    def _engine_fields(self) -> dict[str, Any]:
        every = self.fsync_every
        return {
            "file_pages": pages_for(self.file_size),
            "rate_pages_per_s": self.rate / PAGE_SIZE,
            "fsync_every_pages": None if every is None else pages_for(every),
        }


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


class DirectIO(WorkloadBase):
    """``O_DIRECT`` I/O on the task's own buffer: each I/O pins its pages (``pin_user_pages``,
    FOLL_PIN) while the device transfers them, then unpins them.

    A pinned page cannot be migrated, so a contiguous allocation whose range holds one fails
    there (-EBUSY) and moves on. I/Os arrive at random (Poisson) at the given rate; pin times
    are exponentially distributed around ``pin_time`` or fixed.
    """

    kind: Literal["direct_io"] = Field("direct_io", description="The workload kind.")
    _held_fields = ("buffer",)
    name: Name = Field("direct_io", description=WorkloadBase.model_fields["name"].description)
    buffer: Size = Field(description="The I/O buffer (anonymous memory, e.g. '64MiB').")
    iops: PerSecond = Field(
        le=MAX_EVENT_RATE, description="I/Os per second (e.g. '2000/s'), at most a million."
    )
    io_size: Size = Field(
        64 * 1024, description="Bytes per I/O (e.g. '64KiB'): the pages each I/O pins."
    )
    pin_time: Duration = Field(
        description="How long an I/O keeps its pages pinned (e.g. '2ms'): the mean, or the "
        "exact time with pin_distribution='fixed'."
    )
    pin_distribution: Literal["exponential", "fixed"] = Field(
        "exponential", description="Pin times: 'exponential' around pin_time, or 'fixed'."
    )
    hold: Literal["pin", "get_page", "get_page_short"] = Field(
        "pin",
        description="How an I/O holds its pages: 'pin' (pin_user_pages, FOLL_PIN: direct I/O "
        "since 6.3/6.5), 'get_page' (get_user_pages + put_page, as older kernels did), or "
        "'get_page_short' (the same, annotated as brief: exempt from warn_cma_pins).",
    )

    @field_validator("buffer")
    @classmethod
    def _buffer_positive(cls, value: int) -> int:
        return _positive_size(value, "buffer", "64MiB")

    @field_validator("iops")
    @classmethod
    def _iops_positive(cls, value: float) -> float:
        return _positive_rate(value, "iops", "2000/s")

    @field_validator("io_size")
    @classmethod
    def _io_size_positive(cls, value: int) -> int:
        return _positive_size(value, "io_size", "64KiB")

    @field_validator("pin_time")
    @classmethod
    def _pin_time_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("pin_time must be positive: use e.g. '2ms'")
        return value

    @model_validator(mode="after")
    def _io_fits_buffer(self) -> "DirectIO":
        if self.io_size > self.buffer:
            raise ValueError(
                f"io_size ({format_size(self.io_size)}) is larger than buffer "
                f"({format_size(self.buffer)}): an I/O pins part of the buffer; make the "
                f"buffer at least {format_size(self.io_size)}"
            )
        return self

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "buffer_pages": pages_for(self.buffer),
            "ios_per_s": self.iops,
            "pages_per_io": pages_for(self.io_size),
            "pin_mean_ns": self.pin_time,
            "pin_distribution": self.pin_distribution,
            "hold": self.hold,
        }


class LongtermPinner(WorkloadBase):
    """Long-term pinned buffers (RDMA, vfio, io_uring fixed buffers): anonymous memory pinned
    with FOLL_LONGTERM when the workload starts, until ``hold`` has passed or it stops.

    With the ``migrate_on_longterm_pin`` fix, pages in CMA are migrated out before the pin
    (charged to the pinner); a page that cannot move fails its pin.
    """

    kind: Literal["longterm_pinner"] = Field("longterm_pinner", description="The workload kind.")
    _held_fields = ("size",)
    name: Name = Field("rdma", description=WorkloadBase.model_fields["name"].description)
    size: Size = Field(description="How much memory it pins (e.g. '16MiB').")
    hold: Optional[Duration] = Field(
        None, description="How long the pins last (e.g. '10s'); null: until the workload stops."
    )
    populate_first: bool = Field(
        False,
        description="Fault the whole buffer in before pinning (as a registration of an "
        "already-used buffer does); false: each page is faulted in by its own pin.",
    )

    @field_validator("size")
    @classmethod
    def _size_positive(cls, value: int) -> int:
        return _positive_size(value, "size", "16MiB")

    @field_validator("hold")
    @classmethod
    def _hold_positive(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value <= 0:
            raise ValueError("hold must be positive: use e.g. '10s', or null to hold until stop")
        return value

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "pages": pages_for(self.size),
            "hold_ns": self.hold,
            "populate_first": self.populate_first,
        }


class FsMount(WorkloadBase):
    """A mounted filesystem: its superblock and group-descriptor buffers are read at mount
    (``sb_bread``: movable block-device page cache) and held by their buffer heads until
    unmount, so a range of CMA holding one cannot be allocated while it is mounted.

    With the ``fs_superblock_unmovable`` fix they are allocated unmovable and stay out of CMA.
    Mounted at ``start`` (or ``mount``), unmounted at ``stop`` (or ``unmount``).
    """

    kind: Literal["fs_mount"] = Field("fs_mount", description="The workload kind.")
    name: Name = Field("ext4", description=WorkloadBase.model_fields["name"].description)
    start: Duration = Field(
        0,
        validation_alias=AliasChoices("start", "mount"),
        description="When the filesystem is mounted (also accepted as 'mount').",
    )
    stop: Optional[Duration] = Field(
        None,
        validation_alias=AliasChoices("stop", "unmount"),
        description="When it is unmounted (also accepted as 'unmount'); null: never.",
    )
    superblock_buffers: int = Field(
        8,
        ge=1,
        le=4096,
        description="Buffers held for the mount: the superblock and the group descriptor "
        "blocks (one 4 KiB page each).",
    )

    def _engine_fields(self) -> dict[str, Any]:
        return {"superblock_pages": self.superblock_buffers}


class KernelAlloc(WorkloadBase):
    """Slab-like kernel allocations (``GFP_KERNEL``, unmovable) arriving at random at a rate,
    each freed after an exponentially distributed lifetime.

    Unmovable allocations cannot use CMA, and their watermark check does not count free CMA
    pages: under pressure they wake kswapd and reclaim even while CMA is free.
    """

    kind: Literal["kernel_alloc"] = Field("kernel_alloc", description="The workload kind.")
    name: Name = Field("slab", description=WorkloadBase.model_fields["name"].description)
    rate: PerSecond = Field(
        le=MAX_EVENT_RATE, description="Allocations per second (e.g. '200/s'), at most a million."
    )
    order: int = Field(
        0, ge=0, le=10, description="Each allocation is 2^order pages (0: one page)."
    )
    lifetime: Duration = Field(description="Mean lifetime of an allocation (e.g. '1s').")

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: float) -> float:
        return _positive_rate(value, "rate", "200/s")

    @field_validator("lifetime")
    @classmethod
    def _lifetime_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("lifetime must be positive: use e.g. '1s'")
        return value

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "rate_allocs_per_s": self.rate,
            "order": self.order,
            "lifetime_mean_ns": self.lifetime,
        }


class Build(WorkloadBase):
    """A parallel build (``make -jN``): ``jobs`` short processes at a time, each compiling one
    unit and exiting, ``processes`` of them in all (or until the workload stops).

    A process starts with its kernel memory (stack, page tables: unmovable), faults its heap
    (anonymous, movable), re-touches it, reads the source tree (shared page cache, Zipf-skewed:
    headers stay hot), writes its object file (dirty page cache) and exits, freeing its heap:
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


WORKLOAD_CLASSES: dict[str, type[WorkloadBase]] = {
    str(cls.model_fields["kind"].default): cls
    for cls in (
        PageCacheReader,
        Writer,
        AnonHog,
        DirectIO,
        LongtermPinner,
        FsMount,
        KernelAlloc,
        Build,
        TmpfsFile,
    )
}
"""Each workload class by its ``kind``."""

WORKLOAD_KINDS: tuple[str, ...] = tuple(WORKLOAD_CLASSES)

Workload = Annotated[
    Union[
        PageCacheReader,
        Writer,
        AnonHog,
        DirectIO,
        LongtermPinner,
        FsMount,
        KernelAlloc,
        Build,
        TmpfsFile,
    ],
    Field(discriminator="kind"),
]
"""Any workload, told apart by its ``kind`` field (for scenario files)."""


def validate_workload(data: Any, source: str = "") -> WorkloadBase:
    """A workload from a dict with a ``kind`` field (or a workload already built).

    Raises :class:`SpecError` naming the source, the field and the fix.
    """
    if isinstance(data, WorkloadBase):
        return data
    where = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{where}a workload must be an object with a 'kind' field; got "
            f"{type(data).__name__} {data!r}"
        )
    kind = data.get("kind")
    cls = WORKLOAD_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(kind), WORKLOAD_KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        what = "is missing" if kind is None else f"is {kind!r}, which is not a workload kind"
        raise SpecError(
            f"{where}the workload's 'kind' {what}.{hint} Use one of: {', '.join(WORKLOAD_KINDS)}"
        )
    return validate_model(cls, dict(data), source=source)


def load_workload(source: Any) -> WorkloadBase:
    """A workload from a ``.json``/``.toml`` file path, or from a dict with a ``kind``."""
    if isinstance(source, (Mapping, WorkloadBase)):
        return validate_workload(source)
    return validate_workload(read_document(source), source=str(source))


__all__ = [
    "WORKLOAD_CLASSES",
    "WORKLOAD_KINDS",
    "AnonHog",
    "Build",
    "DirectIO",
    "FsMount",
    "KernelAlloc",
    "LongtermPinner",
    "PageCacheReader",
    "TmpfsFile",
    "Workload",
    "WorkloadBase",
    "Writer",
    "load_workload",
    "validate_workload",
]
