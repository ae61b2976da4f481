"""Shared configuration of the kernel backend's tests.

Unit tests (the program builder, the parsers, the results stream, the cpio writer) always
run. Tests marked ``kernel`` boot a Linux guest under QEMU: they are skipped, with the
reason and the ``apt-get install`` line, when a host package is missing. The guest kernel is
built once (a few minutes) and cached in ``~/.cache/cmadev``; set ``CMADEV_KERNEL`` to a
bzImage to boot that one instead. ``CMADEV_ACCEL=kvm`` uses KVM where it works.

    python -m pytest tests/kernel -m kernel -v -s    # the QEMU tests, with their figures
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

from cmadev.kernel import hostdeps
from cmadev.kernel.build import KernelImage, cached_kernels, ensure_kernel, kernel_image
from cmadev.kernel.initramfs import Initramfs, ensure_initramfs


def guest_skip_reason() -> Optional[str]:
    """Why the QEMU tests cannot run here (None: they can): the one skip helper."""
    purposes = ["run", "guest"]
    user_kernel = os.environ.get("CMADEV_KERNEL")
    if user_kernel:
        if not Path(user_kernel).is_file():
            return f"CMADEV_KERNEL={user_kernel} is not a file"
    elif not cached_kernels():
        purposes.append("build")
    absent = hostdeps.missing(*purposes)
    if absent:
        return (
            f"the kernel backend needs {hostdeps.describe(absent)}: "
            f"`{hostdeps.install_hint(absent)}`"
        )
    return None


def require_guest() -> None:
    """Skip the calling test (or fixture) when a guest cannot be booted here."""
    reason = guest_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def guest_kernel() -> KernelImage:
    """The kernel the QEMU tests boot: ``CMADEV_KERNEL``, else cmadev's (built if needed)."""
    require_guest()
    user_kernel = os.environ.get("CMADEV_KERNEL")
    if user_kernel:
        return kernel_image(user_kernel)
    return ensure_kernel(progress=print)


@pytest.fixture(scope="session")
def guest_initramfs() -> Initramfs:
    require_guest()
    return ensure_initramfs()


@pytest.fixture(scope="session")
def accel() -> str:
    return os.environ.get("CMADEV_ACCEL", "tcg")
