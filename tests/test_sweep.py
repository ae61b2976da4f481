"""Sweeps: the specification (grid paths, values, messages), the runner (determinism over
worker counts and executors, resume after an interruption, crash leftovers), the summary's
intervals and the command line."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import cmadev
from cmadev.cli import main
from cmadev.errors import CmadevError, MisuseError, SpecError
from cmadev.report.intervals import quantile_interval, wilson_interval
from cmadev.specs.fieldpath import with_value
from cmadev.specs.scenario import load_scenario
from cmadev.specs.sweep import load_sweep
from cmadev.sweeps.executors import import_distributed
from cmadev.sweeps.plan import Plan
from cmadev.sweeps.rows import TABLES, add_run, empty_rows, host_row
from cmadev.sweeps.worker import run_batch

BUSY_TV: dict[str, Any] = {
    "name": "busy_tv",
    "board": "tv_1g",
    "duration": "4s",
    "sample_interval": "500ms",
    "devices": [
        {"name": "decoder", "device": "video_decoder"},
        {"name": "tv", "device": "tv_pipeline"},
        {"name": "camera", "device": "camera_sensor", "heap": "tv"},
    ],
    "workloads": [
        {"kind": "anon_hog", "name": "app", "size": "500MiB", "growth": "500MiB/s"},
        {
            "kind": "page_cache_reader",
            "name": "reader",
            "working_set": "500MiB",
            "rate": "100MiB/s",
        },
        {"kind": "direct_io", "name": "dio", "buffer": "8MiB", "iops": 200, "pin_time": "10ms"},
    ],
    "timeline": [
        {"at": "1.5s", "device": "decoder", "action": "start"},
        {"at": "2s", "device": "tv", "action": "start", "mode": "3d"},
        {"at": "2s", "device": "camera", "action": "start"},
        {"at": "3s", "device": "tv", "action": "stop"},
        {"at": "3s", "device": "decoder", "action": "change_resolution", "mode": "4k"},
    ],
}
"""Four seconds of a loaded TV: balanced lends the area and must migrate (figures vary by
seed), legacy keeps it empty; about 30 ms a run."""

SWEEP: dict[str, Any] = {
    "name": "busy",
    "scenario": "busy_tv.json",
    "policies": ["legacy", "balanced"],
    "seeds": 3,
    "grid": {"workloads.dio.iops": [50, 400]},
}
"""2 grid points x 2 policies x 3 seeds = 12 runs."""

DETERMINISTIC = ("runs", "requests", "summary")


def write(folder: Path, data: dict[str, Any], name: str = "sweep.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "busy_tv.json").write_text(json.dumps(BUSY_TV))
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def contents(folder: Path, tables: tuple[str, ...] = DETERMINISTIC) -> dict[str, bytes]:
    return {name: (folder / f"{name}.parquet").read_bytes() for name in tables}


class Counter:
    """A watcher that counts, and interrupts after ``stop_after`` batches if asked."""

    def __init__(self, stop_after: int = 0) -> None:
        self.stop_after = stop_after
        self.batches = 0
        self.ran = 0
        self.begun: tuple[int, int] = (0, 0)

    def begin(self, total: int, saved: int, where: str) -> None:
        self.begun = (total, saved)

    def advance(self, runs: int) -> None:
        self.batches += 1
        self.ran += runs
        if self.stop_after and self.batches >= self.stop_after:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep run once, uninterrupted, on two workers, one run per batch (so they
    finish in any order)."""
    folder = tmp_path_factory.mktemp("reference")
    result = cmadev.sweep(write(folder, SWEEP), workers=2, out=folder / "out", batch_size=1)
    assert result.ran == result.runs == 12
    return folder / "out"


# ----- the specification -----------------------------------------------------------------


def test_a_sweep_loads_from_toml_with_paths_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "busy_tv.json").write_text(json.dumps(BUSY_TV))
    (tmp_path / "sweep.toml").write_text(
        'name = "busy"\nscenario = "parts/busy_tv.json"\npolicies = ["legacy", "gcma"]\n'
        "seeds = [4, 9]\n"
        '[grid]\n"workloads.dio.iops" = [50, 100, 400]\n'
        '"board.cma_areas.tv.size" = ["256MiB", 335544320]\n'
    )
    sweep = load_sweep(tmp_path / "sweep.toml")
    assert sweep.runs == 3 * 2 * 2 * 2
    assert sweep.seed_list() == [4, 9]
    points = sweep.points()
    assert [p.label() for p in points[:2]] == [
        "workloads.dio.iops=50, board.cma_areas.tv.size=256MiB",
        "workloads.dio.iops=50, board.cma_areas.tv.size=335544320",
    ]
    last = points[-1].scenario
    assert last.board_spec().cma_area("tv").size == 320 * 2**20
    assert [w.iops for w in last.workloads if w.name == "dio"] == [400.0]


