"""The guest's disks, made on the host without root.

- the **results** disk: a sparse raw file the agent writes its records to;
- the **data** disk: ext4 holding the readers' and writers' files, made by ``mkfs.ext4 -d``
  from a directory of real (non-zero, so every read is a storage read) data, cached by its
  layout and attached with QEMU's ``snapshot=on`` so that a run's writes never change it;
- **mount** disks: small empty ext4 or ext2 filesystems for ``fs_mount`` workloads;
- the **swap** disk: a sparse file with a swap signature written here (the layout of
  ``union swap_header`` in include/linux/swap.h: version 1, ``last_page``, "SWAPSPACE2" at
  the end of the first page), which the agent ``swapon``\\ s.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from cmadev.kernel.cache import cache_root, digest, locked
from cmadev.kernel.errors import KernelBackendError
from cmadev.kernel.program import DataFile

PAGE_SIZE = 4096
MiB = 1 << 20
PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 20


def sparse_file(path: PathLike, size: int) -> Path:
    """A file of ``size`` bytes that takes no space until written."""
    p = Path(path)
    with open(p, "wb") as f:
        f.truncate(size)
    return p


def write_swap_header(path: PathLike, size: int) -> Path:
    """A swap device image of ``size`` bytes (sparse), as ``mkswap`` would make it."""
    pages = size // PAGE_SIZE
    if pages < 10:
        raise KernelBackendError(f"swap of {size} bytes is too small: give at least 40 KiB")
    p = sparse_file(path, pages * PAGE_SIZE)
    header = bytearray(PAGE_SIZE)
    # struct { char bootbits[1024]; __u32 version, last_page, nr_badpages;
    #          unsigned char sws_uuid[16], sws_volume[16]; ... } info;
    header[1024:1028] = (1).to_bytes(4, "little")
    header[1028:1032] = (pages - 1).to_bytes(4, "little")
    header[1032:1036] = (0).to_bytes(4, "little")
    header[1036:1052] = uuid.UUID(int=random.Random(pages).getrandbits(128)).bytes
    header[1052:1068] = b"cmadev-swap".ljust(16, b"\0")
    header[PAGE_SIZE - 10 :] = b"SWAPSPACE2"
    with open(p, "r+b") as f:
        f.write(header)
    return p


def _fill(path: Path, pages: int, seed: str) -> None:
    """``pages`` pages of pseudo-random data (a pattern of up to 1 MiB repeated, each page
    stamped with its index so that no two pages are equal), in ``path`` (its folder made)."""
    rnd = random.Random(seed)
    chunk = min(_CHUNK, max(1, pages) * PAGE_SIZE)
    pattern = bytearray(rnd.getrandbits(8 * chunk).to_bytes(chunk, "little"))
    path.parent.mkdir(parents=True, exist_ok=True)
    per_chunk = chunk // PAGE_SIZE
    with open(path, "wb") as f:
        for first in range(0, pages, per_chunk):
            n = min(per_chunk, pages - first)
            for i in range(n):
                pattern[i * PAGE_SIZE : i * PAGE_SIZE + 8] = (first + i).to_bytes(8, "little")
            f.write(pattern[: n * PAGE_SIZE])


def _mkfs(fstype: str, image: Path, size: int, source: Optional[Path], log_what: str) -> None:
    cmd = [
        "mkfs.ext4",
        "-q",
        "-F",
        "-t",
        fstype,
        "-b",
        "4096",
        # initialise inode tables and the journal now, on the host: otherwise the guest's
        # ext4lazyinit thread writes them during the run
        "-E",
        "lazy_itable_init=0,lazy_journal_init=0" if fstype == "ext4" else "root_owner=0:0",
        "-L",
        "cmadev",
    ]
    if source is not None:
        cmd += ["-d", str(source)]
    cmd += [str(image), f"{size // 1024}k"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KernelBackendError(
            f"making the {log_what} with {' '.join(cmd)} failed:\n{proc.stderr}"
        )


def data_image(files: Sequence[DataFile], cache_dir: Optional[PathLike] = None) -> Path:
    """The ext4 data image holding ``files`` (cached by their names and sizes)."""
    layout = ";".join(f"{f.name}:{f.pages}" for f in sorted(files, key=lambda f: f.name))
    key = digest("data-2", layout)
    root = cache_root(cache_dir) / "images"
    dest = root / f"data-{key}.img"
    with locked(root / f".lock-data-{key}"):
        if dest.is_file():
            return dest
        root.mkdir(parents=True, exist_ok=True)
        total = sum(f.pages for f in files) * PAGE_SIZE
        size = ((total + total // 16 + 64 * MiB) // MiB + 1) * MiB
        tmp = Path(tempfile.mkdtemp(prefix=".data-", dir=root))
        try:
            src = tmp / "files"
            src.mkdir()
            for f in files:
                _fill(src / f.name, f.pages, f.name)
            image = tmp / "data.img"
            sparse_file(image, size)
            _mkfs("ext4", image, size, src, "data disk")
            os.rename(image, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fs_image(fstype: str, size: int = 64 * MiB, cache_dir: Optional[PathLike] = None) -> Path:
    """An empty filesystem image for an ``fs_mount`` workload (cached by type and size)."""
    if fstype not in ("ext4", "ext2"):
        raise KernelBackendError(f"fs_mount filesystem {fstype!r}: use 'ext4' or 'ext2'")
    root = cache_root(cache_dir) / "images"
    dest = root / f"{fstype}-{size // MiB}M.img"
    with locked(root / f".lock-{fstype}-{size}"):
        if dest.is_file():
            return dest
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fs-", dir=root)
        os.close(fd)
        try:
            sparse_file(tmp, size)
            _mkfs(fstype, Path(tmp), size, None, f"{fstype} image")
            os.rename(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return dest


__all__ = ["data_image", "fs_image", "sparse_file", "write_swap_header"]
