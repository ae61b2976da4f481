"""The parsers of the kernel's views, on the guest's real output (``captures/``) and on
edge cases written out here."""

from __future__ import annotations

import json
from pathlib import Path

from cmadev.kernel.parsers import (
    cma_call_phases,
    cma_calls,
    free_runs,
    parse_buddyinfo,
    parse_cma_bitmap,
    parse_cma_failures,
    parse_meminfo,
    parse_pagetypeinfo,
    parse_trace,
    parse_vmstat,
    parse_zoneinfo,
)

CAPTURES = Path(__file__).parent / "captures"

AREA_PAGES = 128 * 1024 // 4


def _read(rel: str) -> str:
    return (CAPTURES / rel).read_text()


def test_meminfo_and_vmstat() -> None:
    m = parse_meminfo(_read("proc/meminfo"))
    assert m["CmaTotal"] == 128 * 1024 and 0 <= m["CmaFree"] <= m["CmaTotal"]
    assert m["MemTotal"] > m["MemFree"] > 0 and "MemAvailable" in m
    assert m["HugePages_Total"] == 0  # a count, not kB: parsed all the same
    v = parse_vmstat(_read("proc/vmstat"))
    assert v["nr_free_cma"] * 4 == m["CmaFree"]
    assert v["cma_alloc_fail"] >= 1 and v["cma_alloc_success"] >= 1
    assert v["pgmigrate_success"] > 0


def test_buddyinfo_counts_free_pages() -> None:
    zones = parse_buddyinfo(_read("proc/buddyinfo"))
    assert [z.zone for z in zones] == ["DMA", "DMA32"]
    assert all(len(z.free) == 11 for z in zones)  # orders 0..10 (MAX_ORDER 11 before 6.4)
    m = parse_meminfo(_read("proc/meminfo"))
    # buddy lists hold most free pages; the per-CPU lists hold the rest
    assert 0.9 * m["MemFree"] <= sum(z.free_pages for z in zones) * 4 <= m["MemFree"]


def test_pagetypeinfo() -> None:
    pti = parse_pagetypeinfo(_read("proc/pagetypeinfo"))
    assert pti.pageblock_order == 9
    assert pti.blocks[(0, "DMA32")]["CMA"] == 64  # the 128 MiB area in 2 MiB blocks
    assert pti.blocks_of("CMA") == 64 and pti.blocks_of("Isolate") == 0
    assert len(pti.free[(0, "DMA32", "CMA")]) == 11
    assert set(t for _, _, t in pti.free) == {
        "Unmovable",
        "Movable",
        "Reclaimable",
        "HighAtomic",
        "CMA",
        "Isolate",
    }
    m = parse_meminfo(_read("proc/meminfo"))
    cma_free = sum(n << o for o, n in enumerate(pti.free[(0, "DMA32", "CMA")]))
    assert abs(cma_free * 4 - m["CmaFree"]) <= 4 * 1024  # up to the pcp lists' pages
    assert pti.mixed == {}  # only printed with page_owner=on
    capped = parse_pagetypeinfo(
        "Page block order: 9\nNode    0, zone    DMA32, type      Movable >100000      3 \n"
    )
    assert capped.free[(0, "DMA32", "Movable")] == (100001, 3)


def test_zoneinfo() -> None:
    zones = parse_zoneinfo(_read("proc/zoneinfo"))
    dma32 = zones["DMA32"]
    assert dma32["cma"] == AREA_PAGES
    assert dma32["min"] < dma32["low"] < dma32["high"]
    assert dma32["managed"] <= dma32["present"] <= dma32["spanned"]
    assert dma32["nr_free_pages"] >= dma32["nr_free_cma"] > 0
    assert "pcp_high" in dma32 and "pcp_batch" in dma32
    assert zones["node0"]["nr_anon_pages"] > 0  # per-node stats under the first zone
    assert "nr_anon_pages" not in dma32


def test_trace_events_and_cma_calls() -> None:
    events = parse_trace(_read("trace.txt"))
    kinds = {e.event for e in events}
    assert {
        "cma_alloc_start",
        "cma_alloc_busy_retry",
        "cma_alloc_finish",
        "test_pages_isolated",
        "mm_migrate_pages",
        "mm_page_alloc",
        "mm_page_free",
    } <= kinds
    start = next(e for e in events if e.event == "cma_alloc_start")
    assert start.task == "init" and start.fields == {
        "name": "reserved",
        "count": "28672",
        "align": "8",
    }
    iso = next(e for e in events if e.event == "test_pages_isolated")
    assert iso.int_field("start_pfn") is not None and iso.fields["ret"] in ("fail", "success")
    calls = cma_calls(events)
    big = calls[0]
    assert big.count == 28672 and big.busy_retries > 0 and big.isolation_failures > 0
    assert big.end_s is not None and big.duration_s is not None and big.duration_s > 0
    assert [c.count for c in calls][-1] == 4096  # the debugfs allocation afterwards


