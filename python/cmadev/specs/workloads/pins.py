"""The workloads that pin pages: :class:`DirectIO` (short FOLL_PIN pins of ``O_DIRECT`` I/O) and
:class:`LongtermPinner` (FOLL_LONGTERM pins: RDMA, vfio, io_uring fixed buffers).

Two kinds of one family, apart from the others: a pinned page cannot be migrated, which is
what a contiguous allocation runs into.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from cmadev.specs.base import Name
from cmadev.specs.workloads.base import (
    MAX_EVENT_RATE,
    WorkloadBase,
    _positive_rate,
    _positive_size,
)
from cmadev.units import Duration, PerSecond, Size, format_size, pages_for


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


__all__ = ["DirectIO", "LongtermPinner"]
