"""The specifications (cmadev.specs): boards, costs, CMA areas, policies, devices; validation
messages, engine dicts, presets, schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cmadev._core import default_costs
from cmadev.errors import SpecError
from cmadev.specs.base import load_model, validate_model
from cmadev.specs.board import Board, CmaArea, CostModel
from cmadev.specs.device import Buffer, DeviceSpec
from cmadev.specs.policy import FIXES, PLACEMENTS, Policy
from cmadev.specs.schema import schemas
from cmadev.units import GiB, KiB, MiB


def board(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "test",
        "ram": "1GiB",
        "reserved": "32MiB",
        "cma_areas": [{"name": "tv", "size": "256MiB"}],
    }
    data.update(changes)
    return data


def device(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "cam",
        "kind": "camera_sensor",
        "heap": "camera",
        "deadline": "200ms",
        "default_mode": "4k",
        "modes": {
            "1080p": [{"count": 4, "size": "3040KiB", "align": "1MiB"}],
            "4k": [{"count": 4, "size": "12MiB", "align": "1MiB"}],
        },
    }
    data.update(changes)
    return data


def spec_error(cls: type, data: Any) -> str:
    with pytest.raises(SpecError) as info:
        validate_model(cls, data, source="example.json")
    return str(info.value)


# ---------------------------------------------------------------------------------- CostModel


def test_cost_defaults_match_the_engine() -> None:
    # The engine's own defaults (rust/mm/src/cost.rs, CostModel::DEFAULT), not a copy typed here.
    assert CostModel().to_engine() == default_costs()


def test_cost_accepts_units_and_names_fields_without_ns() -> None:
    cost = CostModel(page_copy="200ns", storage_read_request="20us")
    engine = cost.to_engine()
    assert engine["page_copy_ns"] == 200
    assert engine["storage_read_request_ns"] == 20_000
    assert engine["zero_page_ns"] == 1000
    with pytest.raises(SpecError, match="page_copy_ns: unknown field; did you mean 'page_copy'"):
        CostModel(page_copy_ns=200)  # type: ignore[call-arg]  # the engine's name, not ours


# ---------------------------------------------------------------------------------- CmaArea


def test_cma_area_valid() -> None:
    area = CmaArea(name="camera", size="128MiB", order_per_bit=2)
    assert (area.size, area.pages, area.order_per_bit) == (128 * MiB, 32768, 2)


def test_cma_area_size_must_be_a_multiple_of_4mib_and_suggests_one() -> None:
    message = spec_error(CmaArea, {"name": "tv", "size": "250MiB"})
    assert "size:" in message
    assert "multiple of 4 MiB" in message
    assert "'252 MiB'" in message and "'248 MiB'" in message
    assert "'4 MiB'" in spec_error(CmaArea, {"name": "tv", "size": 0})


def test_cma_area_name_must_be_a_kernel_name() -> None:
    message = spec_error(CmaArea, {"name": "my camera", "size": "4MiB"})
    assert "name:" in message and "'my_camera'" in message
    assert "order_per_bit" in spec_error(
        CmaArea, {"name": "x", "size": "4MiB", "order_per_bit": 11}
    )


# ---------------------------------------------------------------------------------- Board


def test_board_defaults_and_units() -> None:
    b = Board.model_validate(board())
    assert b.ram == GiB and b.pages == GiB // 4096
    assert (b.cpus, b.pageblock_order, b.watermark_scale_factor, b.dirty_ratio) == (4, 9, 10, 20)
    assert b.min_free_kbytes is None
    assert b.dirty_expire == 30_000_000_000
    assert b.cma_total == 256 * MiB
    assert b.cost == CostModel()
    assert b.read_ahead == 128 * 1024 and b.to_engine("balanced", 1)["read_ahead_kb"] == 128


def test_board_read_ahead_is_pages_up_to_64_mib() -> None:
    assert Board.model_validate(board(read_ahead="1MiB")).to_engine("balanced", 1)[
        "read_ahead_kb"
    ] == (1024)
    assert Board.model_validate(board(read_ahead=0)).read_ahead == 0
    assert "whole number of 4 KiB pages" in spec_error(Board, board(read_ahead="6KiB"))
    assert "at most 64 MiB" in spec_error(Board, board(read_ahead="128MiB"))


def test_board_to_engine_has_exactly_the_engine_shape() -> None:
    b = Board.model_validate(board(min_free_kbytes=4096, swap="512MiB"))
    engine = b.to_engine(Policy.preset("mainline-today"), seed=7)
    assert set(engine) == {
        "ram",
        "kernel_version",
        "cma_debug",
        "trace_events",
        "cpus",
        "reserved",
        "pageblock_order",
        "min_free_kbytes",
        "watermark_scale_factor",
        "cma_areas",
        "swap",
        "dirty_expire_ns",
        "dirty_ratio",
        "read_ahead_kb",
        "cost",
        "policy",
        "seed",
        "trace_limit",
        "max_events",
    }
    assert engine["cma_areas"] == [{"name": "tv", "size": 256 * MiB, "order_per_bit": 0}]
    assert engine["cost"] == CostModel().to_engine()
    assert engine["policy"] == Policy.preset("mainline-today").to_engine()
    assert (engine["seed"], engine["trace_limit"]) == (7, 200_000)
    assert (engine["min_free_kbytes"], engine["swap"]) == (4096, 512 * MiB)
    assert engine["dirty_expire_ns"] == 30_000_000_000
    json.dumps(engine)  # plain JSON, nothing else
    assert b.to_engine("legacy", seed=1, trace_limit=0)["policy"]["placement"] == "legacy"


def test_board_to_engine_checks_seed_and_trace_limit() -> None:
    b = Board.model_validate(board())
    with pytest.raises(SpecError, match="seed"):
        b.to_engine("legacy", seed=-1)
    with pytest.raises(SpecError, match="seed"):
        b.to_engine("legacy", seed=2**64)
    with pytest.raises(SpecError, match="trace_limit"):
        b.to_engine("legacy", seed=1, trace_limit=-1)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"ram": "32MiB"}, "ram", "at least 64 MiB"),
        ({"ram": 100 * MiB + 1}, "ram", "multiple of 4 MiB"),
        ({"ram": 98 * MiB}, "ram", "use '96MiB'"),
        ({"reserved": 5000}, "reserved", "use 8192"),
        ({"swap": 1}, "swap", "use 4096"),
        ({"cpus": 0}, "cpus", "greater than or equal to 1"),
        ({"cpus": 257}, "cpus", "less than or equal to 256"),
        ({"pageblock_order": 11}, "pageblock_order", "less than or equal to 10"),
        ({"watermark_scale_factor": 3001}, "watermark_scale_factor", "3000"),
        ({"dirty_ratio": 0}, "dirty_ratio", "greater than or equal to 1"),
        ({"dirty_expire": "soon"}, "dirty_expire", "invalid duration 'soon'"),
        (
            {"cma_areas": [{"name": "a", "size": "4MiB"}, {"name": "a", "size": "8MiB"}]},
            "cma_areas",
            "two CMA areas are named 'a'",
        ),
        ({"cma_areas": [{"name": "tv", "size": "980MiB"}]}, "cma_areas", "at least 32 MiB"),
        ({"cma_areas": [], "reserved": "1000MiB"}, "cma_areas", "leave 24 MiB of 1 GiB"),
        ({"cpu": 4}, "cpu", "unknown field; did you mean 'cpus'?"),
        ({"cost": {"page_cpy": "1us"}}, "cost.page_cpy", "did you mean 'page_copy'?"),
        (
            {"cma_areas": [{"name": "tv", "size": "6MiB"}]},
            "cma_areas[0].size",
            "multiple of 4 MiB",
        ),
    ],
)
def test_board_rejects_with_field_and_fix(changes: dict[str, Any], field: str, words: str) -> None:
    message = spec_error(Board, board(**changes))
    assert message.startswith("example.json: invalid Board")
    assert f"\n  {field}: " in message
    assert words in message


def test_board_missing_field_says_what_it_is() -> None:
    data = board()
    del data["ram"]
    message = spec_error(Board, data)
    assert "ram: required field is missing: add it (Installed memory" in message


def test_board_min_free_kbytes_must_leave_memory() -> None:
    assert "min_free_kbytes" in spec_error(Board, board(min_free_kbytes=1_000_000))


def test_board_cma_area_lookup() -> None:
    b = Board.model_validate(board())
    assert b.cma_area("tv").size == 256 * MiB
    with pytest.raises(SpecError, match=r"has no CMA area 'camera'; its areas: 'tv'"):
        b.cma_area("camera")


def test_models_are_frozen() -> None:
    b = Board.model_validate(board())
    with pytest.raises(ValidationError):
        b.cpus = 8  # type: ignore[misc]
    p = Policy(placement="legacy")
    with pytest.raises(ValidationError):
        p.placement = "gcma"  # type: ignore[misc]
    assert hash(p) == hash(Policy(placement="legacy"))


# ---------------------------------------------------------------------------------- Policy


def test_policy_to_engine_shape() -> None:
    engine = Policy(
        placement="balanced",
        fixes=["pin_duration_warn", "warn_cma_pins"],
        pin_duration_threshold="50ms",
        cma_lock="per_area",
    ).to_engine()
    assert engine == {
        "placement": "balanced",
        "migrate_on_longterm_pin": False,
        "migrate_on_pin": False,
        "migrate_on_first_dirty": False,
        "warn_cma_pins": True,
        "pin_duration_warn_ns": 50_000_000,
        "fs_superblock_unmovable": False,
        "cma_lock": "per_area",
        "vendor_retry_passes": 0,
        "vendor_retry_sleep_ns": 100_000_000,
    }
    # Without the fix the threshold is not sent.
    assert Policy(placement="legacy").to_engine()["pin_duration_warn_ns"] is None


def test_policy_vendor_retry() -> None:
    engine = Policy(placement="balanced", vendor_retry=True, vendor_retry_sleep="20ms").to_engine()
    assert (engine["vendor_retry_passes"], engine["vendor_retry_sleep_ns"]) == (5, 20_000_000)


def test_presets() -> None:
    names = Policy.presets()
    for name in (
        "mainline-2015",
        "mainline-2014",
        "mainline-today",
        "mel-gorman",
        "instrumented",
        "vendor-android",
        *PLACEMENTS,
    ):
        assert name in names
    for name in names:
        assert isinstance(Policy.preset(name), Policy)
    assert Policy.preset("mainline-2015") == Policy(placement="legacy")
    assert Policy.preset("mainline-2014") == Policy(placement="legacy_2014")
    today = Policy.preset("mainline-today")
    assert today.placement == "balanced"
    assert today.fixes == {"migrate_on_longterm_pin", "fs_superblock_unmovable"}
    mel = Policy.preset("mel-gorman")
    assert mel.placement == "legacy"
    assert mel.fixes == {"migrate_on_pin", "migrate_on_first_dirty", "warn_cma_pins"}
    assert Policy.preset("instrumented").fixes == {"warn_cma_pins", "pin_duration_warn"}
    android = Policy.preset("vendor-android")
    assert android.vendor_retry and android.to_engine()["vendor_retry_passes"] == 5
    assert Policy.preset("Mainline_Today") == today  # case and _/- do not matter


def test_coerce() -> None:
    p = Policy(placement="gcma")
    assert Policy.coerce(p) is p
    assert Policy.coerce("zone_cma") == Policy(placement="zone_cma")
    assert Policy.coerce("mel-gorman") == Policy.preset("mel-gorman")
    assert Policy.coerce({"placement": "legacy", "fixes": ["warn_cma_pins"]}).fixes == {
        "warn_cma_pins"
    }
    with pytest.raises(SpecError) as info:
        Policy.coerce("mainline")
    message = str(info.value)
    assert "unknown policy 'mainline'" in message
    assert all(name in message for name in Policy.presets())
    with pytest.raises(SpecError, match=r"fix: unknown field; did you mean 'fixes'\?"):
        Policy.coerce({"placement": "legacy", "fix": []})
    with pytest.raises(SpecError, match="a policy must be"):
        Policy.coerce(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fix", ["migrate_on_longterm_pin", "migrate_on_pin", "migrate_on_first_dirty"]
)
def test_gcma_rejects_pointless_fixes_with_the_reason(fix: str) -> None:
    message = spec_error(Policy, {"placement": "gcma", "fixes": [fix]})
    assert f"fixes: {fix} makes no sense with placement 'gcma'" in message
    assert "dirty" in message or "pinned" in message


@pytest.mark.parametrize("placement", ["zone_cma", "movable_zone", "gcma"])
def test_superblock_fix_is_pointless_where_bdev_cache_never_reaches_cma(placement: str) -> None:
    message = spec_error(Policy, {"placement": placement, "fixes": ["fs_superblock_unmovable"]})
    assert f"no sense with placement '{placement}'" in message
    assert "block device's page cache" in message


def test_fixes_that_make_sense_stay() -> None:
    p = Policy(placement="zone_cma", fixes=["warn_cma_pins", "migrate_on_longterm_pin"])
    assert p.to_engine()["warn_cma_pins"] and p.to_engine()["migrate_on_longterm_pin"]


def test_policy_rejects_unknown_fix_and_placement() -> None:
    assert "fixes[0]" in spec_error(Policy, {"placement": "legacy", "fixes": ["migrate_always"]})
    assert "placement: Input should be" in spec_error(Policy, {"placement": "newest"})


def test_policy_label() -> None:
    assert Policy.preset("mainline-today").label == "balanced+longterm_pin+sb_unmovable"
    assert Policy.preset("legacy").label == "legacy"
    assert (
        Policy.preset("vendor-android").label == "balanced+longterm_pin+sb_unmovable+vendor_retry"
    )
    custom = Policy(
        placement="balanced",
        fixes=["pin_duration_warn"],
        pin_duration_threshold="50ms",
        vendor_retry=True,
        vendor_retry_passes=3,
        cma_lock="per_area",
    )
    assert custom.label == "balanced+pin_duration>50ms+vendor_retry(3x100ms)+per_area_lock"


def test_policy_serialises_fixes_in_a_stable_order() -> None:
    p = Policy(placement="legacy", fixes=list(reversed(FIXES)))
    assert p.model_dump(mode="json")["fixes"] == list(FIXES)
    assert Policy.model_validate_json(p.model_dump_json()) == p


def test_policy_has() -> None:
    p = Policy.preset("mainline-today")
    assert p.has("migrate_on_longterm_pin") and not p.has("migrate_on_pin")
    with pytest.raises(SpecError, match="unknown fix"):
        p.has("migrate_everything")


# ---------------------------------------------------------------------------------- devices


def test_buffer() -> None:
    b = Buffer(count=4, size="12MiB", align="1MiB")
    assert (b.pages, b.total_pages, b.align_order) == (3072, 4 * 3072, 8)
    assert Buffer(count=1, size="4KiB").align_order == 0
    message = spec_error(Buffer, {"count": 1, "size": 5000})
    assert "size: a buffer's size must be a whole number of 4 KiB pages" in message
    assert "use 8192" in message
    assert "use '4 MiB'" in spec_error(Buffer, {"count": 1, "size": "4KiB", "align": "3MiB"})
    assert "align" in spec_error(Buffer, {"count": 1, "size": "4KiB", "align": 2048})
    assert "count" in spec_error(Buffer, {"count": 0, "size": "4KiB"})
    assert "size" in spec_error(Buffer, {"count": 1, "size": 0})


def test_device_spec() -> None:
    d = DeviceSpec.model_validate(device())
    assert d.deadline == 200_000_000 and d.zero_buffers
    assert d.pages() == 4 * 3072  # the default mode, 4k
    assert d.pages("1080p") == 4 * 760
    assert d.total_bytes("4k") == 48 * MiB
    assert d.buffers("1080p")[0].size == 3040 * KiB
    with pytest.raises(SpecError, match="has no mode '8k'; its modes: '1080p', '4k'"):
        d.pages("8k")
    moved = d.with_heap("reserved")
    assert moved.heap == "reserved" and moved.modes == d.modes
    with pytest.raises(SpecError, match="heap"):
        d.with_heap("bad name")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"default_mode": "8k"}, "default_mode", "'8k' is not one of the modes ('1080p', '4k')"),
        ({"kind": "camera"}, "kind", "'camera_sensor', 'video_decoder' or 'tv_pipeline'"),
        ({"modes": {}}, "modes", "at least 1"),
        ({"modes": {"4k": []}}, "modes", "mode '4k' lists no buffers"),
        ({"deadline": 0}, "deadline", "greater than 0"),
        ({"heap": "my heap"}, "heap", "may hold only letters"),
        ({"deadlin": "1s"}, "deadlin", "did you mean 'deadline'?"),
        (
            {"modes": {"4k": [{"count": 4, "size": "12MiB", "alignment": "1MiB"}]}},
            "modes.4k[0].alignment",
            "did you mean 'align'?",
        ),
    ],
)
def test_device_rejects_with_field_and_fix(changes: dict[str, Any], field: str, words: str) -> None:
    message = spec_error(DeviceSpec, device(**changes))
    assert f"\n  {field}: " in message
    assert words in message


# ---------------------------------------------------------------------------------- files


def test_load_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps(board()), encoding="utf-8")
    (tmp_path / "b.toml").write_text(
        'name = "test"\nram = "1GiB"\nreserved = "32MiB"\n\n'
        '[[cma_areas]]\nname = "tv"\nsize = "256MiB"\n',
        encoding="utf-8",
    )
    from_json = load_model(Board, tmp_path / "b.json")
    assert from_json == load_model(Board, str(tmp_path / "b.toml"))
    assert from_json.cma_area("tv").size == 256 * MiB


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(device(deadlin="1s")), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_model(DeviceSpec, bad)
    assert str(info.value).startswith(f"{bad}: invalid DeviceSpec (1 problem)")

    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n "ram": }', encoding="utf-8")
    with pytest.raises(SpecError, match=r"broken.json:2:\d+: not valid JSON"):
        load_model(Board, broken)

    toml = tmp_path / "broken.toml"
    toml.write_text("name = ", encoding="utf-8")
    with pytest.raises(SpecError, match=r"broken\.toml: not valid TOML"):
        load_model(Board, toml)

    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SpecError, match="must hold one object"):
        load_model(Board, listed)

    with pytest.raises(SpecError, match="no such file"):
        load_model(Board, tmp_path / "missing.json")
    with pytest.raises(SpecError, match=r"use a \.json or \.toml file"):
        load_model(Board, tmp_path / "board.yaml")


# ---------------------------------------------------------------------------------- schemas


def test_schemas() -> None:
    all_schemas = schemas()
    assert {"Board", "CmaArea", "CostModel", "Policy", "DeviceSpec", "Scenario"} <= set(all_schemas)
    assert {"Workload", "AnonHog", "DirectIO"} <= set(all_schemas)
    for name, schema in all_schemas.items():
        json.dumps(schema)
        if name == "Workload":  # a union told apart by its kind
            continue
        assert schema["additionalProperties"] is False
        assert schema["description"]
    board_props = all_schemas["Board"]["properties"]
    assert {v["type"] for v in board_props["ram"]["anyOf"]} == {"integer", "string"}
    assert board_props["ram"]["description"].startswith("Installed memory")
    policy_props = all_schemas["Policy"]["properties"]
    assert policy_props["placement"]["enum"] == list(PLACEMENTS)
    assert policy_props["fixes"]["items"]["enum"] == list(FIXES)
    assert all_schemas["CmaArea"]["properties"]["name"]["pattern"] == "^[A-Za-z0-9_.-]+$"
    assert "Buffer" in all_schemas["DeviceSpec"]["$defs"]
    assert all_schemas["DeviceSpec"]["$defs"]["Buffer"]["additionalProperties"] is False
