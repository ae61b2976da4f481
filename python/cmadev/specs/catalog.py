"""The boards, devices, scenarios and sweeps shipped with cmadev, and finding one by name or
by path.

Shipped declarations live in the package (``cmadev/devices/*.json`` for devices,
``cmadev/devices/boards/*.json`` for boards, ``cmadev/devices/scenarios/*.json`` for
scenarios, ``cmadev/devices/sweeps/*`` for sweeps; the repository's top-level ``devices`` is
a symlink to that folder) and are read through :mod:`importlib.resources`, so they load the
same from a checkout and from an installed wheel.
"""

import difflib
import os
from importlib.resources import files
from typing import Any, Literal, TypeVar, Union

from cmadev.errors import SpecError
from cmadev.specs.base import SUFFIXES, is_path, load_model
from cmadev.specs.board import Board
from cmadev.specs.device import DeviceSpec

Kind = Literal["board", "device", "scenario", "sweep"]

_FOLDERS: dict[str, tuple[str, ...]] = {
    "device": (),
    "board": ("boards",),
    "scenario": ("scenarios",),
    "sweep": ("sweeps",),
}

M = TypeVar("M", Board, DeviceSpec)


def shipped(kind: Kind) -> dict[str, Any]:
    """Shipped ``name -> file`` (an importlib Traversable) for ``kind``, sorted by name; a
    ``.json`` file wins over a ``.toml`` file of the same name."""
    folder = files("cmadev").joinpath("devices")
    for part in _FOLDERS[kind]:
        folder = folder.joinpath(part)
    found: dict[str, Any] = {}
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_file() and entry.name.endswith(SUFFIXES):
            found.setdefault(entry.name.rsplit(".", 1)[0], entry)
    return found


def find(kind: Kind, ref: str) -> Any:
    """The file ``ref`` names: a shipped name, or else a path (returned as given). An unknown
    name is a :class:`SpecError` with the closest shipped name and the list."""
    known = shipped(kind)
    if ref in known:
        return known[ref]
    if is_path(ref):
        return ref
    close = difflib.get_close_matches(ref, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SpecError(
        f"unknown {kind} {ref!r}.{hint} The shipped {kind}s are: "
        f"{', '.join(known) or 'none'}; or give the path of a .json or .toml file."
    )


def list_boards() -> list[str]:
    """Names of the shipped boards: ``["camera_512m", "desktop_16g", ...]``."""
    return list(shipped("board"))


def list_devices() -> list[str]:
    """Names of the shipped devices: ``["camera_sensor", "tv_pipeline", ...]``."""
    return list(shipped("device"))


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios: ``["tv_evening", ...]``."""
    return list(shipped("scenario"))


def list_sweeps() -> list[str]:
    """Names of the shipped sweeps: ``["tv_recording_pressure", ...]``."""
    return list(shipped("sweep"))


def _load(cls: type[M], kind: Kind, ref: object) -> M:
    if isinstance(ref, cls):
        return ref
    if isinstance(ref, os.PathLike):
        return load_model(cls, ref)
    if not isinstance(ref, str):
        raise SpecError(
            f"a {kind} must be a {cls.__name__}, the name of a shipped {kind} or a path; "
            f"got {type(ref).__name__} {ref!r}"
        )
    if ref in shipped(kind):
        return _load_shipped(cls, kind, ref)
    return load_model(cls, find(kind, ref))


_SHIPPED_MODELS: dict[tuple[str, str], Any] = {}


def _load_shipped(cls: type[M], kind: Kind, name: str) -> M:
    """A shipped declaration, read and validated once per process: it is package data, and
    the models are frozen, so every caller can share one. (A scenario names its board and
    devices, and is validated again at every grid point of a sweep and in every batch a
    worker runs: without this, reading them is most of the validation.)"""
    model = _SHIPPED_MODELS.get((kind, name))
    if not isinstance(model, cls):
        model = _SHIPPED_MODELS[(kind, name)] = load_model(cls, shipped(kind)[name])
    return model


def load_board(ref: Union[Board, str, "os.PathLike[str]"]) -> Board:
    """A :class:`Board` from a shipped name ("tv_1g"), a file path, or a Board (returned as is)."""
    return _load(Board, "board", ref)


def load_device(ref: Union[DeviceSpec, str, "os.PathLike[str]"]) -> DeviceSpec:
    """A :class:`DeviceSpec` from a shipped name ("camera_sensor"), a path, or a DeviceSpec."""
    return _load(DeviceSpec, "device", ref)


__all__ = [
    "find",
    "list_boards",
    "list_devices",
    "list_scenarios",
    "list_sweeps",
    "load_board",
    "load_device",
    "shipped",
]
