"""The devices, boards and scenarios shipped with cmadev, as data files (see README.md here).

``cmadev.devices.load("camera_sensor")`` is the :class:`~cmadev.specs.device.DeviceSpec`
declared in ``camera_sensor.json``; :func:`names` lists the shipped devices. Boards are in
``boards/``, scenarios in ``scenarios/`` (:mod:`cmadev.specs.catalog` finds them).
"""

from cmadev.specs.catalog import list_boards, list_devices, load_board, load_device

load = load_device
names = list_devices

__all__ = ["list_boards", "list_devices", "load", "load_board", "load_device", "names"]
