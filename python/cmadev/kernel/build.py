"""The guest kernel: built once from Debian's ``linux-source-6.1``, cached, or brought by the
user.

:func:`ensure_kernel` extracts the source tarball into a temporary directory, configures it
from ``make tinyconfig`` plus the project's fragment (``cmadev/kernel/config/cmadev.config``)
and any extra options, runs ``make olddefconfig``, and **checks** that every option the
fragment asks for is really set: tinyconfig silently drops an option whose dependencies are
missing, and a kernel without, say, ``CONFIG_CMA_DEBUGFS`` would boot and then fail in
confusing ways. It then builds ``bzImage`` under ``nice -n 19`` and moves the image, the
final ``.config`` and a ``build.json`` (version, wall time, options) into
``<cache>/kernel/<version>-<key>/`` in one ``rename``, where ``key`` hashes the fragment, the
base config and the source. A second call finds it there and returns at once.

:func:`kernel_image` describes a bzImage the user built (``--kernel PATH``): its version comes
from the image's own header (the boot protocol's ``kernel_version`` string).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional, Union

from cmadev.kernel import hostdeps
from cmadev.kernel.cache import cache_root, digest, locked, publish
from cmadev.kernel.errors import HostDependencyError, KernelBuildError

BUILDER_VERSION = "1"
"""Bumped when the way the kernel is built changes, so that cached kernels are rebuilt."""

DEFAULT_BASE = "tinyconfig"
BASES = ("tinyconfig", "allnoconfig", "defconfig")
"""Base configurations the fragment may be merged over (tinyconfig: a build of minutes)."""

Progress = Callable[[str], None]
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class KernelImage:
    """A bootable x86-64 kernel.

    ``version`` is the kernel release (``uname -r``: ``"6.1.192"``); ``config`` is its final
    ``.config`` when known (always for kernels cmadev built); ``build_seconds`` is the wall
    time of the build that made it (recorded in the cache, so also for a reused kernel);
    ``reused`` says the call found it in the cache; ``user_supplied`` marks a kernel the user
    brought (``--kernel PATH``).
    """

    bzimage: Path
    version: str
    config: Optional[Path] = None
    cache_dir: Optional[Path] = None
    build_seconds: Optional[float] = None
    reused: bool = False
    user_supplied: bool = False

    def config_value(self, option: str) -> Optional[str]:
        """The value of ``CONFIG_<option>`` in :attr:`config` (``"y"``, a number...), or None
        when it is not set or the config is unknown."""
        if self.config is None:
            return None
        name = option if option.startswith("CONFIG_") else f"CONFIG_{option}"
        return parse_config(self.config.read_text()).get(name)


# --------------------------------------------------------------------------------------------
# config fragments


def default_fragment() -> str:
    """The text of the project's config fragment, as shipped in the package."""
    return (resources.files("cmadev.kernel") / "config" / "cmadev.config").read_text()


