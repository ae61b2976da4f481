"""The guest's initramfs: the cmadev agent as ``/init``, busybox, and the run's program.

The agent (``cmadev/kernel/guest/*.c``) is compiled on the host with ``gcc -static -O2
-Wall -Wextra -Werror -pthread`` and cached by the hash of its sources and the compiler's
version; the base archive (agent, busybox and its applet links, ``/dev/console``) is cached
by the hashes of both. Each run appends a second, tiny archive holding ``/program.txt``: the
kernel unpacks concatenated cpio archives in order (``init/initramfs.c``), so the base is
never rebuilt for a new program.

The archives are written here, in Python, in the ``newc`` format the kernel reads
(``Documentation/driver-api/early-userspace/buffer-format.rst``), so that ``/dev/console``
can be a device node without root privileges.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional, Union

from cmadev.kernel import hostdeps
from cmadev.kernel.cache import cache_root, digest, file_digest, locked, publish
from cmadev.kernel.errors import KernelBuildError

PathLike = Union[str, "os.PathLike[str]"]

CFLAGS = ("-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread")
"""How the agent is compiled (``-lm`` is added at the end)."""

S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR = 0o040000, 0o100000, 0o120000, 0o020000

BUSYBOX_LINKS = ("sh", "ls", "cat", "mount", "umount", "dmesg", "free", "ps", "top", "mkswap")
"""Applets linked in /bin for the debugging shell (``cmadev.shell=1`` on the command line)."""


@dataclass(frozen=True)
class Initramfs:
    """The cached base archive and the agent binary inside it."""

    path: Path
    agent: Path
    key: str
    reused: bool = False


# --------------------------------------------------------------------------------------------
# cpio newc


class CpioWriter:
    """Writes a ``newc`` cpio archive into memory; :meth:`finish` adds the trailer."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._ino = 1

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        raw = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08x}"
            for v in (
                self._ino,
                mode,
                0,  # uid: root
                0,  # gid
                2 if mode & S_IFDIR else 1,
                0,  # mtime: fixed, so that equal inputs give equal archives
                len(data),
                0,
                0,
                rdev[0],
                rdev[1],
                len(raw),
                0,
            )
        )
        self._ino += 1
        self._out += header.encode() + raw
        self._pad()
        self._out += data
        self._pad()

    def _pad(self) -> None:
        self._out += b"\0" * (-len(self._out) % 4)

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self._out)


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """The entries of a newc archive (or of concatenated ones) as ``{name: (mode, data)}``;
    later archives override earlier ones, as when the kernel unpacks them."""
    out: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while pos + 110 <= len(data):
        if data[pos : pos + 6] != b"070701":
            if data[pos : pos + 6] == b"\0" * 6:  # padding between archives
                pos += 4
                continue
            raise ValueError(f"bad cpio magic at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = data[pos : pos + namesize - 1].decode()
        pos += namesize
        pos += -pos % 4
        body = data[pos : pos + size]
        pos += size
        pos += -pos % 4
        if name != "TRAILER!!!":
            out[name] = (mode, body)
    return out


# --------------------------------------------------------------------------------------------
# the agent


def agent_sources() -> dict[str, bytes]:
    """The agent's C sources and header, by file name, as shipped in the package."""
    guest = resources.files("cmadev.kernel") / "guest"
    out = {}
    for entry in guest.iterdir():
        if entry.name.endswith((".c", ".h")):
            out[entry.name] = entry.read_bytes()
    if "main.c" not in out:
        raise KernelBuildError("the agent's sources are missing from the cmadev package")
    return dict(sorted(out.items()))


def _gcc_version(gcc: str) -> str:
    try:
        return subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise KernelBuildError(f"cannot run {gcc}: {err}") from err


def ensure_agent(*, gcc: str = "gcc", cache_dir: Optional[PathLike] = None) -> Path:
    """The static agent binary, compiled if the cache has none for these sources."""
    hostdeps.require("guest")
    sources = agent_sources()
    key = digest(
        _gcc_version(gcc), " ".join(CFLAGS), *(n.encode() + b"\0" + s for n, s in sources.items())
    )
    root = cache_root(cache_dir) / "agent"
    dest = root / key
    with locked(root / f".lock-{key}"):
        if (dest / "agent").is_file():
            return dest / "agent"
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            for name, data in sources.items():
                (tmp / name).write_bytes(data)
            cfiles = sorted(n for n in sources if n.endswith(".c"))
            proc = subprocess.run(
                [gcc, *CFLAGS, "-o", "agent", *cfiles, "-lm"],
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise KernelBuildError(f"compiling the guest agent failed:\n{proc.stderr[-4000:]}")
            staging = tmp / "result"
            staging.mkdir()
            os.rename(tmp / "agent", staging / "agent")
            publish(staging, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest / "agent"


# --------------------------------------------------------------------------------------------
# busybox


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a ``PT_INTERP`` program header (no dynamic loader
    needed: it runs in an initramfs with nothing else)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
            return False
        (phoff,) = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def ensure_initramfs(
    *,
    busybox: PathLike = hostdeps.DEFAULT_BUSYBOX,
    gcc: str = "gcc",
    cache_dir: Optional[PathLike] = None,
) -> Initramfs:
    """The base initramfs (agent as ``/init``, busybox), built if not cached.

    ``busybox`` must be a static binary (Debian's ``busybox-static``; the dynamically linked
    ``busybox`` package cannot run in the initramfs).
    """
    bb = Path(busybox)
    if bb == hostdeps.DEFAULT_BUSYBOX:
        hostdeps.require("guest")
    if not bb.is_file():
        raise KernelBuildError(
            f"busybox {str(bb)!r} does not exist: apt-get install busybox-static"
        )
    if not is_static_elf(bb):
        raise KernelBuildError(
            f"{bb} is not a static x86-64 binary (it needs a dynamic loader the initramfs does "
            f"not have): install busybox-static, or pass a static busybox"
        )
    agent = ensure_agent(gcc=gcc, cache_dir=cache_dir)
    key = digest(file_digest(agent), file_digest(bb), "initramfs-1")
    root = cache_root(cache_dir) / "initramfs"
    dest = root / f"{key}.cpio"
    with locked(root / f".lock-{key}"):
        if dest.is_file():
            return Initramfs(path=dest, agent=agent, key=key, reused=True)
        root.mkdir(parents=True, exist_ok=True)
        cpio = CpioWriter()
        for d in ("bin", "dev", "proc", "sys", "mnt", "data", "tmp", "root"):
            cpio.directory(d)
        cpio.char_device("dev/console", 5, 1)
        cpio.char_device("dev/null", 1, 3, mode=0o666)
        cpio.file("init", agent.read_bytes(), mode=0o755)
        cpio.file("bin/busybox", bb.read_bytes(), mode=0o755)
        for applet in BUSYBOX_LINKS:
            cpio.symlink(f"bin/{applet}", "busybox")
        fd, tmp = tempfile.mkstemp(prefix=".cpio-", dir=root)
        with os.fdopen(fd, "wb") as f:
            f.write(cpio.finish())
        os.rename(tmp, dest)
    return Initramfs(path=dest, agent=agent, key=key, reused=False)


def program_archive(program_text: str) -> bytes:
    """A newc archive holding ``/program.txt``, to append to the base initramfs."""
    cpio = CpioWriter()
    cpio.file("program.txt", program_text.encode())
    return cpio.finish()


def write_initrd(base: Initramfs, program_text: str, dest: PathLike) -> Path:
    """The run's initrd: the base archive followed by the program's."""
    out = Path(dest)
    with open(out, "wb") as f:
        with open(base.path, "rb") as src:
            shutil.copyfileobj(src, f)
        f.write(program_archive(program_text))
    return out


__all__ = [
    "CFLAGS",
    "CpioWriter",
    "Initramfs",
    "agent_sources",
    "ensure_agent",
    "ensure_initramfs",
    "is_static_elf",
    "program_archive",
    "read_cpio",
    "write_initrd",
]
