"""The command line (``python -m cmadev``): the demo, the subcommands, the report folder, and
errors that end in a message and an exit code rather than a traceback.

Most tests call :func:`cmadev.cli.main` in-process with ``capsys``; one runs the real
``python -m cmadev`` in a subprocess. A run of the shipped ``tv_evening`` scenario takes
about 0.06 s and drawing the plots about a second, so the full default demo is tested for
real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cmadev import list_boards, list_devices, list_scenarios
from cmadev.cli import demo_policies, main
from cmadev.report.plots import PLOTS
from cmadev.specs.policy import PLACEMENTS, Policy, parse_policy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_report(folder: Path, policies: list[str]) -> dict[str, Any]:
    """The folder holds the plots, results.json and a summary embedding the plots."""
    for name in PLOTS.values():
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC, name
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    for name in PLOTS.values():
        assert f"]({name})" in summary, f"summary.md does not embed {name}"
    for policy in policies:
        assert f"`{policy}`" in summary
    results: dict[str, Any] = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert results["policies"] == policies
    return results


# --------------------------------------------------------------------------------------------
# The demo


def test_demo_without_arguments_runs_every_placement_and_writes_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys)
    assert code == 0, err
    labels = [choice.label for choice in demo_policies()]
    for label in labels:
        assert label in out
    assert f"[{len(labels)}/{len(labels)}]" in out  # a plain progress line per run off a TTY
    assert "x real time" in out and "Report: cmadev-report" in out
    results = assert_report(tmp_path / "cmadev-report", labels)
    assert len(results["runs"]) == len(labels)


def test_demo_policies_are_each_placement_with_todays_fixes_where_they_apply_and_without() -> None:
    labels = [choice.label for choice in demo_policies()]
    assert labels == [
        "legacy+longterm_pin+sb_unmovable",
        "legacy",
        "legacy_2014+longterm_pin+sb_unmovable",
        "legacy_2014",
        "balanced+longterm_pin+sb_unmovable",
        "balanced",
        "zone_cma+longterm_pin",  # zone_cma rejects fs_superblock_unmovable
        "zone_cma",
        "movable_zone+longterm_pin",
        "movable_zone",
        "gcma",  # gcma accepts none of them: one run, not two identical ones
    ]
    assert {choice.label.split("+")[0] for choice in demo_policies()} == set(PLACEMENTS)


# --------------------------------------------------------------------------------------------
# Subcommands


def test_devices_in_a_real_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cmadev", "devices"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for name in [*list_devices(), *list_boards(), *list_scenarios(), "mainline-today"]:
        assert name in proc.stdout


def test_devices_json_lists_everything_shipped_with_a_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "devices", "--json")
    assert code == 0
    catalog = json.loads(out)
    assert [d["name"] for d in catalog["devices"]] == list_devices()
    assert [b["name"] for b in catalog["boards"]] == list_boards()
    assert [s["name"] for s in catalog["scenarios"]] == list_scenarios()
    assert [p["name"] for p in catalog["policies"]] == Policy.presets()
    for section in ("devices", "boards", "scenarios", "policies"):
        assert all(entry["summary"] and "\n" not in entry["summary"] for entry in catalog[section])


def test_run_json_is_only_json_with_every_request_and_the_host_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "run", "tv_evening", "--policy", "legacy", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["policy"] == "legacy" and result["seed"] == 1
    assert len(result["requests"]) == 5
    assert {r["outcome"] for r in result["requests"]} <= {"met", "late", "failed"}
    assert set(result["host"]) >= {"wall_s", "cpu_s", "peak_rss_bytes", "speedup"}
    assert err == ""  # no progress lines for scripts


def test_run_prints_the_summary_what_went_wrong_and_the_host_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "run", "tv_evening", "--policy", "balanced", "--seed", "1")
    assert code == 0
    assert "tv_evening under balanced (seed 1)" in out
    for device in ("decoder", "tv3d", "camera"):
        assert device in out
    assert "CMA use while idle" in out
    assert "x real time" in out and "peak RSS" in out


def test_compare_writes_the_report_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "report"
    code, out, err = run_cli(
        capsys, "compare", "tv_evening", "--policies", "legacy", "balanced", "--out", str(out_dir)
    )
    assert code == 0, err
    assert "legacy" in out and "balanced" in out and "CMA use idle" in out
    results = assert_report(out_dir, ["legacy", "balanced"])
    assert [(r["policy"], r["seed"]) for r in results["runs"]] == [("legacy", 1), ("balanced", 1)]
    host = results["host"]
    for run in host["runs"]:
        assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["peak_rss_bytes"] > 0
        assert run["speedup"] == pytest.approx(run["simulated_s"] / run["wall_s"])
    assert set(host["policies"]) == {"legacy", "balanced"}


def test_results_json_is_the_same_for_the_same_inputs_apart_from_the_host(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    documents = []
    for name in ("a", "b"):
        argv = ["compare", "tv_evening", "--policies", "gcma", "--out", str(tmp_path / name)]
        assert main(argv) == 0
        document = json.loads((tmp_path / name / "results.json").read_text(encoding="utf-8"))
        document.pop("host")
        documents.append(json.dumps(document, sort_keys=True))
    capsys.readouterr()
    assert documents[0] == documents[1]


def test_compare_json_with_seeds_and_label_policies(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys,
        "compare",
        "tv_evening",
        "--policies",
        "mainline-today",
        "balanced+longterm_pin+sb_unmovable",
        "--seeds",
        "2",
        "--json",
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["seeds"] == [1, 2]
    rows = document["comparison"]["rows"]
    assert [row["policy"] for row in rows] == [
        "mainline-today",
        "balanced+longterm_pin+sb_unmovable",
    ]
    # A preset and the label of the same policy give the same figures.
    assert rows[0]["devices"] == rows[1]["devices"]
    assert len(document["host"]["runs"]) == 4
    assert document["report"] == {}


@pytest.mark.parametrize(
    ("model", "title", "field"),
    [
        ("Board", "Board", "cma_areas"),
        ("policy", "Policy", "fixes"),
        ("page_cache_reader", "PageCacheReader", "working_set"),
        ("Scenario", "Scenario", "timeline"),
    ],
)
def test_schema_prints_the_json_schema_of_a_model(
    capsys: pytest.CaptureFixture[str], model: str, title: str, field: str
) -> None:
    code, out, _ = run_cli(capsys, "schema", model)
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == title
    assert field in schema["properties"]


def test_schema_without_a_model_prints_all_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0
    schemas = json.loads(out)
    expected = {"Board", "CmaArea", "CostModel", "Policy", "DeviceSpec", "Scenario", "Workload"}
    assert set(schemas) >= expected


def test_policy_labels_read_back_as_the_same_policy(tmp_path: Path) -> None:
    today = Policy.preset("mainline-today")
    assert parse_policy(today.label).policy == today
    assert parse_policy("mainline-today").label == "mainline-today"  # run under its own name
    assert parse_policy("legacy+migrate_on_pin+vendor_retry").policy == Policy(
        placement="legacy", fixes=frozenset({"migrate_on_pin"}), vendor_retry=True
    )
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"placement": "gcma"}), encoding="utf-8")
    assert parse_policy(str(path)).label == "gcma"


# --------------------------------------------------------------------------------------------
# Errors: a message naming what was wrong, a non-zero exit code, no traceback


def bad_scenario(tmp_path: Path) -> str:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"name": "bad", "board": "tv_1g", "duration": "ten seconds"}),
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize(
    ("argv", "code", "wanted"),
    [
        (["run", "{tmp}/missing.json"], 1, ["missing.json", "no such file"]),
        (["run", "{bad}"], 1, ["bad.json", "duration", "ten seconds"]),
        (["run", "tv_evenin"], 1, ["unknown scenario 'tv_evenin'", "Did you mean 'tv_evening'"]),
        (
            ["run", "tv_evening", "--policy", "balancd"],
            1,
            ["unknown policy 'balancd'", "Did you mean 'balanced'", "mainline-today"],
        ),
        (
            ["compare", "tv_evening", "--policies", "legacy", "gcma+longterm_pin"],
            1,
            ["'gcma+longterm_pin'", "migrate_on_longterm_pin makes no sense", "Remove it"],
        ),
        (["run", "tv_evening", "--policy", "legacy+foo"], 1, ["unknown fix 'foo'"]),
        (["run", "tv_evening", "--policy", ""], 1, ["unknown policy ''", "mainline-today"]),
        (["compare", "tv_evening", "--seeds", "0"], 2, ["--seeds", "give at least 1"]),
        (["run", "tv_evening", "--seed", "x"], 2, ["--seed", "not a whole number"]),
        (["frobnicate"], 2, ["invalid choice: 'frobnicate'"]),
        (["schema", "Bord"], 1, ["no model called 'Bord'", "Did you mean 'Board'"]),
        (["compare", "tv_evening", "--out", "{tmp}/file/report"], 1, ["file/report"]),
    ],
)
def test_bad_input_is_a_message_and_an_exit_code(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    code: int,
    wanted: list[str],
) -> None:
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    values = {"tmp": str(tmp_path), "bad": bad_scenario(tmp_path)}
    got, out, err = run_cli(capsys, *(arg.format(**values) for arg in argv))
    assert got == code
    assert "Traceback" not in err and out == ""
    for text in wanted:
        assert text in err


def test_a_shorter_duration_cuts_the_timeline_and_says_what_it_cut(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "tv_evening", "--duration", "16s", "--json"]) == 0
    out = capsys.readouterr()
    assert "cuts 8 timeline steps of tv_evening: at 20 s: tv3d start 3d" in out.err
    result = json.loads(out.out)
    assert result["end_ns"] >= 16_000_000_000
    assert [r["device"] for r in result["requests"]] == ["decoder"]


def test_import_cmadev_leaves_the_kernel_backend_and_the_sweeps_for_later() -> None:
    """``import cmadev`` (and the command line's start-up) does not import the QEMU backend,
    the sweeps or the trace importer: they load on first use, and the "kernel" backend is
    registered all the same."""
    import subprocess
    import sys

    code = (
        "import sys, cmadev, cmadev.cli.parser\n"
        "from cmadev.specs.scenario import backends\n"
        "late = [m for m in ('cmadev.kernel', 'cmadev.sweeps', 'cmadev.capture') "
        "if m in sys.modules]\n"
        "print(late, backends(), cmadev.sweep.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "[] ['model', 'kernel'] cmadev.sweeps.run"
