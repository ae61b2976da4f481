"""The boards and devices shipped with cmadev, and loading them by name or by path.

Shipped declarations live in the package (``cmadev/devices/*.json`` for devices,
``cmadev/devices/boards/*.json`` for boards; the repository's top-level ``devices`` is a
symlink to that folder) and are read through :mod:`importlib.resources`, so they load the same
from a checkout and from an installed wheel.
"""

from __future__ import annotations

import difflib
import os
from importlib.resources import files
from typing import Any, TypeVar

from cmadev.errors import SpecError
from cmadev.models import Board, DeviceSpec, load_model

_SUFFIXES = (".json", ".toml")

M = TypeVar("M", Board, DeviceSpec)


def _folder(kind: str) -> Any:
    root = files("cmadev").joinpath("devices")
    return root.joinpath("boards") if kind == "board" else root


def _shipped(kind: str) -> dict[str, Any]:
    """Shipped ``name -> file`` for ``kind`` ("board" or "device"), sorted by name."""
    found: dict[str, Any] = {}
    for entry in sorted(_folder(kind).iterdir(), key=lambda entry: entry.name):
        if entry.is_file() and entry.name.endswith(_SUFFIXES):
            found.setdefault(entry.name.rsplit(".", 1)[0], entry)  # .json before .toml
    return found


def list_boards() -> list[str]:
    """Names of the shipped boards: ``["camera_512m", "desktop_16g", ...]``."""
    return list(_shipped("board"))


def list_devices() -> list[str]:
    """Names of the shipped devices: ``["camera_sensor", "tv_pipeline", ...]``."""
    return list(_shipped("device"))


def _load(cls: type[M], kind: str, ref: object) -> M:
    if isinstance(ref, cls):
        return ref
    if isinstance(ref, os.PathLike):
        return load_model(cls, ref)
    if not isinstance(ref, str):
        raise SpecError(
            f"a {kind} must be a {cls.__name__}, the name of a shipped {kind} or a path; "
            f"got {type(ref).__name__} {ref!r}"
        )
    shipped = _shipped(kind)
    if ref in shipped:
        return load_model(cls, shipped[ref])
    if ref.endswith(_SUFFIXES) or "/" in ref or os.sep in ref:
        return load_model(cls, ref)
    close = difflib.get_close_matches(ref, list(shipped), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SpecError(
        f"unknown {kind} {ref!r}.{hint} The shipped {kind}s are: {', '.join(shipped)}; "
        f"or give the path of a .json or .toml file."
    )


def load_board(ref: Board | str | os.PathLike[str]) -> Board:
    """A :class:`Board` from a shipped name ("tv_1g"), a file path, or a Board (returned as is)."""
    return _load(Board, "board", ref)


def load_device(ref: DeviceSpec | str | os.PathLike[str]) -> DeviceSpec:
    """A :class:`DeviceSpec` from a shipped name ("camera_sensor"), a path, or a DeviceSpec."""
    return _load(DeviceSpec, "device", ref)


__all__ = ["list_boards", "list_devices", "load_board", "load_device"]
