"""The guest program builder: scenario pieces (plain data) to the agent's line format."""

from __future__ import annotations

import pytest

from cmadev.kernel.errors import ProgramError
from cmadev.kernel.program import (
    GUEST_AREA,
    GuestBoard,
    GuestProgram,
    calibration_program,
    guest_board,
    parse_program_text,
    program_from_scenario,
)
from cmadev.sim.dma_heap import get_order
from cmadev.specs.catalog import load_board
from cmadev.specs.scenario import load_scenario
from cmadev.specs.workloads import AnonHog, DirectIO, FsMount, KernelAlloc, LongtermPinner

MiB = 1 << 20
S = 1_000_000_000


def _board(areas: int = 1, **extra: object) -> dict[str, object]:
    cma = [{"name": f"a{i}", "size": 64 * MiB, "order_per_bit": 0} for i in range(areas)]
    return {"name": "t", "ram": 512 * MiB, "cpus": 2, "cma_areas": cma, "swap": 0, **extra}


def _lines(program: GuestProgram, verb: str) -> list[dict[str, str]]:
    return [f for v, f in parse_program_text(program.to_text()) if v == verb]


def test_shipped_board_maps_onto_the_default_area() -> None:
    engine = load_board("tv_1g").to_engine("balanced", 1)
    board, notes = guest_board(engine)
    assert board.ram == 1 << 30 and board.cpus == 4
    assert board.cma_bytes == 256 * MiB and board.area == GUEST_AREA
    assert board.cmdline_cma() == "cma=256M"
    assert board.areas == ("tv",)
    assert any("'tv' is the guest's default area 'reserved'" in n for n in notes)
    assert any("not its architecture" in n for n in notes)
    sysctls = dict(board.sysctls)
    assert sysctls["vm.watermark_scale_factor"] == "10"
    assert sysctls["vm.dirty_expire_centisecs"] == "3000"  # 30 s
    assert sysctls["vm.dirty_ratio"] == "20"
    assert "vm.min_free_kbytes" not in sysctls  # null: the kernel's default


def test_model_dump_form_is_accepted_too() -> None:
    dumped = load_board("camera_512m").model_dump()
    board, _ = guest_board(dumped)
    assert board.cma_bytes == 128 * MiB and board.areas == ("camera",)
    assert dict(board.sysctls)["vm.dirty_expire_centisecs"] == "3000"


def test_several_areas_are_refused_unless_merged() -> None:
    phone = load_board("phone_4g").to_engine("legacy", 1)
    with pytest.raises(ProgramError, match=r"has 2 CMA areas.*merge_areas=True"):
        guest_board(phone)
    board, notes = guest_board(phone, merge_areas=True)
    assert board.cma_bytes == (32 + 512) * MiB
    assert board.areas == ("reserved", "camera")
    assert any("run as one guest area" in n for n in notes)


def test_time_scale_stretches_dirty_expire() -> None:
    board, notes = guest_board(_board(dirty_expire_ns=30 * S), time_scale=4.0)
    assert dict(board.sysctls)["vm.dirty_expire_centisecs"] == "12000"
    assert any("time_scale" in n for n in notes)


