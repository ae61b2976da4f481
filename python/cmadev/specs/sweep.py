"""Sweeps: one scenario over a grid of its own fields, several policies and many seeds.

A :class:`Sweep` names a scenario, the policies, the seeds, a grid over any scenario field by
its path (:mod:`cmadev.specs.fieldpath`) and what to keep of each run. In TOML::

    name = "recording_pressure"
    scenario = "tv_evening"                  # a shipped name, a path, or an inline table
    policies = ["legacy", "mainline-today", "gcma"]
    seeds = 20                               # 20 seeds from the scenario's own, or a list

    [grid]                                   # every combination runs (the last varies fastest)
    "workloads.recording.iops" = [25, 100, 400]
    "board.cma_areas.tv.size" = ["256MiB", "320MiB"]

Every grid point is validated as a scenario when the sweep loads, before anything runs: a
value that makes no scenario is a :class:`~cmadev.errors.SpecError` naming the sweep file,
the path, the value and what is wrong with it. The runner is :func:`cmadev.sweep`
(:mod:`cmadev.sweeps`). This module has no ``from __future__ import annotations`` (see
:mod:`cmadev.specs.base`).
"""

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import Field, JsonValue, PrivateAttr, ValidationInfo, field_validator, model_validator

from cmadev.errors import SpecError
from cmadev.specs.base import Name, Spec, is_path, read_document, validate_model
from cmadev.specs.catalog import find
from cmadev.specs.fieldpath import split_path, with_value
from cmadev.specs.policy import PLACEMENTS, Policy, PolicyChoice, parse_policy
from cmadev.specs.scenario import Scenario, load_scenario

MAX_POINTS = 10_000
"""The most grid points a sweep may have: each is validated before anything runs (about
2 ms each), and a grid larger than this is more likely a mistake than a plan."""

MAX_SEEDS = 1_000_000

_NOT_IN_GRID = {
    "seed": "seeds (a count or a list)",
    "policy": "policies",
}
"""Scenario fields a grid may not vary, and the sweep field that does it instead."""


class Keep(Spec):
    """What a sweep keeps of each run, besides its row in the runs table."""

    requests: bool = Field(
        True, description="A row per device request (requests.parquet): latency, outcome, ..."
    )
    series: bool = Field(
        False,
        description="A row per time-series sample of every run (series.parquet): about 100 "
        "bytes a sample, so only when asked.",
    )


@dataclass(frozen=True)
class GridPoint:
    """One combination of the grid's values, and the scenario it makes."""

    index: int
    """Position in the grid (the last path varies fastest)."""
    values: tuple[tuple[str, Any], ...]
    """(path, value as written in the sweep file), in the grid's order."""
    scenario: Scenario

    def label(self) -> str:
        """``"workloads.recording.iops=25, board.cma_areas.tv.size=256MiB"``."""
        return ", ".join(f"{path}={_show(value)}" for path, value in self.values) or "-"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _resolve(ref: str, info: ValidationInfo) -> Path:
    """``ref`` relative to the sweep file's folder (when the sweep came from a file)."""
    base = (info.context or {}).get("base_dir")
    path = Path(ref)
    return Path(base) / path if base is not None and not path.is_absolute() else path


