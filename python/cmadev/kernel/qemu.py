"""Booting the guest: the QEMU command line, and running it to the end.

The guest is ``qemu-system-x86_64`` with the board's memory and CPUs, the kernel and the
run's initrd, no graphics, no network, no default devices, the serial console written to a
file (kept for error messages, never parsed for results), and virtio-blk disks the agent
finds by serial number: ``cmadev-results`` (raw, where the agent writes), ``cmadev-data``
(ext4, ``snapshot=on``), ``cmadev-swap``, ``cmadev-dio<N>`` (QEMU's ``null-co`` driver with
``latency-ns``: O_DIRECT requests that take a set time) and ``cmadev-mnt<N>``.

The kernel runs with ``panic=-1`` and the agent reboots when done; with ``-no-reboot`` QEMU
then exits, so the end of the QEMU process is the end of the run. On these machines KVM
guests hang right after the BIOS, so the default accelerator is TCG (``accel="kvm"`` where
it works). QEMU runs in a session of its own and is killed with its process group on any
exit path (timeout, error, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from cmadev.kernel.errors import GuestError
from cmadev.kernel.program import GuestBoard

PathLike = Union[str, "os.PathLike[str]"]
ACCELS = ("tcg", "kvm")

BASE_APPEND = (
    "console=ttyS0",
    "panic=-1",  # reboot at once on a panic: QEMU (-no-reboot) exits, the host reports it
    "oops=panic",
    "loglevel=1",  # only emergencies on the (slow, synchronous) console; dmesg keeps all
    "nokaslr",
    "rdinit=/init",
)
"""Kernel command line arguments of every run (``cma=`` is added from the board)."""

TCG_CPU = "qemu64"
"""The CPU model under TCG: QEMU's default. ``max`` advertises ERMS, and the kernel then
clears and copies pages with ``rep stosb``/``movsb`` (clear_page_erms, memset_erms), which
TCG runs about four times slower than the ``rep stosq`` it uses otherwise (measured: a 64 MiB
dma-heap allocation 92 ms with ``max``, 25 ms with ``qemu64``)."""


@dataclass(frozen=True)
class Drive:
    """One virtio-blk disk: a file (raw) or QEMU's null-co driver answering after
    ``latency_ns``; ``snapshot`` keeps the file unchanged (writes go to a temporary overlay)."""

    serial: str
    file: Optional[Path] = None
    snapshot: bool = False
    null_latency_ns: Optional[int] = None
    null_size: int = 1 << 30
    iops: Optional[int] = None
    """QEMU I/O throttling (``throttling.iops-total``): a slow device's request rate."""

    def args(self, index: int) -> list[str]:
        node = f"d{index}"
        if self.null_latency_ns is not None:
            drive = (
                f"driver=null-co,read-zeroes=on,latency-ns={self.null_latency_ns},"
                f"size={self.null_size},if=none,id={node}"
            )
        else:
            assert self.file is not None
            drive = f"file={self.file},format=raw,if=none,id={node},cache=writeback"
            if self.snapshot:
                drive += ",snapshot=on"
            if self.iops:
                drive += f",throttling.iops-total={self.iops}"
        return ["-drive", drive, "-device", f"virtio-blk-pci,drive={node},serial={self.serial}"]


def command(
    *,
    qemu: str,
    bzimage: Path,
    initrd: Path,
    board: GuestBoard,
    drives: Sequence[Drive],
    console: Path,
    accel: str = "tcg",
    append: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    cpu: Optional[str] = None,
    prealloc: bool = True,
) -> list[str]:
    """The QEMU command line of a run. ``cpu``: the ``-cpu`` model (default
    :data:`TCG_CPU` under TCG, ``host`` under KVM)."""
    if accel not in ACCELS:
        raise GuestError(f"accel {accel!r}: use one of {', '.join(ACCELS)}")
    cmd = [
        qemu,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-m",
        str(board.ram_mib),
        "-smp",
        str(board.cpus),
    ]
    if prealloc:
        cmd.append("-mem-prealloc")
    if accel == "tcg":
        # multi-threaded TCG: one host thread per vCPU, as on x86-on-x86 by default
        cmd += ["-accel", "tcg,thread=multi", "-cpu", cpu or TCG_CPU]
    else:
        cmd += ["-accel", "kvm", "-cpu", cpu or "host"]
    cmd += ["-kernel", str(bzimage), "-initrd", str(initrd)]
    cmd += ["-append", " ".join([*BASE_APPEND, board.cmdline_cma(), *append])]
    cmd += ["-chardev", f"file,id=con,path={console}", "-serial", "chardev:con"]
    for i, d in enumerate(drives):
        cmd += d.args(i)
    cmd += list(extra_args)
    return cmd


def console_tail(console: str, lines: int = 40) -> str:
    """The last ``lines`` lines of the console, for error messages."""
    return "\n".join(console.splitlines()[-lines:])


def panic_line(console: str) -> Optional[str]:
    """The kernel's panic message, if the console has one."""
    for line in console.splitlines():
        if "Kernel panic - not syncing" in line:
            return line.strip()
    return None


@dataclass(frozen=True)
class QemuOutcome:
    returncode: Optional[int]
    wall_s: float
    timed_out: bool
    console: str
    stderr: str


def run(cmd: Sequence[str], console: Path, timeout_s: float) -> QemuOutcome:
    """Run QEMU to its end or until ``timeout_s``; always leaves no QEMU behind."""
    t0 = time.monotonic()
    stderr_path = console.with_suffix(".stderr")
    timed_out = False
    with open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            raise GuestError(f"cannot start {cmd[0]}: {e}", command=tuple(cmd)) from e
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = console.read_text(errors="replace") if console.exists() else ""
    return QemuOutcome(
        returncode=proc.returncode if not timed_out else None,
        wall_s=time.monotonic() - t0,
        timed_out=timed_out,
        console=text,
        stderr=stderr_path.read_text(errors="replace"),
    )


__all__ = [
    "ACCELS",
    "BASE_APPEND",
    "Drive",
    "QemuOutcome",
    "command",
    "console_tail",
    "panic_line",
    "run",
]
