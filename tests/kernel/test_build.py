"""The kernel build's pieces that need no compiler: the fragment, the config check, versions,
host dependencies."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from cmadev.kernel import hostdeps
from cmadev.kernel.build import (
    _fragment_text,
    bzimage_version,
    cached_kernels,
    check_config,
    default_fragment,
    ensure_kernel,
    fragment_wants,
    kernel_image,
    makefile_version,
    parse_config,
)
from cmadev.kernel.errors import HostDependencyError, KernelBuildError

# What issue 12 asks the guest kernel for: each must be in the shipped fragment, so that the
# build verifies it.
REQUIRED = (
    "CMA",
    "CMA_DEBUGFS",
    "CMA_SYSFS",
    "DMA_CMA",
    "DMABUF_HEAPS",
    "DMABUF_HEAPS_CMA",
    "PAGE_OWNER",
    "COMPACTION",
    "MIGRATION",
    "TRANSPARENT_HUGEPAGE",
    "IO_URING",
    "FTRACE",
    "EVENT_TRACING",
    "TMPFS",
    "SHMEM",
    "EXT4_FS",
    "VIRTIO_BLK",
    "VIRTIO_PCI",
    "SWAP",
    "SERIAL_8250_CONSOLE",
    "BLK_DEV_INITRD",
    "DEVTMPFS",
    "PROC_FS",
    "SYSFS",
    "DEBUG_FS",
    "VM_EVENT_COUNTERS",
    "HUGETLBFS",
    "64BIT",
    "SMP",
)


def test_the_fragment_asks_for_everything_the_backend_relies_on() -> None:
    wants = fragment_wants(default_fragment())
    for option in REQUIRED:
        assert wants.get(f"CONFIG_{option}") == "y", option
    assert wants["CONFIG_RANDOMIZE_BASE"] == "n"  # the same layout on every boot
    assert "CONFIG_MEMCG" not in wants


def test_check_config_names_what_olddefconfig_dropped() -> None:
    wanted = fragment_wants("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_N=17\n")
    final = parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_N=12\n")
    assert check_config(final, wanted) == [
        "CONFIG_B=y asked, not set after olddefconfig",
        "CONFIG_C should be off but is y",
        "CONFIG_N=17 asked, =12 after olddefconfig",
    ]
    # an option whose dependencies are off is absent from .config: "not set" is satisfied
    assert check_config(parse_config("CONFIG_A=y\n"), fragment_wants("# CONFIG_Z is not set")) == []
    assert check_config(parse_config("CONFIG_A=y\n"), fragment_wants("CONFIG_A=y")) == []


def test_parse_config_keeps_strings_and_not_set() -> None:
    cfg = parse_config('CONFIG_X="a b"\n# CONFIG_Y is not set\n# comment\nCONFIG_Z=0x10\n')
    assert cfg == {"CONFIG_X": '"a b"', "CONFIG_Y": "n", "CONFIG_Z": "0x10"}


def test_extra_config_lines_are_checked() -> None:
    assert _fragment_text(["CONFIG_DEBUG_VM=y", "# CONFIG_SWAP is not set"]) == (
        "CONFIG_DEBUG_VM=y\n# CONFIG_SWAP is not set\n"
    )
    assert _fragment_text(None) == ""
    with pytest.raises(KernelBuildError, match="is not a config line"):
        _fragment_text(["DEBUG_VM=y"])
    with pytest.raises(KernelBuildError, match="is not a file"):
        _fragment_text("/nonexistent/fragment.config")


def test_makefile_version() -> None:
    text = "# x\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\nNAME = Curry\n"
    assert makefile_version(text) == "6.1.192"
    assert makefile_version(text.replace("EXTRAVERSION =", "EXTRAVERSION = -rc3")) == "6.1.192-rc3"
    with pytest.raises(KernelBuildError, match="no VERSION"):
        makefile_version("PATCHLEVEL = 1\n")


def _fake_bzimage(path: Path, version: bytes) -> Path:
    data = bytearray(0x4000)
    data[0x202:0x206] = b"HdrS"
    offset = 0x1000
    data[0x20E:0x210] = (offset - 0x200).to_bytes(2, "little")
    data[offset : offset + len(version) + 1] = version + b"\0"
    path.write_bytes(bytes(data))
    return path


def test_bzimage_version_from_the_boot_header(tmp_path: Path) -> None:
    image = _fake_bzimage(tmp_path / "bzImage", b"6.6.0-vendor+ (me@box) #3 SMP")
    assert bzimage_version(image) == "6.6.0-vendor+ (me@box) #3 SMP"
    k = kernel_image(image)
    assert k.version == "6.6.0-vendor+" and k.user_supplied and k.config is None
    (tmp_path / "junk").write_bytes(b"\0" * 4096)
    with pytest.raises(KernelBuildError, match="not an x86 bzImage"):
        bzimage_version(tmp_path / "junk")
    with pytest.raises(KernelBuildError, match="does not exist"):
        kernel_image(tmp_path / "missing")


def test_missing_host_packages_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    absent = hostdeps.missing("run")
    assert {r.package for r in absent} == {"qemu-system-x86", "e2fsprogs"}
    with pytest.raises(HostDependencyError, match="apt-get install e2fsprogs qemu-system-x86"):
        hostdeps.require("run")
    with pytest.raises(ValueError, match="unknown purpose"):
        hostdeps.missing("fly")


def test_install_hint_has_sudo_unless_root() -> None:
    hint = hostdeps.install_hint(
        [hostdeps.Requirement("x", "pkg-b"), hostdeps.Requirement("y", "pkg-a")]
    )
    assert hint.endswith("apt-get install pkg-a pkg-b")
    assert hint.startswith("sudo ") == (os.geteuid() != 0)


def test_ensure_kernel_names_the_missing_tools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no make, gcc, bc...
    with pytest.raises(HostDependencyError) as err:
        ensure_kernel(source=tmp_path / "linux.tar.xz", cache_dir=tmp_path)
    message = str(err.value)
    assert "make (Debian package make)" in message and "apt-get install" in message
    assert "linux-source-6.1" not in message  # a source of the user's was given


@pytest.mark.skipif(
    bool([r for r in hostdeps.missing("build") if not r.is_file or "include" in r.what]),
    reason="needs the kernel build tools (apt-get install build-essential bc bison flex ...)",
)
def test_ensure_kernel_checks_its_source(tmp_path: Path) -> None:
    with pytest.raises(KernelBuildError, match="does not exist"):
        ensure_kernel(source=tmp_path / "nope.tar.xz", cache_dir=tmp_path)
    with pytest.raises(KernelBuildError, match="base 'bigconfig'"):
        ensure_kernel(base="bigconfig", cache_dir=tmp_path)
    bogus = tmp_path / "bogus.tar.xz"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "README").write_text("not a kernel\n")
    with tarfile.open(bogus, "w:xz") as tar:
        tar.add(tmp_path / "src", arcname="linux-x")
    with pytest.raises(KernelBuildError, match="no top-level Makefile"):
        ensure_kernel(source=bogus, cache_dir=tmp_path)
    # failures leave nothing behind in the cache
    assert cached_kernels(tmp_path) == []
    assert not list(tmp_path.glob("kernel/.build-*"))