def test_workloads_keep_the_engine_fields() -> None:
    workloads = [
        AnonHog(name="hog", size="64MiB", growth="32MiB/s", touch_rate="4MiB/s").to_engine(),
        DirectIO(
            name="rec", buffer="8MiB", iops="25/s", io_size="256KiB", pin_time="10ms", start="1s"
        ).to_engine(),
        LongtermPinner(name="rdma", size="16MiB", populate_first=True).to_engine(),
        FsMount(name="usb", mount="2s", unmount="3s").to_engine(),
        KernelAlloc(name="net", rate="500/s", lifetime="50ms").to_engine(),
    ]
    p = program_from_scenario(_board(), workloads, [], duration_ns=4 * S)
    lines = _lines(p, "workload")
    assert [w["kind"] for w in lines] == [
        "anon_hog",
        "direct_io",
        "longterm_pinner",
        "fs_mount",
        "kernel_alloc",
    ]
    hog, dio, pin, mount, kalloc = lines
    assert hog["target_pages"] == str(64 * MiB // 4096)
    assert float(hog["growth_pages_per_s"]) == 32 * MiB / 4096
    assert dio["start_ns"] == str(S) and dio["pages_per_io"] == "64"
    assert dio["pin_mean_ns"] == "10000000" and dio["hold"] == "pin"
    assert pin["populate_first"] == "1" and pin["stop_ns"] == "0"
    assert mount["start_ns"] == str(2 * S) and mount["stop_ns"] == str(3 * S)
    assert mount["fstype"] == "ext4"
    assert kalloc["lifetime_mean_ns"] == "50000000"
    # the O_DIRECT workload gets a disk answering after pin_time; the mount gets an image
    [dio_disk] = p.dio_disks()
    assert dio_disk.serial == "cmadev-dio1" and dio_disk.latency_ns == 10_000_000
    [mnt] = p.mount_disks()
    assert mnt.serial == "cmadev-mnt3" and mnt.fstype == "ext4"
    # what 6.1 does differently is said, not hidden
    text = "\n".join(p.notes)
    assert "FOLL_GET" in text and "not FOLL_PIN" in text
    assert "fixed at the mean" in text  # exponential pin times
    assert "check_and_migrate_movable_pages" in text
    assert "ext4_sb_bread_unmovable" in text


def test_ext2_mount_and_vmsplice_holds() -> None:
    workloads = [
        FsMount(name="usb").to_engine(),
        DirectIO(
            name="gup", buffer="4MiB", iops="100/s", io_size="4KiB", pin_time="1s", hold="get_page"
        ).to_engine(),
    ]
    p = program_from_scenario(_board(), workloads, [], duration_ns=S, fs_types={"usb": "ext2"})
    assert _lines(p, "workload")[0]["fstype"] == "ext2"
    assert p.dio_disks() == []  # vmsplice needs no disk
    assert any("vmsplice" in n for n in p.notes)
    assert any("ext2 reads them with sb_bread (movable)" in n for n in p.notes)
    with pytest.raises(ProgramError, match="not an fs_mount workload"):
        program_from_scenario(_board(), workloads, [], duration_ns=S, fs_types={"gup": "ext2"})
    with pytest.raises(ProgramError, match="use one of"):
        program_from_scenario(_board(), workloads, [], duration_ns=S, fs_types={"usb": "xfs"})


def test_timeline_becomes_device_steps_in_time_order() -> None:
    timeline = [
        (3 * S, "cam", "stop", [], "a0"),
        (1 * S, "cam", "start", [(3040, 8), (3040, 8)], "a0", "1080p"),
        (2 * S, "dec", "change_resolution", [(9000, 8)], "a0", "4k"),
    ]
    p = program_from_scenario(_board(), [], timeline, duration_ns=4 * S, via={"cam": "debugfs"})
    devices = {d["name"]: d for d in _lines(p, "device")}
    assert devices["cam"]["via"] == "debugfs" and devices["dec"]["via"] == "dma_heap"
    assert {d["heap"] for d in devices.values()} == {GUEST_AREA}
    steps = _lines(p, "step")
    assert [(s["t_ns"], s["device"], s["action"]) for s in steps] == [
        (str(S), "cam", "start"),
        (str(2 * S), "dec", "change_resolution"),
        (str(3 * S), "cam", "stop"),
    ]
    assert steps[0]["buffers"] == "3040:8,3040:8" and steps[0]["mode"] == "1080p"
    assert "buffers" not in steps[2]
    # the raw line keeps ':' and ',' unencoded: the agent splits on them
    assert "buffers=3040:8,3040:8" in p.to_text()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ((S, "cam", "start", [(16, 0)], "nope"), "not a CMA area of the board"),
        ((S, "cam", "fly", [(16, 0)], "a0"), "use one of"),
        ((S, "cam", "start", [], "a0"), "lists no buffers"),
        ((S, "cam", "start", [(0, 0)], "a0"), "bad buffers"),
        ((S, "cam", "start"), r"give \(time_ns, device, action, buffers, heap"),
    ],
)
def test_bad_timeline_entries_are_named(entry: tuple[object, ...], message: str) -> None:
    with pytest.raises(ProgramError, match=message):
        program_from_scenario(_board(), [], [entry], duration_ns=4 * S)


def test_steps_at_or_after_the_end_are_noted_not_run() -> None:
    p = program_from_scenario(
        _board(), [], [(5 * S, "cam", "start", [(1, 0)], "a0")], duration_ns=4 * S
    )
    assert p.steps == ()
    assert any("not before the end" in n for n in p.notes)


def test_bad_workloads_are_named() -> None:
    with pytest.raises(ProgramError, match="kind 'swap_storm' is not one"):
        program_from_scenario(_board(), [{"kind": "swap_storm", "name": "x"}], [], duration_ns=S)
    with pytest.raises(ProgramError, match="lacks 'growth_pages_per_s'"):
        program_from_scenario(
            _board(), [{"kind": "anon_hog", "name": "h", "target_pages": 10}], [], duration_ns=S
        )
    hog = AnonHog(name="h", size="4MiB", growth="1MiB/s").to_engine()
    p = program_from_scenario(_board(), [{**hog, "numa_node": 1}], [], duration_ns=S)
    assert any("'numa_node' is not reproduced" in n for n in p.notes)
    with pytest.raises(ProgramError, match="names must differ"):
        program_from_scenario(_board(), [hog, hog], [], duration_ns=S)


