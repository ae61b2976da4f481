"""cmadev: an emulated embedded-device testbed for the Linux kernel's Contiguous Memory
Allocator.

The memory model (buddy allocator, pageblocks, zones, reclaim, pins, migration,
``alloc_contig_range``, CMA areas) runs in Rust (:mod:`cmadev._core`) in virtual time; this
package describes boards, devices, workloads and policies, drives device timelines, and
reports.
"""

from cmadev import devices, errors, scenario, testing, units, workloads
from cmadev.catalog import list_boards, list_devices, load_board, load_device
from cmadev.device import CameraSensor, Device, DeviceRequest, DmaHeap, TvPipeline, VideoDecoder
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
from cmadev.scenario import Scenario, compare, list_scenarios, load_scenario

__all__ = [
    "Blocker",
    "Board",
    "Buffer",
    "CameraSensor",
    "CmaArea",
    "CmaError",
    "CmaRequest",
    "CmaResult",
    "CmadevError",
    "CostModel",
    "Device",
    "DeviceRequest",
    "DeviceSpec",
    "DmaHeap",
    "EngineBugError",
    "Hold",
    "InvalidConfigError",
    "Machine",
    "MisuseError",
    "OutOfMemoryError",
    "Page",
    "Policy",
    "Scenario",
    "SpecError",
    "TvPipeline",
    "VideoDecoder",
    "compare",
    "devices",
    "errors",
    "list_boards",
    "list_devices",
    "list_scenarios",
    "load_board",
    "load_device",
    "load_scenario",
    "scenario",
    "testing",
    "units",
    "workloads",
]
