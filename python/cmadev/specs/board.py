"""Boards: memory, CPUs, CMA areas, kernel tunables, and the virtual-time cost of each
operation the engine simulates.

Sizes and durations accept human units (``"12MiB"``, ``"150ms"``, see :mod:`cmadev.units`) and
are stored as integers in bytes and nanoseconds.
"""

from collections.abc import Sequence
from typing import Any, Literal, Optional, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from cmadev.errors import SpecError
from cmadev.specs.base import Name, Spec, check_pages
from cmadev.specs.policy import Policy
from cmadev.units import NS_PER_S, PAGE_SIZE, Duration, GiB, MiB, Size, format_size, round_up

CMA_AREA_ALIGN = 4 * MiB
"""A CMA area's size must be a multiple of this: the kernel aligns areas to
``max(MAX_ORDER_NR_PAGES, pageblock_nr_pages)`` pages, 4 MiB with 4 KiB pages and order-10
blocks. (Since Linux 5.19, Zi Yan's series, a pageblock is enough; 4 MiB satisfies both.)"""

DEFAULT_MAX_EVENTS = 1_000_000_000
"""A machine's event budget unless it is given another: a billion events, a few minutes of
host time (the engine's ``DEFAULT_MAX_EVENTS``). A run that would pass it stops with
:class:`~cmadev.errors.EventBudgetError` instead of running for hours."""

MIN_BOARD_RAM = 64 * MiB
MAX_BOARD_RAM = 256 * GiB
"""The largest board the engine models: 64 Mi page frames. The engine keeps 16 bytes per
frame and about 4 per mapped page, so such a board costs about 1.3 GiB of host memory."""
MIN_GENERAL_MEMORY = 32 * MiB
"""What the CMA areas and the boot-time reservation must leave for everything else."""


# --------------------------------------------------------------------------------------------
# Costs


class CostModel(Spec):
    """Virtual time charged for each operation the engine simulates.

    The defaults describe an embedded ARM board with LPDDR memory and eMMC storage; the
    ``desktop_16g`` board shows desktop-class figures (memory ten times faster, NVMe
    storage). Each default is an estimate of the right order of magnitude, not a measurement
    of one machine; override them per board. Values accept human units ("2us").
    """

    page_copy: Duration = Field(
        2_000,
        description="Copying one 4 KiB page during migration: 2 us is about 2 GB/s, a "
        "memcpy on an embedded ARM memory bus.",
    )
    migrate_fixed: Duration = Field(
        4_000,
        description="Fixed cost of migrating one page besides the copy: rmap walk, unmap, "
        "TLB flush, remap (migrate_folio_unmap + migrate_folio_move).",
    )
    migrate_fail: Duration = Field(
        300,
        description="Trying to migrate a page and giving up (reference count or pin check "
        "fails, -EAGAIN).",
    )
    isolate_pageblock: Duration = Field(
        5_000,
        description="Isolating one pageblock: set MIGRATE_ISOLATE and move its free pages "
        "to the isolate free list (start_isolate_page_range).",
    )
    drain_per_cpu: Duration = Field(
        15_000,
        description="Draining the per-CPU page lists of one CPU that holds pages "
        "(drain_all_pages; remote since Linux 6.0, an IPI before); each page drained costs "
        "page_alloc on top.",
    )
    lru_cache_disable: Duration = Field(
        40_000,
        description="lru_cache_disable's expedited RCU grace period "
        "(synchronize_rcu_expedited: IPIs to the other CPUs, the caller sleeps until each "
        "has passed a quiescent state), once per contiguous allocation.",
    )
    lru_drain_per_cpu: Duration = Field(
        20_000,
        description="lru_cache_disable's drain of one CPU's LRU batches: a work item "
        "queued on that CPU and flushed (a kworker wake-up), per CPU that allocated LRU "
        "pages since the last drain.",
    )
    pfn_walk: Duration = Field(
        20,
        description="Examining one struct page in a pfn walk (isolating pages to migrate, "
        "test_pages_isolated, split_map_pages for the pages taken).",
    )
    storage_read_request: Duration = Field(
        150_000,
        description="Fixed latency of one storage read request: about 150 us for an eMMC "
        "random read.",
    )
    storage_read_page: Duration = Field(
        16_000,
        description="Transfer time per 4 KiB page read: 16 us is about 250 MB/s, an eMMC 5.1 "
        "sequential read.",
    )
    storage_write_request: Duration = Field(
        400_000,
        description="Fixed latency of one storage write request: about 400 us on eMMC.",
    )
    storage_write_page: Duration = Field(
        40_000,
        description="Transfer time per 4 KiB page written: 40 us is about 100 MB/s, an eMMC "
        "sequential write.",
    )
    reclaim_scan_page: Duration = Field(
        150,
        description="Scanning one page on an LRU list during reclaim (shrink_folio_list).",
    )
    cleancache_hit: Duration = Field(
        2_000,
        description="Reading a page back from a cleancache (gcma) instead of storage: one "
        "page copy.",
    )
    zero_page: Duration = Field(
        1_000,
        description="Clearing one 4 KiB page of a device buffer (the CMA dma-heap zeroes "
        "every page before handing a buffer out).",
    )
    page_alloc: Duration = Field(
        200,
        description="Allocating one page from the buddy allocator's fast path.",
    )

    def to_engine(self) -> dict[str, int]:
        """The engine's form: every field in nanoseconds, named with an ``_ns`` suffix."""
        return {f"{name}_ns": getattr(self, name) for name in type(self).model_fields}


