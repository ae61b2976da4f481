"""The Python API of a machine: handles, callbacks, views in the kernel's formats, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import cmadev
from cmadev import Board, Machine

MISUSE = cmadev.MisuseError

BOARD = Board(name="t", ram="128MiB", cma_areas=[{"name": "cam", "size": "32MiB"}])


def test_meminfo_buddyinfo_pagetypeinfo_vmstat_and_sysfs_look_like_the_kernels() -> None:
    m = Machine(BOARD, seed=1)
    info = m.meminfo()
    assert info["MemTotal"] == 128 * 1024 and info["CmaTotal"] == info["CmaFree"] == 32 * 1024
    assert re.search(r"^CmaFree:\s+32768 kB$", m.meminfo_text(), re.M)
    buddy = m.buddyinfo()
    assert re.match(r"^Node 0, zone\s+Normal(\s+\d+){11}\s*$", buddy.splitlines()[0])
    assert buddy.split()[-1] == "32", "32 free order-10 blocks in 128 MiB"
    pti = m.pagetypeinfo()
    assert "Page block order: 9" in pti and "Pages per block:  512" in pti
    blocks = next(ln for ln in pti.splitlines() if ln.startswith("Node 0, zone")).split()
    # Unmovable, Movable, Reclaimable, HighAtomic (none in the model), CMA, Isolate
    assert blocks[-6:] == ["0", "48", "0", "0", "16", "0"], "48 movable and 16 CMA pageblocks"
    vm = m.vmstat()
    assert vm["nr_free_pages"] == 32768 and vm["nr_free_cma"] == 8192
    assert vm["cma_alloc_success"] == 0
    assert m.cma_sysfs("cam") == {
        "alloc_pages_success": 0,
        "alloc_pages_fail": 0,
        "release_pages_success": 0,
        "total_pages": 8192,
        "available_pages": 8192,
    }


def test_callbacks_run_at_their_virtual_times_in_order() -> None:
    m = Machine(BOARD, seed=1)
    seen: list[tuple[str, int]] = []
    m.call_at("5ms", lambda mm: seen.append(("b", mm.now)))
    m.call_at("1ms", lambda mm: seen.append(("a", mm.now)))
    m.call_after("5ms", lambda mm: seen.append(("c", mm.now)))
    m.run_for("10ms")
    assert seen == [("a", 1_000_000), ("b", 5_000_000), ("c", 5_000_000)]
    assert m.now == 10_000_000


def test_a_pin_released_by_the_clock_no_longer_blocks() -> None:
    m = Machine(BOARD, seed=1)
    page = m.alloc("dio")
    hold = page.pin(duration="2ms")
    assert page.info()["pincount"] == 1 and page.info()["refcount"] == 1 + 1024
    m.run_for("3ms")
    assert page.info()["pincount"] == 0 and page.info()["refcount"] == 1
    with pytest.raises(cmadev.MisuseError, match="already released"):
        hold.release()


def test_cma_result_reports_outcome_latency_and_release() -> None:
    m = Machine(BOARD, seed=1)
    req = m.cma_alloc("cam", 2048, align=8, owner="camera", zero=True)
    with pytest.raises(cmadev.MisuseError, match="still running"):
        req.result()
    assert m.run_until(req)
    r = req.result()
    assert r.ok and r.outcome == "OK" and r.errno is None
    zero_cost = 2048 * 1000  # the dma-heap clears every page (CostModel.zero_page)
    assert r.latency_ns >= zero_cost
    assert "OK" in str(r)
    req.release()
    assert m.cma_sysfs("cam")["available_pages"] == 8192
    m.check_invariants()


@pytest.mark.parametrize(
    ("action", "error", "words"),
    [
        (lambda m, p: (p.free(), p.free()), cmadev.MisuseError, "never allocated or was freed"),
        (lambda m, p: m.cma_alloc("cam", 9000), cmadev.CmaError, "between 1 and 8192"),
        (lambda m, p: m.cma_alloc("nope", 1), cmadev.CmaError, "this board has cam"),
        (lambda m, p: m.alloc("x", gfp="GFP_BOGUS"), cmadev.MisuseError, "GFP_KERNEL"),
        (lambda m, p: m.alloc("x", order=11), cmadev.MisuseError, "above MAX_PAGE_ORDER"),
        (
            lambda m, p: cmadev.Hold(m, 12345, 0, "pin", "x").release(),
            cmadev.MisuseError,
            "not held",
        ),
        (lambda m, p: m.page_info(10**9), cmadev.MisuseError, "beyond the end"),
        (lambda m, p: (p.pin(), p.free()), cmadev.MisuseError, "still held by"),
        (lambda m, p: m.run_until("-1ms"), cmadev.SpecError, "duration"),
        (lambda m, p: m.free_contig_range(0, 4), cmadev.MisuseError, "no live allocation"),
    ],
)
def test_misuse_raises_a_clear_error_and_leaves_the_machine_whole(
    action: object, error: type, words: str
) -> None:
    m = Machine(BOARD, seed=1)
    page = m.alloc("app")
    with pytest.raises(error, match=words):
        action(m, page)  # type: ignore[operator]
    m.check_invariants()


def test_alloc_names_are_checked_every_time_and_mean_the_same_from_the_cache() -> None:
    """Mm.alloc caches the indices of the names a caller writes: the second call of each
    spelling takes the cache, and must give what the first gave (and a bad name must fail
    every time, never be cached)."""
    m = Machine(BOARD, seed=1)
    for _ in range(2):
        movable = m.alloc("app")
        kernel = m.alloc("drv", "GFP_KERNEL")
        lower = m.alloc("app", "gfp_kernel", kind="file")
        assert movable.info()["kind"] == "anon"
        assert kernel.info()["kind"] == "kernel"
        assert lower.info()["kind"] == "file"
        for page in (movable, kernel, lower):
            page.free()
        for bad, words in (({"gfp": "GFP_NOPE"}, "unknown gfp mask"), ({"kind": "x"}, "kind")):
            with pytest.raises(cmadev.MisuseError, match=words):
                m.alloc("app", **bad)  # type: ignore[arg-type]
        with pytest.raises(cmadev.MisuseError, match="order"):
            m.alloc("app", order=True)
    m.check_invariants()


def test_a_malformed_engine_config_is_an_invalid_config_error() -> None:
    with pytest.raises(cmadev.InvalidConfigError, match="ram"):
        cmadev._core.Engine(json.dumps({"ram": 1000}))
    with pytest.raises(cmadev.InvalidConfigError, match="unknown field"):
        cmadev._core.Engine(json.dumps({"ram": 1 << 30, "rams": 1}))


def test_a_malformed_board_is_a_spec_error_naming_the_field() -> None:
    with pytest.raises(cmadev.SpecError, match="ram"):
        cmadev.specs.base.validate_model(Board, {"name": "b", "ram": "1GB!"})


def test_a_machine_takes_the_policy_spellings_of_the_command_line(tmp_path: Path) -> None:
    pin = Machine("tv_1g", policy="balanced+migrate_on_pin")
    assert pin.policy.placement == "balanced" and pin.policy.fixes == {"migrate_on_pin"}
    short = Machine("tv_1g", policy="balanced+longterm_pin+sb_unmovable")
    assert short.policy == Machine("tv_1g", policy="mainline-today").policy
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"placement": "gcma"}))
    assert Machine("tv_1g", policy=str(path)).policy.placement == "gcma"
    with pytest.raises(cmadev.SpecError, match=r"unknown fix 'pinn'.*Did you mean 'pin'"):
        Machine("tv_1g", policy="balanced+pinn")


def test_an_unused_free_block_reads_as_a_buddy_before_boot_has_written_it() -> None:
    """Boot defers writing the top-order free blocks' frames (``mm_init.rs``); ``page_info``
    shows such a block as the buddy it is, and allocations from such blocks keep the
    machine's invariants."""
    m = Machine("tv_1g", seed=1)
    base = m.cma_areas()[0]["base_pfn"]
    top = base - 1024  # the last top-order block below the area: taken last
    assert m.page_info(top) | {"pfn": 0} == m.page_info(0x8000) | {"pfn": 0}
    assert (m.page_info(top)["kind"], m.page_info(top)["order"]) == ("buddy", 10)
    assert m.page_info(top + 1)["kind"] == "free"
    pages = m.alloc_many("app", 4096, gfp="GFP_KERNEL")
    assert m.page_info(pages[0].resident_pfn())["kind"] == "kernel"
    m.check_invariants()
