"""The descriptions cmadev runs: boards, CMA areas, costs, policies and devices.

Every model is a frozen pydantic v2 model with ``extra="forbid"``: a description cannot change
under a running machine, and a misspelt field in a device file is an error rather than a
silently ignored line. Sizes and durations accept human units (``"12MiB"``, ``"150ms"``, see
:mod:`cmadev.units`) and are stored as integers in bytes and nanoseconds.

:func:`load_model` reads a ``.json`` or ``.toml`` file and turns pydantic's ``ValidationError``
into a :class:`~cmadev.errors.SpecError` naming the file, each bad field and the fix;
:func:`validate_model` does the same for data already in memory.

This module deliberately has no ``from __future__ import annotations``: pydantic evaluates the
annotations at run time, which must work on Python 3.9, so they use ``Optional`` rather than
``X | None``.
"""

import difflib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from cmadev.errors import SpecError
from cmadev.units import (
    NS_PER_MS,
    NS_PER_S,
    PAGE_SIZE,
    Duration,
    MiB,
    Size,
    format_duration,
    format_size,
)

CMA_AREA_ALIGN = 4 * MiB
"""A CMA area's size must be a multiple of this: the kernel aligns areas to
``max(MAX_ORDER_NR_PAGES, pageblock_nr_pages)`` pages, 4 MiB with 4 KiB pages and order-10
blocks. (Since Linux 5.19, Zi Yan's series, a pageblock is enough; 4 MiB satisfies both.)"""

MIN_BOARD_RAM = 64 * MiB
MIN_GENERAL_MEMORY = 32 * MiB
"""What the CMA areas and the boot-time reservation must leave for everything else."""

_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
_NAME_RE = re.compile(_NAME_PATTERN)


def _check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} may hold only letters, digits, '_', '.' and '-' "
            f"(it becomes a kernel name such as /sys/kernel/mm/cma/<name>); "
            f"try {re.sub(r'[^A-Za-z0-9_.-]+', '_', value).strip('_') or 'area0'!r}"
        )
    return value