# --------------------------------------------------------------------------------------------
# Boards


class CmaArea(Spec):
    """A CMA area reserved at boot (``cma=``, a ``shared-dma-pool`` device-tree node)."""

    name: Name = Field(
        description="The area's name, as in /sys/kernel/mm/cma/<name>; 'reserved' is the "
        "name the kernel gives the default area set by cma=.",
        examples=["reserved", "camera"],
    )
    size: Size = Field(description="Size of the area: a positive multiple of 4 MiB.")
    order_per_bit: int = Field(
        0,
        ge=0,
        le=10,
        description="Order of pages represented by one bit of the area's bitmap "
        "(cma->order_per_bit): allocations are rounded to 2^order_per_bit pages.",
    )

    @field_validator("size")
    @classmethod
    def _size_is_aligned(cls, value: int) -> int:
        if value > 0 and value % CMA_AREA_ALIGN == 0:
            return value
        up = max(CMA_AREA_ALIGN, round_up(value, CMA_AREA_ALIGN))
        down = value // CMA_AREA_ALIGN * CMA_AREA_ALIGN
        fix = f"use {format_size(up)!r}"
        if 0 < down < up:
            fix += f" or {format_size(down)!r}"
        raise ValueError(
            f"a CMA area's size must be a positive multiple of 4 MiB (the kernel aligns areas "
            f"to whole MAX_ORDER blocks); got {value} bytes ({format_size(value)}): {fix}"
        )

    @property
    def pages(self) -> int:
        """Size in 4 KiB pages."""
        return self.size // PAGE_SIZE