def test_a_count_of_seeds_starts_at_the_scenarios_seed(tmp_path: Path) -> None:
    path = write(tmp_path, {**SWEEP, "seeds": 3})
    (tmp_path / "busy_tv.json").write_text(json.dumps({**BUSY_TV, "seed": 7}))
    assert load_sweep(path).seed_list() == [7, 8, 9]


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        (
            {"workloads.dioo.iops": [1]},
            ["'workloads' has no element named 'dioo'; did you mean 'dio'?", "'reader'"],
        ),
        ({"workloads.dio.iopz": [1]}, ["'workloads.dio' has no field 'iopz'; did you mean 'iops'"]),
        ({"board.cma_areas.3.size": ["1MiB"]}, ["'board.cma_areas' has 1 element: index 3"]),
        ({"duration.s": [1]}, ["'duration' is a value", "cannot go on to 's'"]),
        (
            {"devices.camera.deadline": ["soon"]},
            [
                "'devices.camera.deadline' = 'soon'",
                "devices[2].device.deadline",
                "invalid duration",
            ],
        ),
        (
            {"board.cma_areas.tv.size": ["2GiB"]},
            ["'board.cma_areas.tv.size' = '2GiB' makes an invalid scenario", "board.cma_areas:"],
        ),
        ({"seed": [1, 2]}, ["cannot vary the scenario's seed; use the sweep's seeds"]),
        ({"policy": ["gcma"]}, ["use the sweep's policies"]),
        ({"workloads.dio.iops": []}, ["'workloads.dio.iops' has no values"]),
        ({"workloads.dio.iops": [5, 5]}, ["value '5' is listed twice"]),
        ({"workloads..iops": [5]}, ["'workloads..iops' is not a field path"]),
    ],
)
def test_a_bad_grid_names_the_file_the_path_and_the_value(
    tmp_path: Path, grid: dict[str, Any], expected: list[str]
) -> None:
    path = write(tmp_path, {**SWEEP, "grid": grid})
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    message = str(err.value)
    assert message.startswith(f"{path}: invalid Sweep"), message
    assert "  grid: " in message, message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"policies": ["legacy", "balancd"]}, ["policies: [1]: unknown policy 'balancd'"]),
        ({"policies": ["legacy", "legacy"]}, ["'legacy' is listed twice"]),
        ({"policies": []}, ["policies: "]),
        ({"seeds": 0}, ["a count of seeds is from 1"]),
        ({"seeds": [3, 3]}, ["seed 3 is listed twice"]),
        ({"seeds": []}, ["the list of seeds is empty"]),
        ({"scenario": "tv_evenin"}, ["unknown scenario 'tv_evenin'", "Did you mean 'tv_evening'?"]),
        ({"grdi": {}}, ["grdi: unknown field; did you mean 'grid'?"]),
        ({"keep": {"serie": True}}, ["keep.serie: unknown field; did you mean 'series'?"]),
    ],
)
def test_a_bad_sweep_says_which_field_and_what_to_do(
    tmp_path: Path, change: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(SpecError) as err:
        load_sweep(write(tmp_path, {**SWEEP, **change}))
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_a_combination_of_good_values_can_still_be_invalid(tmp_path: Path) -> None:
    """Each value alone makes a scenario; together they do not (the run ends before the
    timeline's steps): the message names both values."""
    grid = {"duration": ["4s", "3s"], "timeline.3.at": ["3s", "3.5s"]}
    with pytest.raises(SpecError) as err:
        load_sweep(write(tmp_path, {**SWEEP, "grid": grid}))
    assert "'duration' = '3s', 'timeline.3.at' = '3.5s' makes an invalid scenario" in str(err.value)
    assert "comes after the end of the scenario" in str(err.value)


def test_a_policy_file_is_relative_to_the_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(json.dumps({"placement": "balanced", "vendor_retry": True}))
    sweep = load_sweep(write(tmp_path, {**SWEEP, "policies": ["mine.json", "gcma"]}))
    labels = [choice.label for choice in sweep.policy_choices()]
    assert labels[1] == "gcma" and "vendor_retry" in labels[0]


def test_the_schema_command_knows_sweeps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "Sweep"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"scenario", "policies", "seeds", "grid", "keep"} <= set(schema["properties"])


