"""Assertions for tests of device behaviour, with failure messages that explain what happened.

A bare ``assert req.outcome == "met"`` says only ``'late' != 'met'``. These helpers say how
late, what the request had to do (pages migrated, busy retries, the wait for the allocation
lock), which buffers failed, and which pages blocked it and who held them::

    from cmadev.testing import assert_meets_deadline

    req = camera.start("4k")
    machine.run_until(req)
    assert_meets_deadline(req)

They accept a device action (a live :class:`~cmadev.sim.devices.DeviceRequest` or its
:class:`~cmadev.results.DeviceResult`) and, where it makes sense, a bare ``cma_alloc``
(:class:`~cmadev.sim.mm.CmaRequest` or :class:`~cmadev.results.CmaResult`).
"""

from __future__ import annotations

from typing import Union

from cmadev.results import CmaResult, DeviceResult, group_blockers
from cmadev.sim.devices import DeviceRequest
from cmadev.sim.mm import CmaRequest
from cmadev.units import format_duration, parse_duration

AnyRequest = Union[DeviceRequest, DeviceResult, CmaRequest, CmaResult]


def _done(request: AnyRequest, helper: str) -> DeviceResult | CmaResult:
    """The finished request as data; fail if it is still running."""
    __tracebackhide__ = True
    if isinstance(request, (CmaRequest, DeviceRequest)):
        if not request.done:
            what = (
                f"cma_alloc request #{request.id}"
                if isinstance(request, CmaRequest)
                else f"{request.device} {request.action} ({request.mode})"
            )
            raise AssertionError(
                f"{helper}: {what} is still running; call machine.run_until(request) before "
                f"checking it"
            )
        return request.result()
    if not isinstance(request, (DeviceResult, CmaResult)):
        raise TypeError(
            f"{helper} takes a DeviceRequest, DeviceResult, CmaRequest or CmaResult; got "
            f"{type(request).__name__}"
        )
    return request


def explain(request: DeviceResult | CmaResult) -> str:
    """What a finished request did, on several lines (what the helpers' messages end with)."""
    return request.describe()


def assert_meets_deadline(request: AnyRequest, deadline: int | str | None = None) -> None:
    """The request got all its buffers within its deadline (or ``deadline``, if given)."""
    __tracebackhide__ = True
    r = _done(request, "assert_meets_deadline")
    if deadline is not None:
        limit = parse_duration(deadline)
    elif isinstance(r, DeviceResult):
        limit = r.deadline_ns
    else:
        raise TypeError("assert_meets_deadline on a cma_alloc result needs deadline=...")
    if not r.ok:
        raise AssertionError(
            f"the request failed, so it did not meet its {format_duration(limit)} deadline\n"
            + explain(r)
        )
    if r.latency_ns > limit:
        raise AssertionError(
            f"the request took {format_duration(r.latency_ns)}, over its deadline of "
            f"{format_duration(limit)} by {format_duration(r.latency_ns - limit)}\n" + explain(r)
        )


def assert_allocated(request: AnyRequest) -> None:
    """Every buffer of the request was allocated (however long it took)."""
    __tracebackhide__ = True
    r = _done(request, "assert_allocated")
    if not r.ok:
        failed = len(r.failed_buffers) if isinstance(r, DeviceResult) else 1
        total = len(r.buffers) if isinstance(r, DeviceResult) else 1
        raise AssertionError(
            f"{failed} of {total} buffer{'s' if total != 1 else ''} could not be allocated\n"
            + explain(r)
        )


def assert_no_blockers(request: AnyRequest) -> None:
    """No page got in the request's way: nothing pinned, referenced or under writeback in
    the ranges it tried."""
    __tracebackhide__ = True
    r = _done(request, "assert_no_blockers")
    groups = group_blockers(tuple(r.blockers))
    if groups:
        pages = sum(g.pages for g in groups)
        raise AssertionError(
            f"{pages} page{'s' if pages != 1 else ''} blocked the request, held by "
            f"{', '.join(sorted({g.owner for g in groups}))}\n" + explain(r)
        )


def assert_blocked_by(request: AnyRequest, owner: str) -> None:
    """Some page that blocked the request was held (pinned, referenced) by ``owner``, or
    belonged to it."""
    __tracebackhide__ = True
    r = _done(request, "assert_blocked_by")
    blockers = tuple(r.blockers)
    if any(owner in (b.holder, b.owner) for b in blockers):
        return
    if not blockers:
        raise AssertionError(f"nothing blocked the request, so {owner!r} did not\n" + explain(r))
    who = sorted({g.owner for g in group_blockers(blockers)})
    raise AssertionError(
        f"{owner!r} did not block the request; it was blocked by {', '.join(who)}\n" + explain(r)
    )


__all__ = [
    "assert_allocated",
    "assert_blocked_by",
    "assert_meets_deadline",
    "assert_no_blockers",
    "explain",
]
