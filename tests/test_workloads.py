"""The workload models (cmadev.workloads): units, validation messages, engine dicts, loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from cmadev.errors import SpecError
from cmadev.specs.workloads import (
    WORKLOAD_CLASSES,
    WORKLOAD_KINDS,
    AnonHog,
    DirectIO,
    FsMount,
    KernelAlloc,
    LongtermPinner,
    PageCacheReader,
    TmpfsFile,
    Workload,
    Writer,
    load_workload,
    validate_workload,
)
from cmadev.units import GiB, MiB

# The fields of each kind of the engine's WorkloadKind (rust/mm/src/workload/), besides
# kind, name, start_ns and stop_ns.
ENGINE_FIELDS = {
    "page_cache_reader": {"file_pages", "rate_pages_per_s", "zipf_s", "sequential"},
    "writer": {"file_pages", "rate_pages_per_s", "fsync_every_pages"},
    "anon_hog": {
        "target_pages",
        "growth_pages_per_s",
        "touch_rate_pages_per_s",
        "write_fraction",
    },
    "direct_io": {
        "buffer_pages",
        "ios_per_s",
        "pages_per_io",
        "pin_mean_ns",
        "pin_distribution",
        "hold",
    },
    "longterm_pinner": {"pages", "hold_ns", "populate_first"},
    "fs_mount": {"superblock_pages"},
    "kernel_alloc": {"rate_allocs_per_s", "order", "lifetime_mean_ns"},
    "build": {
        "jobs",
        "processes",
        "cpu_ns",
        "anon_pages",
        "touches_per_page",
        "source_pages",
        "reads_per_process",
        "source_zipf",
        "source_file_pages",
        "output_pages",
        "output_space_pages",
    },
    "tmpfs_file": {
        "file_pages",
        "rate_pages_per_s",
        "access_rate_pages_per_s",
        "write_fraction",
    },
}

# One valid description of each kind, in human units.
EXAMPLES: dict[str, dict[str, Any]] = {
    "page_cache_reader": {"working_set": "900MiB", "rate": "200MiB/s", "zipf": 0.8},
    "writer": {"file_size": "64MiB", "rate": "20MiB/s", "fsync_every": "1MiB"},
    "anon_hog": {"size": "300MiB", "growth": "100MiB/s", "touch_rate": "50MiB/s"},
    "direct_io": {"buffer": "64MiB", "iops": "2000/s", "io_size": "64KiB", "pin_time": "2ms"},
    "longterm_pinner": {"size": "16MiB", "hold": "10s"},
    "fs_mount": {"superblock_buffers": 8},
    "kernel_alloc": {"rate": "200/s", "lifetime": "1s", "order": 1},
    "build": {
        "jobs": 16,
        "cpu_time": "1s",
        "heap": "24MiB",
        "source_tree": "384MiB",
        "reads_per_process": "8MiB",
        "output": "400KiB",
    },
    "tmpfs_file": {"size": "64MiB", "rate": "50MiB/s", "access_rate": "10MiB/s"},
}


def build(kind: str, **changes: Any) -> Any:
    return validate_workload({"kind": kind, **EXAMPLES[kind], **changes})


def problem(kind: str, **changes: Any) -> str:
    with pytest.raises(SpecError) as err:
        build(kind, **changes)
    return str(err.value)


def test_every_kind_has_a_class_and_an_example() -> None:
    assert set(WORKLOAD_KINDS) == set(ENGINE_FIELDS) == set(EXAMPLES)
    for kind, cls in WORKLOAD_CLASSES.items():
        assert cls.model_fields["kind"].default == kind
        assert build(kind).kind == kind


@pytest.mark.parametrize("kind", sorted(ENGINE_FIELDS))
def test_to_engine_has_exactly_the_engine_fields(kind: str) -> None:
    spec = build(kind, name="w0", start="2s", stop="5s").to_engine()
    assert set(spec) == {"kind", "name", "start_ns", "stop_ns"} | ENGINE_FIELDS[kind]
    assert (spec["kind"], spec["name"]) == (kind, "w0")
    assert (spec["start_ns"], spec["stop_ns"]) == (2_000_000_000, 5_000_000_000)
    json.dumps(spec)  # plain JSON for the engine


def test_sizes_become_pages_and_rates_pages_per_second() -> None:
    spec = PageCacheReader(working_set="900MiB", rate="200MiB/s").to_engine()
    assert spec["file_pages"] == 900 * 256
    assert spec["rate_pages_per_s"] == 200 * 256
    assert spec["zipf_s"] == 0.0 and spec["sequential"] is False
    assert spec["stop_ns"] is None and spec["start_ns"] == 0
    # A partial page occupies a page.
    assert PageCacheReader(working_set="6KiB", rate=4096).to_engine()["file_pages"] == 2


def test_each_kind_converts_its_units() -> None:
    assert Writer(file_size="64MiB", rate="20MiB/s", fsync_every="1MiB").to_engine() == {
        "kind": "writer",
        "name": "writer",
        "start_ns": 0,
        "stop_ns": None,
        "file_pages": 16384,
        "rate_pages_per_s": 5120.0,
        "fsync_every_pages": 256,
    }
    assert Writer(file_size=MiB, rate=MiB).to_engine()["fsync_every_pages"] is None
    hog = AnonHog(size="1GiB", growth="100MiB/s", write_fraction=0.25).to_engine()
    assert hog["target_pages"] == GiB // 4096
    assert hog["growth_pages_per_s"] == 25600.0
    assert hog["touch_rate_pages_per_s"] == 0.0 and hog["write_fraction"] == 0.25
    dio = DirectIO(buffer="64MiB", iops="2kHz", pin_time="2ms").to_engine()
    assert dio["buffer_pages"] == 16384 and dio["ios_per_s"] == 2000.0
    assert dio["pages_per_io"] == 16  # the default 64 KiB I/O
    assert dio["pin_mean_ns"] == 2_000_000 and dio["pin_distribution"] == "exponential"
    assert DirectIO(buffer="1MiB", iops=1, pin_time=5, pin_distribution="fixed").to_engine()[
        "pin_distribution"
    ] == ("fixed")
    rdma = LongtermPinner(size="16MiB").to_engine()
    assert (rdma["pages"], rdma["hold_ns"]) == (4096, None)
    assert LongtermPinner(size="4KiB", hold="10s").to_engine()["hold_ns"] == 10**10
    slab = KernelAlloc(rate="3000/min", lifetime="250ms", order=2).to_engine()
    assert slab["rate_allocs_per_s"] == 50.0
    assert (slab["order"], slab["lifetime_mean_ns"]) == (2, 250_000_000)


def test_mlock_and_tmpfs_convert_their_units() -> None:
    hog = AnonHog(size="64MiB", growth="64MiB/s", mlock=True).to_engine()
    assert hog["mlock"] is True and hog["target_pages"] == 16384
    assert "mlock" not in AnonHog(size="64MiB", growth="64MiB/s").to_engine()
    shm = TmpfsFile(size="64MiB", rate="32MiB/s", access_rate="8MiB/s", write_fraction=0.5)
    assert shm.to_engine() == {
        "kind": "tmpfs_file",
        "name": "tmpfs",
        "start_ns": 0,
        "stop_ns": None,
        "file_pages": 16384,
        "rate_pages_per_s": 8192.0,
        "access_rate_pages_per_s": 2048.0,
        "write_fraction": 0.5,
    }


def test_mlocked_memory_must_fit_without_swap() -> None:
    from cmadev.specs.catalog import load_board

    board = load_board("camera_512m").model_copy(update={"swap": 512 * MiB})
    assert AnonHog(size="768MiB", growth="64MiB/s").problems_on(board) == []
    problems = AnonHog(size="768MiB", growth="64MiB/s", mlock=True).problems_on(board)
    assert [f for f, _ in problems] == ["size"]
    assert "never swapped" in problems[0][1]
    # tmpfs pages may go to swap.
    assert TmpfsFile(size="768MiB", rate="64MiB/s").problems_on(board) == []
    assert TmpfsFile(size="2GiB", rate="64MiB/s").problems_on(board) != []


def test_fs_mount_takes_mount_and_unmount_times() -> None:
    fs = FsMount(mount="1s", unmount="3s")
    assert (fs.start, fs.stop) == (1_000_000_000, 3_000_000_000)
    assert FsMount(start="1s") == FsMount(mount="1s")
    spec = fs.to_engine()
    assert spec["superblock_pages"] == 8 and spec["name"] == "ext4"
    assert (spec["start_ns"], spec["stop_ns"]) == (1_000_000_000, 3_000_000_000)
    assert FsMount(superblock_buffers=33).to_engine()["superblock_pages"] == 33


def test_default_names_and_human_examples_from_the_spec() -> None:
    # SPEC section 4: m.start(cmadev.workloads.PageCacheReader(working_set=..., rate=...))
    reader = PageCacheReader(working_set="900MiB", rate="200MiB/s")
    assert reader.name == "reader"
    names = {build(kind).name for kind in WORKLOAD_KINDS}
    assert len(names) == len(WORKLOAD_KINDS), "each kind has its own default name"


def test_models_are_frozen_and_forbid_unknown_fields() -> None:
    reader = build("page_cache_reader")
    with pytest.raises(ValidationError):
        reader.rate = 5  # type: ignore[misc]
    message = problem("writer", fsyncevery="1MiB")
    assert "fsyncevery: unknown field" in message
    assert "did you mean 'fsync_every'" in message


@pytest.mark.parametrize(
    ("kind", "changes", "field", "fix"),
    [
        ("page_cache_reader", {"working_set": 0}, "working_set", "900MiB"),
        ("page_cache_reader", {"rate": "0MiB/s"}, "rate", "200MiB/s"),
        ("page_cache_reader", {"rate": "200MiB"}, "rate", "/s"),
        ("page_cache_reader", {"zipf": 11}, "zipf", "10"),
        ("writer", {"fsync_every": 0}, "fsync_every", "1MiB"),
        ("anon_hog", {"growth": 0}, "growth", "100MiB/s"),
        ("anon_hog", {"write_fraction": 1.5}, "write_fraction", "1"),
        ("direct_io", {"pin_time": 0}, "pin_time", "2ms"),
        ("direct_io", {"iops": 0}, "iops", "2000/s"),
        ("direct_io", {"pin_distribution": "uniform"}, "pin_distribution", "fixed"),
        ("longterm_pinner", {"hold": 0}, "hold", "10s"),
        ("kernel_alloc", {"order": 11}, "order", "10"),
        ("kernel_alloc", {"lifetime": "-1s"}, "lifetime", "negative"),
        ("fs_mount", {"superblock_buffers": 0}, "superblock_buffers", "1"),
        ("tmpfs_file", {"size": 0}, "size", "64MiB"),
        ("tmpfs_file", {"rate": 0}, "rate", "50MiB/s"),
        ("tmpfs_file", {"write_fraction": 2}, "write_fraction", "1"),
        ("anon_hog", {"mlock": "maybe"}, "mlock", "bool"),
        ("writer", {"name": "my writer"}, "name", "my_writer"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(
    kind: str, changes: dict[str, Any], field: str, fix: str
) -> None:
    message = problem(kind, **changes)
    assert f"  {field}:" in message, message
    assert fix in message, message


def test_cross_field_checks_say_what_to_do() -> None:
    message = problem("direct_io", buffer="32KiB", io_size="64KiB")
    assert "io_size (64 KiB) is larger than buffer (32 KiB)" in message
    assert "at least 64 KiB" in message
    message = problem("fs_mount", mount="3s", unmount="2s")
    assert "stop (2 s) must be after start (3 s)" in message
    message = problem("page_cache_reader", start="5s", stop="5s")
    assert "move stop later" in message


def test_the_union_tells_kinds_apart() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(Workload)
    for kind in WORKLOAD_KINDS:
        model = adapter.validate_python({"kind": kind, **EXAMPLES[kind]})
        assert type(model) is WORKLOAD_CLASSES[kind]
        # A dump validates back to the same model (as a scenario file would hold it).
        assert adapter.validate_python(model.model_dump()) == model
        assert adapter.validate_json(model.model_dump_json()) == model
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "nope"})
    schema = adapter.json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(WORKLOAD_KINDS)
    for cls in WORKLOAD_CLASSES.values():
        assert cls.model_json_schema()["additionalProperties"] is False


def test_unknown_or_missing_kind_lists_the_kinds() -> None:
    with pytest.raises(SpecError, match="Did you mean 'page_cache_reader'"):
        validate_workload({"kind": "page_cache_reder", "working_set": "1MiB"})
    with pytest.raises(SpecError, match=r"'kind' is missing.*anon_hog"):
        validate_workload({"working_set": "1MiB"})
    with pytest.raises(SpecError, match="must be an object"):
        validate_workload(["page_cache_reader"])


def test_load_workload_from_files_and_dicts(tmp_path: Path) -> None:
    path = tmp_path / "reader.json"
    path.write_text(json.dumps({"kind": "page_cache_reader", **EXAMPLES["page_cache_reader"]}))
    assert load_workload(path) == build("page_cache_reader")
    toml = tmp_path / "mount.toml"
    toml.write_text('kind = "fs_mount"\nname = "data"\nmount = "1s"\n')
    assert load_workload(toml) == FsMount(name="data", start="1s")
    reader = build("page_cache_reader")
    assert load_workload(reader) is reader
    assert load_workload({"kind": "kernel_alloc", **EXAMPLES["kernel_alloc"]}).kind == (
        "kernel_alloc"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "writer", "file_size": "1MiB"}))
    with pytest.raises(SpecError) as err:
        load_workload(bad)
    assert str(bad) in str(err.value)
    assert "rate: required field is missing" in str(err.value)


def test_a_build_runs_on_the_kernel_backend_with_its_files() -> None:
    """A build becomes a guest workload line with its output space resolved, and its files on
    the data disk: one per source file (each read afresh, so each gets its own readahead) and
    the output space; without files, the tree is one file."""
    from cmadev.kernel.program import program_from_scenario
    from cmadev.specs.catalog import load_board

    board = load_board("qemu_x86_512m").to_engine("balanced", seed=1)
    make = build("build", source_tree="1MiB", source_file_size="16KiB", processes=10)
    program = program_from_scenario(board, [make.to_engine()], [], duration_ns=10**9)
    (line,) = [x for x in program.to_text().splitlines() if x.startswith("workload")]
    assert "kind=build" in line and "source_file_pages=4" in line
    assert "output_space_pages=1000" in line and "tree=w0.src" in line  # 10 objects of 100
    files = {f.name: f.pages for f in program.data_files()}
    assert files == {**{f"w0.src/{n}": 4 for n in range(64)}, "w0.out": 1000}
    plain = build("build", source_tree="1MiB", output=0)
    program = program_from_scenario(board, [plain.to_engine()], [], duration_ns=10**9)
    assert {f.name: f.pages for f in program.data_files()} == {"w0.dat": 256}


def test_a_builds_source_files_fit_its_tree() -> None:
    """``source_file_size`` becomes the engine's pages per file; one larger than the tree is
    refused, naming the field and the tree."""
    make = build("build", source_tree="1MiB", source_file_size="16KiB")
    assert make.to_engine()["source_file_pages"] == 4
    assert build("build").to_engine()["source_file_pages"] == 0
    message = problem("build", source_tree="1MiB", source_file_size="2MiB")
    assert "source_file_size 2 MiB" in message and "source_tree (1 MiB)" in message
