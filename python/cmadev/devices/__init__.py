"""The devices and boards shipped with cmadev, as data files (see README.md in this folder).

``cmadev.devices.load("camera_sensor")`` is the :class:`~cmadev.models.DeviceSpec` declared in
``camera_sensor.json`` here; :func:`names` lists the shipped devices. Boards are in ``boards/``
and load with :func:`cmadev.catalog.load_board`.
"""

from cmadev.catalog import list_boards, list_devices, load_board, load_device

load = load_device
names = list_devices

__all__ = ["list_boards", "list_devices", "load", "load_board", "load_device", "names"]
