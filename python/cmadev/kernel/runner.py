"""Running a guest program: disks, initrd, QEMU, results; and the calibration run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

from cmadev.kernel import hostdeps, qemu
from cmadev.kernel.build import KernelImage, ensure_kernel, kernel_image
from cmadev.kernel.disks import data_image, fs_image, sparse_file, write_swap_header
from cmadev.kernel.errors import GuestError, ResultsError
from cmadev.kernel.initramfs import Initramfs, ensure_initramfs, write_initrd
from cmadev.kernel.parsers import cma_call_phases
from cmadev.kernel.program import GuestBoard, GuestProgram, calibration_program
from cmadev.kernel.results import GuestRun, agent_error, assemble, read_records

PathLike = Union[str, "os.PathLike[str]"]
KernelArg = Union[None, KernelImage, PathLike]
Progress = Callable[[str], None]

MiB = 1 << 20
BOOT_ALLOWANCE_S = 240.0
"""Wall time allowed for a TCG boot, setup, the end of the run and power-off (a boot takes
seconds; the rest is margin for a loaded host)."""


def resolve_kernel(kernel: KernelArg, progress: Optional[Progress] = None) -> KernelImage:
    """``None``: the cached cmadev kernel (built if needed); a path: the user's bzImage; a
    :class:`KernelImage`: itself."""
    if kernel is None:
        return ensure_kernel(progress=progress)
    if isinstance(kernel, KernelImage):
        return kernel
    return kernel_image(kernel)


def default_timeout(program: GuestProgram) -> float:
    """Wall seconds a run may take: the program's guest time, twice, plus the boot
    allowance and the grace for requests still in flight at the end."""
    grace = float(program.option("request_grace_ns") or 0) / 1e9
    return BOOT_ALLOWANCE_S + 2 * program.guest_seconds + grace


def _results_size(program: GuestProgram) -> int:
    samples = program.duration_ns // max(program.sample_interval_ns, 1) + 4
    trace = int(program.option("trace_limit_bytes") or 0)
    return max(256 * MiB, samples * 256 * 1024 + trace + 64 * MiB) // MiB * MiB


def _drives(
    program: GuestProgram,
    board: GuestBoard,
    work: Path,
    cache_dir: Optional[PathLike],
    data_iops: Optional[int] = None,
) -> list[qemu.Drive]:
    drives = [
        qemu.Drive("cmadev-results", sparse_file(work / "results.img", _results_size(program)))
    ]
    files = program.data_files()
    if files:
        image = data_image(files, cache_dir)
        drives.append(qemu.Drive("cmadev-data", image, snapshot=True, iops=data_iops))
    if board.swap:
        drives.append(qemu.Drive("cmadev-swap", write_swap_header(work / "swap.img", board.swap)))
    for d in program.dio_disks():
        drives.append(qemu.Drive(d.serial, null_latency_ns=d.latency_ns, null_size=d.size))
    for m in program.mount_disks():
        drives.append(qemu.Drive(m.serial, fs_image(m.fstype, m.size, cache_dir), snapshot=True))
    return drives


def run_program(
    program: GuestProgram,
    board: Optional[GuestBoard] = None,
    *,
    kernel: KernelArg = None,
    accel: str = "tcg",
    timeout: Optional[float] = None,
    initramfs: Optional[Initramfs] = None,
    append: tuple[str, ...] = (),
    cpu: Optional[str] = None,
    prealloc: bool = True,
    data_iops: Optional[int] = None,
    qemu_binary: str = "qemu-system-x86_64",
    cache_dir: Optional[PathLike] = None,
    keep_dir: Optional[PathLike] = None,
    progress: Optional[Progress] = None,
) -> GuestRun:
    """Boot a guest, run ``program`` in it, and return what it captured.

    ``board``: the machine to boot (default: ``program.board``). ``kernel``: None for the
    cmadev kernel (built and cached on first use), a path to a bzImage of the user's, or a
    :class:`KernelImage`. ``accel``: ``tcg`` (default) or ``kvm``. ``timeout``: wall
    seconds (default :func:`default_timeout`). ``append``: more kernel arguments
    (``page_owner=on``...). ``cpu``: QEMU's ``-cpu`` model (default
    :data:`cmadev.kernel.qemu.TCG_CPU` under TCG). ``keep_dir``: keep the run's files
    (console, results disk, initrd) there instead of a temporary directory that is removed.
    ``prealloc``: QEMU's ``-mem-prealloc`` (default on: see :func:`cmadev.kernel.qemu.command`).
    ``data_iops``: throttle the data disk to this many requests per second (the readers'
    and writers' storage; unthrottled, it reads from the host's page cache, far faster
    than eMMC: about 6,700/s is the board cost model's 150 us per read request).

    Raises :class:`GuestError` (with the console's last lines) when the guest panics, the
    agent fails, or the run times out; :class:`HostDependencyError` naming the Debian
    packages when QEMU or e2fsprogs is missing.
    """
    say = progress or (lambda _m: None)
    hostdeps.require("run")
    machine = board or program.board
    image = resolve_kernel(kernel, progress)
    base = initramfs or ensure_initramfs(cache_dir=cache_dir)
    text = program.to_text()
    limit = timeout if timeout is not None else default_timeout(program)
    if keep_dir is not None:
        work = Path(keep_dir)
        work.mkdir(parents=True, exist_ok=True)
        cleanup = False
    else:
        work = Path(tempfile.mkdtemp(prefix="cmadev-guest-"))
        cleanup = True
    try:
        (work / "program.txt").write_text(text)
        initrd = write_initrd(base, text, work / "initrd.cpio")
        drives = _drives(program, machine, work, cache_dir, data_iops)
        console = work / "console.log"
        cmd = qemu.command(
            qemu=qemu_binary,
            bzimage=image.bzimage,
            initrd=initrd,
            board=machine,
            drives=drives,
            console=console,
            accel=accel,
            append=append,
            cpu=cpu,
            prealloc=prealloc,
        )
        say(
            f"booting {image.version} ({accel}, {machine.ram_mib} MiB, {machine.cpus} CPUs, "
            f"{machine.cmdline_cma()}), {program.guest_seconds:.1f} s of program"
        )
        out = qemu.run(cmd, console, limit)
        return _collect(program, image, cmd, out, work / "results.img", accel)
    finally:
        if cleanup:
            shutil.rmtree(work, ignore_errors=True)


def _collect(
    program: GuestProgram,
    image: KernelImage,
    cmd: list[str],
    out: qemu.QemuOutcome,
    results: Path,
    accel: str,
) -> GuestRun:
    tail = qemu.console_tail(out.console)
    where = f"\n--- last console lines ---\n{tail}"
    if out.stderr.strip():
        where = f"\n--- QEMU said ---\n{out.stderr.strip()[-2000:]}{where}"
    try:
        with open(results, "rb") as f:
            data = f.read(_results_size(program))
        records, ended = read_records(data)
    except ResultsError as err:
        panic = qemu.panic_line(out.console)
        if panic:
            why = f"the guest kernel panicked: {panic}"
        elif out.timed_out and not out.console.strip():
            why = (
                f"the run timed out after {out.wall_s:.0f} s with nothing on the console: the "
                f"guest never got to the kernel"
                + (
                    " (KVM guests hang after the BIOS on some hosts: use accel='tcg')"
                    if accel == "kvm"
                    else ""
                )
            )
        elif out.timed_out:
            why = f"the run timed out after {out.wall_s:.0f} s before the agent started"
        elif out.returncode:
            why = f"QEMU failed (exit status {out.returncode}) before the agent started"
        else:
            why = str(err)
        raise GuestError(f"{why}{where}", out.console, tuple(cmd)) from None
    failure = agent_error(records)
    if failure:
        raise GuestError(f"the guest agent failed: {failure}{where}", out.console, tuple(cmd))
    if not ended:
        panic = qemu.panic_line(out.console)
        if out.timed_out:
            why = f"the run timed out after {out.wall_s:.0f} s (QEMU killed)"
        elif panic:
            why = f"the guest kernel panicked: {panic}"
        else:
            why = f"QEMU exited (status {out.returncode}) before the agent finished"
        raise GuestError(
            f"{why}; {len(records)} records were written{where}", out.console, tuple(cmd)
        )
    run = assemble(
        records,
        kernel_version="",
        qemu_command=tuple(cmd),
        program_text=program.to_text(),
        time_scale=program.time_scale,
        notes=program.notes,
    )
    if not run.kernel_version:
        run.kernel_version = image.version
    if not run.kernel_version.startswith("6.1."):
        run.notes.append(
            f"the program's notes describe Linux 6.1 (the kernel cmadev builds); this run "
            f"booted {run.kernel_version}, which may behave otherwise"
        )
    run.console = out.console
    run.wall_s = out.wall_s
    run.accel = accel
    return run


def host_memory_costs(agent: Path) -> dict[str, float]:
    """The agent's memory micro-measurements run on the host (``agent --host-calibrate``)."""
    proc = subprocess.run(
        [str(agent), "--host-calibrate"], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise GuestError(f"host calibration failed: {proc.stderr}")
    out = {}
    for line in proc.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = float(v)
    return out


RATIO_KEYS = (
    "memcpy_page_ns",
    "zero_page_ns",
    "anon_fault_ns",
    "anon_unmap_page_ns",
    "cow_fault_ns",
    "populate_page_ns",
)


def measure_costs(
    board: GuestBoard,
    *,
    kernel: KernelArg = None,
    accel: str = "tcg",
    timeout: float = 900.0,
    cpu: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    progress: Optional[Progress] = None,
    **options: Any,
) -> dict[str, Any]:
    """Micro-measurements in the guest and the same memory ones on the host, in one run.

    Returns raw figures (ns, medians of repeats) for the lead's cost-model fit:

    - ``guest``: ``memcpy_page_ns`` (a 4 KiB copy), ``zero_page_ns``, ``anon_fault_ns`` (a
      first-touch write fault), ``anon_unmap_page_ns``; for the idle area
      ``idle_debugfs_alloc_<pages>_ns`` (cma_alloc through debugfs: no clearing),
      ``idle_dma_heap_alloc_<pages>_ns`` (the dma-heap: clears every page), their
      ``_release_`` counterparts and ``_failed``/``_migrated`` counts; the same with
      ``fill_`` while an anonymous process holds ``fill_pages`` (so the area holds pages to
      migrate; ``fill_cma_free_kb`` says how full it was);
      the traced sweep's latencies as ``phase_debugfs_alloc_<pages>_ns``; ``cow_fault_ns``
      (a copy-on-write fault: the kernel copies the page), ``populate_page_ns``
      (``MADV_POPULATE_WRITE``: a fault's work without the trap); the board's memory
      (``mem_total_kb``, ``mem_free_kb``, ``min_free_kbytes``); with a data disk
      (``calib_file_pages``), ``storage_{read,write}_{4k,1m}_ns`` (O_DIRECT) and
      ``reclaim_*`` (kswapd's and the filler's CPU time, pages scanned and stolen);
    - ``phases``: one :class:`~cmadev.kernel.parsers.CmaPhases` (as a dict) per traced call;
    - ``host``: the memory figures on this host;
    - ``ratio``: guest / host for each memory figure (TCG is roughly 15x for memcpy);
    - ``kernel``, ``accel``, ``wall_s``, ``qemu_command``.

    ``options`` go to the calibration program (:data:`~cmadev.kernel.program.
    CALIBRATION_OPTIONS`). :mod:`cmadev.kernel.calibrate` fits a cost model to them.
    """
    base = ensure_initramfs(cache_dir=cache_dir)
    program = calibration_program(board, **options)
    t0 = time.monotonic()
    run = run_program(
        program,
        kernel=kernel,
        accel=accel,
        timeout=timeout,
        initramfs=base,
        cpu=cpu,
        cache_dir=cache_dir,
        progress=progress,
    )
    host = host_memory_costs(base.agent)
    ratio = {
        k: run.calibration[k] / host[k] for k in RATIO_KEYS if k in run.calibration and host.get(k)
    }
    return {
        "guest": dict(run.calibration),
        "phases": [p.to_dict() for p in cma_call_phases(run.trace_events())],
        "host": host,
        "ratio": ratio,
        "kernel": run.kernel_version,
        "accel": accel,
        "cpu": cpu or (qemu.TCG_CPU if accel == "tcg" else "host"),
        "board": {"ram": board.ram, "cpus": board.cpus, "cma_bytes": board.cma_bytes},
        "wall_s": time.monotonic() - t0,
        "boot_s": run.boot_s,
        "qemu_command": list(run.qemu_command),
        "notes": list(run.notes),
    }


__all__ = ["default_timeout", "host_memory_costs", "measure_costs", "resolve_kernel", "run_program"]