def test_the_shipped_sweep_loads() -> None:
    sweep = load_sweep("tv_recording_pressure")
    assert sweep.scenario == "tv_evening" and sweep.runs == 3 * 2 * 5 * 10


# ----- paths ---------------------------------------------------------------------------


def test_paths_address_list_elements_by_name_or_index() -> None:
    data = load_scenario("tv_evening").model_dump(mode="json")
    by_name = with_value(data, "workloads.recording.iops", 400)
    by_index = with_value(data, "workloads.3.iops", 400)
    assert by_name == by_index
    assert by_name["workloads"][3]["iops"] == 400
    assert data["workloads"][3]["iops"] == 25, "the original is left as it was"


def test_a_path_opens_a_shipped_board_or_device_named_by_a_string() -> None:
    data = load_scenario("tv_evening").model_dump(mode="json")
    assert data["board"] == "tv_1g"
    changed = with_value(data, "board.cma_areas.0.size", "192MiB")
    assert changed["board"]["name"] == "tv_1g"
    assert changed["board"]["cma_areas"][0]["size"] == "192MiB"
    assert changed["board"]["ram"] == 2**30, "the rest of the board stays the shipped one"
    deadline = with_value(data, "devices.camera.deadline", "50ms")
    camera = deadline["devices"][2]
    assert camera["device"]["deadline"] == "50ms" and camera["device"]["name"] == "camera_sensor"
    assert camera["heap"] == "tv", "the entry's own fields stay the entry's"
    explicit = with_value(data, "devices.camera.device.deadline", "50ms")
    assert explicit == deadline


def test_equal_scenarios_make_equal_keys_whatever_the_spelling(tmp_path: Path) -> None:
    """A value written "256MiB" or 268435456 makes the same scenario, so the same runs."""
    one = Plan(
        load_sweep(write(tmp_path, {**SWEEP, "grid": {"board.cma_areas.tv.size": ["256MiB"]}}))
    )
    two = Plan(load_sweep(write(tmp_path, {**SWEEP, "grid": {"board.cma_areas.0.size": [2**28]}})))
    assert [r.key for r in one.runs] == [r.key for r in two.runs]
    keys = [r.key for r in one.runs]
    assert len(set(keys)) == len(keys) == 6, "each policy and seed is a run of its own"


# ----- running ---------------------------------------------------------------------------


def test_the_tables_hold_a_row_per_run_and_per_request(reference: Path) -> None:
    runs = pq.read_table(reference / "runs.parquet")
    assert runs.column_names[:4] == ["point", "workloads.dio.iops", "policy", "seed"]
    assert runs.column("workloads.dio.iops").to_pylist() == [50] * 6 + [400] * 6
    assert runs.column("policy").to_pylist() == (["legacy"] * 3 + ["balanced"] * 3) * 2
    assert runs.column("seed").to_pylist() == [0, 1, 2] * 4
    assert set(runs.column_names[4:]) == set(TABLES["runs"])
    balanced = [r for r in runs.to_pylist() if r["policy"] == "balanced"]
    assert len({r["pages_migrated"] for r in balanced}) > 1, "the seeds made different runs"
    requests = pq.read_table(reference / "requests.parquet")
    assert requests.num_rows == 12 * 4, "four requests a run"
    assert requests.column("device").to_pylist()[:4] == ["decoder", "camera", "tv", "decoder"]
    assert set(requests.column("outcome").to_pylist()) <= {"met", "late", "failed"}
    assert not (reference / "series.parquet").exists(), "series only when asked"
    assert not list((reference / "parts").iterdir()), "the parts are compacted away"


def test_one_worker_writes_the_same_bytes_as_two(reference: Path, tmp_path: Path) -> None:
    result = cmadev.sweep(write(tmp_path, SWEEP), workers=1, out=tmp_path / "out")
    assert result.ran == 12
    assert contents(tmp_path / "out") == contents(reference)
    host = pq.read_table(tmp_path / "out" / "host.parquet")
    assert host.num_rows == 12 and min(host.column("wall_s").to_pylist()) > 0


