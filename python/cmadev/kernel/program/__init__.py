"""Guest programs: what the agent in the guest does, and when.

:mod:`~cmadev.kernel.program.model` holds a program's pieces and the line format the agent
reads (:class:`GuestProgram`, :meth:`GuestProgram.to_text`, :func:`calibration_program`);
:mod:`~cmadev.kernel.program.from_scenario` builds a program from a scenario's pieces
(:func:`program_from_scenario`, :func:`guest_board`). Every name of both is importable from
here, as it was when they were one module.
"""

from cmadev.kernel.program.from_scenario import (
    WORKLOAD_KINDS,
    guest_board,
    program_from_scenario,
)
from cmadev.kernel.program.from_scenario import X86_PAGEBLOCK_ORDER as X86_PAGEBLOCK_ORDER
from cmadev.kernel.program.model import (
    ACTIONS,
    CALIBRATION_OPTIONS,
    FS_TYPES,
    GUEST_AREA,
    RUN_OPTIONS,
    VIAS,
    DataFile,
    DioDisk,
    GuestBoard,
    GuestDevice,
    GuestProgram,
    GuestStep,
    GuestWorkload,
    MountDisk,
    calibration_program,
    parse_program_text,
)
from cmadev.kernel.program.model import PAGE_SIZE as PAGE_SIZE
from cmadev.kernel.program.model import MiB as MiB
from cmadev.kernel.program.model import Value as Value

__all__ = [
    "ACTIONS",
    "CALIBRATION_OPTIONS",
    "FS_TYPES",
    "GUEST_AREA",
    "RUN_OPTIONS",
    "VIAS",
    "WORKLOAD_KINDS",
    "DataFile",
    "DioDisk",
    "GuestBoard",
    "GuestDevice",
    "GuestProgram",
    "GuestStep",
    "GuestWorkload",
    "MountDisk",
    "calibration_program",
    "guest_board",
    "parse_program_text",
    "program_from_scenario",
]
