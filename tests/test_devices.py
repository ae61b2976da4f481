"""Device models (cmadev.device): the dma-heap, device actions, their outcomes and blockers."""

from __future__ import annotations

import pytest

import cmadev
from cmadev import Board, DeviceSpec, Machine
from cmadev.errors import MisuseError, SpecError
from cmadev.sim.devices import CameraSensor, Device, DeviceRequest, TvPipeline, VideoDecoder
from cmadev.sim.dma_heap import DmaHeap, get_order
from cmadev.sim.mm import Page
from cmadev.units import MiB

# A small camera board: fast to fill page by page from Python.
CAM_BOARD = Board(name="cam256", ram="256MiB", cma_areas=[{"name": "camera", "size": "64MiB"}])
# A small TV board: the 4K pipeline (94.9 MiB) and the 720p decoder pool (17 x 1.41 MiB, each
# taking 2 MiB of the area as they are aligned to 1 MiB) fit, and
# memory outside CMA can take the pages migrated out of their way.
TV_BOARD = Board(name="tv352", ram="352MiB", cma_areas=[{"name": "tv", "size": "160MiB"}])
ZERO_NS = 1_000  # CostModel.zero_page default


def fill_cma(m: Machine, owner: str = "app") -> list[Page]:
    """Fill memory with movable pages, then free those outside CMA: the CMA area is full of
    movable pages, and migration has somewhere to put them."""
    base = m.cma_areas()[0]["base_pfn"]
    pages = []
    while True:
        try:
            pages.append(m.alloc(owner))
        except cmadev.OutOfMemoryError:
            break
    kept = []
    for p in pages:
        if p.pfn is not None and p.pfn < base:
            p.free()
        else:
            kept.append(p)
    return kept


def pin_every_mib(m: Machine, pages: list[Page], duration: str | None = None) -> int:
    """Pin one page in every 1 MiB of the CMA area, as direct I/O ("dio") would."""
    base = m.cma_areas()[0]["base_pfn"]
    pinned = 0
    for p in pages:
        assert p.pfn is not None
        if (p.pfn - base) % 256 == 5:
            p.pin(holder="dio", duration=duration)
            pinned += 1
    return pinned


def device_pages(m: Machine, area: str) -> int:
    """Pages the area has handed out and not taken back (sysfs)."""
    s = m.cma_sysfs(area)
    return s["alloc_pages_success"] - s["release_pages_success"]


# ----- the dma-heap -------------------------------------------------------------------------


def test_get_order_is_the_kernels() -> None:
    assert [get_order(n) for n in (1, 4096, 4097, 8192, 12288, 1 * MiB)] == [0, 0, 1, 1, 2, 8]


def test_heap_aligns_to_get_order_capped_at_cma_alignment() -> None:
    m = Machine(CAM_BOARD, seed=1)
    heap = DmaHeap(m, "camera")
    assert heap.path == "/dev/dma_heap/camera"
    small = heap.allocate("64KiB", owner="x")
    big = heap.allocate("12152KiB", owner="y")
    stricter = heap.allocate("64KiB", owner="z", align="2MiB")
    for req in (small, big, stricter):
        m.run_until(req)
    assert (small.result().count, small.result().align) == (16, 4)
    assert (big.result().count, big.result().align) == (3038, 8), "capped at 1 MiB"
    assert stricter.result().align == 9
    assert big.result().pfn % 256 == 0


def test_heap_of_an_area_the_board_lacks_names_the_areas() -> None:
    m = Machine("tv_1g", seed=1)
    with pytest.raises(SpecError, match=r"/dev/dma_heap/camera.*'tv'.*with_heap"):
        DmaHeap(m, "camera")
    with pytest.raises(SpecError, match="no CMA area 'camera'"):
        m.attach("camera_sensor")


def test_zeroing_is_charged_after_the_allocation() -> None:
    m = Machine(CAM_BOARD, seed=1)
    clear = m.attach("camera_sensor")
    spec = cmadev.devices.load("camera_sensor")
    raw = DeviceSpec.model_validate({**spec.model_dump(), "zero_buffers": False})
    dirty = m.attach(raw, name="raw")
    a = clear.start("1080p")
    m.run_until(a)
    clear.stop()
    b = dirty.start("1080p")
    m.run_until(b)
    assert a.latency_ns - b.latency_ns >= 760 * ZERO_NS


