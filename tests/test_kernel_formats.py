"""The model's views against a real Linux 6.1 kernel's (``tests/data/kernel-6.1``, captured by
the kernel backend): the same keys in the same order, and the same layout line by line (every
column where the kernel's has it; the numbers themselves differ)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cmadev import AnonHog, LongtermPinner, Machine
from cmadev.specs.board import Board

CAPTURE = Path(__file__).parent / "data" / "kernel-6.1"
ZONES = {"DMA", "DMA32", "Normal", "Movable", "CMA", "HighMem", "Device"}

BOARD = Board(
    name="guest",
    ram="512MiB",
    cpus=2,
    cma_areas=[{"name": "reserved", "size": "128MiB"}],
)


def capture(name: str) -> str:
    return (CAPTURE / name).read_text(encoding="utf-8")


def shape(line: str) -> list[tuple[str, int, int]]:
    """A line's tokens: numbers as ``N``, zone names as ``Z``, with their columns."""
    out = []
    for m in re.finditer(r"\S+", line):
        tok = m.group()
        core = tok.lstrip("[(>").rstrip(",)]:")
        if re.fullmatch(r"-?\d+(\.\d+)?|0x[0-9a-f]+", core):
            kind = tok.replace(core, "N")
        elif tok.rstrip(",") in ZONES:
            kind = "Z" + ("," if tok.endswith(",") else "")
        else:
            kind = tok
        out.append((kind, m.start(), m.end()))
    return out


def same_layout(model: str, kernel: str) -> bool:
    """Same tokens, each starting or ending in the same column (left- or right-aligned)."""
    a, b = shape(model), shape(kernel)
    return len(a) == len(b) and all(
        x[0] == y[0] and (x[1] == y[1] or x[2] == y[2]) for x, y in zip(a, b)
    )


def assert_same_layout(model: str, kernel: str) -> None:
    assert same_layout(model, kernel), f"layout differs:\nmodel:  {model!r}\nkernel: {kernel!r}"


@pytest.fixture(scope="module")
def machine() -> Machine:
    """The guest's situation in the model: memory filled, pinned pages in the area, a
    whole-area cma_alloc that fails."""
    m = Machine(BOARD, policy="balanced", seed=1, trace_events=["all"])
    m.start(AnonHog(name="hog", size="360MiB", growth="400MiB/s"))
    m.run_for("1s")
    m.start(LongtermPinner(name="gup", size="64MiB"))
    m.run_for("1s")
    req = m.cma_alloc("reserved", count=28672, align=8, owner="init")
    m.run_until(req)
    assert not req.result().ok
    ok = m.cma_alloc("reserved", count=1024, owner="init")
    m.run_until(ok)
    return m


def test_meminfo_has_the_kernels_keys_in_its_order_and_layout(machine: Machine) -> None:
    kernel = capture("proc/meminfo").splitlines()
    model = machine.meminfo_text().splitlines()
    assert [ln.split(":")[0] for ln in model] == [ln.split(":")[0] for ln in kernel]
    for mine, theirs in zip(model, kernel):
        if mine.startswith("VmallocTotal"):
            assert mine == theirs  # the one constant: 32 TiB on x86-64
        else:
            assert_same_layout(mine, theirs)


def test_vmstat_is_the_kernels_list_and_the_model_counters_are_apart(machine: Machine) -> None:
    kernel = capture("proc/vmstat").splitlines()
    model = machine.vmstat_text().splitlines()
    assert [ln.split()[0] for ln in model] == [ln.split()[0] for ln in kernel]
    assert all(re.fullmatch(r"[a-z_0-9]+ \d+", ln) for ln in model)
    assert set(machine.model_counters()) == {
        "pgalloc_cma", "pgskip_cma", "allocstall_cma", "kswapd_wakeups", "pgdrop_clean_contig",
        "cleancache_puts", "cleancache_hits", "cleancache_discards", "cleancache_evictions",
        "frontswap_stores", "frontswap_loads", "pin_migrations", "pin_migration_fail",
        "dirty_migrations", "alloc_fail",
    }  # fmt: skip
    vm = machine.vmstat()
    assert vm["cma_alloc_fail"] == 1 and vm["cma_alloc_success"] == 1
    assert vm["nr_foll_pin_acquired"] >= 16384, "the 64 MiB long-term pin"
    assert vm["compact_isolated"] > 0 and vm["pgmigrate_success"] > 0


