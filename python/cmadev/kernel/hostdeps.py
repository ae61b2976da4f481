"""What the kernel backend needs on the host, and the Debian package that provides each piece.

Three purposes, each with its own list, so that a user who brings a kernel (``--kernel
PATH``) is not asked for the kernel source and its build tools:

========== ==================================================================================
``build``  building the guest kernel: the source tarball and the kernel's build dependencies
``guest``  the initramfs: busybox (static) and a C compiler with a static libc for the agent
``run``    booting: QEMU and the ext4 tools for the disk images
========== ==================================================================================

:func:`missing` lists what is absent; :func:`require` raises :class:`HostDependencyError`
with the ``apt-get install`` line that fixes it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cmadev.kernel.errors import HostDependencyError

DEFAULT_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
"""Where Debian's ``linux-source-6.1`` package puts the kernel source."""

DEFAULT_BUSYBOX = Path("/bin/busybox")
"""Where Debian's ``busybox-static`` package puts busybox."""


@dataclass(frozen=True)
class Requirement:
    """One program (looked up on ``PATH``) or file, and the Debian package providing it."""

    what: str
    package: str
    is_file: bool = False

    def present(self) -> bool:
        if self.is_file:
            return Path(self.what).exists()
        return shutil.which(self.what) is not None


_BUILD = (
    Requirement(str(DEFAULT_SOURCE), "linux-source-6.1", is_file=True),
    Requirement("make", "make"),
    Requirement("gcc", "gcc"),
    Requirement("ld", "binutils"),
    Requirement("tar", "tar"),
    Requirement("xz", "xz-utils"),
    Requirement("bc", "bc"),
    Requirement("bison", "bison"),
    Requirement("flex", "flex"),
    Requirement("perl", "perl"),
    Requirement("/usr/include/libelf.h", "libelf-dev", is_file=True),
    Requirement("/usr/include/openssl/opensslv.h", "libssl-dev", is_file=True),
)
_GUEST = (
    Requirement(str(DEFAULT_BUSYBOX), "busybox-static", is_file=True),
    Requirement("gcc", "gcc"),
    Requirement("/usr/include/linux/io_uring.h", "linux-libc-dev", is_file=True),
    Requirement("/usr/include/linux/dma-heap.h", "linux-libc-dev", is_file=True),
)
_RUN = (
    Requirement("qemu-system-x86_64", "qemu-system-x86"),
    Requirement("mkfs.ext4", "e2fsprogs"),
)
_PURPOSES = {"build": _BUILD, "guest": _GUEST, "run": _RUN}


def _static_libc() -> Requirement:
    """``libc.a`` for ``gcc -static`` (libc6-dev), wherever the multiarch layout puts it."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
        if Path(d, "libc.a").exists():
            return Requirement(str(Path(d, "libc.a")), "libc6-dev", is_file=True)
    return Requirement("/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev", is_file=True)


def requirements(purposes: Iterable[str]) -> list[Requirement]:
    """The requirements of the given purposes (``"build"``, ``"guest"``, ``"run"``)."""
    out: list[Requirement] = []
    for purpose in purposes:
        if purpose not in _PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}: use one of {', '.join(_PURPOSES)}")
        out.extend(_PURPOSES[purpose])
        if purpose == "guest":
            out.append(_static_libc())
    return out


def missing(*purposes: str) -> list[Requirement]:
    """The requirements of ``purposes`` that are absent from this host."""
    seen: set[str] = set()
    out = []
    for req in requirements(purposes):
        if req.what not in seen and not req.present():
            out.append(req)
        seen.add(req.what)
    return out


def install_hint(reqs: Iterable[Requirement]) -> str:
    """``sudo apt-get install ...`` for the packages of ``reqs``."""
    packages = sorted({r.package for r in reqs})
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install {' '.join(packages)}"


def describe(reqs: Iterable[Requirement]) -> str:
    """One line per missing piece: what it is and which package has it."""
    return "; ".join(f"{r.what} (Debian package {r.package})" for r in reqs)


def require(*purposes: str) -> None:
    """Raise :class:`HostDependencyError` naming the missing pieces and the install line."""
    absent = missing(*purposes)
    if absent:
        raise HostDependencyError(
            f"the kernel backend ({', '.join(purposes)}) needs {describe(absent)}: "
            f"install with `{install_hint(absent)}`"
        )


__all__ = [
    "DEFAULT_BUSYBOX",
    "DEFAULT_SOURCE",
    "Requirement",
    "describe",
    "install_hint",
    "missing",
    "require",
    "requirements",
]
