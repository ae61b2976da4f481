"""The shipped boards and devices (cmadev.catalog, cmadev/devices/)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import cmadev.devices
from cmadev import Board, CostModel, DeviceSpec, Policy
from cmadev.errors import SpecError
from cmadev.specs.catalog import list_boards, list_devices, load_board, load_device
from cmadev.units import MiB

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "python" / "cmadev" / "devices"

BOARDS = [
    "camera_512m",
    "desktop_16g",
    "kvm_1g_cma512",
    "phone_4g",
    "qemu_x86_512m",
    "rpi2_800m",
    "tv_1g",
]
DEVICES = ["camera_sensor", "tv_pipeline", "video_decoder"]

# Which shipped device is meant for which shipped board (devices/README.md).
MEANT_FOR = {
    "camera_sensor": ["phone_4g", "camera_512m"],
    "video_decoder": ["tv_1g"],
    "tv_pipeline": ["tv_1g"],
}


def test_lists() -> None:
    assert list_boards() == BOARDS
    assert list_devices() == DEVICES
    assert cmadev.devices.names() == DEVICES


def test_every_shipped_file_is_listed() -> None:
    assert sorted(p.stem for p in (DATA / "boards").glob("*.json")) == BOARDS
    assert sorted(p.stem for p in DATA.glob("*.json")) == DEVICES


@pytest.mark.parametrize("name", BOARDS)
def test_every_board_loads_and_builds_an_engine_config(name: str) -> None:
    board = load_board(name)
    assert board.name == name
    assert board.description
    assert board.cma_areas
    engine = board.to_engine("mainline-today", seed=1)
    json.dumps(engine)
    assert engine["ram"] == board.ram


@pytest.mark.parametrize("name", DEVICES)
def test_every_device_loads(name: str) -> None:
    device = load_device(name)
    assert device.name == name == device.kind
    assert device.description
    for mode, buffers in device.modes.items():
        assert device.pages(mode) > 0
        assert all(buffer.description for buffer in buffers)
    assert cmadev.devices.load(name) == device


@pytest.mark.parametrize("name", DEVICES)
def test_each_device_fits_the_boards_it_is_meant_for(name: str) -> None:
    device = load_device(name)
    for board_name in MEANT_FOR[name]:
        area = load_board(board_name).cma_area(device.heap)
        for mode in device.modes:
            assert device.total_bytes(mode) <= area.size, (board_name, mode)


def test_tv_area_holds_each_busy_state() -> None:
    area = load_board("tv_1g").cma_area("tv")
    decoder, pipeline = load_device("video_decoder"), load_device("tv_pipeline")
    for decoder_mode, pipeline_mode in (("1080p", "3d"), ("4k", "4k")):
        used = decoder.total_bytes(decoder_mode) + pipeline.total_bytes(pipeline_mode)
        assert 0.9 * area.size < used <= area.size


def test_figures() -> None:
    camera = load_device("camera_sensor")
    assert [b.size for b in camera.buffers("1080p")] == [3040 * 1024]  # NV12 1920x1080, paged
    assert camera.buffers("4k")[0].pages == 3038  # NV12 3840x2160 = 3037.5 pages
    assert camera.deadline == 200_000_000
    assert load_device("video_decoder").buffers("4k")[0].count == 12
    assert load_device("tv_pipeline").total_bytes("3d") == 2 * 97200 * 1024
    desktop = load_board("desktop_16g")
    assert desktop.cost.page_copy == CostModel().page_copy // 10
    assert desktop.cost.storage_read_request == 20_000
    assert desktop.cost.storage_write_page == 2_000
    assert load_board("tv_1g").cost == CostModel()
    assert load_board("phone_4g").cma_area("camera").size == 512 * MiB


def test_load_by_path_and_passthrough(tmp_path: Path) -> None:
    path = DATA / "boards" / "tv_1g.json"
    assert load_board(path) == load_board("tv_1g")
    assert load_board(str(path)) == load_board("tv_1g")
    board = load_board("tv_1g")
    assert load_board(board) is board
    device = load_device("camera_sensor")
    assert load_device(device) is device

    custom = tmp_path / "my_cam.toml"
    custom.write_text(
        'name = "my_cam"\nkind = "camera_sensor"\nheap = "camera"\ndeadline = "1s"\n'
        'default_mode = "vga"\n\n[[modes.vga]]\ncount = 2\nsize = "452KiB"\n',
        encoding="utf-8",
    )
    assert load_device(custom).pages("vga") == 2 * 113


def test_unknown_names_list_what_exists() -> None:
    with pytest.raises(SpecError) as info:
        load_board("tv1g")
    message = str(info.value)
    assert "unknown board 'tv1g'. Did you mean 'tv_1g'?" in message
    assert all(name in message for name in BOARDS)
    with pytest.raises(SpecError) as info:
        load_device("camera")
    assert all(name in str(info.value) for name in DEVICES)
    with pytest.raises(SpecError, match="no such file"):
        load_device("devices/nope.json")
    with pytest.raises(SpecError, match="must be a DeviceSpec"):
        load_device(42)  # type: ignore[arg-type]


def test_a_device_file_is_not_a_board() -> None:
    with pytest.raises(SpecError, match="invalid Board"):
        load_board(DATA / "camera_sensor.json")


def test_shipped_devices_run_on_the_desktop_with_another_heap() -> None:
    desktop = load_board("desktop_16g")
    moved = load_device("camera_sensor").with_heap("reserved")
    assert desktop.cma_area(moved.heap).size >= moved.total_bytes("4k")


def test_models_are_the_public_ones() -> None:
    assert isinstance(load_board("tv_1g"), Board)
    assert isinstance(load_device("tv_pipeline"), DeviceSpec)
    assert isinstance(Policy.coerce("gcma"), Policy)


def test_repository_devices_is_a_relative_symlink() -> None:
    link = REPO / "devices"
    assert link.is_symlink()
    assert os.readlink(link) == "python/cmadev/devices"
    assert (link / "boards" / "tv_1g.json").is_file()


def test_readme_mentions_every_shipped_file() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for name in BOARDS + DEVICES:
        assert f"`{name}`" in readme
