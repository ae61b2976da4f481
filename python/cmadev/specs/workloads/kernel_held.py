"""The workloads whose pages the kernel holds for itself: :class:`FsMount` (a mounted
filesystem's superblock and group-descriptor buffers) and :class:`KernelAlloc` (slab-like
unmovable allocations).

Two kinds of one family, apart from the others: no process owns their memory, and neither
takes a size a board must fit.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

from typing import Any, Literal, Optional

from pydantic import AliasChoices, Field, field_validator

from cmadev.specs.base import Name
from cmadev.specs.workloads.base import MAX_EVENT_RATE, WorkloadBase, _positive_rate
from cmadev.units import Duration, PerSecond


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


__all__ = ["FsMount", "KernelAlloc"]
