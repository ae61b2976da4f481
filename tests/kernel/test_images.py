"""The initramfs, the disks and the QEMU command line, without booting anything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cmadev.kernel import hostdeps
from cmadev.kernel.disks import data_image, fs_image, write_swap_header
from cmadev.kernel.initramfs import (
    CFLAGS,
    CpioWriter,
    agent_sources,
    ensure_agent,
    ensure_initramfs,
    is_static_elf,
    program_archive,
    read_cpio,
    write_initrd,
)
from cmadev.kernel.program import DataFile, GuestBoard
from cmadev.kernel.qemu import Drive, command, console_tail, panic_line

MiB = 1 << 20


def test_cpio_round_trip_and_concatenation() -> None:
    w = CpioWriter()
    w.directory("dev")
    w.char_device("dev/console", 5, 1)
    w.file("init", b"\x7fELF...", mode=0o755)
    w.symlink("bin/sh", "busybox")
    base = w.finish()
    assert len(base) % 4 == 0 and base.startswith(b"070701")
    entries = read_cpio(base + program_archive("cmadev-program version=1\nend\n"))
    assert entries["init"] == (0o100755, b"\x7fELF...")
    assert entries["bin/sh"] == (0o120777, b"busybox")
    assert entries["dev/console"][0] == 0o020600
    assert entries["program.txt"][1] == b"cmadev-program version=1\nend\n"


def test_the_agent_sources_ship_in_the_package() -> None:
    sources = agent_sources()
    assert {
        "main.c",
        "agent.h",
        "workloads.c",
        "devices.c",
        "sampler.c",
        "results.c",
        "uring.c",
        "calibrate.c",
        "util.c",
    } <= set(sources)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc)")
def test_the_agent_compiles_without_a_warning(tmp_path: Path) -> None:
    """-Wall -Wextra -Werror, static: the same command ensure_agent runs."""
    if hostdeps.missing("guest") and not Path("/usr/lib/x86_64-linux-gnu/libc.a").exists():
        pytest.skip(hostdeps.describe(hostdeps.missing("guest")))
    agent = ensure_agent(cache_dir=tmp_path)
    assert is_static_elf(agent)
    assert "-Werror" in CFLAGS
    # on the host it only calibrates, and refuses to run as anything but PID 1 otherwise
    out = subprocess.run([str(agent), "--host-calibrate"], capture_output=True, text=True)
    assert out.returncode == 0 and "memcpy_page_ns=" in out.stdout
    # the figures the fit scales by: a COW fault and a fault's work without the trap
    assert "cow_fault_ns=" in out.stdout and "populate_page_ns=" in out.stdout
    assert subprocess.run([str(agent)], capture_output=True).returncode == 2


@pytest.mark.skipif(
    bool(hostdeps.missing("guest")), reason="needs busybox-static and gcc (apt-get install ...)"
)
def test_initramfs_is_cached_and_takes_the_program(tmp_path: Path) -> None:
    a = ensure_initramfs(cache_dir=tmp_path)
    b = ensure_initramfs(cache_dir=tmp_path)
    assert not a.reused and b.reused and a.path == b.path
    initrd = write_initrd(a, "cmadev-program version=1\nend\n", tmp_path / "initrd")
    entries = read_cpio(initrd.read_bytes())
    assert entries["init"][1] == a.agent.read_bytes()
    assert entries["program.txt"][1].startswith(b"cmadev-program")
    assert entries["dev/console"][0] & 0o170000 == 0o020000


def test_is_static_elf(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"#!/bin/sh\n")
    assert not is_static_elf(tmp_path / "x")
    if Path("/bin/ls").exists():
        assert not is_static_elf(Path("/bin/ls"))  # dynamically linked on Debian


def test_swap_header_layout(tmp_path: Path) -> None:
    path = write_swap_header(tmp_path / "swap", 64 * MiB)
    data = path.read_bytes()[:4096]
    assert data[4086:4096] == b"SWAPSPACE2"
    assert int.from_bytes(data[1024:1028], "little") == 1  # version
    assert int.from_bytes(data[1028:1032], "little") == 64 * MiB // 4096 - 1  # last_page
    assert path.stat().st_size == 64 * MiB


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs e2fsprogs")
def test_data_image_holds_the_files(tmp_path: Path) -> None:
    files = [DataFile("w0.dat", 300), DataFile("w1.dat", 5)]
    image = data_image(files, cache_dir=tmp_path)
    assert data_image(files, cache_dir=tmp_path) == image  # cached by layout
    listing = subprocess.run(
        ["debugfs", "-R", "ls -l /", str(image)], capture_output=True, text=True
    ).stdout
    assert "w0.dat" in listing and str(300 * 4096) in listing and str(5 * 4096) in listing
    dump = subprocess.run(["debugfs", "-R", "cat /w1.dat", str(image)], capture_output=True).stdout
    assert len(dump) == 5 * 4096 and dump.count(b"\0") < len(dump) // 2  # real data, not holes
    ext2 = fs_image("ext2", 16 * MiB, cache_dir=tmp_path)
    head = subprocess.run(["dumpe2fs", "-h", str(ext2)], capture_output=True, text=True).stdout
    features = next(line for line in head.splitlines() if line.startswith("Filesystem features"))
    assert "has_journal" not in features and "extent" not in features  # a plain ext2
    ext4 = fs_image("ext4", 16 * MiB, cache_dir=tmp_path)
    head = subprocess.run(["dumpe2fs", "-h", str(ext4)], capture_output=True, text=True).stdout
    assert "has_journal" in head and "extent" in head


def test_qemu_command(tmp_path: Path) -> None:
    board = GuestBoard(ram=512 * MiB, cpus=2, cma_bytes=128 * MiB)
    drives = [
        Drive("cmadev-results", tmp_path / "r.img"),
        Drive("cmadev-data", tmp_path / "d.img", snapshot=True),
        Drive("cmadev-dio1", null_latency_ns=10_000_000),
        Drive("cmadev-mnt2", tmp_path / "m.img", iops=6700),
    ]
    cmd = command(
        qemu="qemu-system-x86_64",
        bzimage=tmp_path / "bz",
        initrd=tmp_path / "i",
        board=board,
        drives=drives,
        console=tmp_path / "c.log",
    )
    text = " ".join(cmd)
    assert "-m 512 -smp 2" in text and "-no-reboot" in text and "-nodefaults" in text
    assert "tcg,thread=multi" in text
    append = cmd[cmd.index("-append") + 1]
    assert "cma=128M" in append and "console=ttyS0" in append and "panic=-1" in append
    assert "serial=cmadev-results" in text and "snapshot=on" in text
    assert "driver=null-co,read-zeroes=on,latency-ns=10000000" in text
    assert "throttling.iops-total=6700" in text and text.count("throttling") == 1
    assert "-mem-prealloc" in text and "-cpu qemu64" in text
    kvm = command(
        qemu="q",
        bzimage=tmp_path,
        initrd=tmp_path,
        board=board,
        drives=[],
        console=tmp_path / "c",
        accel="kvm",
    )
    assert "kvm" in kvm and "host" in kvm
    from cmadev.kernel.errors import GuestError

    with pytest.raises(GuestError, match="accel 'hvf'"):
        command(
            qemu="q",
            bzimage=tmp_path,
            initrd=tmp_path,
            board=board,
            drives=[],
            console=tmp_path / "c",
            accel="hvf",
        )


def test_console_helpers() -> None:
    console = "a\nb\n[ 1.0] Kernel panic - not syncing: Attempted to kill init!\nc\n"
    assert panic_line(console) == "[ 1.0] Kernel panic - not syncing: Attempted to kill init!"
    assert panic_line("fine\n") is None
    assert console_tail(console, 2) == (
        "[ 1.0] Kernel panic - not syncing: Attempted to kill init!\nc"
    )