class Sweep(Spec):
    """A scenario run over a grid of its fields, several policies and many seeds."""

    name: Name = Field(description="Short name of the sweep, used in reports.")
    description: str = Field("", description="What the sweep asks.")
    scenario: Union[str, Scenario] = Field(
        description="A shipped scenario's name ('tv_evening'), the path of a scenario file "
        "(relative to the sweep file), or an inline Scenario."
    )
    policies: tuple[Union[str, Policy], ...] = Field(
        tuple(PLACEMENTS),
        min_length=1,
        description="The policies, each as the command line takes one: a preset "
        "('mainline-today'), a placement with fixes ('legacy+migrate_on_longterm_pin'), a "
        "policy file (relative to the sweep file) or an inline Policy. Default: the five "
        "placements.",
    )
    seeds: Union[int, tuple[int, ...]] = Field(
        1,
        description="A count (that many seeds from the scenario's own) or a list of seeds.",
    )
    grid: dict[str, tuple[JsonValue, ...]] = Field(
        {},
        description="Scenario fields to vary, by path ('workloads.dio.iops', "
        "'board.cma_areas.0.size', 'devices.camera.deadline', 'duration'), each with its "
        "values; every combination runs.",
    )
    keep: Keep = Field(Keep(), description="What to keep of each run besides its run row.")

    _points: list[GridPoint] = PrivateAttr(default_factory=list)

    @field_validator("scenario")
    @classmethod
    def _scenario_loads(
        cls, value: Union[str, Scenario], info: ValidationInfo
    ) -> Union[str, Scenario]:
        if isinstance(value, Scenario):
            return value
        try:
            if is_path(value):
                return load_scenario(_resolve(value, info))
            load_scenario(value)
        except SpecError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("policies")
    @classmethod
    def _policies_parse(
        cls, policies: tuple[Union[str, Policy], ...], info: ValidationInfo
    ) -> tuple[Union[str, Policy], ...]:
        resolved: list[Union[str, Policy]] = []
        labels: dict[str, int] = {}
        for i, policy in enumerate(policies):
            try:
                choice = _choice(policy, info)
            except SpecError as err:
                raise ValueError(f"[{i}]: {err}") from None
            if choice.label in labels:
                raise ValueError(
                    f"[{i}]: {choice.label!r} is listed twice (also [{labels[choice.label]}]): "
                    f"remove one"
                )
            labels[choice.label] = i
            file = isinstance(policy, str) and policy.strip().endswith((".json", ".toml"))
            resolved.append(choice.policy if file else policy)
        return tuple(resolved)

    @field_validator("seeds")
    @classmethod
    def _seeds_make_sense(cls, seeds: Union[int, tuple[int, ...]]) -> Union[int, tuple[int, ...]]:
        if isinstance(seeds, int):
            if not 1 <= seeds <= MAX_SEEDS:
                raise ValueError(f"a count of seeds is from 1 to {MAX_SEEDS:,}; got {seeds}")
            return seeds
        if not seeds:
            raise ValueError("the list of seeds is empty: give at least one, or a count")
        for i, seed in enumerate(seeds):
            if not 0 <= seed < 2**64:
                raise ValueError(f"[{i}]: a seed is from 0 to 2**64 - 1; got {seed}")
            if seed in seeds[:i]:
                raise ValueError(f"[{i}]: seed {seed} is listed twice: remove one")
        return seeds

    @field_validator("grid")
    @classmethod
    def _grid_values_make_scenarios(
        cls, grid: dict[str, tuple[Any, ...]], info: ValidationInfo
    ) -> dict[str, tuple[Any, ...]]:
        for path, values in grid.items():
            try:
                top = split_path(path)[0]
            except SpecError as err:
                raise ValueError(str(err)) from None
            if top in _NOT_IN_GRID:
                raise ValueError(
                    f"{path!r}: a grid cannot vary the scenario's {top}; use the sweep's "
                    f"{_NOT_IN_GRID[top]}"
                )
            if not values:
                raise ValueError(f"{path!r} has no values: give at least one")
            for i, value in enumerate(values):
                if value in values[:i]:
                    raise ValueError(f"{path!r}: value {_show(value)!r} is listed twice")
        scenario = info.data.get("scenario")
        if scenario is None:
            return grid  # the scenario is invalid: that error is reported already
        base = base_data(load_scenario(scenario))
        for path, values in grid.items():
            for value in values:
                _apply(base, ((path, value),))  # each value alone first: the clearest message
        return grid

    @model_validator(mode="after")
    def _every_point_is_a_scenario(self) -> "Sweep":
        sizes = [len(values) for values in self.grid.values()]
        count = 1
        for size in sizes:
            count *= size
        if count > MAX_POINTS:
            shape = " x ".join(map(str, sizes))
            raise ValueError(
                f"the grid has {count:,} points ({shape}), more than {MAX_POINTS:,}: each is "
                f"checked before anything runs; split the sweep or use fewer values"
            )
        base = base_data(self.scenario_spec())
        paths = list(self.grid)
        combos = itertools.product(*(self.grid[p] for p in paths))
        self._points = [
            GridPoint(i, values, _apply(base, values))
            for i, values in enumerate(tuple(zip(paths, combo)) for combo in combos)
        ]
        return self

    # ----- resolved parts -----------------------------------------------------------------

    def scenario_spec(self) -> Scenario:
        return load_scenario(self.scenario)

    def policy_choices(self) -> list[PolicyChoice]:
        """The policies, each with the name results give it (the preset as written)."""
        return [
            PolicyChoice(p.label, p) if isinstance(p, Policy) else parse_policy(p)
            for p in self.policies
        ]

    def seed_list(self) -> list[int]:
        """The seeds: a count ``n`` is ``n`` seeds from the scenario's own."""
        if isinstance(self.seeds, int):
            first = self.scenario_spec().seed
            return [first + i for i in range(self.seeds)]
        return list(self.seeds)

    def points(self) -> list[GridPoint]:
        """Every grid point with its scenario (one point, the scenario itself, without a
        grid)."""
        return list(self._points)

    @property
    def runs(self) -> int:
        """How many runs the sweep makes: points x policies x seeds."""
        return len(self._points) * len(self.policies) * len(self.seed_list())


