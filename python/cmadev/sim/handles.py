"""The handles a user holds of a simulated machine's memory (:class:`~cmadev.sim.mm.Mm`).

A :class:`Page` (a page an owner allocated), a :class:`Hold` (a reference or pin on one), a
:class:`CmaRequest` (a ``cma_alloc`` in progress), a :class:`WorkloadHandle` (a background
workload running in the engine) and :class:`DmaRequestState` (a device request as seen now).

They are apart from :mod:`cmadev.sim.mm` because they hold no engine state of their own: each
names its machine and asks it for everything, so the machine's logic stays in one place and
these stay small. They import :class:`~cmadev.sim.mm.Mm` for their types only; the names are
also importable from :mod:`cmadev.sim.mm`, as they were before the split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from cmadev.errors import MisuseError
from cmadev.results import CmaResult

if TYPE_CHECKING:
    from cmadev.sim.mm import Mm, TimeLike


class DmaRequestState(NamedTuple):
    """A device request in the engine (``rust/mm/src/dma_heap.rs``), as seen now."""

    id: int
    jobs: tuple[int, ...]
    """The buffers' ``cma_alloc`` jobs, in allocation order."""
    done: bool
    """Every buffer's ``cma_alloc`` has finished (or was never asked for)."""
    ok: bool
    """Every buffer was allocated."""
    released_ns: Optional[int]
    """When the request stopped holding buffers (failure or release); None while it holds."""
    cancelled: bool
    """The device let go of it while it was in flight."""
    held_pages: int


class Page:
    """A page owned by someone: ``owner``'s page ``index``. Its frame (:attr:`pfn`) may change
    when the page is migrated, so a handle names the page, not the frame. Made by
    :meth:`Mm.alloc`, which sets its slots. (A plain class with slots and no ``__init__``, not
    a dataclass: a script may make hundreds of thousands of them, and ``Page()`` with no
    ``__init__`` to run costs half what a constructor with arguments does.)"""

    __slots__ = ("index", "machine", "order", "owner", "owner_id")

    machine: Mm
    owner: str
    owner_id: int
    index: int
    order: int

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Page)
            and other.machine is self.machine
            and (other.owner_id, other.index) == (self.owner_id, self.index)
        )

    def __hash__(self) -> int:
        return hash((id(self.machine), self.owner_id, self.index))

    def __repr__(self) -> str:
        return f"Page(owner={self.owner!r}, index={self.index}, order={self.order})"

    @property
    def pfn(self) -> Optional[int]:
        """The frame holding the page now, or None if it was reclaimed."""
        return self.machine.page_pfn(self)

    def info(self) -> dict[str, Any]:
        """The frame's state: kind, flags, migratetype, zone, refcount, pincount."""
        return self.machine.page_info(self.resident_pfn())

    def access(self, write: bool = False) -> str:
        """Touch the page; returns what happened (hit, refault, swapin, ...)."""
        return self.machine.access(self, write)

    def dirty(self) -> None:
        self.access(write=True)

    def writeback(self) -> int:
        """Start writing the dirty page back now; returns when the write completes (ns)."""
        return self.machine.writeback(self)

    def pin(
        self,
        holder: Optional[str] = None,
        longterm: bool = False,
        duration: Optional[TimeLike] = None,
    ) -> Hold:
        """``pin_user_pages`` (FOLL_PIN, or FOLL_LONGTERM with ``longterm``)."""
        return self.machine.hold(self, holder, "longterm" if longterm else "pin", duration)

    def get(
        self, holder: Optional[str] = None, short: bool = False, duration: Optional[TimeLike] = None
    ) -> Hold:
        """``get_page`` (or the annotated ``get_page_short`` with ``short``)."""
        kind = "get_page_short" if short else "get_page"
        return self.machine.hold(self, holder, kind, duration)

    def free(self) -> None:
        # Its own machine's page by construction: no ownership check to make.
        self.machine._engine_free(self.owner_id, self.index)

    def resident_pfn(self) -> int:
        """The frame holding the page; :class:`MisuseError` if it was reclaimed."""
        pfn = self.pfn
        if pfn is None:
            raise MisuseError(f"{self.owner}'s page {self.index} is not resident (reclaimed)")
        return pfn


@dataclass(frozen=True)
class Hold:
    """A reference or pin on a page, released with :meth:`release`."""

    machine: Mm = field(repr=False, compare=False)
    id: int
    pfn: int
    kind: str
    holder: str
    cost_ns: int = 0

    def release(self) -> None:
        """``put_page`` / ``unpin_user_page``."""
        self.machine.release_hold(self)


class CmaRequest:
    """A ``cma_alloc`` in progress. ``machine.run_until(request)`` runs until it is done."""

    def __init__(self, machine: Mm, job_id: int, owner: str) -> None:
        self.machine = machine
        self.id = job_id
        self.owner = owner

    @property
    def done(self) -> bool:
        return self.machine.job_done(self.id)

    def is_done(self) -> bool:
        """Part of :class:`~cmadev.sim.mm.Condition`."""
        return self.done

    def pending_jobs(self) -> list[int]:
        """Part of :class:`~cmadev.sim.mm.Condition`: this job, until it is done."""
        return [] if self.done else [self.id]

    def result(self) -> CmaResult:
        """The result; the request must be done (run the machine until it is)."""
        if not self.done:
            raise MisuseError(
                f"cma_alloc request #{self.id} is still running: call "
                "machine.run_until(request) first"
            )
        return self.machine.cma_result(self.id)

    def release(self) -> None:
        """``cma_release`` the buffer: once, by its owner; a second release, or one of a
        buffer that belongs to a device, is a :class:`MisuseError` that changes nothing."""
        self.machine.release_request(self)

    def __repr__(self) -> str:
        return f"<CmaRequest #{self.id} {'done' if self.done else 'running'}>"


class WorkloadHandle:
    """A background workload running inside the engine."""

    def __init__(self, machine: Mm, wid: int, name: str) -> None:
        self.machine = machine
        self.id = wid
        self.name = name

    def stats(self) -> dict[str, Any]:
        return self.machine.workload_stats(self)

    def stop(self) -> None:
        self.machine.stop_workload(self)


__all__ = ["CmaRequest", "DmaRequestState", "Hold", "Page", "WorkloadHandle"]
