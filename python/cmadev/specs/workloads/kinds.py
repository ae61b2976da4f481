"""Every workload kind by name: the registry (:data:`WORKLOAD_CLASSES`), the discriminated
union of scenario files (:data:`Workload`), and loading a workload from data or a file.

It is apart from the kinds' modules because it is the one place that names them all: a new
kind is a class in one of them, plus its place in :data:`Workload` here (the registry is
read from the union) and its name in :mod:`cmadev.specs.workloads`.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args

from pydantic import Field

from cmadev.errors import SpecError
from cmadev.specs.base import read_document, validate_model
from cmadev.specs.workloads.base import WorkloadBase
from cmadev.specs.workloads.build import Build
from cmadev.specs.workloads.kernel_held import FsMount, KernelAlloc
from cmadev.specs.workloads.page_cache import PageCacheReader, Writer
from cmadev.specs.workloads.pins import DirectIO, LongtermPinner
from cmadev.specs.workloads.swap_backed import AnonHog, TmpfsFile

Workload = Annotated[
    Union[
        PageCacheReader,
        Writer,
        AnonHog,
        DirectIO,
        LongtermPinner,
        FsMount,
        KernelAlloc,
        Build,
        TmpfsFile,
    ],
    Field(discriminator="kind"),
]
"""Any workload, told apart by its ``kind`` field (for scenario files)."""

WORKLOAD_CLASSES: dict[str, type[WorkloadBase]] = {
    str(cls.model_fields["kind"].default): cls for cls in get_args(get_args(Workload)[0])
}
"""Each workload class by its ``kind``, in the union's order."""

WORKLOAD_KINDS: tuple[str, ...] = tuple(WORKLOAD_CLASSES)


def validate_workload(data: Any, source: str = "") -> WorkloadBase:
    """A workload from a dict with a ``kind`` field (or a workload already built).

    Raises :class:`SpecError` naming the source, the field and the fix.
    """
    if isinstance(data, WorkloadBase):
        return data
    where = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{where}a workload must be an object with a 'kind' field; got "
            f"{type(data).__name__} {data!r}"
        )
    kind = data.get("kind")
    cls = WORKLOAD_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(kind), WORKLOAD_KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        what = "is missing" if kind is None else f"is {kind!r}, which is not a workload kind"
        raise SpecError(
            f"{where}the workload's 'kind' {what}.{hint} Use one of: {', '.join(WORKLOAD_KINDS)}"
        )
    return validate_model(cls, dict(data), source=source)


def load_workload(source: Any) -> WorkloadBase:
    """A workload from a ``.json``/``.toml`` file path, or from a dict with a ``kind``."""
    if isinstance(source, (Mapping, WorkloadBase)):
        return validate_workload(source)
    return validate_workload(read_document(source), source=str(source))


__all__ = ["WORKLOAD_CLASSES", "WORKLOAD_KINDS", "Workload", "load_workload", "validate_workload"]
