"""A simulated machine: a board's memory (:class:`~cmadev.sim.mm.Mm`) with devices attached.

>>> m = Machine("tv_1g", policy="balanced", seed=7)
>>> cam = m.attach("camera_sensor", heap="tv")
>>> req = cam.start("1080p")
>>> m.run_until(req)
"""

from __future__ import annotations

import os
from typing import Optional, Union

from cmadev.sim.devices import DEVICE_CLASSES, Device
from cmadev.sim.mm import Mm
from cmadev.specs.catalog import load_device
from cmadev.specs.device import DeviceSpec


class Machine(Mm):
    """A board running under a policy, in virtual time, with devices attached to it.

    Everything about memory (pages, pins, ``cma_alloc``, workloads, the kernel's views) is
    :class:`~cmadev.sim.mm.Mm`'s; a machine adds :meth:`attach`.
    """

    def attach(
        self,
        device: Union[DeviceSpec, str, os.PathLike[str]],
        name: Optional[str] = None,
        heap: Optional[str] = None,
        cls: Optional[type[Device]] = None,
    ) -> Device:
        """Attach a device: the class for its kind (or ``cls``), bound to this machine.

        ``device`` is a :class:`DeviceSpec`, a shipped device's name or a file; ``name`` names
        this instance in reports (default: the spec's name); ``heap`` draws the buffers from
        another CMA area.
        """
        spec = load_device(device)
        device_cls = cls if cls is not None else DEVICE_CLASSES.get(spec.kind, Device)
        return device_cls(self, spec, name=name, heap=heap)


__all__ = ["Machine"]