def _check_pages(value: int, what: str) -> int:
    """``value`` (bytes) must be a whole number of 4 KiB pages."""
    if value % PAGE_SIZE:
        up = -(-value // PAGE_SIZE) * PAGE_SIZE
        raise ValueError(
            f"{what} must be a whole number of 4 KiB pages; got {value} bytes "
            f"({format_size(value)}): use {up} ({format_size(up)})"
        )
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------------
# Costs


class CostModel(_Spec):
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
        description="Draining the per-CPU page lists, per CPU: an IPI and the drain "
        "(drain_all_pages).",
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
# Policies

Placement = Literal["legacy", "balanced", "zone_cma", "movable_zone", "gcma"]
Fix = Literal[
    "migrate_on_longterm_pin",
    "migrate_on_pin",
    "migrate_on_first_dirty",
    "warn_cma_pins",
    "pin_duration_warn",
    "fs_superblock_unmovable",
]
CmaLock = Literal["global", "per_area"]

PLACEMENTS: tuple[str, ...] = get_args(Placement)
FIXES: tuple[str, ...] = get_args(Fix)

_NOTHING_TO_MOVE = (
    "a gcma area holds only discardable cache pages, never a movable page that could be "
    "pinned or dirtied, so there is nothing to migrate out of it"
)
_NOTHING_TO_WARN = "no page of a gcma area can be referenced or pinned, so the warning never fires"
_SB_NEVER_IN_CMA = (
    "superblock buffers come from the block device's page cache (GFP_USER | __GFP_MOVABLE, no "
    "__GFP_HIGHMEM), which this placement never puts in CMA memory, so the fix keeps nothing out"
)

# Why a fix makes no sense with a placement (the engine's PolicyConfig::validate says the same).
_POINTLESS: dict[str, dict[str, str]] = {
    "gcma": {
        "migrate_on_longterm_pin": _NOTHING_TO_MOVE,
        "migrate_on_pin": _NOTHING_TO_MOVE,
        "migrate_on_first_dirty": _NOTHING_TO_MOVE,
        "warn_cma_pins": _NOTHING_TO_WARN,
        "pin_duration_warn": _NOTHING_TO_WARN,
        "fs_superblock_unmovable": _SB_NEVER_IN_CMA,
    },
    "zone_cma": {"fs_superblock_unmovable": _SB_NEVER_IN_CMA},
    "movable_zone": {"fs_superblock_unmovable": _SB_NEVER_IN_CMA},
}


def sensible_fixes(placement: str, fixes: "frozenset[str] | set[str]") -> frozenset[str]:
    """The subset of ``fixes`` that makes sense under ``placement`` (for comparisons that
    apply one set of fixes to every placement)."""
    pointless = _POINTLESS.get(placement, {})
    return frozenset(f for f in fixes if f not in pointless)


_FIX_LABELS = {
    "migrate_on_longterm_pin": "longterm_pin",
    "migrate_on_pin": "pin",
    "migrate_on_first_dirty": "first_dirty",
    "warn_cma_pins": "warn_pins",
    "pin_duration_warn": "pin_duration",
    "fs_superblock_unmovable": "sb_unmovable",
}

_DEFAULT_PIN_THRESHOLD = 100 * NS_PER_MS
_DEFAULT_RETRY_PASSES = 5
_DEFAULT_RETRY_SLEEP = 100 * NS_PER_MS

# Named policies (SPEC section 3). Each placement is also a preset of its own, without fixes.
_PRESETS: dict[str, dict[str, Any]] = {
    # Mainline in 2015 (until 2020): CMA used only once the movable free lists are empty.
    "mainline-2015": {"placement": "legacy"},
    # Mainline today: balanced placement (2020), FOLL_LONGTERM migration (2019, 5.13 for
    # ZONE_MOVABLE) and unmovable superblock buffers (ext4 2014, sb_breadahead 2020).
    "mainline-today": {
        "placement": "balanced",
        "fixes": ["migrate_on_longterm_pin", "fs_superblock_unmovable"],
    },
    **{placement: {"placement": placement} for placement in PLACEMENTS},
    # Mel Gorman's proposals: migrate out of CMA on every pin and on first dirtying, and warn
    # about get_page() on CMA pages.
    "mel-gorman": {
        "placement": "legacy",
        "fixes": ["migrate_on_pin", "migrate_on_first_dirty", "warn_cma_pins"],
    },
    # Today's placement with the pin instrumentation on, to name what blocks a device.
    "instrumented": {"placement": "balanced", "fixes": ["warn_cma_pins", "pin_duration_warn"]},
    # Android vendor kernels: mainline plus "retry up to 5 passes with msleep(100)".
    "vendor-android": {
        "placement": "balanced",
        "fixes": ["migrate_on_longterm_pin"],
        "vendor_retry": True,
    },
}


def _preset_key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


_PRESET_KEYS = {_preset_key(name): name for name in _PRESETS}


class Policy(_Spec):
    """A placement strategy for movable pages plus any set of fixes (SPEC section 3).

    Build one with ``Policy(placement=..., fixes=[...])``, from a preset with
    :meth:`Policy.preset`, or from whatever a user passed with :meth:`Policy.coerce`.
    """

    placement: Placement = Field(
        description="Where movable pages may go in CMA memory: 'legacy' (mainline 2015: CMA "
        "only once movable free lists are empty), 'balanced' (mainline since 2020: CMA first "
        "when it holds over half the free memory), 'zone_cma' (ZONE_CMA, Joonsoo Kim), "
        "'movable_zone' (CMA as ZONE_MOVABLE, 4.17, reverted), 'gcma' (guaranteed CMA: only "
        "discardable pages, SeongJae Park)."
    )
    fixes: frozenset[Fix] = Field(
        frozenset(),
        description="Fixes switched on: migrate_on_longterm_pin (mainline FOLL_LONGTERM), "
        "migrate_on_pin and migrate_on_first_dirty (Mel Gorman), warn_cma_pins (warn on "
        "get_page of a CMA page), pin_duration_warn (Dave Hansen: warn on long pins), "
        "fs_superblock_unmovable (superblock buffers allocated unmovable).",
    )
    pin_duration_threshold: Duration = Field(
        _DEFAULT_PIN_THRESHOLD,
        gt=0,
        description="With pin_duration_warn: put_page warns when a page stayed pinned longer "
        "than this.",
    )
    cma_lock: CmaLock = Field(
        "global",
        description="Serialisation of cma_alloc: 'global' (one cma_mutex, most kernels) or "
        "'per_area' (one lock per area, since 2025).",
    )
    vendor_retry: bool = Field(
        False,
        description="Android vendor kernels' retry: when a cma_alloc walk fails, sleep and "
        "walk the area again, up to vendor_retry_passes times. Mainline has no retry.",
    )
    vendor_retry_passes: int = Field(
        _DEFAULT_RETRY_PASSES,
        ge=1,
        le=100,
        description="With vendor_retry: how many walks over the area at most.",
    )
    vendor_retry_sleep: Duration = Field(
        _DEFAULT_RETRY_SLEEP,
        description="With vendor_retry: the sleep between walks (msleep(100) in vendor trees).",
    )

    @field_validator("fixes")
    @classmethod
    def _fixes_fit_placement(cls, fixes: frozenset[str], info: ValidationInfo) -> frozenset[str]:
        placement = str(info.data.get("placement"))
        table = _POINTLESS.get(placement, {})
        pointless = [fix for fix in FIXES if fix in fixes and fix in table]
        if pointless:
            reasons = "; ".join(f"{fix}: {table[fix]}" for fix in pointless)
            raise ValueError(
                f"{', '.join(pointless)} make{'s' if len(pointless) == 1 else ''} no sense "
                f"with placement {placement!r} ({reasons}). Remove "
                f"{'it' if len(pointless) == 1 else 'them'} from fixes, or choose another "
                f"placement."
            )
        return fixes

    @field_serializer("fixes")
    def _fixes_in_order(self, fixes: frozenset[str]) -> list[str]:
        # A frozenset has no stable order across runs; serialise in declaration order.
        return [fix for fix in FIXES if fix in fixes]

    def has(self, fix: str) -> bool:
        """Whether ``fix`` is on (``fix`` must be one of :data:`FIXES`)."""
        if fix not in FIXES:
            raise SpecError(f"unknown fix {fix!r}; the fixes are: {', '.join(FIXES)}")
        return fix in self.fixes

    @property
    def label(self) -> str:
        """A short name for tables: ``"balanced+longterm_pin+sb_unmovable"``."""
        parts: list[str] = [self.placement]
        for fix in FIXES:
            if fix not in self.fixes:
                continue
            label = _FIX_LABELS[fix]
            if fix == "pin_duration_warn" and self.pin_duration_threshold != (
                _DEFAULT_PIN_THRESHOLD
            ):
                label += f">{_short_duration(self.pin_duration_threshold)}"
            parts.append(label)
        if self.vendor_retry:
            if (self.vendor_retry_passes, self.vendor_retry_sleep) == (
                _DEFAULT_RETRY_PASSES,
                _DEFAULT_RETRY_SLEEP,
            ):
                parts.append("vendor_retry")
            else:
                sleep = _short_duration(self.vendor_retry_sleep)
                parts.append(f"vendor_retry({self.vendor_retry_passes}x{sleep})")
        if self.cma_lock == "per_area":
            parts.append("per_area_lock")
        return "+".join(parts)

    def to_engine(self) -> dict[str, Any]:
        """The dict the Rust engine deserialises (its ``PolicyConfig``)."""
        return {
            "placement": self.placement,
            "migrate_on_longterm_pin": "migrate_on_longterm_pin" in self.fixes,
            "migrate_on_pin": "migrate_on_pin" in self.fixes,
            "migrate_on_first_dirty": "migrate_on_first_dirty" in self.fixes,
            "warn_cma_pins": "warn_cma_pins" in self.fixes,
            "pin_duration_warn_ns": (
                self.pin_duration_threshold if "pin_duration_warn" in self.fixes else None
            ),
            "fs_superblock_unmovable": "fs_superblock_unmovable" in self.fixes,
            "cma_lock": self.cma_lock,
            "vendor_retry_passes": self.vendor_retry_passes if self.vendor_retry else 0,
            "vendor_retry_sleep_ns": self.vendor_retry_sleep,
        }

    @staticmethod
    def presets() -> list[str]:
        """The names :meth:`preset` accepts."""
        return list(_PRESETS)

    @classmethod
    def preset(cls, name: str) -> "Policy":
        """The named policy ("mainline-today", "mel-gorman", "gcma", ...).

        Case and ``_``/``-`` do not matter. Raises :class:`SpecError` listing the names.
        """
        key = _PRESET_KEYS.get(_preset_key(name)) if isinstance(name, str) else None
        if key is None:
            close = difflib.get_close_matches(str(name), list(_PRESETS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SpecError(
                f"unknown policy {name!r}.{hint} The presets are: {', '.join(_PRESETS)}; "
                f"or build one: Policy(placement=..., fixes=[...])."
            )
        return validate_model(cls, _PRESETS[key], source=f"policy preset {key!r}")

    @classmethod
    def coerce(cls, value: Union["Policy", str, Mapping[str, Any]]) -> "Policy":
        """A :class:`Policy` from a Policy, a preset or placement name, or a dict of fields."""
        if isinstance(value, Policy):
            return value
        if isinstance(value, str):
            return cls.preset(value)
        if isinstance(value, Mapping):
            return validate_model(cls, dict(value), source="policy")
        raise SpecError(
            f"a policy must be a Policy, a preset name ({', '.join(_PRESETS)}) or a dict of "
            f"Policy fields; got {type(value).__name__} {value!r}"
        )


def _short_duration(ns: int) -> str:
    return format_duration(ns).replace(" ", "")


# --------------------------------------------------------------------------------------------
# Boards


class CmaArea(_Spec):
    """A CMA area reserved at boot (``cma=``, a ``shared-dma-pool`` device-tree node)."""

    name: str = Field(
        description="The area's name, as in /sys/kernel/mm/cma/<name>; 'reserved' is the "
        "name the kernel gives the default area set by cma=.",
        json_schema_extra={"pattern": _NAME_PATTERN},
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

    @field_validator("name")
    @classmethod
    def _name_is_kernel_name(cls, value: str) -> str:
        return _check_name(value, "CMA area name")

    @field_validator("size")
    @classmethod
    def _size_is_aligned(cls, value: int) -> int:
        if value > 0 and value % CMA_AREA_ALIGN == 0:
            return value
        up = max(CMA_AREA_ALIGN, -(-value // CMA_AREA_ALIGN) * CMA_AREA_ALIGN)
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


class Board(_Spec):
    """A machine: memory, CPUs, CMA areas, kernel tunables and the cost of each operation."""

    name: str = Field(description="Short name of the board, used in reports.")
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
    cost: CostModel = Field(
        default_factory=CostModel, description="Virtual-time cost of each operation."
    )

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        return _check_name(value, "board name")

    @field_validator("ram")
    @classmethod
    def _ram_is_enough(cls, value: int) -> int:
        if value < MIN_BOARD_RAM:
            raise ValueError(
                f"ram must be at least 64 MiB; got {format_size(value)}: use '64MiB' or more"
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
        return _check_pages(value, str(info.field_name))

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
        self, policy: Union[Policy, str], seed: int, trace_limit: int = 200_000
    ) -> dict[str, Any]:
        """The machine configuration the Rust engine deserialises (``deny_unknown_fields``).

        ``policy`` may be a :class:`Policy` or a preset name; ``seed`` seeds the machine's one
        random generator; ``trace_limit`` bounds the trace events kept.
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise SpecError(f"seed must be an integer in [0, 2**64); got {seed!r}")
        if isinstance(trace_limit, bool) or not isinstance(trace_limit, int) or trace_limit < 0:
            raise SpecError(f"trace_limit must be a non-negative integer; got {trace_limit!r}")
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
            "cost": self.cost.to_engine(),
            "policy": Policy.coerce(policy).to_engine(),
            "seed": seed,
            "trace_limit": trace_limit,
        }


# --------------------------------------------------------------------------------------------
# Devices

DeviceKind = Literal["camera_sensor", "video_decoder", "tv_pipeline"]
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)


class Buffer(_Spec):
    """``count`` physically contiguous buffers of ``size`` bytes each, one cma_alloc per buffer."""

    count: int = Field(ge=1, description="How many buffers of this size.")
    size: Size = Field(description="Bytes per buffer: whole 4 KiB pages.")
    align: Size = Field(
        PAGE_SIZE,
        description="Alignment of each buffer: a power of two, at least 4 KiB. The CMA "
        "dma-heap asks for get_order(size) capped at CONFIG_CMA_ALIGNMENT (8: 1 MiB).",
    )
    description: str = Field("", description="What the buffers hold, and why this size.")

    @field_validator("size")
    @classmethod
    def _size_is_pages(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("a buffer's size must be positive: use '4KiB' or more")
        return _check_pages(value, "a buffer's size")

    @field_validator("align")
    @classmethod
    def _align_is_power_of_two(cls, value: int) -> int:
        if value < PAGE_SIZE or value & (value - 1):
            up = PAGE_SIZE
            while up < value:
                up *= 2
            raise ValueError(
                f"align must be a power of two of at least 4 KiB; got {value} bytes "
                f"({format_size(value)}): use {format_size(up)!r}"
            )
        return value

    @property
    def align_order(self) -> int:
        """The alignment as cma_alloc's ``align`` argument: log2(align / 4096)."""
        return (self.align // PAGE_SIZE).bit_length() - 1

    @property
    def pages(self) -> int:
        """4 KiB pages per buffer."""
        return self.size // PAGE_SIZE

    @property
    def total_pages(self) -> int:
        """4 KiB pages in all ``count`` buffers."""
        return self.count * self.pages


class DeviceSpec(_Spec):
    """A device that needs contiguous DMA buffers from a CMA area, now and then.

    Each named mode ("1080p", "4k", "3d") lists the buffers the device allocates when it
    starts in that mode; a mode change frees them and allocates the new mode's buffers.
    """

    name: str = Field(description="Short name of the device, used in reports.")
    kind: DeviceKind = Field(
        description="camera_sensor (frame buffers at start, freed at stop), video_decoder "
        "(decoded-picture pool, reallocated on a resolution change) or tv_pipeline (a large "
        "share of the area claimed when a 3D or 4K stream starts)."
    )
    description: str = Field(
        "", description="What the device models and where its figures come from."
    )
    heap: str = Field(
        description="The CMA area (dma-heap) the buffers come from; it must exist on the board "
        "the device is attached to.",
        json_schema_extra={"pattern": _NAME_PATTERN},
    )
    deadline: Duration = Field(
        gt=0,
        description="Budget for allocating all of a mode's buffers, from the request at "
        "start or mode change: later counts as DEADLINE_MISSED.",
    )
    zero_buffers: bool = Field(
        True, description="Clear every page before use, as the CMA dma-heap does."
    )
    modes: dict[str, tuple[Buffer, ...]] = Field(
        min_length=1,
        description="Each mode's buffers, allocated when the device starts in that mode.",
    )
    default_mode: str = Field(description="The mode the device starts in; a key of modes.")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        return _check_name(value, "device name")

    @field_validator("heap")
    @classmethod
    def _heap_is_area_name(cls, value: str) -> str:
        return _check_name(value, "heap (a CMA area name)")

    @field_validator("modes")
    @classmethod
    def _modes_have_buffers(
        cls, modes: dict[str, tuple[Buffer, ...]]
    ) -> dict[str, tuple[Buffer, ...]]:
        for mode, buffers in modes.items():
            if not mode.strip():
                raise ValueError("a mode name must not be empty")
            if not buffers:
                raise ValueError(f"mode {mode!r} lists no buffers: give it at least one")
        return modes

    @field_validator("default_mode")
    @classmethod
    def _default_mode_exists(cls, mode: str, info: ValidationInfo) -> str:
        modes = info.data.get("modes")
        if modes is not None and mode not in modes:
            raise ValueError(
                f"default_mode {mode!r} is not one of the modes "
                f"({', '.join(map(repr, modes))}): use one of them"
            )
        return mode

    def buffers(self, mode: Optional[str] = None) -> tuple[Buffer, ...]:
        """The buffers of ``mode`` (default: :attr:`default_mode`)."""
        mode = self.default_mode if mode is None else mode
        try:
            return self.modes[mode]
        except KeyError:
            raise SpecError(
                f"device {self.name!r} has no mode {mode!r}; its modes: "
                f"{', '.join(map(repr, self.modes))}"
            ) from None

    def pages(self, mode: Optional[str] = None) -> int:
        """Total 4 KiB pages the device holds in ``mode`` (default: :attr:`default_mode`)."""
        return sum(buffer.total_pages for buffer in self.buffers(mode))

    def total_bytes(self, mode: Optional[str] = None) -> int:
        """Total bytes the device holds in ``mode`` (default: :attr:`default_mode`)."""
        return self.pages(mode) * PAGE_SIZE

    def with_heap(self, heap: str) -> "DeviceSpec":
        """The same device drawing its buffers from another CMA area."""
        return validate_model(type(self), {**self.model_dump(), "heap": heap}, source=self.name)


# --------------------------------------------------------------------------------------------
# Loading and error messages

M = TypeVar("M", bound=BaseModel)

SCHEMA_MODELS: tuple[type[BaseModel], ...] = (Board, CmaArea, CostModel, Policy, DeviceSpec)


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of each model users write: Board, CmaArea, CostModel, Policy, DeviceSpec."""
    return {model.__name__: model.model_json_schema() for model in SCHEMA_MODELS}


def validate_model(cls: type[M], data: Any, source: str = "") -> M:
    """``cls.model_validate(data)``, raising :class:`SpecError` with a readable message."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe_validation_error(cls, err, source)) from None


def load_model(cls: type[M], path: Any) -> M:
    """Read a ``.json`` or ``.toml`` file into ``cls``; any problem is a :class:`SpecError`.

    ``path`` may also be an ``importlib.resources`` Traversable (a file inside the package).
    TOML needs Python 3.11+ (``tomllib``) or the ``tomli`` package.
    """
    source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    return validate_model(cls, read_document(path), source=source)


def read_document(path: Any) -> dict[str, Any]:
    """The top-level table of a ``.json`` or ``.toml`` file, as a dict."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    source = str(path)
    name = str(getattr(path, "name", source)).lower()
    if not name.endswith((".json", ".toml")):
        raise SpecError(f"{source}: cannot read this file type; use a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{source}: cannot read the file: {err}") from None
    if name.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(
                f"{source}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}"
            ) from None
    else:
        data = _loads_toml(text, source)
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the file must hold one object (a table of fields)")
    return data


def _loads_toml(text: str, source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.9 and 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise SpecError(
                f"{source}: reading TOML needs Python 3.11 or the 'tomli' package "
                f"(pip install tomli); or write the file as JSON"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML: {err}") from None


def _format_loc(loc: tuple[Union[int, str], ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _model_at(cls: type[BaseModel], loc: tuple[Union[int, str], ...]) -> Optional[type[BaseModel]]:
    """The model class whose fields live at ``loc`` (None if there is none)."""
    tp: Any = cls
    for part in loc:
        args = [a for a in get_args(tp) if a is not Ellipsis and a is not type(None)]
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif args:
            tp = args[-1]  # the element of a tuple or list, the value of a dict
        else:
            return None
    args = [a for a in get_args(tp) if a is not type(None)]
    if len(args) == 1:
        tp = args[0]  # Optional[Model]
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _explain(cls: type[BaseModel], error: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    parent = _model_at(cls, loc[:-1]) if loc else None
    if kind == "extra_forbidden" and parent is not None:
        fields = list(parent.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown field; {hint}{parent.__name__} has: {', '.join(fields)}"
    if kind == "missing" and parent is not None:
        field = parent.model_fields.get(str(loc[-1]))
        about = f" ({field.description})" if field is not None and field.description else ""
        return f"required field is missing: add it{about}"
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    got = repr(error.get("input"))
    if len(got) > 60:
        got = got[:57] + "..."
    return f"{message}; got {got}"


def describe_validation_error(cls: type[BaseModel], err: ValidationError, source: str = "") -> str:
    """A message naming the source, each bad field (as a path) and what to do about it."""
    problems = err.errors(include_url=False)
    where = f"{source}: " if source else ""
    plural = "s" if len(problems) != 1 else ""
    lines = [f"{where}invalid {cls.__name__} ({len(problems)} problem{plural})"]
    for problem in problems:
        path = _format_loc(tuple(problem["loc"])) or "(top level)"
        lines.append(f"  {path}: {_explain(cls, problem)}")
    return "\n".join(lines)


__all__ = [
    "CMA_AREA_ALIGN",
    "DEVICE_KINDS",
    "FIXES",
    "PLACEMENTS",
    "Board",
    "Buffer",
    "CmaArea",
    "CmaLock",
    "CostModel",
    "DeviceKind",
    "DeviceSpec",
    "Fix",
    "Placement",
    "Policy",
    "describe_validation_error",
    "load_model",
    "read_document",
    "schemas",
    "validate_model",
]
