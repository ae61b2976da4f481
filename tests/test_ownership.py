"""Ownership you cannot break (issue 11): a stale handle, a hand-typed range, a handle of
another machine or another thread is a clear error that changes nothing, and the invariant
checks catch what such a release would have corrupted."""

from __future__ import annotations

import pytest

import cmadev
from cmadev import Machine, MisuseError
from cmadev._core import Engine

BOARD = "camera_512m"


def machine() -> Machine:
    return Machine(BOARD, seed=1)


def test_a_stale_handle_cannot_free_the_camera_buffer_that_took_its_range() -> None:
    m = machine()
    r1 = m.cma_alloc("camera", 1024, align=8, owner="encoder")
    assert m.run_until(r1) and r1.result().ok
    r1.release()
    cam = m.attach("camera_sensor")
    req = cam.start("1080p")
    m.run_until(req)
    assert req.ok and req.results[0].pfn == r1.result().pfn, "the camera got the same range"
    with pytest.raises(MisuseError, match=r"cma_alloc #0 of encoder: it was released already"):
        r1.release()
    again = m.cma_alloc("camera", 1024, align=8, owner="encoder")
    m.run_until(again)
    assert again.result().pfn != req.results[0].pfn, "the camera's range is still its own"
    cam.stop()
    assert not cam.running
    m.check_invariants()


def test_a_range_must_be_exactly_one_live_allocation_of_the_caller() -> None:
    m = machine()
    cam = m.attach("camera_sensor")
    req = cam.start("4k")
    m.run_until(req)
    first = req.results[0]
    assert first.pfn is not None
    for call, words in [
        (lambda: m.free_contig_range(first.pfn, first.count), "not to alloc_contig"),
        (
            lambda: m.free_contig_range(first.pfn, first.count, owner="camera_sensor"),
            "cma_release frees",
        ),
        (lambda: m.cma_release("camera", first.pfn, first.count), "belongs to camera_sensor"),
        (lambda: m.cma_release("camera", first.pfn, 16, owner="camera_sensor"), "not one live"),
        (
            lambda: m.cma_release("camera", first.pfn, first.count, owner="camera_sensor"),
            "device request",
        ),
        (lambda: req.buffers[0].release(), "stop the device"),
    ]:
        before = m.cma_sysfs("camera")
        with pytest.raises(MisuseError, match=words):
            call()
        assert m.cma_sysfs("camera") == before, "a refused release changed nothing"
    m.check_invariants()
    cam.stop()
    assert m.cma_sysfs("camera")["release_pages_success"] == req.pages


def test_a_contig_range_is_freed_once_by_its_owner() -> None:
    m = Machine("tv_1g", seed=1)
    base = m.cma_areas()[0]["base_pfn"]
    got = m.alloc_contig_range(base, base + 512, "CMA", owner="gpu")
    assert got.ok and got.allocation is not None
    with pytest.raises(MisuseError, match="belongs to gpu, not to isp"):
        m.free_contig_range(base, 512, owner="isp")
    with pytest.raises(MisuseError, match="not one live allocation"):
        m.free_contig_range(base, 256, owner="gpu")
    m.free_contig_range(base, 512, owner="gpu")
    with pytest.raises(MisuseError, match="no live allocation starts there"):
        m.free_contig_range(base, 512, owner="gpu")
    m.check_invariants()


def test_a_handle_of_another_machine_is_refused() -> None:
    a, b = machine(), machine()
    page = a.alloc("app")
    req = a.cma_alloc("camera", 16)
    hold = page.pin()
    for call in (
        lambda: b.free(page),
        lambda: b.access(page),
        lambda: b.release_hold(hold),
        lambda: b.release_request(req),
        lambda: b.run_until(req),
    ):
        with pytest.raises(MisuseError, match="belongs to another machine"):
            call()
    assert b.now == 0, "b's clock did not move"
    a.check_invariants()
    b.check_invariants()