# ----- outcomes -------------------------------------------------------------------------------


def test_quiet_machine_meets_the_deadline_without_migrating() -> None:
    m = Machine(CAM_BOARD, policy="balanced", seed=1)
    cam = m.attach("camera_sensor")
    assert isinstance(cam, CameraSensor)
    req = cam.start("4k")
    assert not req.done
    with pytest.raises(MisuseError, match="still running"):
        _ = req.outcome
    assert m.run_until(req.done)
    assert req.done
    assert req.outcome == "met" and req.ok
    assert req.latency_ns <= req.deadline_ns == 200_000_000
    assert req.completed_ns == req.issued_ns + req.latency_ns
    assert req.pages == 4 * 3038 and len(req.results) == 4
    assert req.pages_migrated == 0 and req.busy_retries == 0 and not req.blockers
    assert cam.running and cam.mode == "4k" and cam.held_pages == 4 * 3038
    assert device_pages(m, "camera") == 4 * 3038
    cam.stop()
    assert not cam.running and cam.held_pages == 0
    assert device_pages(m, "camera") == 0
    m.check_invariants()


def test_full_area_is_migrated_and_still_in_time() -> None:
    m = Machine(CAM_BOARD, policy="balanced", seed=1)
    fill_cma(m)
    cam = m.attach("camera_sensor")
    req = cam.start("1080p")
    m.run_until(req)
    assert req.outcome == "met"
    assert req.pages_migrated > 2000
    m.check_invariants()


def test_long_pins_everywhere_fail_the_start_and_name_the_pinner() -> None:
    m = Machine(CAM_BOARD, policy="balanced", seed=1)
    pinned = pin_every_mib(m, fill_cma(m))
    cam = m.attach("camera_sensor")
    req = cam.start("1080p")
    m.run_until(req)
    assert req.outcome == "failed"
    assert not cam.running and cam.mode is None
    assert req.busy_retries > 0
    groups = req.blocker_groups()
    assert [(g.owner, g.reason, g.hold_kind, g.page_owner) for g in groups] == [
        ("dio", "pinned", "FOLL_PIN", "app")
    ]
    assert 0 < groups[0].pages <= pinned
    assert {r.errno for r in req.failed_buffers if not r.cancelled} == {"EBUSY"}
    assert device_pages(m, "camera") == 0
    text = req.describe()
    assert "FAILED" in text and "dio (FOLL_PIN)" in text and "-EBUSY" in text
    m.check_invariants()


def test_short_pins_with_vendor_retry_make_the_start_late() -> None:
    m = Machine(CAM_BOARD, policy="vendor-android", seed=1)
    pin_every_mib(m, fill_cma(m), duration="300ms")
    cam = m.attach("camera_sensor")
    req = cam.start("1080p")
    m.run_until(req)
    assert req.outcome == "late", req.describe()
    assert req.latency_ns > 300_000_000
    assert max(r.passes for r in req.results) > 1
    assert "missed its deadline" in str(req)
    m.check_invariants()


def test_failed_action_releases_the_buffers_it_got() -> None:
    m = Machine(CAM_BOARD, policy="balanced", seed=1)
    other = m.cma_alloc("camera", count=40 * 256, owner="isp")  # 40 of the 64 MiB
    m.run_until(other)
    cam = m.attach("camera_sensor")
    req = cam.start("4k")  # 4 x 11.9 MiB: two fit in the 24 MiB left
    m.run_until(req)
    assert req.outcome == "failed"
    got = [r for r in req.results if r.ok]
    assert len(got) == 2 and len(req.failed_buffers) == 2
    failed, cancelled = req.failed_buffers
    assert failed.errno == "ENOMEM" and not failed.cancelled
    assert cancelled.cancelled and cancelled.errno is None, "the last buffer is never tried"
    assert device_pages(m, "camera") == 40 * 256, "only the other owner's buffer is left"
    sysfs = m.cma_sysfs("camera")
    assert sysfs["release_pages_success"] == 2 * 3038
    assert sysfs["alloc_pages_fail"] == 3038, "the cancelled buffer was never asked for"
    assert not cam.running and cam.held_pages == 0
    assert cam.busy == [(req.issued_ns, req.completed_ns)]
    m.check_invariants()
    # The device can start again once there is room.
    other.release()
    again = cam.start("4k")
    m.run_until(again)
    assert again.outcome == "met"
    m.check_invariants()