def test_pagetypeinfo_headers_rows_and_highatomic(machine: Machine) -> None:
    kernel = capture("proc/pagetypeinfo").splitlines()
    model = machine.pagetypeinfo().splitlines()
    for i in range(4):  # block order, pages per block, blank, the free-count header
        assert_same_layout(model[i], kernel[i])
    k_rows = [ln for ln in kernel if ln.startswith("Node    0, zone    DMA32")]
    m_rows = [ln for ln in model if ln.startswith("Node    0, zone   Normal")]
    assert [r.split()[5] for r in m_rows] == [r.split()[5] for r in k_rows]  # HighAtomic too
    for mine, theirs in zip(m_rows, k_rows):
        assert_same_layout(mine, theirs)
    k_head = next(ln for ln in kernel if ln.startswith("Number of blocks"))
    m_head = next(ln for ln in model if ln.startswith("Number of blocks"))
    assert m_head == k_head
    assert_same_layout(
        next(ln for ln in model if ln.startswith("Node 0, zone   Normal")),
        next(ln for ln in kernel if ln.startswith("Node 0, zone    DMA32")),
    )


def _zone_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("Node 0, zone"):
            name = line.split()[-1]
        blocks.setdefault(name, []).append(line)
    return blocks


def test_zoneinfo_populated_and_empty_zones(machine: Machine) -> None:
    kernel = _zone_blocks(capture("proc/zoneinfo"))
    model = _zone_blocks(machine.zoneinfo())
    # The first populated zone (with the per-node stats): the guest's DMA, the model's Normal.
    theirs, mine = kernel["DMA"], model["Normal"]
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        if "protection:" in b:  # one entry per zone type: x86-64 has four, the model two
            assert re.fullmatch(r"        protection: \(\d+(, \d+)*\)", a)
        else:
            assert_same_layout(a, b)
    empty_k, empty_m = kernel["Movable"], model["Movable"]
    assert len(empty_m) == len(empty_k)
    for a, b in zip(empty_m[:-1], empty_k[:-1]):
        assert_same_layout(a, b)


def test_buddyinfo_rows(machine: Machine) -> None:
    theirs = capture("proc/buddyinfo").splitlines()[-1]
    for mine in machine.buddyinfo().splitlines():
        assert_same_layout(mine, theirs)


def test_debugfs_files(machine: Machine) -> None:
    files = machine.cma_debugfs("reserved")
    assert set(files) == {p.name for p in (CAPTURE / "debugfs/cma/reserved").iterdir()}
    for name, text in files.items():
        theirs = capture(f"debugfs/cma/reserved/{name}")
        if name == "bitmap":
            assert re.fullmatch(r"\d+( \d+)*\n", text) and re.fullmatch(r"\d+( \d+)*\n", theirs)
            assert len(text.split()) == len(theirs.split()) == 32768 // 32
        else:
            assert re.fullmatch(r"\d+\n", text) and re.fullmatch(r"\d+\n", theirs)
    assert int(files["count"]) == int(capture("debugfs/cma/reserved/count"))
    assert int(files["used"]) == 1024 and int(files["maxchunk"]) == 32768 - 1024


def test_cma_sysfs_files_of_6_1_and_mainline(machine: Machine) -> None:
    files = machine.cma_sysfs_files("reserved")
    assert set(files) == {p.name for p in (CAPTURE / "sys/kernel/mm/cma/reserved").iterdir()}
    assert (
        files["alloc_pages_fail"]
        == "28672\n"
        == capture("sys/kernel/mm/cma/reserved/alloc_pages_fail")
    )
    mainline = Machine(BOARD.model_copy(update={"kernel_version": "mainline"}))
    assert set(mainline.cma_sysfs_files("reserved")) == set(files) | {
        "release_pages_success",
        "total_pages",
        "available_pages",
    }


def test_dmesg_line_of_a_failed_allocation(machine: Machine) -> None:
    theirs = capture("dmesg.txt").splitlines()[-1]
    mine = [ln for ln in machine.dmesg() if "alloc failed" in ln]
    assert len(mine) == 1
    assert_same_layout(mine[0], theirs)
    pattern = (
        r"\[\s*\d+\.\d{6}\] cma: cma_alloc: reserved: alloc failed, req-size: 28672 pages, ret: -16"
    )
    assert re.fullmatch(pattern, mine[0]) and re.fullmatch(pattern, theirs)