class Board(Spec):
    """A machine: memory, CPUs, CMA areas, kernel tunables and the cost of each operation."""

    name: Name = Field(description="Short name of the board, used in reports.")
    description: str = Field(
        "", description="What the board models and where its figures come from."
    )
    ram: Size = Field(description="Installed memory: at least 64 MiB, whole 4 KiB pages.")
    cpus: int = Field(4, ge=1, le=256, description="CPUs (each has per-CPU page lists).")
    reserved: Size = Field(
        0,
        description="Memory the kernel keeps at boot and never frees: kernel image, memmap, "
        "firmware carve-outs.",
    )
    pageblock_order: int = Field(
        9, ge=1, le=10, description="log2 of pages per pageblock (9: 2 MiB pageblocks)."
    )
    min_free_kbytes: Optional[int] = Field(
        None,
        ge=0,
        description="vm.min_free_kbytes; null for the kernel's default, "
        "sqrt(lowmem_kbytes * 16) clamped to [128, 262144].",
    )
    watermark_scale_factor: int = Field(
        10,
        ge=1,
        le=3000,
        description="vm.watermark_scale_factor, in 1/10000 of memory: the gap between the "
        "min, low and high watermarks.",
    )
    cma_areas: tuple[CmaArea, ...] = Field(
        (),
        validate_default=True,  # so that the memory check below also runs without areas
        description="CMA areas reserved at boot; names must be unique.",
    )
    swap: Size = Field(0, description="Swap space (0: no swap, anonymous pages stay put).")
    dirty_expire: Duration = Field(
        30 * NS_PER_S,
        description="vm.dirty_expire_centisecs as a duration: dirty file pages older than "
        "this are written back.",
    )
    dirty_ratio: int = Field(
        20,
        ge=1,
        le=100,
        description="vm.dirty_ratio: percentage of memory that may be dirty before writers "
        "are throttled into writeback.",
    )
    read_ahead: Size = Field(
        128 * 1024,
        description="The storage's read_ahead_kb (/sys/block/<dev>/queue/read_ahead_kb) as a "
        "size: the largest readahead window of a sequential reader (the kernel's default is "
        "128 KiB); 0 turns readahead off. A multiple of 4 KiB, at most 64 MiB.",
    )
    cost: CostModel = Field(
        default_factory=CostModel, description="Virtual-time cost of each operation."
    )
    kernel_version: Literal["6.1", "mainline"] = Field(
        "6.1",
        description="Whose formats the views and trace lines follow where 6.1 and today's "
        "mainline differ: cma_alloc_start's fields, cma_alloc_finish's errorno, "
        "mm_alloc_contig_migrate_range_info (mainline only), the cma sysfs files added in 2024.",
    )
    cma_debug: bool = Field(
        False,
        description="CONFIG_CMA_DEBUG: a failed cma_alloc also logs the area's free ranges "
        "('number of available pages: ...=> N free of M total pages').",
    )

    @field_validator("read_ahead")
    @classmethod
    def _read_ahead_in_pages(cls, value: int) -> int:
        if value > 64 * MiB:
            raise ValueError(
                f"read_ahead must be at most 64 MiB; got {format_size(value)}: the kernel's "
                f"default is '128KiB'"
            )
        return check_pages(value, "read_ahead")

    @field_validator("ram")
    @classmethod
    def _ram_is_enough(cls, value: int) -> int:
        if value < MIN_BOARD_RAM:
            raise ValueError(
                f"ram must be at least 64 MiB; got {format_size(value)}: use '64MiB' or more"
            )
        if value > MAX_BOARD_RAM:
            raise ValueError(
                f"ram must be at most 256 GiB, the largest board the engine models (16 bytes "
                f"of host memory per 4 KiB frame); got {format_size(value)}: model a part of "
                f"the machine, e.g. '64GiB'"
            )
        if value % CMA_AREA_ALIGN:
            rounded = value // CMA_AREA_ALIGN * CMA_AREA_ALIGN
            raise ValueError(
                f"ram must be a multiple of 4 MiB (the largest buddy block); got "
                f"{format_size(value)}: use '{format_size(rounded).replace(' ', '')}'"
            )
        return value

    @field_validator("reserved", "swap")
    @classmethod
    def _whole_pages(cls, value: int, info: ValidationInfo) -> int:
        if value > MAX_BOARD_RAM:
            raise ValueError(
                f"{info.field_name} must be at most 256 GiB (the largest board); got "
                f"{format_size(value)}"
            )
        return check_pages(value, str(info.field_name))

    @field_validator("cma_areas")
    @classmethod
    def _areas_fit(cls, areas: tuple[CmaArea, ...], info: ValidationInfo) -> tuple[CmaArea, ...]:
        seen: set[str] = set()
        for area in areas:
            if area.name in seen:
                raise ValueError(
                    f"two CMA areas are named {area.name!r}; give each area its own name"
                )
            seen.add(area.name)
        ram, reserved = info.data.get("ram"), info.data.get("reserved")
        if ram is None or reserved is None:
            return areas  # already reported
        left = ram - reserved - sum(area.size for area in areas)
        if left < MIN_GENERAL_MEMORY:
            sizes = " + ".join(f"{a.name} {format_size(a.size)}" for a in areas)
            raise ValueError(
                f"the CMA areas ({sizes or 'none'}) and reserved ({format_size(reserved)}) "
                f"leave {format_size(max(left, 0))} of {format_size(ram)} for everything else; "
                f"at least 32 MiB must remain: shrink the CMA areas or reserved, or add ram"
            )
        return areas

    @model_validator(mode="after")
    def _min_free_fits(self) -> "Board":
        left = self.ram - self.reserved - self.cma_total
        kbytes = self.min_free_kbytes
        if kbytes is not None and kbytes * 1024 >= left // 2:
            raise ValueError(
                f"min_free_kbytes={kbytes} ({format_size(kbytes * 1024)}) would keep over half "
                f"of the {format_size(left)} outside CMA and reserved memory free; use a "
                f"smaller min_free_kbytes, or null for the kernel's default"
            )
        return self

    @property
    def pages(self) -> int:
        """RAM in 4 KiB page frames."""
        return self.ram // PAGE_SIZE

    @property
    def copy_bandwidth(self) -> float:
        """Bytes per second one CPU copies (``cost.page_copy``): the fastest a task can read,
        write or fault in memory on this board."""
        return PAGE_SIZE * NS_PER_S / self.cost.page_copy

    @property
    def cma_total(self) -> int:
        """Bytes in all CMA areas (/proc/meminfo CmaTotal)."""
        return sum(area.size for area in self.cma_areas)

    def cma_area(self, name: str) -> CmaArea:
        """The CMA area called ``name``; :class:`SpecError` naming the areas if none is."""
        for area in self.cma_areas:
            if area.name == name:
                return area
        names = ", ".join(repr(a.name) for a in self.cma_areas) or "none"
        raise SpecError(f"board {self.name!r} has no CMA area {name!r}; its areas: {names}")

    def to_engine(
        self,
        policy: Union[Policy, str],
        seed: int,
        trace_limit: int = 200_000,
        max_events: int = DEFAULT_MAX_EVENTS,
        trace_events: Optional[Sequence[str]] = None,
    ) -> dict[str, Any]:
        """The machine configuration the Rust engine deserialises (``deny_unknown_fields``).

        ``policy`` may be a :class:`Policy` or a preset name; ``seed`` seeds the machine's one
        random generator; ``trace_limit`` bounds the trace events kept; ``trace_events``
        chooses them (``set_event`` syntax: ``"cma"``, ``"kmem:mm_page_alloc"``, ``"all"``;
        None: all but the per-page ``kmem:mm_page_alloc``/``mm_page_free``).
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise SpecError(f"seed must be an integer in [0, 2**64); got {seed!r}")
        if isinstance(trace_limit, bool) or not isinstance(trace_limit, int) or trace_limit < 0:
            raise SpecError(f"trace_limit must be a non-negative integer; got {trace_limit!r}")
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise SpecError(f"max_events must be a positive integer; got {max_events!r}")
        return {
            "ram": self.ram,
            "cpus": self.cpus,
            "reserved": self.reserved,
            "pageblock_order": self.pageblock_order,
            "min_free_kbytes": self.min_free_kbytes,
            "watermark_scale_factor": self.watermark_scale_factor,
            "cma_areas": [
                {"name": a.name, "size": a.size, "order_per_bit": a.order_per_bit}
                for a in self.cma_areas
            ],
            "swap": self.swap,
            "dirty_expire_ns": self.dirty_expire,
            "dirty_ratio": self.dirty_ratio,
            "read_ahead_kb": self.read_ahead // 1024,
            "cost": self.cost.to_engine(),
            "policy": Policy.coerce(policy).to_engine(),
            "seed": seed,
            "trace_limit": trace_limit,
            "max_events": max_events,
            "trace_events": None if trace_events is None else list(trace_events),
            "kernel_version": self.kernel_version,
            "cma_debug": self.cma_debug,
        }
