"""The specification floor: what users write (boards, CMA areas, costs, policies, devices,
workloads, scenarios, sweeps), as frozen pydantic models, and the shipped catalog.

Nothing here talks to the engine: a specification loads, validates and serialises without
``cmadev._core``. The simulation floor (:mod:`cmadev.sim`) runs them.
"""

from cmadev.specs.base import Spec, load_model, validate_model
from cmadev.specs.board import Board, CmaArea, CostModel
from cmadev.specs.catalog import (
    list_boards,
    list_devices,
    list_scenarios,
    list_sweeps,
    load_board,
    load_device,
)
from cmadev.specs.device import Buffer, DeviceSpec
from cmadev.specs.policy import FIXES, PLACEMENTS, Policy, PolicyChoice, parse_policy
from cmadev.specs.scenario import Scenario, ScenarioDevice, Step, load_scenario
from cmadev.specs.sweep import GridPoint, Keep, Sweep, load_sweep
from cmadev.specs.workloads import WorkloadBase, load_workload

__all__ = [
    "FIXES",
    "PLACEMENTS",
    "Board",
    "Buffer",
    "CmaArea",
    "CostModel",
    "DeviceSpec",
    "GridPoint",
    "Keep",
    "Policy",
    "PolicyChoice",
    "Scenario",
    "ScenarioDevice",
    "Spec",
    "Step",
    "Sweep",
    "WorkloadBase",
    "list_boards",
    "list_devices",
    "list_scenarios",
    "list_sweeps",
    "load_board",
    "load_device",
    "load_model",
    "load_scenario",
    "load_sweep",
    "load_workload",
    "parse_policy",
    "validate_model",
]
