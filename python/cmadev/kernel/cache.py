"""Where the kernel backend keeps what it builds: ``${XDG_CACHE_HOME:-~/.cache}/cmadev``.

Everything in it can be rebuilt; deleting the directory is always safe (when no build or run
is in progress).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Optional, Union


def cache_root(cache_dir: Optional[Union[str, os.PathLike[str]]] = None) -> Path:
    """``cache_dir`` if given, else ``$XDG_CACHE_HOME/cmadev`` (``~/.cache/cmadev``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cmadev"


def digest(*parts: Union[str, bytes]) -> str:
    """A short hex digest of ``parts`` (each length-prefixed, so that parts cannot run
    into each other)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The short digest of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed): two processes building
    the same thing wait for each other, and the second reuses what the first made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def publish(staging: Path, dest: Path) -> Path:
    """Move the finished directory ``staging`` to ``dest`` atomically (``rename`` on one
    filesystem). If another process published ``dest`` first, keep theirs."""
    try:
        os.rename(staging, dest)
    except OSError:
        if not dest.exists():
            raise
    return dest


__all__ = ["cache_root", "digest", "file_digest", "locked", "publish"]
