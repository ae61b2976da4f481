"""The kernel backend: a cmadev scenario's load on a real Linux kernel under QEMU.

A real Linux 6.1 (Debian's ``linux-source-6.1``, configured from tinyconfig plus
``config/cmadev.config`` and cached) boots under ``qemu-system-x86_64`` with the board's
memory, CPUs and CMA area. Its ``/init`` is the cmadev guest agent (``guest/*.c``, compiled
statically on the host), which replays the program's workloads and device requests at their
times and samples the kernel's own views; everything comes back through a raw disk as the
dataclasses of :mod:`cmadev.kernel.results`.

The API::

    from cmadev import kernel

    image = kernel.ensure_kernel()            # build once (a few minutes), then cached
    base = kernel.ensure_initramfs()          # agent + busybox, cached
    program = kernel.program_from_scenario(
        board.to_engine("balanced", seed=1),  # plain data
        [w.to_engine() for w in workloads],
        [(15_000_000_000, "camera", "start", [(3040, 8)] * 4, "camera")],
        duration_ns=30_000_000_000,
    )
    run = kernel.run_program(program)         # a GuestRun: samples, requests, trace, dmesg
    costs = kernel.measure_costs(program.board)
    fit = calibrate.fit(calibrate.measure(board))  # cmadev.kernel.calibrate: a CostModel

Host packages (Debian): ``qemu-system-x86 e2fsprogs`` to run; ``linux-source-6.1 bc bison
flex libelf-dev libssl-dev build-essential`` to build the kernel; ``busybox-static`` and
``gcc`` for the initramfs. :func:`hostdeps.missing` lists what is absent.
"""

from __future__ import annotations

from cmadev.kernel import hostdeps, parsers
from cmadev.kernel.build import KernelImage, bzimage_version, ensure_kernel, kernel_image
from cmadev.kernel.errors import (
    GuestError,
    HostDependencyError,
    KernelBackendError,
    KernelBuildError,
    ProgramError,
    ResultsError,
)
from cmadev.kernel.initramfs import Initramfs, ensure_agent, ensure_initramfs
from cmadev.kernel.program import (
    GUEST_AREA,
    GuestBoard,
    GuestDevice,
    GuestProgram,
    GuestStep,
    GuestWorkload,
    calibration_program,
    guest_board,
    program_from_scenario,
)
from cmadev.kernel.results import (
    BufferRequest,
    DeviceAction,
    GuestRun,
    Release,
    Sample,
    WorkloadReport,
)
from cmadev.kernel.runner import measure_costs, run_program

__all__ = [
    "GUEST_AREA",
    "BufferRequest",
    "DeviceAction",
    "GuestBoard",
    "GuestDevice",
    "GuestError",
    "GuestProgram",
    "GuestRun",
    "GuestStep",
    "GuestWorkload",
    "HostDependencyError",
    "Initramfs",
    "KernelBackendError",
    "KernelBuildError",
    "KernelImage",
    "ProgramError",
    "Release",
    "ResultsError",
    "Sample",
    "WorkloadReport",
    "bzimage_version",
    "calibration_program",
    "ensure_agent",
    "ensure_initramfs",
    "ensure_kernel",
    "guest_board",
    "hostdeps",
    "kernel_image",
    "measure_costs",
    "parsers",
    "program_from_scenario",
    "run_program",
]
