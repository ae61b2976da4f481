"""A scenario field by its path: ``"workloads.dio.iops"``, ``"board.cma_areas.0.size"``.

A sweep's grid names the fields it varies by path, over the scenario as plain data (what
``Scenario.model_dump(mode="json")`` gives). Each part of a path is:

- a field name, in a table (``duration``, ``board``, ``iops``);
- in a list, the ``name`` of an element when it has one (``workloads.dio``,
  ``board.cma_areas.tv``), or its index from 0 (``board.cma_areas.0``, ``timeline.3``);
- a shipped board or device, named by a string, is opened into its fields when the path goes
  on inside it (``board.cma_areas.0.size`` on a scenario whose board is ``"tv_1g"``);
- a scenario's device entry has its own fields (``name``, ``device``, ``heap``); any other
  field is the device's own (``devices.camera.deadline`` is
  ``devices.camera.device.deadline``).

Only fields that exist can be set: a path never adds one, so a typo is an error naming the
part and what is there. This module has no ``from __future__ import annotations`` (see
:mod:`cmadev.specs.base`).
"""

import copy
import difflib
from collections.abc import Callable
from typing import Any, Union

from cmadev.errors import SpecError
from cmadev.specs.catalog import load_board, load_device

_OPENERS: dict[tuple[str, ...], Callable[[str], dict[str, Any]]] = {
    ("board",): lambda name: load_board(name).model_dump(mode="json"),
    ("devices", "*", "device"): lambda name: load_device(name).model_dump(mode="json"),
}
"""Where a string names a shipped declaration that a path may open, by the shape of the path
that leads there (``*``: any element)."""

_DEVICE_ENTRY = ("devices", "*")
"""The path shape of a scenario's device entry, whose unknown fields are its device's."""


def split_path(path: str) -> tuple[str, ...]:
    """The parts of ``path``; an empty part (``"a..b"``, a leading dot) is an error."""
    parts = tuple(path.split("."))
    if not path or any(not part.strip() or part != part.strip() for part in parts):
        raise SpecError(
            f"{path!r} is not a field path: write the parts joined by '.', without spaces "
            f"(for example 'workloads.dio.iops' or 'board.cma_areas.0.size')"
        )
    return parts


def with_value(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` (a scenario as plain data) with the field at ``path`` set to
    ``value``; ``data`` is left as it was. A part that leads nowhere is a
    :class:`SpecError` naming it and what is there instead."""
    parts = split_path(path)
    root = copy.deepcopy(data)
    node: Any = root
    shape: tuple[str, ...] = ()
    for depth, part in enumerate(parts):
        container, key, shape = _step(node, part, shape, parts[:depth])
        if depth == len(parts) - 1:
            container[key] = value
            break
        node = _opened(container, key, shape, parts[: depth + 1])
    return root


def _step(
    node: Any, part: str, shape: tuple[str, ...], before: tuple[str, ...]
) -> tuple[Any, Union[int, str], tuple[str, ...]]:
    """Where ``part`` leads from ``node``: the container that holds it, its key there, and
    the path shape it stands at."""
    if isinstance(node, dict):
        if part in node:
            return node, part, (*shape, part)
        if shape == _DEVICE_ENTRY and "device" in node:
            device = _opened(node, "device", (*shape, "device"), (*before, "device"))
            return _step(device, part, (*shape, "device"), (*before, "device"))
        raise SpecError(_no_field(node, part, before))
    if isinstance(node, list):
        return node, _index(node, part, before), (*shape, "*")
    raise SpecError(
        f"{_where(before)} is a value ({node!r}), not a table: the path cannot go on to {part!r}"
    )


def _opened(
    container: Any, key: Union[int, str], shape: tuple[str, ...], where: tuple[str, ...]
) -> Any:
    """The value at ``container[key]``, a shipped declaration's name opened into its fields
    (written back, so that the change lands in the scenario)."""
    value = container[key]
    opener = _OPENERS.get(shape)
    if isinstance(value, str) and opener is not None:
        value = container[key] = opener(value)
    return value


def _index(items: list[Any], part: str, before: tuple[str, ...]) -> int:
    """The position ``part`` names in ``items``: an index, or an element's ``name``."""
    if part.isdigit():
        index = int(part)
        if index < len(items):
            return index
        raise SpecError(
            f"{_where(before)} has {len(items)} element{'s' if len(items) != 1 else ''}: "
            f"index {index} is past the end (indices start at 0)"
        )
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if part in names:
        return names.index(part)
    known = [str(n) for n in names if n is not None]
    close = difflib.get_close_matches(part, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(map(repr, known)) if known else "none has a name"
    raise SpecError(
        f"{_where(before)} has no element named {part!r}; {hint}name one of them ({listed}) "
        f"or give its index from 0"
    )


def _no_field(node: dict[str, Any], part: str, before: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(part, list(node), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{_where(before)} has no field {part!r}; {hint}it has: {', '.join(node)}"


def _where(parts: tuple[str, ...]) -> str:
    return repr(".".join(parts)) if parts else "the scenario"


__all__ = ["split_path", "with_value"]
