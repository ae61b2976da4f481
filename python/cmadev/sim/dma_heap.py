"""``/dev/dma_heap/<area>``: the CMA dma-heap, the way drivers and user space get contiguous
buffers (``drivers/dma-buf/heaps/cma_heap.c``, Linux 5.6 and later).

``cma_heap_allocate`` asks ``cma_alloc`` for ``PAGE_ALIGN(len) >> PAGE_SHIFT`` pages aligned to
``get_order(len)`` capped at ``CONFIG_CMA_ALIGNMENT``, and clears every page before handing the
buffer out; the engine charges the clearing after the allocation lock is released, as the
heap clears after ``cma_alloc`` returns.
"""

from __future__ import annotations

from cmadev.errors import MisuseError, SpecError
from cmadev.sim.mm import CmaRequest, DmaRequestState, Mm
from cmadev.units import PAGE_SIZE, format_size, pages_for, parse_size

CONFIG_CMA_ALIGNMENT = 8
"""The largest alignment order the CMA dma-heap asks for (Kconfig default 8: 1 MiB)."""


def get_order(size: int) -> int:
    """The kernel's ``get_order()``: the smallest order with ``PAGE_SIZE << order >= size``."""
    return max(0, (pages_for(size) - 1).bit_length())


class DmaHeap:
    """``/dev/dma_heap/<name>``: the CMA dma-heap of the area called ``name``.

    >>> heap = DmaHeap(machine, "tv")
    >>> request = heap.allocate("12MiB", owner="decoder")   # a CmaRequest
    """

    def __init__(self, machine: Mm, name: str) -> None:
        areas = {area["name"]: area for area in machine.cma_areas()}
        if name not in areas:
            known = ", ".join(repr(a) for a in areas) or "none"
            raise SpecError(
                f"there is no dma-heap /dev/dma_heap/{name}: board {machine.board.name!r} has no "
                f"CMA area {name!r} (its areas: {known}); use one of those, e.g. with "
                f"spec.with_heap(...) or a scenario's heap override"
            )
        self.machine = machine
        self.name = name
        self.pages: int = int(areas[name]["pages"])

    @property
    def path(self) -> str:
        return f"/dev/dma_heap/{self.name}"

    @staticmethod
    def align_order(size: int) -> int:
        """The alignment ``cma_heap_allocate`` asks for: ``min(get_order(size), 8)``."""
        return min(get_order(size), CONFIG_CMA_ALIGNMENT)

    def allocate(
        self,
        size: int | str,
        owner: str = "dma_heap",
        zero: bool = True,
        align: int | str | None = None,
    ) -> CmaRequest:
        """Start ``cma_alloc(area, PAGE_ALIGN(size) / PAGE_SIZE, align)`` for ``owner`` now.

        ``zero`` charges the clearing of every page after the allocation, as the heap does.
        ``align`` (bytes) asks for a stricter alignment than the heap's own, as a driver
        calling ``cma_alloc`` directly may.
        """
        nbytes = parse_size(size)
        if nbytes <= 0:
            raise MisuseError(f"{self.path}: cannot allocate {nbytes} bytes; ask for 4 KiB or more")
        order = self.align_order(nbytes)
        if align is not None:
            order = max(order, get_order(parse_size(align)))
        return self.machine.cma_alloc(
            self.name, pages_for(nbytes), align=order, owner=owner, zero=zero
        )

    def allocate_buffers(
        self,
        sizes: list[int],
        aligns: list[int],
        owner: str = "dma_heap",
        zero: bool = True,
    ) -> DmaRequestState:
        """Allocate buffers one after the other, as a driver's allocation loop does, as one
        engine request: each ``cma_alloc`` starts when the previous one succeeded; a failure
        releases what was got and asks for nothing more."""
        if not sizes or any(n <= 0 for n in sizes):
            raise MisuseError(f"{self.path}: buffer sizes must be positive, got {sizes}")
        buffers = [
            (pages_for(nbytes), max(self.align_order(nbytes), get_order(align)))
            for nbytes, align in zip(sizes, aligns)
        ]
        return self.machine.dma_heap_alloc(self.name, buffers, owner, zero)

    def __repr__(self) -> str:
        return f"<DmaHeap {self.path} ({format_size(self.pages * PAGE_SIZE)})>"


__all__ = ["CONFIG_CMA_ALIGNMENT", "DmaHeap", "get_order"]
