"""Scenarios (cmadev.scenario): validation messages, runs, determinism, results, compare()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cmadev.errors import SlowRunWarning, SpecError
from cmadev.report.comparison import Comparison, compare, percentile
from cmadev.results import ScenarioResult
from cmadev.sim import runner
from cmadev.sim.runner import ScenarioRun
from cmadev.specs.board import Board
from cmadev.specs.catalog import list_scenarios
from cmadev.specs.scenario import Scenario, load_scenario
from cmadev.units import parse_duration

# A short TV evening without background load: fast, and every figure is exact.
QUIET_TV: dict[str, Any] = {
    "name": "quiet_tv",
    "board": "tv_1g",
    "duration": "6s",
    "sample_interval": "500ms",
    "devices": [
        {"name": "decoder", "device": "video_decoder"},
        {"name": "tv", "device": "tv_pipeline"},
        {"name": "camera", "device": "camera_sensor", "heap": "tv"},
    ],
    "timeline": [
        {"at": "1s", "device": "decoder", "action": "start"},
        {"at": "2s", "device": "tv", "action": "start", "mode": "3d"},
        {"at": "2s", "device": "camera", "action": "start"},
        {"at": "3s", "device": "tv", "action": "stop"},
        {"at": "3s", "device": "decoder", "action": "change_resolution", "mode": "4k"},
        {"at": "4s", "device": "camera", "action": "stop"},
        {"at": "5s", "device": "decoder", "action": "stop"},
    ],
}


def write(tmp_path: Path, data: dict[str, Any], name: str = "evening.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def with_changes(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**data, **changes}


# ----- validation ----------------------------------------------------------------------------


def test_scenario_loads_from_a_file_with_units(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, QUIET_TV))
    assert sc.duration == 6_000_000_000 and sc.sample_interval == 500_000_000
    assert sc.policy == "balanced" and sc.seed == 0
    specs = sc.device_specs()
    assert specs["camera"].heap == "tv" and specs["decoder"].heap == "tv"
    assert sc.board_spec().name == "tv_1g"
    assert Scenario.model_json_schema()["properties"]["timeline"]


def test_paths_in_a_scenario_file_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    board = {"name": "mini", "ram": "256MiB", "cma_areas": [{"name": "tv", "size": "64MiB"}]}
    (tmp_path / "parts" / "mini.json").write_text(json.dumps(board))
    data = with_changes(
        QUIET_TV,
        board="parts/mini.json",
        devices=[{"name": "camera", "device": "camera_sensor", "heap": "tv"}],
        timeline=[{"at": "1s", "device": "camera", "action": "start"}],
    )
    sc = load_scenario(write(tmp_path, data))
    assert isinstance(sc.board, Board) and sc.board.name == "mini"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"devcies": []}, ["devcies: unknown field; did you mean 'devices'?"]),
        ({"duration": "10 parsecs"}, ["duration: ", "unknown unit 'parsecs'"]),
        ({"board": "tv_2g"}, ["board: ", "unknown board 'tv_2g'", "tv_1g"]),
        ({"policy": "balancd"}, ["policy: ", "Did you mean 'balanced'?"]),
        (
            {"devices": [{"name": "camera", "device": "camera_sensor"}], "timeline": []},
            ["devices: [0].device: device 'camera' takes its buffers from heap 'camera'", "'tv'"],
        ),
        (
            {"devices": [{"name": "cam", "device": "camera_sensr"}], "timeline": []},
            ["devices[0].device: ", "unknown device 'camera_sensr'", "'camera_sensor'"],
        ),
        (
            {"timeline": [{"at": "1s", "device": "radio", "action": "start"}]},
            ["timeline: [0] (at 1 s: radio start): no device called 'radio'", "'decoder'"],
        ),
        (
            {"timeline": [{"at": "1s", "device": "decoder", "action": "start", "mode": "8k"}]},
            ["no mode '8k'", "use one of '720p', '1080p', '4k'"],
        ),
        (
            {"timeline": [{"at": "9s", "device": "decoder", "action": "start"}]},
            ["after the end of the scenario (duration 6 s): make duration longer"],
        ),
        (
            {
                "timeline": [
                    {"at": "1s", "device": "decoder", "action": "start"},
                    {"at": "2s", "device": "decoder", "action": "start"},
                ]
            },
            ["[1] (at 2 s: decoder start): decoder is already started: stop it first"],
        ),
        (
            {"timeline": [{"at": "1s", "device": "tv", "action": "change_resolution"}]},
            ["change_resolution needs the new mode: add mode (one of '4k', '3d')"],
        ),
        (
            {"timeline": [{"at": "1s", "device": "tv", "action": "stop"}]},
            ["tv is not started: remove this stop"],
        ),
        (
            {"workloads": [{"kind": "anon_hog", "name": "tv", "size": "1MiB", "growth": "1MiB/s"}]},
            ["workloads: [0].name: 'tv' is also a device's name"],
        ),
        (
            {"workloads": [{"kind": "anon_hog", "size": "1MiB", "growth": "1MiB/s"}] * 2},
            ["workloads: [1].name: 'anon_hog' is also another workload's name"],
        ),
        (
            {"workloads": [{"kind": "anon_hogg", "size": "1MiB"}]},
            ["workloads[0]: ", "anon_hog"],
        ),
        (
            {"timeline": [{"at": "1s", "device": "tv", "action": "pause"}]},
            ["timeline[0].action: ", "'start', 'stop' or 'change_resolution'"],
        ),
    ],
)
def test_invalid_scenario_file_names_file_field_and_fix(
    tmp_path: Path, change: dict[str, Any], expected: list[str]
) -> None:
    path = write(tmp_path, with_changes(QUIET_TV, **change))
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid Scenario"), message
    for text in expected:
        assert text in message, message


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(
        SpecError, match=r"unknown scenario 'tv_evenin'\. Did you mean 'tv_evening'"
    ):
        load_scenario("tv_evenin")


def test_with_changes_validates_again() -> None:
    sc = Scenario.model_validate(QUIET_TV)
    assert sc.with_changes(duration="10s").duration == 10_000_000_000
    with pytest.raises(SpecError, match="after the end of the scenario"):
        sc.with_changes(duration="2s")


# ----- runs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quiet_run() -> ScenarioResult:
    return Scenario.model_validate(QUIET_TV).run(policy="legacy", seed=3)


def test_run_records_every_request_in_time_order(quiet_run: ScenarioResult) -> None:
    r = quiet_run
    assert [(q.device, q.action, q.mode) for q in r.requests] == [
        ("decoder", "start", "1080p"),
        ("camera", "start", "1080p"),
        ("tv", "start", "3d"),
        ("decoder", "change_resolution", "4k"),
    ]
    assert all(q.outcome == "met" for q in r.requests), r.summary()
    assert r.requests[1].issued_ns == 2_000_000_000
    assert r.end_ns == 6_000_000_000
    assert r.policy == "legacy" and r.seed == 3
    assert r.counters["cma_alloc_success"] == 17 + 4 + 2 + 12
    assert r.cma["tv"]["alloc_pages_success"] == r.cma["tv"]["release_pages_success"]
    assert r.requests_of("camera") == [r.requests[1]]


def test_a_run_leaves_the_machine_consistent() -> None:
    run = ScenarioRun(Scenario.model_validate(QUIET_TV), "legacy", seed=3)
    result = run.run()
    run.machine.check_invariants()
    assert result.to_json() == Scenario.model_validate(QUIET_TV).run("legacy", seed=3).to_json()


def test_busy_intervals_and_idle_samples(quiet_run: ScenarioResult) -> None:
    d = quiet_run.to_dict()
    assert d["busy"]["decoder"] == [[1_000_000_000, 3_000_000_000], [3_000_000_000, 5_000_000_000]]
    assert d["busy"]["tv"] == [[2_000_000_000, 3_000_000_000]]
    assert [a[1:3] for a in d["actions"]] == [
        [s["device"], s["action"]] for s in QUIET_TV["timeline"]
    ], "in the order the steps ran"
    assert d["actions"][3] == [3_000_000_000, "tv", "stop", "3d"]
    series = quiet_run.series
    if series.get("t_ns"):  # the engine samples (Engine.set_sampling)
        assert series["t_ns"][:3] == [0, 500_000_000, 1_000_000_000]
        # Nothing but the devices uses CMA here; the engine counts the free CMA pages left on
        # the per-CPU lists by cma_release as in use (see rust/mm/src/series.rs).
        idle = quiet_run.cma_idle_utilisation()
        assert idle is not None and idle < 0.01


def test_same_seed_gives_identical_json_and_host_figures_stay_apart(
    quiet_run: ScenarioResult,
) -> None:
    again = Scenario.model_validate(QUIET_TV).run(policy="legacy", seed=3)
    assert again.to_json() == quiet_run.to_json()
    data = json.loads(quiet_run.to_json())
    assert "host" not in data
    host = json.loads(quiet_run.to_json(host=True))["host"]
    assert set(host) == {"wall_s", "cpu_s", "rss_bytes", "peak_rss_bytes", "speedup"}
    assert host["wall_s"] > 0 and host["peak_rss_bytes"] > 0
    assert data["requests"][0]["outcome"] == "met"
    assert list(data) == sorted(data)


def test_a_run_slower_than_ten_times_real_time_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every run is "slow" once the bar is out of reach (the suite turns warnings into errors,
    # so an ordinary run here does not warn).
    monkeypatch.setattr(runner, "SLOW_RUN_SPEEDUP", float("inf"))
    monkeypatch.setattr(runner, "SLOW_RUN_MIN_WALL_S", 0.0)
    with pytest.warns(SlowRunWarning, match=r"'quiet_tv' under legacy ran at [0-9.]+x real time"):
        Scenario.model_validate(QUIET_TV).run(policy="legacy", seed=3)


def test_summary_names_each_request(quiet_run: ScenarioResult) -> None:
    text = quiet_run.summary()
    assert "quiet_tv under legacy (seed 3)" in text
    assert "decoder" in text and "change_resolution" in text and "met" in text


def test_progress_is_reported() -> None:
    seen: list[int] = []
    sc = Scenario.model_validate(QUIET_TV)
    sc.run(progress=lambda now, total: seen.append(now))
    assert seen == sorted(seen) and seen[-1] == sc.duration and len(seen) >= 50


# ----- compare -------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5], 99) == 5
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99


def test_compare_gives_a_row_per_policy() -> None:
    sc = Scenario.model_validate(QUIET_TV)
    table = compare(sc, ["legacy", "balanced", "gcma"], seeds=[1, 2])
    assert isinstance(table, Comparison)
    assert [row.policy for row in table.rows] == ["legacy", "balanced", "gcma"]
    row = table.row("balanced")
    assert row.seeds == (1, 2)
    assert list(row.devices) == ["decoder", "tv", "camera"]
    decoder = row.devices["decoder"]
    assert decoder.requests == 4 and decoder.met == 4 and decoder.deadline_misses == 0
    assert decoder.success_rate == 1.0 and decoder.deadline_ns == 100_000_000
    assert decoder.p50_ns is not None and decoder.p50_ns <= decoder.p99_ns <= decoder.max_ns
    text = str(table)
    assert text.splitlines()[0] == "quiet_tv: 2 seeds per policy"
    for word in ("legacy", "balanced", "gcma", "decoder", "CMA use idle", "refaults"):
        assert word in text
    assert "failures are left out of the percentiles" in text, "the legend says what p50 is"
    assert len(table.runs) == 6 and table.runs_of("gcma")[0].seed == 1
    assert json.dumps(table.to_dict())
    with pytest.raises(KeyError):
        table.row("zone_cma")


def test_shipped_scenarios_load() -> None:
    assert "tv_evening" in list_scenarios()
    for name in list_scenarios():
        sc = load_scenario(name)
        assert sc.name == name and sc.description


# ----- the shipped TV evening ----------------------------------------------------------------


def short_evening(until: str = "16s") -> Scenario:
    """tv_evening cut after its first device action: workloads and all, but quick."""
    sc = load_scenario("tv_evening")
    end = parse_duration(until)
    return sc.with_changes(duration=until, timeline=[s for s in sc.timeline if s.at <= end])


def test_tv_evening_is_deterministic_with_its_workloads() -> None:
    sc = short_evening()
    assert len(sc.workloads) >= 4 and len(sc.timeline) == 1
    first = sc.run(policy="balanced", seed=5)
    again = sc.run(policy="balanced", seed=5)
    other = sc.run(policy="balanced", seed=6)
    assert first.to_json() == again.to_json()
    assert first.to_json() != other.to_json(), "the seed reaches the workloads"
    assert first.workloads["browser_cache"]["ops"] > 0
    assert len(first.series["t_ns"]) == 16 * 10 + 1


def test_tv_evening_fits_the_tv_area_and_runs_under_legacy() -> None:
    sc = load_scenario("tv_evening")
    specs = sc.device_specs()
    assert {spec.heap for spec in specs.values()} == {"tv"}
    assert sc.board_spec().cma_area("tv").pages == 65536
    # The busiest moment (26-32 s): decoder 1080p + 3D pipeline + camera 1080p, each buffer
    # rounded up to its 1 MiB alignment, must fit in the area.
    busy = [("decoder", "1080p"), ("tv3d", "3d"), ("camera", "1080p")]
    pages = sum(-(-b.pages // 256) * 256 * b.count for d, m in busy for b in specs[d].modes[m])
    assert pages <= 65536
    result = sc.run(policy="legacy")
    assert [r.outcome for r in result.requests] == ["met"] * 5, result.summary()
    assert result.end_ns == sc.duration
