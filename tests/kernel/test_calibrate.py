"""The calibration's fit (always run: measurements made up from known costs) and the
``cmadev kernel calibrate`` command (on saved measurements, and marked ``kernel``: booted).

The made-up guest is what the fit assumes the kernel does: each figure of it is built from
one known cost, with the host's noise added where the fit must see through it (a slow
median beside a quick minimum, a call that waited milliseconds), so that each test fails if
the fit takes the wrong figure or the wrong statistic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cmadev.cli import main
from cmadev.kernel.board_file import calibrated_board, write_board
from cmadev.kernel.calibrate import FIXED_FIELD, CostFit, fit, fit_runs
from cmadev.kernel.errors import CalibrationError
from cmadev.specs.board import CostModel
from cmadev.specs.catalog import load_board

SIZES = (1, 16, 256, 1024, 4096, 16384)
RAW = "calibration-qemu_x86_512m.json"
TRUE = {
    "zero_page": 2_000,
    "page_alloc": 1_000,
    "page_copy": 7_000,  # cow 15 us - fault 10 us + zero 2 us
    "migrate_fixed": 11_000,  # 20 us per migrated page - copy - 2 page_alloc
    "isolate_pageblock": 30_000,
    "drain_per_cpu": 20_000,  # 200 pages drained over 2 CPUs at FREE_PAGE each
    "reclaim_scan_page": 30_000,  # 1.5 s over 50,000 pages scanned
    "storage_read_page": 2_000,
    "storage_read_request": 98_000,
    "storage_write_page": 40_000,
    "storage_write_request": 300_000,
    "cleancache_hit": 7_000,
    "lru_cache_disable": 400_000,  # what a call after a pause costs beyond the rest
}
FIXED = 100_000  # what the quietest idle call costs beyond its pageblocks and the drain
CALL_WORK = 60_000  # ns of CPU time a traced call spends whatever its size
CALL_WAIT = 10_000  # ns switched out, the median call
FREE_PAGE = 200  # ns to free a page into the buddy lists


def _blocks(pages: int) -> int:
    return -(-pages // 512)


def _tail(pages: int) -> int:
    return -pages % 1024


def synthetic_raw(scale: float = 1.0, cpus: int = 2) -> dict[str, Any]:
    """What measure() returns for a guest whose costs are TRUE (times ``scale``)."""

    def s(ns: float) -> float:
        return ns * scale

    g: dict[str, float] = {
        "zero_page_ns": s(2_500),  # a user-space memset: not what the fit should take
        "anon_unmap_page_ns": s(1_000),
        "anon_fault_ns": s(10_000),
        "cow_fault_ns": s(15_000),
        "memcpy_page_ns": s(40_000),
        "memcpy_page_ns_min": s(30_000),
        "populate_page_ns": s(6_000),
        "mem_total_kb": 498_904,
        "mem_free_kb": 486_156,
        "min_free_kbytes": 2806,
    }
    drain = 200 * FREE_PAGE  # the CPUs' lists hold 200 pages in all, drained at each call
    for n in SIZES:
        idle = s(FIXED + TRUE["isolate_pageblock"] * _blocks(n) + drain)
        g[f"idle_debugfs_alloc_{n}_ns_min"] = idle
        g[f"idle_debugfs_alloc_{n}_ns"] = idle * 3  # a loaded host: medians are slow
        heap = idle + s(2_000) * n
        if n == 16384:
            heap += s(20e6)  # the 64 MiB clear was preempted: 1.2 us a page more
        if n in (1, 256):  # the same call after the guest idled: its wake-ups cost more
            paused = s(TRUE["lru_cache_disable"] + TRUE["isolate_pageblock"] * _blocks(n) + drain)
            g[f"paused_debugfs_alloc_{n}_ns_min"] = paused
            g[f"paused_debugfs_alloc_{n}_ns"] = paused * 2
        g[f"idle_dma_heap_alloc_{n}_ns_min"] = heap
        g[f"idle_dma_heap_alloc_{n}_ns"] = heap * 1.5
        migrated = max(n - n // 4, 1)
        # two filled sweeps: the first on a loaded host, the second quiet
        for tag, per_page in (("fill", 30_000), ("fill1", 20_000)):
            g[f"{tag}_debugfs_alloc_{n}_migrated"] = migrated
            g[f"{tag}_debugfs_alloc_{n}_ns"] = idle + s(per_page) * migrated
    g.update(
        {
            "reclaim_pgscan_kswapd": 30_000,
            "reclaim_pgscan_direct": 20_000,
            "reclaim_kswapd_cpu_ns": s(1e9),
            "reclaim_fill_pages": 100_000,
            "reclaim_filler_cpu_ns": 100_000 * s(10_000) + s(0.5e9),
            "storage_read_4k_ns": s(100_000),
            "storage_read_1m_ns": s(100_000 + 255 * 2_000),
            "storage_write_4k_ns": s(340_000),
            "storage_write_1m_ns": s(340_000 + 255 * 40_000),
        }
    )
    phases = []
    t = 10.0
    for n in SIZES:
        for rep in range(3):
            wait = s(CALL_WAIT) if rep != 1 else s(5e6)  # one call waits 5 ms
            noise = s(50_000) if rep == 2 else 0.0  # one call is slow on the CPU too
            # isolating: the pageblocks' work; finishing: the buddy block's tail freed back
            work = s(CALL_WORK) * 0.7 + s(TRUE["isolate_pageblock"]) * _blocks(n) + noise
            window = 0.0002  # the traced drain: an event per page, not the drain's cost
            isolating = (work + wait) / 1e9 + window
            finishing = (s(CALL_WORK) * 0.3 + s(FREE_PAGE) * _tail(n)) / 1e9
            phases.append(
                {
                    "count": n,
                    "start_s": t,
                    "isolated_s": t + isolating,
                    "finish_s": t + isolating + finishing,
                    "drain_first_s": t + 1e-6,
                    "drain_last_s": t + 1e-6 + window,
                    "drained_pages": 200 if rep != 2 else 10,
                    "lru_queued_s": None,
                    "lru_done_s": None,
                    "lru_cpus": 0,
                    "migrations": 1,
                    "offcpu_isolating_s": wait / 1e9,
                    "offcpu_finishing_s": 0.0,
                }
            )
            t += 0.1
    host = {
        "memcpy_page_ns": 3_000.0,
        "memcpy_page_ns_min": 300.0,
        "zero_page_ns": 200.0,
        "anon_fault_ns": 5_000.0,
        "anon_unmap_page_ns": 250.0,
        "cow_fault_ns": 7_500.0,
        "populate_page_ns": 3_000.0,
    }
    return {
        "guest": g,
        "phases": phases,
        "host": host,
        "ratio": {},
        "kernel": "6.1.192",
        "accel": "tcg",
        "cpu": "qemu64",
        "board": {"ram": 512 << 20, "cpus": cpus, "cma_bytes": 128 << 20},
        "wall_s": 30.0,
        "context": {"host_cpu": "a test CPU", "host_cpus": 2, "load": "1.0 -> 1.0"},
    }


def test_fit_recovers_the_costs_the_guest_was_made_of() -> None:
    f = fit(synthetic_raw())
    got = {name: fitted.ns for name, fitted in f.costs.items()}
    assert got == pytest.approx(TRUE, abs=1)
    # the fixed per-call cost the model lacks, from the quietest untraced calls; the wait
    # switched out (the traced calls' median) reported beside it
    assert f.fixed.ns == pytest.approx(FIXED, abs=1)
    assert f.figures["call_wait_ns"] == pytest.approx(CALL_WAIT)
    assert f.figures["free_page_ns"] == pytest.approx(FREE_PAGE)
    assert "synchronize_rcu_expedited" in f.fixed.source
    # the per-call cost the model charges comes from the calls after a pause, and names the
    # back-to-back figure beside it
    assert f.figures["paused_call_ns"] == pytest.approx(TRUE["lru_cache_disable"])
    assert FIXED_FIELD in f.costs["lru_cache_disable"].source
    # the guest's own memory, for a board of the guest itself
    assert f.reserved == (512 << 20) - 486_156 * 1024
    assert f.min_free_kbytes == 2806
    assert not f.notes


def test_fit_takes_the_quietest_calls_and_the_median_wait() -> None:
    """The slow medians, the slow call and the 5 ms wait are the host's load: moving them
    must not move the fit."""
    raw = synthetic_raw()
    calm = fit(raw)
    for key in list(raw["guest"]):
        if key.startswith("idle_") and key.endswith("_ns"):
            raw["guest"][key] *= 10
    for p in raw["phases"]:
        if p["offcpu_isolating_s"] > 1e-3:
            p["offcpu_isolating_s"] *= 10
            p["isolated_s"] += 0.045
            p["finish_s"] += 0.045
    noisy = fit(raw)
    assert {k: v.ns for k, v in noisy.costs.items()} == {k: v.ns for k, v in calm.costs.items()}
    assert noisy.fixed.ns == calm.fixed.ns


def test_costs_scale_with_the_guest() -> None:
    """A guest twice as slow fits twice the costs (the statistics are linear)."""
    one, two = fit(synthetic_raw()), fit(synthetic_raw(scale=2.0))
    for name, fitted in one.costs.items():
        assert two.costs[name].ns == pytest.approx(2 * fitted.ns, abs=2), name
    assert two.fixed.ns == pytest.approx(2 * one.fixed.ns, abs=2)


def test_without_paused_calls_lru_cache_disable_is_kept() -> None:
    """A raw run without the paused calls (an older agent) keeps the board's
    ``lru_cache_disable`` and says so."""
    raw = synthetic_raw()
    raw["guest"] = {k: v for k, v in raw["guest"].items() if not k.startswith("paused_")}
    f = fit(raw)
    assert "lru_cache_disable" not in f.costs
    assert any("lru_cache_disable" in note for note in f.notes)


def test_the_drain_is_per_cpu() -> None:
    four = fit(synthetic_raw(cpus=4))
    assert four.costs["drain_per_cpu"].ns == 50 * FREE_PAGE
    assert four.fixed.ns == pytest.approx(FIXED, abs=1)  # the same drain, over four CPUs


def test_ratios_are_guest_over_host() -> None:
    f = fit(synthetic_raw())
    # the quietest memcpy of each side; the others as measured
    assert f.ratio["memcpy_page_ns"] == pytest.approx(100.0)
    assert f.ratio["anon_fault_ns"] == pytest.approx(2.0)
    assert f.ratio["anon_unmap_page_ns"] == pytest.approx(4.0)
    assert f.kernel_ratio == pytest.approx((2.0 * 4.0 * 2.0 * 2.0) ** 0.25)
    assert f.memory_ratio == pytest.approx(12.5)  # clearing: the kernel's kind of copy


def test_missing_figures_are_errors_that_say_what_is_missing() -> None:
    raw = synthetic_raw()
    del raw["guest"]["cow_fault_ns"]
    with pytest.raises(CalibrationError, match="cow_fault_ns"):
        fit(raw)
    raw = synthetic_raw()
    raw["phases"] = []
    with pytest.raises(CalibrationError, match="trace"):
        fit(raw)
    raw = synthetic_raw()
    for n in SIZES:
        raw["guest"][f"fill_debugfs_alloc_{n}_migrated"] = 0
        raw["guest"][f"fill1_debugfs_alloc_{n}_migrated"] = 0
    with pytest.raises(CalibrationError, match="fill_fraction"):
        fit(raw)


def test_without_a_data_disk_storage_and_reclaim_are_kept() -> None:
    raw = synthetic_raw()
    raw["guest"] = {
        k: v for k, v in raw["guest"].items() if not k.startswith(("storage_", "reclaim_"))
    }
    f = fit(raw)
    assert not any(k.startswith(("storage_", "reclaim_")) for k in f.costs)
    assert any("storage" in n for n in f.notes) and any("reclaim" in n for n in f.notes)
    model = f.cost_model(CostModel(storage_read_page=12_345))
    assert model.storage_read_page == 12_345 and model.page_copy == TRUE["page_copy"]


def test_several_runs_give_the_median_of_each_figure() -> None:
    f = fit_runs([synthetic_raw(1.0), synthetic_raw(4.0), synthetic_raw(2.0)])
    assert f.costs["page_copy"].ns == 2 * TRUE["page_copy"]
    assert f.fixed.ns == pytest.approx(2 * FIXED, abs=2)
    assert "median of 3 runs" in f.costs["isolate_pageblock"].source
    assert f.context["runs"] == 3 and f.context["wall_s"] == 90.0
    with pytest.raises(CalibrationError, match="no calibration runs"):
        fit_runs([])


def test_a_calibrated_board_is_a_board_file(tmp_path: Path) -> None:
    f = fit(synthetic_raw())
    base = load_board("camera_512m")
    board = calibrated_board(base, f, name="camera_qemu")
    assert board.name == "camera_qemu" and board.cost.page_copy == TRUE["page_copy"]
    assert board.cost.migrate_fail == base.cost.migrate_fail  # not measured: kept
    assert board.reserved == base.reserved and board.min_free_kbytes is None
    assert FIXED_FIELD in board.description and "not hardware times" in board.description
    path = write_board(board, tmp_path / "b.json")
    assert load_board(path) == board
    guest = calibrated_board(base, f, as_guest=True)
    assert guest.reserved == f.reserved and guest.min_free_kbytes == 2806
    # calibrated again: the new figures replace the old ones in the description
    again = calibrated_board(board, fit(synthetic_raw(2.0)))
    assert again.description.count("Costs calibrated by") == 1
    assert again.description.startswith(base.description)


def test_the_command_fits_saved_measurements(tmp_path: Path, capsys: Any) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps([synthetic_raw(), synthetic_raw(2.0)]))
    out = tmp_path / "board.json"
    code = main(["kernel", "calibrate", "camera_512m", "--out", str(out), "--from-raw", str(raw)])
    assert code == 0
    text = capsys.readouterr().out
    assert FIXED_FIELD in text and "Guest / host" in text and str(out) in text
    board = load_board(out)
    assert board.cost.isolate_pageblock == pytest.approx(1.5 * TRUE["isolate_pageblock"], abs=1)
    # --json: one document, the fit with it
    code = main(
        ["kernel", "calibrate", "camera_512m", "--out", str(out), "--from-raw", str(raw), "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["fit"]["back_to_back"][FIXED_FIELD]["ns"] > 0


def test_the_qemu_board_is_the_fit_of_its_measurements() -> None:
    """The shipped guest board's costs are exactly the fit of the measurements kept beside
    the tests (three runs): no figure of it was written by hand."""
    raws = json.loads((Path(__file__).parent / "captures" / RAW).read_text())
    f = fit_runs(raws)
    board = load_board("qemu_x86_512m")
    assert board.cost == f.cost_model(CostModel())
    assert (board.reserved, board.min_free_kbytes) == (f.reserved, f.min_free_kbytes)
    assert [a.name for a in board.cma_areas] == ["reserved"]  # the guest's default area
    assert (board.ram, board.cpus, board.cma_total) == (512 << 20, 2, 128 << 20)
    assert FIXED_FIELD in board.description


def test_the_command_says_what_is_wrong_with_saved_measurements(
    tmp_path: Path, capsys: Any
) -> None:
    bad = tmp_path / "raw.json"
    bad.write_text("{not json")
    code = main(["kernel", "calibrate", "camera_512m", "--out", "x.json", "--from-raw", str(bad)])
    assert code == 1 and "cannot read saved measurements" in capsys.readouterr().err
    bad.write_text(json.dumps({"guest": {}}))
    code = main(["kernel", "calibrate", "camera_512m", "--out", "x.json", "--from-raw", str(bad)])
    assert code == 1 and "calibration lacks" in capsys.readouterr().err


@pytest.mark.kernel
def test_calibrate_in_the_guest(tmp_path: Path, capsys: Any, guest_kernel: Any) -> None:
    """The command end to end: a guest booted, the board written, the fit sane."""
    out, raw = tmp_path / "board.json", tmp_path / "raw.json"
    argv = ["kernel", "calibrate", "qemu_x86_512m", "--out", str(out), "--raw", str(raw)]
    argv += ["--kernel", str(guest_kernel.bzimage)]
    if os.environ.get("CMADEV_ACCEL"):
        argv += ["--accel", os.environ["CMADEV_ACCEL"]]
    assert main(argv) == 0
    print(capsys.readouterr().out)
    board = load_board(out)
    [measured] = json.loads(raw.read_text())
    f: CostFit = fit(measured)
    assert board.cost.page_copy == f.costs["page_copy"].ns
    # what the guest must show whatever the host's load: a copy costs more than a clear, a
    # migrated page more than its copy, and the fixed per-call cost is measured
    assert f.costs["page_copy"].ns > f.costs["zero_page"].ns
    assert f.figures["migrated_page_ns"] > f.costs["page_copy"].ns
    assert f.fixed.ns > 1 and f.costs["isolate_pageblock"].ns > 1
    assert {"storage_read_request", "reclaim_scan_page"} <= set(f.costs)
    assert f.ratio["memcpy_page_ns"] > 1.5  # TCG is slower than the host it runs on