def test_bad_boards_and_options_are_named() -> None:
    with pytest.raises(ProgramError, match="'ram' in bytes"):
        guest_board({"cpus": 2})
    with pytest.raises(ProgramError, match="under 48 MiB"):
        GuestBoard(ram=128 * MiB, cma_bytes=96 * MiB)
    with pytest.raises(ProgramError, match="multiple of 4 MiB"):
        GuestBoard(ram=128 * MiB, cma_bytes=6 * MiB)
    with pytest.raises(ProgramError, match="unknown run option 'tracing'"):
        program_from_scenario(_board(), [], [], duration_ns=S, options={"tracing": 1})
    with pytest.raises(ProgramError, match="time_scale"):
        program_from_scenario(_board(), [], [], duration_ns=S, time_scale=0)
    with pytest.raises(ProgramError, match="via 'usb' is not a request path"):
        program_from_scenario(
            _board(), [], [(0, "cam", "start", [(1, 0)], "a0")], duration_ns=S, via="usb"
        )


def test_run_line_carries_the_options() -> None:
    p = program_from_scenario(
        _board(),
        [],
        [],
        duration_ns=2 * S,
        sample_interval_ns=S // 4,
        seed=9,
        time_scale=2.5,
        options={"trace_kmem": "off", "thp": "never"},
    )
    [run] = _lines(p, "run")
    assert run["mode"] == "run" and run["duration_ns"] == str(2 * S)
    assert run["sample_interval_ns"] == str(S // 4) and run["seed"] == "9"
    assert float(run["time_scale"]) == 2.5 and run["area"] == GUEST_AREA
    assert run["trace_kmem"] == "off" and run["thp"] == "never" and run["trace"] == "1"
    assert p.guest_seconds == 5.0
    assert p.with_options(trace=False).option("trace") is False


def test_calibration_program() -> None:
    board = GuestBoard(ram=512 * MiB, cpus=2, cma_bytes=128 * MiB)
    p = calibration_program(board, small_reps=9)
    [run] = _lines(p, "run")
    assert run["mode"] == "calibrate" and run["small_reps"] == "9"
    # the traced sweep: cma, page_isolation and the extra events that time the phases
    assert run["trace"] == "1" and run["trace_kmem"] == "off"
    extra = run["trace_extra"].split(",")
    assert {"kmem:mm_page_pcpu_drain", "sched:sched_switch"} <= set(extra)
    # the data disk holds the storage and reclaim file; none without it
    assert [(f.name, f.pages) for f in p.data_files()] == [("calib.dat", 65536)]
    assert calibration_program(board, calib_file_pages=0).data_files() == []
    # a run program never gets the calibration file, whatever its options
    assert GuestProgram(board, 1, options=(("calib_file_pages", 9),)).data_files() == []
    with pytest.raises(ProgramError, match="unknown run option 'reps'"):
        calibration_program(board, reps=3)


def test_tv_evening_converts_whole() -> None:
    """The shipped scenario, taken apart as the scenario runner will, fits the guest."""
    sc = load_scenario("tv_evening")
    specs = sc.device_specs()
    timeline = []
    for step in sc.timeline:
        spec = specs[step.device]
        mode = step.mode or spec.default_mode
        buffers = (
            []
            if step.action == "stop"
            else [
                (b.pages, min(get_order(b.size), 8))
                for b in spec.buffers(mode)
                for _ in range(b.count)
            ]
        )
        timeline.append((step.at, step.device, step.action, buffers, spec.heap, mode))
    p = program_from_scenario(
        sc.board_spec().to_engine("balanced", 1),
        [w.to_engine() for w in sc.workloads],
        timeline,
        duration_ns=sc.duration,
        sample_interval_ns=sc.sample_interval,
    )
    assert len(p.workloads) == 6 and len(p.devices) == 3 and len(p.steps) == 9
    assert {f.pages for f in p.data_files()} == {640 * MiB // 4096, 64 * MiB // 4096}
    assert p.board.cmdline_cma() == "cma=256M"
    kinds = [v for v, _ in parse_program_text(p.to_text())]
    assert kinds[0] == "cmadev-program" and kinds[-1] == "end"


def test_the_agent_runs_every_workload_kind_of_the_model() -> None:
    """Every kind the model has is one the program translates and the agent's table runs
    (``kinds[]`` in guest/workloads.c): none is left to a note."""
    import re
    from pathlib import Path

    import cmadev.kernel
    from cmadev.kernel.program import WORKLOAD_KINDS as PROGRAM_KINDS
    from cmadev.specs.workloads import WORKLOAD_KINDS as MODEL_KINDS

    source = (Path(cmadev.kernel.__file__).parent / "guest" / "workloads.c").read_text()
    agent_kinds = set(re.findall(r'\{ "(\w+)", run_\w+,', source))
    assert set(MODEL_KINDS) == set(PROGRAM_KINDS) == agent_kinds