def test_an_interrupted_sweep_resumes_where_it_stopped(reference: Path, tmp_path: Path) -> None:
    path = write(tmp_path, SWEEP)
    first = Counter(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        cmadev.sweep(path, workers=1, out=tmp_path / "out", watcher=first, batch_size=2)
    saved = first.ran  # two batches: seeds 0-1 and seed 2 of the first point and policy
    assert saved == 3 and not (tmp_path / "out" / "runs.parquet").exists()
    assert len(list((tmp_path / "out" / "parts").iterdir())) == 2
    second = Counter()
    result = cmadev.sweep(path, workers=1, out=tmp_path / "out", watcher=second)
    assert second.begun == (12, saved), "the saved runs are not run again"
    assert result.ran == second.ran == 12 - saved and result.reused == saved
    assert contents(tmp_path / "out") == contents(reference)


def test_a_killed_sweep_resumes_from_its_saved_batches(tmp_path: Path) -> None:
    """SIGKILL to the sweep and its workers while batches are being saved: what is on disk
    is whole, the next run makes only the missing runs, and the tables equal those of a
    sweep that was never killed."""
    data = {**SWEEP, "grid": {}, "seeds": 15}  # 30 runs, one a batch: a wide window to kill in
    path = write(tmp_path, data)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "cmadev", "sweep", str(path), "--workers", "1"]
    command += ["--batch-size", "1", "--out", str(out)]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _parts(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep's own session: it and its workers
        proc.wait()
    saved = _parts(out)
    assert 3 <= saved < 30, f"the sweep was not killed mid-way ({saved} batches saved)"
    watcher = Counter()
    result = cmadev.sweep(path, workers=1, out=out, watcher=watcher)
    assert watcher.begun == (30, saved) and result.ran == 30 - saved
    whole = cmadev.sweep(path, workers=2, out=tmp_path / "whole")
    assert whole.ran == 30
    assert contents(out) == contents(tmp_path / "whole")


def _parts(out: Path) -> int:
    parts = out / "parts"
    return sum(1 for p in parts.iterdir() if not p.name.startswith(".")) if parts.exists() else 0


def test_more_seeds_run_only_the_new_ones(reference: Path, tmp_path: Path) -> None:
    path = write(tmp_path, {**SWEEP, "seeds": [0, 1]})
    assert cmadev.sweep(path, workers=1, out=tmp_path / "out").ran == 8
    result = cmadev.sweep(write(tmp_path, SWEEP), workers=1, out=tmp_path / "out")
    assert result.ran == 4
    assert contents(tmp_path / "out") == contents(reference)


def test_leftovers_of_a_crash_are_ignored_and_a_broken_part_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, {**SWEEP, "grid": {}, "policies": ["legacy"], "seeds": 1})
    leftover = tmp_path / "out" / "parts" / ".tmp-0123-99"
    leftover.mkdir(parents=True)
    (leftover / "runs.parquet").write_bytes(b"PAR1 half written")
    assert cmadev.sweep(path, workers=1, out=tmp_path / "out").ran == 1
    assert not leftover.exists()
    broken = tmp_path / "out" / "parts" / "0123"
    broken.mkdir()
    (broken / "runs.parquet").write_bytes(b"not parquet")
    with pytest.raises(CmadevError, match=r"parts/0123.*delete .*parts/0123"):
        cmadev.sweep(path, workers=1, out=tmp_path / "out")


def test_a_folder_of_another_sweep_is_refused(reference: Path) -> None:
    other = load_sweep("tv_recording_pressure")
    with pytest.raises(MisuseError, match="holds the results of sweep 'busy'"):
        cmadev.sweep(other, out=reference)


def test_series_are_kept_when_asked(tmp_path: Path) -> None:
    data = {**SWEEP, "grid": {}, "policies": ["legacy"], "seeds": 2, "keep": {"series": True}}
    result = cmadev.sweep(write(tmp_path, data), workers=1, out=tmp_path / "out")
    series = result.table("series")
    assert series.num_rows == 2 * 9, "4 s sampled every 500 ms: 9 samples a run"
    assert series.column("seed").to_pylist() == [0] * 9 + [1] * 9
    assert series.column("t_ns").to_pylist()[:2] == [0, 500_000_000]


def test_every_row_fills_every_column() -> None:
    """The rows a worker makes have exactly the tables' columns (a missing one would be
    written as nulls without a word)."""
    scenario = load_scenario("tv_evening").with_changes(duration="16s", timeline=[])
    scenario = scenario.with_changes(
        timeline=[{"at": "15s", "device": "decoder", "action": "start"}]
    )
    rows = empty_rows()
    result = scenario.run("legacy", seed=1)
    add_run(rows, "k", result, requests=True, series=True)
    rows["host"].append(host_row("k", result, task_s=0.1))
    for name, columns in TABLES.items():
        assert rows[name], name
        for row in rows[name]:
            assert list(row) == list(columns), name


