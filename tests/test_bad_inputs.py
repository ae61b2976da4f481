"""Bad inputs, tried as a new user and as an attacker would: every one is a clear cmadev error
that names the field (or argument) and what to do, never a hang, an abort, an
``OverflowError``, a ``RecursionError`` or pydantic's own ``ValidationError``.

Each case is (class, what, call, error class, words the message must hold). The classes are
counted in the issue notes (issue 11: inputs with bounds, errors that name what is wrong).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cmadev
from cmadev import AnonHog, Board, Buffer, DirectIO, Machine, PageCacheReader, Scenario
from cmadev.cli import main
from cmadev.errors import CmadevError, MisuseError, SpecError
from cmadev.report.comparison import compare

EVENING = cmadev.load_scenario("tv_evening")
QUIET = {
    "name": "quiet",
    "board": "camera_512m",
    "duration": "1s",
    "devices": [{"name": "camera", "device": "camera_sensor"}],
}


def evening(**changes: Any) -> Scenario:
    return EVENING.with_changes(**changes)


def with_workload(workload: dict[str, Any], board: str = "camera_512m") -> Scenario:
    return Scenario.model_validate({**QUIET, "board": board, "workloads": [workload]})


def machine() -> Machine:
    return Machine("camera_512m", seed=1)


CASES: list[tuple[str, str, Callable[[], object], type[Exception], list[str]]] = [
    # ----- durations and sample intervals
    (
        "duration",
        "sample_interval 1 ns",
        lambda: evening(sample_interval=1),
        SpecError,
        ["sample_interval", "max_samples", "45,000,000,001 samples"],
    ),
    (
        "duration",
        "sample_interval '1us'",
        lambda: evening(sample_interval="1us"),
        SpecError,
        ["sample_interval", "raise max_samples"],
    ),
    (
        "duration",
        "a 10-year run",
        lambda: evening(duration="87600h"),
        SpecError,
        ["duration", "max_samples"],
    ),
    (
        "duration",
        "past 2^64 ns",
        lambda: evening(duration="6000000h"),
        SpecError,
        ["duration", "292 years"],
    ),
    (
        "duration",
        "a step at 2^64 ns",
        lambda: evening(timeline=[{"at": 2**64, "device": "camera", "action": "start"}]),
        SpecError,
        ["at", "292 years"],
    ),
    (
        "duration",
        "run_until(2**64)",
        lambda: machine().run_until(2**64),
        SpecError,
        ["duration", "292 years"],
    ),
    (
        "duration",
        "a pin for 2**64 ns",
        lambda: machine().alloc("app").pin(duration=2**64),
        SpecError,
        ["292 years"],
    ),
    (
        "duration",
        "run_until the past",
        lambda: machine().run_until("-1ms"),
        SpecError,
        ["must not be negative"],
    ),
    # ----- sizes against the board
    (
        "size",
        "ram 2 TiB",
        lambda: Board(name="big", ram="2TiB"),
        SpecError,
        ["ram", "at most 256 GiB"],
    ),
    (
        "size",
        "AnonHog 15 TiB on a 512 MiB board",
        lambda: machine().start(AnonHog(size="15TiB", growth="1MiB/s")),
        SpecError,
        ["size", "does not fit", "512 MiB"],
    ),
    (
        "size",
        "a 15 TiB hog in a scenario file",
        lambda: with_workload(
            {"kind": "anon_hog", "name": "hog", "size": "15TiB", "growth": "1MiB/s"}
        ),
        SpecError,
        ["workloads", "[0].size", "use at most 512 MiB"],
    ),
    (
        "size",
        "a 100 TiB working set",
        lambda: with_workload(
            {"kind": "page_cache_reader", "name": "r", "working_set": "100TiB", "rate": "1MiB/s"}
        ),
        SpecError,
        ["working_set", "64 times"],
    ),
    (
        "size",
        "a size past 8 PiB",
        lambda: AnonHog(size=10**30, growth=1),
        SpecError,
        ["size", "8 PiB"],
    ),
    (
        "size",
        "a buffer larger than its area",
        lambda: Scenario.model_validate(
            {
                **QUIET,
                "devices": [
                    {
                        "name": "camera",
                        "device": {
                            "name": "big",
                            "kind": "camera_sensor",
                            "heap": "camera",
                            "deadline": "1s",
                            "default_mode": "m",
                            "modes": {"m": [{"count": 1, "size": "1GiB"}]},
                        },
                    }
                ],
            }
        ),
        SpecError,
        ["larger than its area", "camera"],
    ),
    # ----- counts and alignments
    (
        "count",
        "10^9 buffers",
        lambda: Buffer(count=10**9, size="4KiB"),
        SpecError,
        ["count", "1024"],
    ),
    (
        "count",
        "an alignment of 1 GiB",
        lambda: Buffer(count=1, size="4KiB", align="1GiB"),
        SpecError,
        ["align", "at most 4 MiB"],
    ),
    (
        "count",
        "compare(seeds=0)",
        lambda: compare(EVENING, ["legacy"], seeds=0),
        MisuseError,
        ["seeds=0", "at least 1"],
    ),
    (
        "count",
        "compare(seeds=[])",
        lambda: compare(EVENING, ["legacy"], seeds=[]),
        MisuseError,
        ["seeds=[]"],
    ),
    (
        "count",
        "cma_alloc of 2^40 pages",
        lambda: machine().cma_alloc("camera", 2**40),
        MisuseError,
        ["count", "0 to 4294967295"],
    ),
    ("count", "trace(since=-1)", lambda: machine().trace(since=-1), MisuseError, ["since"]),
    # ----- rates
    (
        "rate",
        "direct_io at 1e12 I/Os a second",
        lambda: DirectIO(buffer="8MiB", iops=1e12, pin_time="1ms"),
        SpecError,
        ["iops", "1000000"],
    ),
    (
        "rate",
        "a reader faster than memory",
        lambda: with_workload(
            {"kind": "page_cache_reader", "name": "r", "working_set": "64MiB", "rate": "100GiB/s"}
        ),
        SpecError,
        ["rate", "copies memory"],
    ),
    # ----- names (they become kernel names and trace lines)
    (
        "name",
        "an owner with a newline",
        lambda: machine().alloc("app\ncma_alloc_start"),
        MisuseError,
        ["owner name", "letters, digits"],
    ),
    (
        "name",
        "a device named with a newline",
        lambda: machine().attach("camera_sensor", name="cam\nx"),
        MisuseError,
        ["owner name"],
    ),
    (
        "name",
        "a workload named with a space",
        lambda: PageCacheReader(name="my reader", working_set="1MiB", rate="1MiB/s"),
        SpecError,
        ["name", "try 'my_reader'"],
    ),
    # ----- the exception is always cmadev's
    (
        "type",
        "a workload built directly with a bad unit",
        lambda: AnonHog(size="1x", growth="1MiB/s"),
        SpecError,
        ["size", "unknown unit 'x'"],
    ),
    (
        "type",
        "a policy of the wrong type",
        lambda: Machine("camera_512m", policy=3),  # type: ignore[arg-type]
        SpecError,
        ["a policy must be"],
    ),
    (
        "type",
        "an empty policy",
        lambda: Machine("camera_512m", policy=""),
        SpecError,
        ["unknown policy ''"],
    ),
]


@pytest.mark.parametrize(
    ("kind", "what", "call", "error", "words"), CASES, ids=[c[1] for c in CASES]
)
def test_a_bad_input_is_a_clear_error(
    kind: str, what: str, call: Callable[[], object], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(CmadevError) as info:
        call()
    assert isinstance(info.value, error), f"{what}: {type(info.value).__name__}: {info.value}"
    for word in words:
        assert word in str(info.value), f"{what}: {word!r} not in: {info.value}"


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_deeply_nested_files_are_spec_errors(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    if suffix == ".json":
        path.write_text("[" * 200_000 + "]" * 200_000)
    else:
        path.write_text("a = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(SpecError, match=r"nested too deeply|must hold one object"):
        cmadev.load_scenario(path)


def test_the_command_line_says_what_is_wrong_with_a_deep_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.json"
    path.write_text(json.dumps({"name": "x"})[:-1] + ', "board": ' + "[" * 100_000 + "}")
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "deep.json" in err and "Traceback" not in err
