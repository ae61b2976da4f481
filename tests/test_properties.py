"""Property tests through the Python API (issue 2, item 5).

Random sequences of operations (allocate, free, pin, get, release, access, write back,
cma_alloc and cma_release, alloc_contig_range, run the clock) on a small board under every
placement, with ``check_invariants()`` after every step; the same sequence and seed give the same
trace and counters; and every misuse raises a :mod:`cmadev.errors` exception (never a
``PanicException``, a bare ``RuntimeError`` or an ``EngineBugError``) and leaves the invariants
holding.

Profiles (``tests/conftest.py``): ``HYPOTHESIS_PROFILE=fast`` (default, ~30 examples a test) or
``HYPOTHESIS_PROFILE=slow`` for a longer hunt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Optional

from hypothesis import event, given
from hypothesis import strategies as st

from cmadev import Board, Machine
from cmadev.errors import CmadevError, EngineBugError
from cmadev.sim.mm import CmaRequest, Hold, Page
from cmadev.specs.policy import PLACEMENTS

OWNERS = ("app", "browser", "kworker")
MOVABLE_GFPS = ("GFP_HIGHUSER_MOVABLE", "GFP_USER_MOVABLE")
KERNEL_GFPS = ("GFP_KERNEL", "GFP_KERNEL_RECLAIMABLE", "GFP_NOWAIT", "GFP_ATOMIC", "GFP_USER")


def board(two_areas: bool, swap: bool) -> Board:
    areas = (
        [{"name": "video", "size": "16MiB"}, {"name": "camera", "size": "16MiB"}]
        if two_areas
        else [{"name": "cma", "size": "32MiB"}]
    )
    return Board(
        name="prop128",
        ram="128MiB",
        cpus=2,
        cma_areas=areas,
        swap="16MiB" if swap else 0,
    )


def expect_error(what: str, fn: Callable[[], Any]) -> None:
    """``fn`` is a misuse: it must raise a cmadev error that is not an engine bug."""
    try:
        fn()
    except EngineBugError as e:
        raise AssertionError(f"{what}: engine bug instead of a misuse error: {e}") from e
    except CmadevError:
        return
    except BaseException as e:  # PanicException derives from BaseException
        raise AssertionError(f"{what}: {type(e).__name__} instead of a cmadev error: {e}") from e
    raise AssertionError(f"{what}: accepted")


def allowed(fn: Callable[[], Any]) -> Any:
    """Run an operation that may legitimately fail (out of memory, page held, ...); a failure
    must be a cmadev error other than an engine bug. Returns the result, or None."""
    try:
        return fn()
    except EngineBugError:
        raise
    except CmadevError:
        return None


# ----- operations ----------------------------------------------------------------------------

pick = st.integers(min_value=0, max_value=2**16)
owner = st.sampled_from(OWNERS)

alloc_op = st.one_of(
    st.tuples(
        st.just("alloc"),
        owner,
        st.sampled_from(MOVABLE_GFPS),
        st.one_of(st.integers(0, 2), st.integers(3, 10)),
        st.sampled_from(["anon", "file"]),
    ),
    st.tuples(
        st.just("alloc"),
        owner,
        st.sampled_from(KERNEL_GFPS),
        st.one_of(st.integers(0, 2), st.integers(3, 10)),
        st.sampled_from(["kernel", "file"]),
    ),
)

MISUSES = (
    "double_free",
    "release_twice",
    "free_held",
    "cma_too_large",
    "cma_zero",
    "cma_unknown_area",
    "cma_bad_align",
    "release_failed_or_running_request",
    "order_too_high",
    "unknown_gfp",
    "unknown_kind",
    "device_kind",
    "kernel_kind_movable_gfp",
    "anon_kind_kernel_gfp",
    "contig_empty",
    "contig_beyond_end",
    "contig_bad_migratetype",
    "contig_cma_outside_area",
    "free_contig_not_device",
    "writeback_clean",
    "hold_freed_page",
    "page_info_beyond_end",
    "run_until_past",
    "unknown_hold_kind",
    "stale_release",
    "foreign_release",
    "foreign_machine",
)

alloc_many_op = st.tuples(
    st.just("alloc_many"), owner, st.integers(1, 6000), st.sampled_from(["anon", "file"])
)
fill_op = st.tuples(st.just("fill"), owner, st.sampled_from(["anon", "file"]))
hold_op = st.tuples(
    st.just("hold"),
    pick,
    owner,
    st.sampled_from(["pin", "longterm", "get", "get_short"]),
    st.one_of(st.none(), st.integers(1_000, 200_000_000)),
)
cma_alloc_op = st.tuples(
    st.just("cma_alloc"),
    pick,
    st.one_of(st.integers(1, 512), st.integers(1, 4096)),
    st.integers(0, 6),
    st.booleans(),  # zero the buffer
    st.sampled_from([True, True, True, False]),  # wait for it (else it runs on in the background)
)
contig_op = st.tuples(st.just("contig"), st.integers(0, 999), st.integers(1, 2048), st.booleans())

# st.one_of picks its branches evenly: the ones that make things happen appear twice.
op_strategy = st.one_of(
    alloc_op,
    alloc_op,
    alloc_many_op,
    alloc_many_op,
    fill_op,
    st.tuples(st.just("free"), pick),
    st.tuples(st.just("free"), pick),
    hold_op,
    hold_op,
    st.tuples(st.just("release"), pick),
    st.tuples(st.just("access"), pick, st.booleans()),
    st.tuples(st.just("writeback"), pick),
    cma_alloc_op,
    cma_alloc_op,
    cma_alloc_op,
    st.tuples(st.just("cma_release"), pick),
    contig_op,
    contig_op,
    st.tuples(st.just("free_contig"), pick),
    st.tuples(
        st.just("run_for"),
        st.one_of(st.integers(1, 1_000_000), st.integers(1_000_000, 10_000_000_000)),
    ),
    st.tuples(st.just("misuse"), st.sampled_from(MISUSES)),
)


@dataclass
class World:
    """A machine and the handles the operations name by position (``pick % len``)."""

    m: Machine
    pages: list[Page] = field(default_factory=list)
    freed: list[Page] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    released: list[Hold] = field(default_factory=list)
    requests: list[CmaRequest] = field(default_factory=list)
    released_requests: list[CmaRequest] = field(default_factory=list)
    contig: list[tuple[int, int]] = field(default_factory=list)

    @property
    def areas(self) -> list[dict[str, Any]]:
        return self.m.cma_areas()

    def apply(self, op: tuple[Any, ...]) -> None:
        getattr(self, f"op_{op[0]}")(*op[1:])

    def op_alloc(self, owner: str, gfp: str, order: int, kind: str) -> None:
        page = allowed(lambda: self.m.alloc(owner, gfp=gfp, order=order, kind=kind))
        if page is not None:
            self.pages.append(page)

    def op_alloc_many(self, owner: str, n: int, kind: str) -> None:
        for _ in range(n):
            page = allowed(lambda: self.m.alloc(owner, kind=kind))
            if page is None:
                return
            self.pages.append(page)

    def op_fill(self, owner: str, kind: str) -> None:
        """Allocate until allocation fails (reclaim first, then -ENOMEM)."""
        self.op_alloc_many(owner, 40_000, kind)

    def op_free(self, i: int) -> None:
        if self.pages:
            page = self.pages[i % len(self.pages)]

            def free() -> bool:
                page.free()
                return True

            if allowed(free):
                self.pages.remove(page)
                self.freed.append(page)

    def op_hold(self, i: int, holder: str, kind: str, duration: Optional[int]) -> None:
        if not self.pages:
            return
        page = self.pages[i % len(self.pages)]
        if page.pfn is None:
            return
        if kind in ("pin", "longterm"):
            hold = allowed(lambda: page.pin(holder, longterm=kind == "longterm", duration=duration))
        else:
            hold = allowed(lambda: page.get(holder, short=kind == "get_short", duration=duration))
        if hold is not None:
            self.holds.append(hold)

    def op_release(self, i: int) -> None:
        if self.holds:
            hold = self.holds.pop(i % len(self.holds))
            allowed(hold.release)  # a hold taken for a duration may be gone already
            self.released.append(hold)

    def op_access(self, i: int, write: bool) -> None:
        if self.pages:
            page = self.pages[i % len(self.pages)]
            allowed(lambda: page.access(write=write))

    def op_writeback(self, i: int) -> None:
        if self.pages:
            allowed(self.pages[i % len(self.pages)].writeback)

    def op_cma_alloc(self, area: int, count: int, align: int, zero: bool, wait: bool) -> None:
        name = self.areas[area % len(self.areas)]["name"]
        req = allowed(lambda: self.m.cma_alloc(name, count, align=align, owner="camera", zero=zero))
        if req is None:
            return
        self.requests.append(req)
        if wait:
            assert self.m.run_until(req, limit="3600s"), f"{req} not done after an hour"

    def op_cma_release(self, i: int) -> None:
        ready = [r for r in self.requests if r.done and r.result().ok]
        if ready:
            req = ready[i % len(ready)]
            req.release()
            self.requests.remove(req)
            self.released_requests.append(req)

    def op_contig(self, start_permille: int, length: int, cma: bool) -> None:
        n = self.m.nr_pages
        start = n * start_permille // 1000
        end = min(start + length, n)
        mt = "CMA" if cma else "Movable"
        out = allowed(lambda: self.m.alloc_contig_range(start, end, mt, owner="gpu"))
        if out is not None and out.ok:
            self.contig.append((start, end - start))

    def op_free_contig(self, i: int) -> None:
        if self.contig:
            start, count = self.contig.pop(i % len(self.contig))
            self.m.free_contig_range(start, count, owner="gpu")

    def op_run_for(self, ns: int) -> None:
        self.m.run_for(ns)

    def op_misuse(self, what: str) -> None:
        """One misuse: it must be refused with a cmadev error and change nothing."""
        before = self._state()
        self._misuse(what)
        assert self._state() == before, f"{what} was refused but changed the machine"

    def _state(self) -> tuple[Any, ...]:
        m = self.m
        sysfs = [m.cma_sysfs(a["name"]) for a in self.areas]
        return (m.now, m.meminfo_text(), m.buddyinfo(), sysfs, m.trace_lines_emitted())

    def _live_requests(self) -> list[CmaRequest]:
        return [r for r in self.requests if r.done and r.result().ok]

    def _misuse(self, what: str) -> None:
        m = self.m
        n = m.nr_pages
        area = self.areas[0]
        if what == "stale_release":
            # A released allocation's handle never frees what holds its range now.
            for req in self.released_requests[:2]:
                expect_error(what, req.release)
        elif what == "foreign_release":
            live = self._live_requests()
            if live:
                r = live[0].result()
                pfn, count = r.pfn, r.count
                assert pfn is not None
                expect_error(what, lambda: m.cma_release(r.area, pfn, count, owner="encoder"))
                if count > 1:
                    expect_error(what, lambda: m.cma_release(r.area, pfn, count - 1, "camera"))
                expect_error(what, lambda: m.free_contig_range(pfn, count, owner="camera"))
            if self.contig:
                start, length = self.contig[0]
                expect_error(what, lambda: m.free_contig_range(start, length, owner="camera"))
        elif what == "foreign_machine":
            other = Machine(board(False, False), policy="balanced", seed=0)
            page = other.alloc("app")
            expect_error(what, lambda: m.free(page))
            expect_error(what, lambda: m.page_pfn(page))
            req = other.cma_alloc("cma", 1, owner="camera")
            expect_error(what, lambda: m.run_until(req))
            expect_error(what, lambda: m.release_request(req))
        elif what == "double_free":
            for page in self.freed[:1]:
                expect_error(what, page.free)
        elif what == "release_twice":
            # A released hold's id is never reused.
            for hold in self.released[:1]:
                expect_error(what, hold.release)
        elif what == "free_held":
            for hold in self.holds:
                held = [p for p in self.pages if p.pfn == hold.pfn and hold.id in self._live()]
                if held:
                    expect_error(what, held[0].free)
                    break
        elif what == "cma_too_large":
            expect_error(what, lambda: m.cma_alloc(area["name"], area["pages"] + 1))
        elif what == "cma_zero":
            expect_error(what, lambda: m.cma_alloc(area["name"], 0))
        elif what == "cma_unknown_area":
            expect_error(what, lambda: m.cma_alloc("no_such_area", 1))
        elif what == "cma_bad_align":
            expect_error(what, lambda: m.cma_alloc(area["name"], 1, align=11))
        elif what == "release_failed_or_running_request":
            for req in self.requests:
                if not req.done or not req.result().ok:
                    expect_error(what, req.release)
                    break
            for req in self.released_requests[:1]:
                expect_error(what, req.release)  # even when its range is handed out again
        elif what == "order_too_high":
            expect_error(what, lambda: m.alloc("app", order=11))
        elif what == "unknown_gfp":
            expect_error(what, lambda: m.alloc("app", gfp="GFP_NOPE"))
        elif what == "unknown_kind":
            expect_error(what, lambda: m.alloc("app", kind="slab"))
        elif what == "device_kind":
            expect_error(what, lambda: m.alloc("app", gfp="GFP_KERNEL", kind="device"))
        elif what == "kernel_kind_movable_gfp":
            expect_error(what, lambda: m.alloc("app", gfp="GFP_HIGHUSER_MOVABLE", kind="kernel"))
        elif what == "anon_kind_kernel_gfp":
            expect_error(what, lambda: m.alloc("app", gfp="GFP_KERNEL", kind="anon"))
        elif what == "contig_empty":
            expect_error(what, lambda: m.alloc_contig_range(5, 5))
        elif what == "contig_beyond_end":
            expect_error(what, lambda: m.alloc_contig_range(n - 1, n + 1))
        elif what == "contig_bad_migratetype":
            expect_error(what, lambda: m.alloc_contig_range(0, 1, "Sideways"))
            expect_error(what, lambda: m.alloc_contig_range(0, 1, "Isolate"))
        elif what == "contig_cma_outside_area":
            expect_error(what, lambda: m.alloc_contig_range(0, 1, "CMA"))
        elif what == "free_contig_not_device":
            expect_error(what, lambda: m.free_contig_range(n - 10, 20, owner="gpu"))
            free = next((p for p in range(0, n, 97) if m.page_info(p)["kind"] != "device"), None)
            if free is not None:
                expect_error(what, lambda: m.free_contig_range(free, 1, owner="gpu"))
        elif what == "writeback_clean":
            for page in self.pages:
                pfn = page.pfn
                if pfn is not None and "dirty" not in m.page_info(pfn)["flags"]:
                    expect_error(what, page.writeback)
                    break
        elif what == "hold_freed_page":
            for page in self.freed[:1]:
                expect_error(what, page.pin)
                expect_error(what, page.get)
        elif what == "page_info_beyond_end":
            expect_error(what, lambda: m.page_info(n))
        elif what == "run_until_past":
            if m.now > 0:
                expect_error(what, lambda: m.run_until(m.now - 1))
        elif what == "unknown_hold_kind":
            pfn = self.pages[0].pfn if self.pages else None
            if pfn is not None:
                page = self.pages[0]
                expect_error(what, lambda: m.hold(page, None, "grab", None))
        else:  # pragma: no cover
            raise AssertionError(what)

    def _live(self) -> set[int]:
        """Ids of holds still held (a hold with a duration may have been dropped)."""
        live: set[int] = set()
        for page in self.pages:
            pfn = page.pfn
            if pfn is not None:
                live.update(h.id for h in self.m.holds(pfn))
        return live


def run(
    placement: str, two_areas: bool, swap: bool, seed: int, ops: list[tuple[Any, ...]]
) -> World:
    w = World(Machine(board(two_areas, swap), policy=placement, seed=seed))
    w.m.check_invariants()
    for step, op in enumerate(ops):
        w.apply(op)
        try:
            w.m.check_invariants()
        except EngineBugError as e:
            raise AssertionError(f"after step {step} {op!r}: {e}") from e
    report(w)
    return w


def report(w: World) -> None:
    """Tell Hypothesis what the run reached (``--hypothesis-show-statistics``)."""
    vm = w.m.vmstat()
    for counter in ("pgscan_direct", "pgsteal_kswapd", "pgmigrate_success", "pgmigrate_fail"):
        if vm.get(counter, 0):
            event(f"reached {counter}")
    for req in w.requests + w.released_requests:
        if req.done:
            r = req.result()
            event(f"cma_alloc {r.errno or 'ok'}{' after busy retries' if r.busy_retries else ''}")
    info = w.m.meminfo()
    if info["MemFree"] < info["MemTotal"] // 20:
        event("reached memory pressure (< 5% free)")


board_args = dict(
    placement=st.sampled_from(PLACEMENTS),
    two_areas=st.booleans(),
    swap=st.booleans(),
    seed=st.integers(0, 2**32),
)


@given(ops=st.lists(op_strategy, min_size=1, max_size=40), **board_args)
def test_invariants_hold_after_every_step(
    placement: str, two_areas: bool, swap: bool, seed: int, ops: list[tuple[Any, ...]]
) -> None:
    run(placement, two_areas, swap, seed, ops)


def fingerprint(m: Machine) -> tuple[Any, ...]:
    return (m.trace(), m.vmstat(), m.meminfo_text(), m.buddyinfo(), m.now, m.dmesg())


@given(ops=st.lists(op_strategy, min_size=1, max_size=25), **board_args)
def test_same_ops_and_seed_give_the_same_trace(
    placement: str, two_areas: bool, swap: bool, seed: int, ops: list[tuple[Any, ...]]
) -> None:
    first = fingerprint(run(placement, two_areas, swap, seed, ops).m)
    second = fingerprint(run(placement, two_areas, swap, seed, ops).m)
    assert first == second


# ----- misuse with values outside the engine's integer types ------------------------------------


def test_out_of_range_integers_raise_cmadev_errors() -> None:
    m = Machine(board(False, False), policy="balanced", seed=0)
    wrong: list[str] = []
    for value in (-1, 2**32, 2**64):
        calls: dict[str, Callable[[], Any]] = {
            "count": partial(m.cma_alloc, "cma", value),
            "align": partial(m.cma_alloc, "cma", 1, align=value),
            "order": partial(m.alloc, "app", order=value),
            "pfn": partial(m.page_info, value),
            "start": partial(m.alloc_contig_range, value, 16),
        }
        for what, call in calls.items():
            try:
                expect_error(f"{what}={value}", call)
            except AssertionError as e:
                wrong.append(str(e))
        m.check_invariants()
    assert not wrong, "\n".join(wrong)


def test_misuse_leaves_a_machine_usable() -> None:
    """After one of each misuse, the machine still allocates, migrates and checks clean."""
    w = run("balanced", False, False, 0, [("alloc_many", "app", 2000, "anon")])
    for what in MISUSES:
        w.apply(("misuse", what))
        w.m.check_invariants()
    req = w.m.cma_alloc("cma", 256, owner="camera")
    assert w.m.run_until(req)
    assert req.result().ok
    w.m.check_invariants()
