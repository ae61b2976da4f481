"""The JSON schema of every model users write, by name (``python -m cmadev schema``)."""

import difflib
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from cmadev.errors import SpecError
from cmadev.specs.board import Board, CmaArea, CostModel
from cmadev.specs.device import Buffer, DeviceSpec
from cmadev.specs.policy import Policy
from cmadev.specs.scenario import Scenario
from cmadev.specs.sweep import Keep, Sweep
from cmadev.specs.workloads import WORKLOAD_CLASSES, Workload


def schema_models() -> dict[str, Callable[[], dict[str, Any]]]:
    """The models users write, by name: each gives its JSON schema. ``Workload`` is any
    workload (told apart by ``kind``); each workload class is there by its own name too."""
    models: dict[str, Callable[[], dict[str, Any]]] = {
        cls.__name__: cls.model_json_schema
        for cls in (Board, CmaArea, CostModel, Policy, DeviceSpec, Buffer, Scenario, Sweep, Keep)
    }
    models["Workload"] = TypeAdapter(Workload).json_schema
    for cls in WORKLOAD_CLASSES.values():
        models[cls.__name__] = cls.model_json_schema
    return models


def _normal(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def schema(name: str) -> dict[str, Any]:
    """The JSON schema of the model called ``name``, matched without regard to case, ``_`` or
    ``-`` (so a workload's kind, "page_cache_reader", finds PageCacheReader)."""
    models = schema_models()
    for model, make in models.items():
        if _normal(model) == _normal(name):
            return make()
    close = difflib.get_close_matches(name, list(models), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SpecError(f"no model called {name!r}.{hint} The models are: {', '.join(models)}.")


def schemas() -> dict[str, dict[str, Any]]:
    """Every model's JSON schema, by name."""
    return {name: make() for name, make in schema_models().items()}


__all__ = ["schema", "schema_models", "schemas"]
