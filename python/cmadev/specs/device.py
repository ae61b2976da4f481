"""Devices: what contiguous DMA buffers a camera, a video decoder or a TV pipeline asks for,
in each of its modes, and by when.
"""

from typing import Literal, Optional, get_args

from pydantic import Field, ValidationInfo, field_validator

from cmadev.errors import SpecError
from cmadev.specs.base import Name, Spec, check_pages, validate_model
from cmadev.units import PAGE_SIZE, Duration, MiB, Size, format_size

MAX_BUFFERS = 1024
"""The most buffers of one size a mode may list."""
MAX_ALIGN = 4 * MiB
"""The largest alignment ``cma_alloc`` takes: order 10 (MAX_ORDER - 1 before 6.4)."""

DeviceKind = Literal["camera_sensor", "video_decoder", "tv_pipeline"]
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)


class Buffer(Spec):
    """``count`` physically contiguous buffers of ``size`` bytes each, one cma_alloc per buffer."""

    count: int = Field(
        ge=1,
        le=MAX_BUFFERS,
        description="How many buffers of this size (at most 1024: V4L2 queues hold 32 or 64).",
    )
    size: Size = Field(description="Bytes per buffer: whole 4 KiB pages.")
    align: Size = Field(
        PAGE_SIZE,
        description="Alignment of each buffer: a power of two from 4 KiB to 4 MiB (cma_alloc's "
        "largest alignment, a MAX_ORDER block). The CMA dma-heap asks for get_order(size) "
        "capped at CONFIG_CMA_ALIGNMENT (8: 1 MiB).",
    )
    description: str = Field("", description="What the buffers hold, and why this size.")

    @field_validator("size")
    @classmethod
    def _size_is_pages(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("a buffer's size must be positive: use '4KiB' or more")
        return check_pages(value, "a buffer's size")

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
        if value > MAX_ALIGN:
            raise ValueError(
                f"align must be at most 4 MiB (cma_alloc aligns to at most a MAX_ORDER block, "
                f"order 10); got {format_size(value)}: use '4MiB' or less"
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


class DeviceSpec(Spec):
    """A device that needs contiguous DMA buffers from a CMA area, now and then.

    Each named mode ("1080p", "4k", "3d") lists the buffers the device allocates when it
    starts in that mode; a mode change frees them and allocates the new mode's buffers.
    """

    name: Name = Field(description="Short name of the device, used in reports.")
    kind: DeviceKind = Field(
        description="camera_sensor (frame buffers at start, freed at stop), video_decoder "
        "(decoded-picture pool, reallocated on a resolution change) or tv_pipeline (a large "
        "share of the area claimed when a 3D or 4K stream starts)."
    )
    description: str = Field(
        "", description="What the device models and where its figures come from."
    )
    heap: Name = Field(
        description="The CMA area (dma-heap) the buffers come from; it must exist on the board "
        "the device is attached to."
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


__all__ = ["DEVICE_KINDS", "Buffer", "DeviceKind", "DeviceSpec"]