def test_a_worker_of_another_version_refuses_the_batch(tmp_path: Path) -> None:
    plan = Plan(load_sweep(write(tmp_path, SWEEP)))
    [task, *_] = plan.batches(plan.runs, 1)
    task["version"] = "0.0.1"
    with pytest.raises(CmadevError, match=r"planned with 0\.0\.1: install the same version"):
        run_batch(task)


def test_the_output_is_a_folder_not_a_parquet_file(tmp_path: Path) -> None:
    with pytest.raises(MisuseError, match=r"writes a folder of tables.*such as '.*results'"):
        cmadev.sweep(write(tmp_path, SWEEP), out=tmp_path / "results.parquet")
    assert not (tmp_path / "results.parquet").exists()


def test_workers_and_a_cluster_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(MisuseError, match="not both"):
        cmadev.sweep(write(tmp_path, SWEEP), workers=2, client="tcp://localhost:1")


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_distributed(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "distributed":
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(MisuseError, match=r"pip install 'cmadev\[dask\]'"):
        import_distributed()


def test_a_dask_cluster_writes_the_same_bytes_as_the_local_pool(
    reference: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip(
        "distributed", reason="Dask is not installed: pip install 'cmadev[dask]'"
    )
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = cmadev.sweep(write(tmp_path, SWEEP), client=client, out=tmp_path / "out")
    assert result.ran == 12 and result.where.startswith("dask tcp://")
    assert contents(tmp_path / "out") == contents(reference)


# ----- the summary -----------------------------------------------------------------------


def test_the_summary_has_a_row_per_point_policy_and_device(reference: Path) -> None:
    summary = pq.read_table(reference / "summary.parquet").to_pylist()
    assert len(summary) == 2 * 2 * 3
    first = summary[0]
    assert (first["workloads.dio.iops"], first["policy"], first["device"]) == (
        50,
        "legacy",
        "decoder",
    )
    assert first["requests"] == 6 and first["seeds"] == 3, "two decoder requests a run"
    for row in summary:
        assert row["misses_low"] <= row["misses"] <= row["misses_high"]
        assert row["p50_ns"] is not None
    assert (reference / "miss_rate.png").read_bytes()[:4] == b"\x89PNG"
    text = (reference / "summary.txt").read_text()
    assert text.startswith("busy: 12 runs (2 grid points x 2 policies x 3 seeds)")


def test_wilson_interval_matches_the_formula() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    low, high = wilson_interval(3, 100)
    assert low == pytest.approx(0.01025, abs=1e-4) and high == pytest.approx(0.08452, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_quantile_interval_uses_binomial_ranks() -> None:
    """For n = 100 the 95% interval of the median is the 40th to the 61st value (the
    textbook ranks); a p99 upper bound needs 368 values."""
    values = list(range(1, 101))
    assert quantile_interval(values, 0.5) == (40, 61)
    assert quantile_interval(values, 0.99)[1] is None
    many = list(range(1, 369))
    assert quantile_interval(many, 0.99)[1] == 368
    assert quantile_interval([], 0.5) == (None, None)
    assert math.isclose(0.99**368, 0.0247, abs_tol=1e-4)


# ----- the command line --------------------------------------------------------------------


def test_the_sweep_command_prints_the_summary_and_saves_the_tables(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SWEEP)
    (tmp_path / "out").mkdir()
    for name in ("runs", "requests"):  # an uninterrupted run's tables: nothing left to run
        (tmp_path / "out" / f"{name}.parquet").write_bytes(
            (reference / f"{name}.parquet").read_bytes()
        )
    (tmp_path / "out" / "host.parquet").write_bytes((reference / "host.parquet").read_bytes())
    code = main(["sweep", str(path), "--workers", "1", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "12 runs (0 now, 12 saved before) on 1 local process" in out
    assert "workloads.dio.iops  policy    device   requests" in out
    assert "                50  legacy    decoder         6  100.0% [61.0, 100.0]" in out
    assert contents(tmp_path / "out") == contents(reference)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ran"] == 0 and document["runs"] == 12
    assert document["files"]["requests"].endswith("requests.parquet")


def test_a_bad_sweep_file_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {**SWEEP, "grid": {"workloads.dio.iops": [-1]}})
    assert main(["sweep", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cmadev: error: {path}: invalid Sweep")
    assert "'workloads.dio.iops' = '-1'" in err
    assert "Traceback" not in err