def test_the_raw_engine_refuses_bad_ids_without_a_panic() -> None:
    m = machine()
    engine = m._engine  # the raw binding, as a script might use it
    bad = [
        lambda: engine.alloc(60_000, 0, 0, 0),
        lambda: engine.alloc(2, 99, 0, 0),
        lambda: engine.alloc(2, 0, 0, 99),
        lambda: engine.free(60_000, 0),
        lambda: engine.hold(0, 60_000, "pin"),
        lambda: engine.cma_alloc("camera", 1, 0, 60_000),
        lambda: engine.cma_release_job(12345, 2),
        lambda: engine.job(12345),
        lambda: engine.dma_request(12345),
        lambda: engine.owner_name(60_000),
        lambda: engine.workload_stats(7),
        lambda: engine.free_contig_range(2**32 - 2, 5, 2),
    ]
    for call in bad:
        with pytest.raises(MisuseError):
            call()
    m.check_invariants()  # not poisoned: no panic reached the engine


def test_every_engine_error_variant_maps_to_its_class() -> None:
    from cmadev._core import error_classes

    table = dict(error_classes())
    assert table == {
        "InvalidConfig": "InvalidConfigError",
        "Misuse": "MisuseError",
        "OutOfMemory": "OutOfMemoryError",
        "Cma": "CmaError",
        "Budget": "EventBudgetError",
        "Bug": "EngineBugError",
    }
    for name in table.values():
        assert issubclass(getattr(cmadev.errors, name), cmadev.CmadevError)


def test_a_run_past_its_event_budget_stops_with_a_clear_error() -> None:
    m = Machine(BOARD, seed=1, max_events=1000)
    m.start(cmadev.KernelAlloc(rate="100000/s", lifetime="1ms"))
    with pytest.raises(cmadev.errors.EventBudgetError, match="max_events"):
        m.run_for("60s")
    m.check_invariants()


def test_a_host_too_small_for_the_board_is_an_error_not_an_abort() -> None:
    config = '{"ram": 1099511627776}'  # 1 TiB: refused by the engine's own bound
    with pytest.raises(cmadev.InvalidConfigError, match="256 GiB"):
        Engine(config)


# ----- threads and Ctrl-C ----------------------------------------------------------------------


def busy_machine(seed: int = 1) -> Machine:
    m = Machine("tv_1g", seed=seed)
    m.start(cmadev.PageCacheReader(name="reader", working_set="900MiB", rate="24MiB/s"))
    m.start(cmadev.KernelAlloc(name="slab", rate="20000/s", lifetime="10ms"))
    return m


def test_ctrl_c_stops_a_long_run_between_events_and_the_machine_goes_on() -> None:
    import _thread
    import threading

    m = busy_machine()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        m.run_for("3600s")
    timer.join()
    stopped_at = m.now
    assert 0 < stopped_at < 3600 * 10**9
    m.check_invariants()
    m.run_for("1s")
    assert m.now == stopped_at + 10**9


def test_another_thread_runs_while_a_machine_does() -> None:
    import threading

    ticks = 0
    stop = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    thread = threading.Thread(target=tick)
    thread.start()
    m = busy_machine()
    before = ticks
    m.run_for("20s")
    during = ticks - before
    stop.set()
    thread.join()
    assert during > 1000, "the other thread was frozen while the engine ran"


def test_two_machines_in_two_threads_give_what_they_give_alone() -> None:
    import threading

    alone = [busy_machine(seed) for seed in (1, 2)]
    for m in alone:
        m.run_for("10s")
    together = [busy_machine(seed) for seed in (1, 2)]
    threads = [threading.Thread(target=m.run_for, args=("10s",)) for m in together]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert a.vmstat() == b.vmstat() and a.meminfo_text() == b.meminfo_text()


def test_one_machine_used_by_two_threads_at_once_refuses_the_second() -> None:
    import threading

    m = busy_machine()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            m.run_for("30s")
        except BaseException as e:
            errors.append(e)

    first = threading.Thread(target=run)
    first.start()
    while not m._busy.locked() and first.is_alive():
        pass  # wait until the first thread is running the machine
    run()
    first.join()
    assert len(errors) == 1 and isinstance(errors[0], MisuseError), errors
    assert "another thread" in str(errors[0])
    m.check_invariants()