def test_cma_debug_adds_the_free_ranges_line() -> None:
    m = Machine(BOARD.model_copy(update={"cma_debug": True, "cma_areas": BOARD.cma_areas}), seed=1)
    hold = m.cma_alloc("reserved", count=1024, owner="cam")
    m.run_until(hold)
    big = m.cma_alloc("reserved", count=32768, owner="cam")
    m.run_until(big)
    assert m.dmesg()[-2].endswith("alloc failed, req-size: 32768 pages, ret: -12")
    assert re.search(
        r"cma: number of available pages: 31744@1024=> 31744 free of 32768 total pages$",
        m.dmesg()[-1],
    )


def _fields(line: str) -> tuple[str, list[str]]:
    event, _, body = line.partition(": ")[2].partition(": ")
    return event, re.findall(r"(\w+)=", body)


def test_trace_lines_prefix_and_bodies(machine: Machine) -> None:
    kernel = [ln for ln in capture("trace.txt").splitlines() if ln.strip()]
    model = machine.trace()
    k_events = {_fields(ln)[0]: ln for ln in kernel}
    m_events = {_fields(ln)[0]: ln for ln in model}
    common = set(k_events) & set(m_events)
    assert {
        "cma_alloc_start", "cma_alloc_busy_retry", "cma_alloc_finish", "test_pages_isolated",
        "mm_migrate_pages_start", "mm_migrate_pages", "mm_page_alloc", "mm_page_free",
    } <= common  # fmt: skip
    for event in common:
        mine, theirs = m_events[event], k_events[event]
        assert _fields(mine) == _fields(theirs), event
        # The context: '-' after the 16-column comm, '[' after the 7-column pid, ': ' after
        # the 12-column timestamp.
        for line in (mine, theirs):
            assert line[16] == "-" and line[24:26] == " [" and line[29:37] == "] ..... "[:8]
            assert re.match(r"[ \d]{5}\.\d{6}: ", line[37:])
    assert "mm_alloc_contig_migrate_range_info" not in m_events, "6.1 has no such event"


def test_task_names_are_cut_at_15_characters() -> None:
    m = Machine(BOARD, seed=1)
    req = m.cma_alloc("reserved", count=16, owner="a_very_long_task_name")
    m.run_until(req)
    assert m.trace()[0].lstrip().startswith("a_very_long_tas-")


def test_mainline_formats() -> None:
    m = Machine(BOARD.model_copy(update={"kernel_version": "mainline"}), seed=1)
    m.start(AnonHog(name="hog", size="400MiB", growth="400MiB/s"))
    m.run_for("2s")
    req = m.cma_alloc("reserved", count=4096, owner="cam")
    m.run_until(req)
    lines = m.trace()
    start = next(ln for ln in lines if "cma_alloc_start:" in ln)
    assert re.search(
        r"name=reserved request_count=4096 available_count=32768 total_count=32768 align=0$", start
    )
    assert re.search(r"errorno=0$", next(ln for ln in lines if "cma_alloc_finish:" in ln))
    info = next(ln for ln in lines if "mm_alloc_contig_migrate_range_info:" in ln)
    fields = dict(re.findall(r"(\w+)=(\S+)", info.partition("info: ")[2]))
    assert fields["migratetype"] == "4", "MIGRATE_CMA as the number 6.x prints"
    assert int(fields["nr_mapped"]) <= int(fields["nr_migrated"]) or fields["nr_migrated"] == "0"


def test_page_allocation_masks_are_the_guests() -> None:
    """The masks kmem:mm_page_alloc prints for anonymous, page-cache and migration-target
    pages are among those the whole 6.1 capture has."""
    import gzip

    whole = gzip.decompress((CAPTURE.parent / "kernel-6.1-full/trace.txt.gz").read_bytes())
    theirs = set(re.findall(r"gfp_flags=(\S+)", whole.decode()))
    from cmadev import PageCacheReader

    m = Machine(BOARD, policy="balanced", seed=1, trace_events=["kmem", "cma"])
    m.start(AnonHog(name="hog", size="420MiB", growth="400MiB/s"))
    m.start(PageCacheReader(name="reader", working_set="24MiB", rate="64MiB/s"))
    m.run_for("1s")
    req = m.cma_alloc("reserved", count=32768, owner="init")
    m.run_until(req)
    assert req.result().pages_migrated > 0
    mine = {re.search(r"gfp_flags=(\S+)", ln)[1] for ln in m.trace() if "mm_page_alloc:" in ln}  # type: ignore[index]
    assert {
        "GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO",
        "GFP_NOFS|__GFP_HIGHMEM|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_HARDWALL|__GFP_MOVABLE",
        "GFP_USER|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_MOVABLE",
    } <= mine
    assert mine - {"GFP_KERNEL"} <= theirs