def test_trace_line_forms() -> None:
    # with and without the tgid column and the irq-flags field
    lines = [
        "  kworker/0:1-12 [000] d..1.  5.000001: cma_release: name=reserved pfn=0x100 "
        "page=(____ptrval____) count=4",
        "  init-1 (      1) [001] .....  5.5: test_pages_isolated: start_pfn=0x1 end_pfn=0x2 "
        "fin_pfn=0x2 ret=success",
        "  <idle>-0 [001] 6.0: mm_page_free: page=(____ptrval____) pfn=0x17c00 order=0",
        "# tracer: nop",
        "garbage",
    ]
    events = parse_trace("\n".join(lines))
    assert [(e.task, e.pid, e.cpu, e.event) for e in events] == [
        ("kworker/0:1", 12, 0, "cma_release"),
        ("init", 1, 1, "test_pages_isolated"),
        ("<idle>", 0, 1, "mm_page_free"),
    ]
    assert events[0].int_field("pfn") == 0x100 and events[0].int_field("nope") is None
    assert events[2].time_s == 6.0


def test_cma_call_phases() -> None:
    """One traced idle call (the calibration's events, 6.1's formats) and another task's
    events around it, which belong to no call."""
    t = "init-1 [000] ..... "
    lines = [
        f"{t} 1.000000: cma_alloc_start: name=reserved count=256 align=0",
        "  sh-40 [001] ..... 1.000001: mm_page_pcpu_drain: page=(____ptrval____) pfn=0x9 order=0 "
        "migratetype=1",
        f"{t} 1.000010: mm_page_pcpu_drain: page=(____ptrval____) pfn=0x10 order=0 migratetype=4",
        f"{t} 1.000020: mm_page_pcpu_drain: page=(____ptrval____) pfn=0x11 order=0 migratetype=4",
        f"{t} 1.000030: mm_page_pcpu_drain: page=(____ptrval____) pfn=0x12 order=1 migratetype=4",
        f"{t} 1.000100: sched_switch: prev_comm=init prev_pid=1 prev_prio=120 prev_state=D ==> "
        "next_comm=swapper/0 next_pid=0 next_prio=120",
        "  <idle>-0 [000] d..2. 1.000400: sched_switch: prev_comm=swapper/0 prev_pid=0 "
        "prev_prio=120 prev_state=R ==> next_comm=init next_pid=1 next_prio=120",
        f"{t} 1.000410: workqueue_queue_work: work struct=(____ptrval____) "
        "function=lru_add_drain_per_cpu workqueue=mm_percpu_wq req_cpu=1 cpu=1",
        "  kworker/1:1-30 [001] ..... 1.000500: workqueue_execute_end: work struct "
        "(____ptrval____): function lru_add_drain_per_cpu",
        f"{t} 1.000600: mm_migrate_pages: nr_succeeded=0 nr_failed=0 nr_thp_succeeded=0 "
        "nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=contig_range",
        f"{t} 1.000700: test_pages_isolated: start_pfn=0x10 end_pfn=0x110 fin_pfn=0x110 "
        "ret=success",
        f"{t} 1.000800: cma_alloc_finish: name=reserved pfn=0x10 page=(____ptrval____) count=256 "
        "align=0",
        f"{t} 2.000000: cma_alloc_start: name=reserved count=1 align=0",
    ]
    first, unfinished = cma_call_phases(parse_trace("\n".join(lines)))
    assert first.count == 256 and first.start_s == 1.0 and first.finish_s == 1.0008
    assert first.isolated_s == 1.0007
    # the caller's own drain events only: 2 order-0 pages and an order-1
    assert (first.drain_first_s, first.drain_last_s, first.drained_pages) == (1.00001, 1.00003, 4)
    assert first.lru_queued_s == 1.00041 and first.lru_done_s == 1.0005 and first.lru_cpus == 1
    assert first.migrations == 1
    assert round(first.offcpu_isolating_s, 6) == 0.0003 and first.offcpu_finishing_s == 0
    assert unfinished.count == 1 and unfinished.finish_s is None and unfinished.isolated_s is None
    assert set(first.to_dict()) >= {"count", "drained_pages", "offcpu_isolating_s"}


def test_cma_failures_from_dmesg() -> None:
    failures = parse_cma_failures(_read("dmesg.txt"))
    summary = json.loads(_read("run-summary.json"))
    assert [f.__dict__ for f in failures] == summary["cma_failures"]
    assert failures[0].ret == -16 and failures[0].pages == 28672 and failures[0].area == "reserved"


def test_cma_bitmap() -> None:
    count = int(_read("debugfs/cma/reserved/count"))
    assert count == AREA_PAGES
    bitmap = parse_cma_bitmap(_read("debugfs/cma/reserved/bitmap"), count)
    assert len(bitmap) == count
    assert sum(bitmap) == int(_read("debugfs/cma/reserved/used"))
    longest = max((n for _, n in free_runs(bitmap)), default=0)
    assert longest == int(_read("debugfs/cma/reserved/maxchunk"))
    assert free_runs([True, False, False, True, False]) == [(1, 2), (4, 1)]
    assert parse_cma_bitmap("3", 4, order_per_bit=1) == [True, True, True, True]