def _choice(policy: Union[str, Policy], info: ValidationInfo) -> PolicyChoice:
    if isinstance(policy, Policy):
        return PolicyChoice(policy.label, policy)
    if policy.strip().endswith((".json", ".toml")):
        return parse_policy(_resolve(policy.strip(), info))
    return parse_policy(policy)


def base_data(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data for the grid to change. Its own policy is written out in
    full (a policy file's path would mean nothing on another machine), and never runs: each
    run has a policy of the sweep's."""
    data = scenario.model_dump(mode="json")
    data["policy"] = scenario.policy_spec().model_dump(mode="json")
    return data


def _apply(base: dict[str, Any], values: tuple[tuple[str, Any], ...]) -> Scenario:
    """The scenario ``base`` with each (path, value) set, validated again."""
    data = base
    for path, value in values:
        try:
            data = with_value(data, path, value)
        except SpecError as err:
            raise ValueError(f"{path!r}: {err}") from None
    try:
        return validate_model(Scenario, data)
    except SpecError as err:
        where = ", ".join(f"{path!r} = {_show(value)!r}" for path, value in values)
        nested = str(err).replace("\n", "\n    ")
        raise ValueError(f"{where} makes an invalid scenario: {nested}") from None


def load_sweep(ref: Union[Sweep, str, "os.PathLike[str]"]) -> Sweep:
    """A :class:`Sweep` from a ``.json``/``.toml`` file, a shipped sweep's name, or a Sweep
    (returned as is). Paths inside the file are relative to the file's folder; any problem is
    a :class:`SpecError` naming the file, the field and the fix."""
    if isinstance(ref, Sweep):
        return ref
    if isinstance(ref, os.PathLike) or (isinstance(ref, str) and is_path(ref)):
        path = Path(ref)
        return _validate(read_document(path), source=str(path), base_dir=path.parent)
    if not isinstance(ref, str):
        raise SpecError(
            f"a sweep must be a Sweep, a shipped sweep's name or a path; got "
            f"{type(ref).__name__} {ref!r}"
        )
    entry = find("sweep", ref)
    return _validate(read_document(entry), source=str(entry))


def _validate(data: Any, source: str, base_dir: Optional[Path] = None) -> Sweep:
    context = {"base_dir": base_dir} if base_dir is not None else None
    return validate_model(Sweep, data, source=source, context=context)


__all__ = ["MAX_POINTS", "GridPoint", "Keep", "Sweep", "base_data", "load_sweep"]