def test_lock_contention_between_two_devices_shows_in_lock_wait() -> None:
    def decoder_start(with_tv: bool) -> DeviceRequest:
        m = Machine(TV_BOARD, policy="balanced", seed=1)
        fill_cma(m)
        dec = m.attach("video_decoder")
        if with_tv:
            tv = m.attach("tv_pipeline")
            assert isinstance(tv, TvPipeline)
            tv_req = tv.start("4k")
        req = dec.start("720p")
        m.run_until(req)
        if with_tv:
            m.run_until(tv_req)
            assert tv_req.outcome == "met"
        m.check_invariants()
        return req

    alone = decoder_start(with_tv=False)
    behind_tv = decoder_start(with_tv=True)
    # The pipeline's buffer was issued first and takes the lock first: the decoder's wait
    # for it (migrating 94.9 MiB) is part of its latency.
    assert behind_tv.lock_wait_ns > alone.lock_wait_ns + 100_000_000
    assert behind_tv.latency_ns > alone.latency_ns + 100_000_000
    assert alone.outcome == "met" and behind_tv.outcome == "late"


# ----- actions --------------------------------------------------------------------------------


def test_change_resolution_frees_the_pool_and_allocates_the_new_one() -> None:
    m = Machine("tv_1g", policy="balanced", seed=1)
    dec = m.attach("video_decoder")
    assert isinstance(dec, VideoDecoder)
    first = dec.start()
    m.run_until(first)
    assert first.mode == "1080p" and dec.held_pages == 17 * 765
    m.run_for("1s")
    second = dec.change_resolution("4k")
    m.run_until(second)
    assert (second.action, second.mode, second.outcome) == ("change_resolution", "4k", "met")
    assert second.deadline_ns == 100_000_000
    assert dec.held_pages == 12 * 3060
    assert device_pages(m, "tv") == 12 * 3060
    assert [a for _, a, _ in dec.log] == ["start", "change_resolution"]
    assert dec.requests == [first, second]
    with pytest.raises(SpecError, match="no mode '8k'"):
        dec.change_resolution("8k")
    m.check_invariants()


def test_stop_while_starting_releases_the_buffers_when_they_arrive() -> None:
    m = Machine(CAM_BOARD, policy="balanced", seed=1)
    cam = m.attach("camera_sensor")
    req = cam.start("4k")
    m.run_for("1ms")
    assert not req.done
    cam.stop()
    assert not cam.running
    m.run_until(req)
    assert req.cancelled and req.ok
    assert device_pages(m, "camera") == 0
    assert cam.busy[-1][1] == req.completed_ns
    m.check_invariants()


def test_starting_twice_is_a_misuse_and_stopping_twice_is_harmless() -> None:
    m = Machine(CAM_BOARD, seed=1)
    cam = m.attach("camera_sensor")
    m.run_until(cam.start())
    with pytest.raises(MisuseError, match="already started"):
        cam.start()
    cam.stop()
    cam.stop()
    assert device_pages(m, "camera") == 0


def test_attach_picks_the_class_names_instances_and_allows_subclasses() -> None:
    m = Machine("tv_1g", seed=1)
    assert type(m.attach("tv_pipeline")) is TvPipeline
    with pytest.raises(MisuseError, match="already attached"):
        m.attach("tv_pipeline")
    cam = m.attach("camera_sensor", name="front", heap="tv")
    assert cam.name == "front" and cam.heap.name == "tv" and cam.spec.heap == "tv"
    assert m.device_names == {"tv_pipeline", "front"}
    with pytest.raises(SpecError, match="models 'camera_sensor' devices"):
        CameraSensor(m, "video_decoder", name="wrong")

    class TwoBufferCamera(CameraSensor):
        """A camera that streams with two buffers instead of four."""

        def buffer_sizes(self, mode: str) -> list[int]:
            return super().buffer_sizes(mode)[:2]

        def buffer_align(self, mode: str) -> list[int]:
            return super().buffer_align(mode)[:2]

    small = m.attach("camera_sensor", name="rear", heap="tv", cls=TwoBufferCamera)
    req = small.start("1080p")
    m.run_until(req)
    assert len(req.results) == 2 and req.outcome == "met"
    assert isinstance(small, Device) and "rear" in repr(small)
    d = req.result().to_dict()
    assert d["device"] == "rear" and d["outcome"] == "met" and len(d["buffers"]) == 2