def parse_config(text: str) -> dict[str, str]:
    """``.config`` text as ``{"CONFIG_X": value}``; ``# CONFIG_X is not set`` gives ``"n"``.

    String values keep their quotes, as ``.config`` writes them.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        m = re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if m:
            out[m.group(1)] = "n"
            continue
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        if name.startswith("CONFIG_"):
            out[name] = value
    return out


def fragment_wants(text: str) -> dict[str, str]:
    """What a fragment asks for: ``{"CONFIG_X": "y" | "n" | value}`` (comments aside)."""
    return parse_config(text)


def check_config(final: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """The options of ``wanted`` that the final config does not have as asked.

    ``"n"`` is satisfied by an option that is off or absent (an option whose dependencies are
    off does not appear in ``.config`` at all).
    """
    problems = []
    for name, value in wanted.items():
        got = final.get(name)
        if value == "n":
            if got not in (None, "n"):
                problems.append(f"{name} should be off but is {got}")
        elif got != value:
            state = "not set" if got in (None, "n") else f"={got}"
            problems.append(f"{name}={value} asked, {state} after olddefconfig")
    return problems


def _fragment_text(extra_config: Union[Sequence[str], PathLike, None]) -> str:
    if extra_config is None:
        return ""
    if isinstance(extra_config, (str, os.PathLike)) and not str(extra_config).startswith("CONFIG_"):
        path = Path(extra_config)
        if not path.is_file():
            raise KernelBuildError(
                f"extra_config {str(path)!r} is not a file: give a config fragment file, or a "
                f"list of lines such as ['CONFIG_DEBUG_VM=y']"
            )
        return path.read_text()
    if isinstance(extra_config, str):
        lines = [extra_config]
    elif isinstance(extra_config, os.PathLike):
        lines = [os.fspath(extra_config)]
    else:
        lines = list(extra_config)
    for line in lines:
        if not (
            re.fullmatch(r"CONFIG_\w+=\S+", line) or re.fullmatch(r"# CONFIG_\w+ is not set", line)
        ):
            raise KernelBuildError(
                f"extra_config line {line!r} is not a config line: write 'CONFIG_NAME=y' or "
                f"'# CONFIG_NAME is not set'"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# the source


def source_version(source: Path) -> str:
    """The kernel version of a source tarball (``"6.1.192"``), read from its top Makefile
    without extracting the rest (about half a second for Debian's tarball)."""
    try:
        with tarfile.open(source, "r|*") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Makefile" and member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    return makefile_version(f.read().decode(errors="replace"))
    except (OSError, tarfile.TarError) as err:
        raise KernelBuildError(f"cannot read the kernel source {source}: {err}") from err
    raise KernelBuildError(f"{source} has no top-level Makefile: is it a kernel source tarball?")


def makefile_version(text: str) -> str:
    """``VERSION.PATCHLEVEL.SUBLEVEL`` (and ``EXTRAVERSION``) from a kernel Makefile."""
    fields = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        m = re.search(rf"^{key}\s*=\s*(\S*)\s*$", text, re.M)
        fields[key] = m.group(1) if m else ""
    if not fields["VERSION"]:
        raise KernelBuildError("the kernel Makefile has no VERSION line")
    version = ".".join(
        x for x in (fields["VERSION"], fields["PATCHLEVEL"], fields["SUBLEVEL"]) if x
    )
    return version + fields["EXTRAVERSION"]


def bzimage_version(path: PathLike) -> str:
    """The version string a bzImage carries (x86 boot protocol >= 2.00: the
    ``kernel_version`` field at 0x20E points at a NUL-terminated string, offset by 0x200),
    e.g. ``"6.1.192 (cmadev@cmadev) #1 SMP ..."``."""
    data = Path(path).read_bytes()[:0x10000]
    if len(data) < 0x210 or data[0x202:0x206] != b"HdrS":
        raise KernelBuildError(
            f"{path} is not an x86 bzImage (no 'HdrS' boot header at 0x202): give the "
            f"arch/x86/boot/bzImage of a kernel build"
        )
    offset = int.from_bytes(data[0x20E:0x210], "little") + 0x200
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise KernelBuildError(f"{path}: the boot header's kernel_version points nowhere")
    return data[offset:end].decode(errors="replace")


def kernel_image(path: PathLike, config: Optional[PathLike] = None) -> KernelImage:
    """A kernel the user built (``--kernel PATH``): its release from the image itself."""
    p = Path(path)
    if not p.is_file():
        raise KernelBuildError(f"kernel image {str(p)!r} does not exist: give a bzImage path")
    release = bzimage_version(p).split()[0]
    cfg = Path(config) if config is not None else None
    return KernelImage(bzimage=p, version=release, config=cfg, user_supplied=True)


# --------------------------------------------------------------------------------------------
# the build


def _run(cmd: Sequence[str], log: Path, cwd: Optional[Path] = None, what: str = "") -> None:
    """Run one build step, its output appended to ``log``. The step runs in a session of its
    own, so that an interrupted build (Ctrl-C, an exception) takes every ``make`` child with
    it instead of leaving them compiling."""
    env = dict(os.environ, KBUILD_BUILD_USER="cmadev", KBUILD_BUILD_HOST="cmadev", LC_ALL="C")
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            code = proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise KernelBuildError(
            f"{what or cmd[0]} failed (exit {code}); the last lines of {log}:\n{tail}"
        )


def _keep_log(log: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(log, dest)
    return dest


def ensure_kernel(
    *,
    source: PathLike = hostdeps.DEFAULT_SOURCE,
    extra_config: Union[Sequence[str], PathLike, None] = None,
    base: str = DEFAULT_BASE,
    jobs: Optional[int] = None,
    cache_dir: Optional[PathLike] = None,
    rebuild: bool = False,
    progress: Optional[Progress] = None,
) -> KernelImage:
    """The cached cmadev kernel, built first if there is none.

    ``source``: the kernel source tarball (Debian's ``linux-source-6.1``). ``extra_config``:
    more options, as a fragment file or a list of ``CONFIG_X=y`` lines (part of the cache
    key, and checked like the project's). ``base``: ``tinyconfig`` (a build of minutes on two
    cores) or another ``make`` target of :data:`BASES`. ``jobs``: ``make -j`` (default: the
    CPUs, at most 2, since the build runs beside other work; the build always runs under
    ``nice -n 19``). ``rebuild``: build even if cached. ``progress`` gets one line per step.

    Raises :class:`HostDependencyError` naming the Debian packages when a tool is missing,
    :class:`KernelBuildError` when an option cannot be set or the build fails (with the log's
    last lines; the whole log is kept in the cache directory).
    """
    say = progress or (lambda _msg: None)
    src = Path(source)
    if base not in BASES:
        raise KernelBuildError(f"base {base!r} is not one of {', '.join(BASES)}")
    if src == hostdeps.DEFAULT_SOURCE:
        hostdeps.require("build")
    else:
        missing = [r for r in hostdeps.missing("build") if r.what != str(hostdeps.DEFAULT_SOURCE)]
        if missing:
            raise HostDependencyError(
                f"building the kernel needs {hostdeps.describe(missing)}: install with "
                f"`{hostdeps.install_hint(missing)}`"
            )
        if not src.is_file():
            raise KernelBuildError(f"kernel source {str(src)!r} does not exist")
    fragment = default_fragment()
    extra = _fragment_text(extra_config)
    version = source_version(src)
    stat = src.stat()
    key = digest(BUILDER_VERSION, base, fragment, extra, src.name, str(stat.st_size), version)
    root = cache_root(cache_dir) / "kernel"
    dest = root / f"{version}-{key}"
    with locked(root / f".lock-{key}"):
        if not rebuild and (found := _cached(dest)) is not None:
            say(f"kernel {found.version} found in {dest}")
            return found
        if rebuild and dest.exists():
            shutil.rmtree(dest)
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            image = _build(src, tmp, dest, base, fragment, extra, version, key, jobs, say)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return image


def _cached(dest: Path) -> Optional[KernelImage]:
    info_path = dest / "build.json"
    if not ((dest / "bzImage").is_file() and (dest / "config").is_file() and info_path.is_file()):
        return None
    info = json.loads(info_path.read_text())
    return KernelImage(
        bzimage=dest / "bzImage",
        version=str(info["release"]),
        config=dest / "config",
        cache_dir=dest,
        build_seconds=float(info["build_seconds"]),
        reused=True,
    )


def _build(
    src: Path,
    tmp: Path,
    dest: Path,
    base: str,
    fragment: str,
    extra: str,
    version: str,
    key: str,
    jobs: Optional[int],
    say: Progress,
) -> KernelImage:
    t0 = time.monotonic()
    log = tmp / "build.log"
    failed_log = dest.parent / f"failed-{dest.name}.log"
    say(f"extracting {src} (about a minute)")
    try:
        _run(["tar", "-xf", str(src), "-C", str(tmp)], log, what="extracting the source")
        [tree] = [p for p in tmp.iterdir() if p.is_dir()]
        out = tmp / "out"
        make = ["make", "-C", str(tree), f"O={out}", "ARCH=x86_64"]
        say(f"configuring: {base} + cmadev.config")
        _run([*make, base], log, what=f"make {base}")
        frag_path = tmp / "cmadev.config"
        frag_path.write_text(fragment + "\n" + extra)
        merge = tree / "scripts" / "kconfig" / "merge_config.sh"
        _run(
            ["sh", str(merge), "-m", "-O", str(out), str(out / ".config"), str(frag_path)],
            log,
            cwd=out,
            what="merging the config fragment",
        )
        _run([*make, "olddefconfig"], log, what="make olddefconfig")
        final = parse_config((out / ".config").read_text())
        problems = check_config(final, fragment_wants(fragment + "\n" + extra))
        if problems:
            raise KernelBuildError(
                "the kernel config lacks options cmadev needs (an unmet dependency: "
                "tinyconfig drops options silently; add the missing dependency to the "
                "fragment):\n  " + "\n  ".join(problems)
            )
        n = jobs or min(2, os.cpu_count() or 1)
        say(f"building bzImage with make -j{n} under nice -n 19 (a few minutes)")
        tb = time.monotonic()
        _run(["nice", "-n", "19", *make, f"-j{n}", "bzImage"], log, what="make bzImage")
        make_seconds = time.monotonic() - tb
        release = subprocess.run(
            [*make, "-s", "kernelrelease"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except KernelBuildError as err:
        if log.exists():
            kept = _keep_log(log, failed_log)
            raise KernelBuildError(f"{err}\n(full build log: {kept})") from None
        raise
    staging = tmp / "result"
    staging.mkdir()
    shutil.copyfile(out / "arch" / "x86" / "boot" / "bzImage", staging / "bzImage")
    shutil.copyfile(out / ".config", staging / "config")
    shutil.copyfile(log, staging / "build.log")
    seconds = time.monotonic() - t0
    info = {
        "version": version,
        "release": release or version,
        "key": key,
        "base": base,
        "source": str(src),
        "jobs": n,
        "build_seconds": round(seconds, 1),
        "make_seconds": round(make_seconds, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "builder_version": BUILDER_VERSION,
    }
    (staging / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    publish(staging, dest)
    failed_log.unlink(missing_ok=True)
    say(f"kernel {info['release']} built in {seconds:.0f} s: {dest}")
    image = _cached(dest)
    assert image is not None
    return KernelImage(
        bzimage=image.bzimage,
        version=image.version,
        config=image.config,
        cache_dir=dest,
        build_seconds=seconds,
        reused=False,
    )


def cached_kernels(cache_dir: Optional[PathLike] = None) -> list[KernelImage]:
    """The kernels in the cache, newest first."""
    root = cache_root(cache_dir) / "kernel"
    found = [k for d in root.glob("*-*") if d.is_dir() and (k := _cached(d)) is not None]
    return sorted(found, key=lambda k: k.bzimage.stat().st_mtime, reverse=True)


def describe_options(names: Iterable[str], config: dict[str, str]) -> str:
    """``CONFIG_X=y, CONFIG_Y=n`` for the given option names, from a parsed config."""
    return ", ".join(f"{n}={config.get(n, 'n')}" for n in names)


__all__ = [
    "BASES",
    "DEFAULT_BASE",
    "KernelImage",
    "bzimage_version",
    "cached_kernels",
    "check_config",
    "default_fragment",
    "ensure_kernel",
    "fragment_wants",
    "kernel_image",
    "makefile_version",
    "parse_config",
    "source_version",
]
