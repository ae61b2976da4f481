"""cmadev: an emulated embedded-device testbed for the Linux kernel's Contiguous Memory
Allocator.

The memory model (buddy allocator, pageblocks, zones, reclaim, pins, migration,
``alloc_contig_range``, CMA areas) runs in Rust (:mod:`cmadev._core`) in virtual time; this
package describes boards, devices, workloads and policies, drives device timelines, and
reports.
"""

from cmadev import devices, errors, units, workloads
from cmadev.catalog import list_boards, list_devices, load_board, load_device
from cmadev.errors import (
    CmadevError,
    CmaError,
    EngineBugError,
    InvalidConfigError,
    MisuseError,
    OutOfMemoryError,
    SpecError,
)
from cmadev.machine import Blocker, CmaRequest, CmaResult, Hold, Machine, Page
from cmadev.models import Board, Buffer, CmaArea, CostModel, DeviceSpec, Policy

__all__ = [
    "Blocker",
    "Board",
    "Buffer",
    "CmaArea",
    "CmaError",
    "CmaRequest",
    "CmaResult",
    "CmadevError",
    "CostModel",
    "DeviceSpec",
    "EngineBugError",
    "Hold",
    "InvalidConfigError",
    "Machine",
    "MisuseError",
    "OutOfMemoryError",
    "Page",
    "Policy",
    "SpecError",
    "devices",
    "errors",
    "list_boards",
    "list_devices",
    "load_board",
    "load_device",
    "units",
    "workloads",
]
