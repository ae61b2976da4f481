"""cmadev: an emulated embedded-device testbed for the Linux kernel's Contiguous Memory
Allocator.

The memory model (buddy allocator, pageblocks, zones, reclaim, pins, migration,
``alloc_contig_range``, CMA areas) runs in Rust (:mod:`cmadev._core`) in virtual time. The
package stands in floors, each importing only those below it:

- :mod:`cmadev.specs`: what users write (boards, policies, devices, workloads, scenarios);
- :mod:`cmadev.results`: what a run produced, as plain data, whatever ran it;
- :mod:`cmadev.sim`: the machine, its devices and the scenario runner, the only code that
  talks to the engine;
- :mod:`cmadev.report`: comparisons of policies, tables, plots, the report folder;
- :mod:`cmadev.sweeps`: grids over scenario fields x policies x seeds on every core or a
  Dask cluster, written as Parquet (:func:`sweep`);
- :mod:`cmadev.cli`: the command line; :mod:`cmadev.testing` and the pytest plugin.
"""

from typing import TYPE_CHECKING, Any, Union

from cmadev import devices, errors, testing, units
from cmadev.errors import (
    CmadevError,
    CmaError,
    EngineBugError,
    InvalidConfigError,
    MisuseError,
    OutOfMemoryError,
    SpecError,
)
from cmadev.report.comparison import Comparison, compare
from cmadev.results import Blocker, CmaResult, DeviceResult, ScenarioResult
from cmadev.sim import runner as _runner  # registers the "model" backend of Scenario.run
from cmadev.sim.devices import CameraSensor, Device, DeviceRequest, TvPipeline, VideoDecoder
from cmadev.sim.dma_heap import DmaHeap
from cmadev.sim.machine import Machine
from cmadev.sim.mm import CmaRequest, Condition, Hold, Page
from cmadev.specs import scenario, workloads
from cmadev.specs.board import Board, CmaArea, CostModel
from cmadev.specs.catalog import list_boards, list_devices, list_scenarios, load_board, load_device
from cmadev.specs.device import Buffer, DeviceSpec
from cmadev.specs.policy import Policy
from cmadev.specs.scenario import Scenario, load_scenario, register_backend
from cmadev.specs.sweep import Sweep, load_sweep
from cmadev.specs.workloads import (
    AnonHog,
    Build,
    DirectIO,
    FsMount,
    KernelAlloc,
    LongtermPinner,
    PageCacheReader,
    TmpfsFile,
    Writer,
)

if TYPE_CHECKING:
    from cmadev.sweeps import SweepResult, sweep

__version__: str


def _run_on_kernel(
    scenario: Scenario, policy: Union[Policy, str, None], **options: Any
) -> ScenarioResult:
    """The ``"kernel"`` backend of :meth:`Scenario.run`, imported on its first use: the QEMU
    backend's modules would add a tenth to every start-up (the demo's among them). Importing
    :mod:`cmadev.kernel.backend` registers the backend itself in this one's place."""
    from cmadev.kernel.backend import run_on_kernel

    return run_on_kernel(scenario, policy, **options)


register_backend("kernel", _run_on_kernel)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cmadev")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Names imported on first use, so that ``import cmadev`` stays quick: the sweeps (their
    process pools and Parquet) and the installed version (``importlib.metadata``)."""
    if name in ("sweep", "SweepResult"):
        import cmadev.sweeps

        value = getattr(cmadev.sweeps, name)
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module 'cmadev' has no attribute {name!r}")
    globals()[name] = value
    return value


del _runner

__all__ = [
    "AnonHog",
    "Blocker",
    "Board",
    "Buffer",
    "Build",
    "CameraSensor",
    "CmaArea",
    "CmaError",
    "CmaRequest",
    "CmaResult",
    "CmadevError",
    "Comparison",
    "Condition",
    "CostModel",
    "Device",
    "DeviceRequest",
    "DeviceResult",
    "DeviceSpec",
    "DirectIO",
    "DmaHeap",
    "EngineBugError",
    "FsMount",
    "Hold",
    "InvalidConfigError",
    "KernelAlloc",
    "LongtermPinner",
    "Machine",
    "MisuseError",
    "OutOfMemoryError",
    "Page",
    "PageCacheReader",
    "Policy",
    "Scenario",
    "ScenarioResult",
    "SpecError",
    "Sweep",
    "SweepResult",
    "TmpfsFile",
    "TvPipeline",
    "VideoDecoder",
    "Writer",
    "__version__",
    "compare",
    "devices",
    "errors",
    "list_boards",
    "list_devices",
    "list_scenarios",
    "load_board",
    "load_device",
    "load_scenario",
    "load_sweep",
    "scenario",
    "sweep",
    "testing",
    "units",
    "workloads",
]
