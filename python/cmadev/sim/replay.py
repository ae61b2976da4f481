"""Replaying a captured trace: its ``cma_alloc`` calls as a device timeline, its page
allocator traffic and pins as background workloads, its ``/proc`` snapshots as the state to
start from, under any policy on any board.

What becomes what:

- each ``cma_alloc_start``/``cma_alloc_finish`` pair (one task) is one device request of one
  buffer of the same size, alignment and area, started at the same time after the trace's
  first event; a ``cma_release`` of its range stops it there (else it holds its buffer to the
  end, as in the capture). The buffer is not cleared: ``cma_alloc_finish`` fires before a
  dma-heap clears, so the captured latency does not include it either. A request's device is
  named after the task (``comm-pid``);
- ``kmem:mm_page_alloc`` by class (anonymous: ``__GFP_ZERO`` movable folios; page cache:
  other movable ones; kernel: unmovable and reclaimable) becomes an ``AnonHog``, a
  ``PageCacheReader`` and a ``KernelAlloc`` at the captured rates, each growing to the most
  pages of its class alive at once (lifetimes from alloc-to-free pairs for kernel memory);
- pages that would not migrate during the capture's requests (``mm_migrate_pages``
  ``nr_failed``, the most in one ``alloc_contig_range`` attempt) become references
  (``DirectIO`` with ``get_page``) on about that many pages at once, each held as long as the
  capture saw failures, from one hold before the first failure to after the last;
- a ``/proc/meminfo`` snapshot sets the sizes to start from (``AnonPages``, ``Cached``,
  ``Slab``), reached before the first request; ``/proc/pagetypeinfo`` and ``/proc/vmstat``
  are read and kept with the result (the model builds its pageblock types itself).

The estimates are said as such in :attr:`Replay.notes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from cmadev.capture import (
    CapturedRequest,
    Snapshot,
    Trace,
    background,
    cma_requests,
    pins,
)
from cmadev.errors import SpecError
from cmadev.results import ScenarioResult
from cmadev.specs.board import Board
from cmadev.specs.catalog import load_board
from cmadev.specs.scenario import Scenario
from cmadev.units import NS_PER_MS, NS_PER_S, PAGE_SIZE, format_duration, format_size

_MIN_GROWTH = 64 * 1024 * 1024  # bytes/s, to reach a snapshot's state quickly
_TAIL_NS = NS_PER_S  # run on after the last event


@dataclass
class Replay:
    """A capture turned into a scenario, and what was estimated on the way."""

    trace: Trace
    requests: list[CapturedRequest]
    scenario: Scenario
    offset_ns: int
    """Model time of the trace's first event (after the warm-up that reaches the snapshot)."""
    notes: list[str] = field(default_factory=list)
    snapshot: Snapshot = field(default_factory=Snapshot)

    def device_of(self, index: int) -> str:
        return self.scenario.devices[index].name


def _device_name(r: CapturedRequest, seen: dict[str, int]) -> str:
    base = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in f"{r.comm}-{r.pid}")
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def _area(board: Board, captured: str, areas: dict[str, str]) -> str:
    if captured in areas:
        board.cma_area(areas[captured])
        return areas[captured]
    names = [a.name for a in board.cma_areas]
    if captured in names:
        return captured
    if len(names) == 1:
        return names[0]
    raise SpecError(
        f"the capture allocates from CMA area {captured!r}, which board {board.name!r} does "
        f"not have (its areas: {', '.join(names) or 'none'}): map it with --area "
        f"{captured}=AREA"
    )


def build_replay(
    trace: Trace,
    board: Union[Board, str],
    snapshot: Optional[Snapshot] = None,
    areas: Optional[dict[str, str]] = None,
    deadline: int = 200 * NS_PER_MS,
    seed: int = 1,
) -> Replay:
    """Turn ``trace`` (and ``snapshot``) into a scenario on ``board``."""
    board = load_board(board)
    snapshot = snapshot or Snapshot()
    requests = cma_requests(trace)
    if not requests:
        raise SpecError(
            f"{trace.source}: no cma_alloc_start/cma_alloc_finish pair to replay: capture "
            f"with the cma events enabled (echo 1 > /sys/kernel/tracing/events/cma/enable)"
        )
    notes: list[str] = []
    bg = background(trace)
    pinned = pins(trace)
    workloads: list[dict[str, Any]] = []
    ceiling = int(board.copy_bandwidth * 0.5)
    room = (board.ram - board.reserved - board.cma_total) * 9 // 10

    def size_of(cls: str, meminfo_key: str) -> int:
        pages = bg.live_peak.get(cls, 0)
        size = pages * PAGE_SIZE
        if meminfo_key in snapshot.meminfo:
            size = max(size, snapshot.meminfo[meminfo_key] * 1024)
        return min(size, board.ram * 8 // 10)

    anon = size_of("anon", "AnonPages")
    file = size_of("file", "Cached")
    kernel = size_of("kernel", "Slab")
    growth_anon = min(max(int(bg.growth("anon") * PAGE_SIZE), _MIN_GROWTH), ceiling)
    warmup = 0
    if anon:
        workloads.append({"kind": "anon_hog", "name": "anon", "size": anon, "growth": growth_anon})
        warmup = max(warmup, anon * NS_PER_S // growth_anon)
        notes.append(
            f"anonymous memory: {format_size(anon)} at {format_size(growth_anon)}/s "
            f"({bg.allocated.get('anon', 0)} pages allocated in the trace)"
        )
    if file:
        rate = min(max(int(bg.growth("file") * PAGE_SIZE), _MIN_GROWTH), ceiling)
        workloads.append(
            {"kind": "page_cache_reader", "name": "pagecache", "working_set": file, "rate": rate}
        )
        warmup = max(warmup, file * NS_PER_S // rate)
        notes.append(f"page cache: {format_size(file)} read at {format_size(rate)}/s")
    if kernel and kernel < room // 4:
        lifetime = bg.median_lifetime_ns("kernel") or 10 * NS_PER_S
        rate_pages = max(kernel // PAGE_SIZE * NS_PER_S / lifetime, 1.0)
        workloads.append(
            {
                "kind": "kernel_alloc",
                "name": "slab",
                "rate": rate_pages,
                "lifetime": lifetime,
            }
        )
        notes.append(
            f"kernel memory: {format_size(kernel)} as {rate_pages:.0f} pages/s living "
            f"{format_duration(lifetime)}"
        )
    if anon + file > room:
        notes.append(
            f"the snapshot's {format_size(anon + file)} of user memory exceeds what the board "
            f"has outside CMA ({format_size(room)}): the model reclaims or lends CMA for it"
        )
    offset = warmup + NS_PER_S // 2
    if pinned.pages and pinned.first_ns is not None and pinned.last_ns is not None:
        # Each reference is held as long as the capture saw failures (at least 1 s); they
        # start one hold before the first failure, so that `pinned.pages` are held at once by
        # then, and stop after the last one.
        hold = max(pinned.last_ns - pinned.first_ns, NS_PER_S)
        first = offset + pinned.first_ns - trace.start_ns
        start = max(first - hold, offset)
        stop = offset + pinned.last_ns - trace.start_ns + NS_PER_S
        ramp = max(first - start, NS_PER_S)
        workloads.append(
            {
                "kind": "direct_io",
                "name": "pins",
                "buffer": max(pinned.pages * 4, 64) * PAGE_SIZE,
                "iops": pinned.pages * NS_PER_S / ramp,
                "io_size": PAGE_SIZE,
                "pin_time": hold,
                "pin_distribution": "fixed",
                "hold": "get_page",
                "start": start,
                "stop": stop,
            }
        )
        notes.append(
            f"pins: {pinned.pages} pages failed to migrate in one attempt "
            f"({len(pinned.busy_pfns)} busy pfns seen by test_pages_isolated): replayed as "
            f"get_page references on about {pinned.pages} pages at once, each held "
            f"{format_duration(hold)}, from {format_duration(start)} to "
            f"{format_duration(stop)} of model time"
        )
    devices, timeline = [], []
    seen: dict[str, int] = {}
    for r in requests:
        name = _device_name(r, seen)
        area = _area(board, r.area, areas or {})
        devices.append(
            {
                "name": name,
                "device": {
                    "name": name,
                    "kind": "camera_sensor",
                    "description": f"cma_alloc of line {r.line} of {trace.source} by {r.comm}",
                    "heap": area,
                    "deadline": deadline,
                    "zero_buffers": False,
                    "default_mode": "captured",
                    "modes": {
                        "captured": [
                            {
                                "count": 1,
                                "size": r.count * PAGE_SIZE,
                                "align": PAGE_SIZE << r.align,
                            }
                        ]
                    },
                },
            }
        )
        timeline.append(
            {"at": offset + r.start_ns - trace.start_ns, "device": name, "action": "start"}
        )
        if r.released_ns is not None:
            at = offset + r.released_ns - trace.start_ns
            timeline.append({"at": at, "device": name, "action": "stop"})
    duration = offset + (trace.end_ns - trace.start_ns) + _TAIL_NS
    scenario = Scenario.model_validate(
        {
            "name": "replay",
            "description": f"Replay of {trace.source}: {len(requests)} cma_alloc calls.",
            "board": board.model_dump(mode="json"),
            "devices": devices,
            "workloads": workloads,
            "timeline": timeline,
            "duration": duration,
            "seed": seed,
        }
    )
    notes.append(
        f"timeline: the trace's first event is at {format_duration(offset)} of model time "
        f"(after a warm-up that reaches the starting state)"
    )
    if "CmaTotal" in snapshot.meminfo and "CmaFree" in snapshot.meminfo:
        used = (snapshot.meminfo["CmaTotal"] - snapshot.meminfo["CmaFree"]) * 1024
        notes.append(
            f"the snapshot's CMA use ({format_size(used)} of "
            f"{format_size(snapshot.meminfo['CmaTotal'] * 1024)}) is not imposed: where pages "
            f"land is what each policy decides"
        )
    if snapshot.pagetypeinfo:
        blocks: dict[str, int] = {}
        for counts in snapshot.pagetypeinfo.values():
            for mt, n in counts.items():
                blocks[mt] = blocks.get(mt, 0) + n
        shown = ", ".join(f"{mt} {n}" for mt, n in blocks.items() if n)
        notes.append(
            f"pageblocks in the snapshot: {shown}; the model's follow from its own allocations"
        )
    return Replay(trace, requests, scenario, offset, notes, snapshot)


@dataclass(frozen=True)
class ReplayRow:
    """One captured request beside its modelled runs."""

    device: str
    area: str
    pages: int
    align: int
    captured_ns: int
    captured_ok: bool
    modelled: dict[str, tuple[Optional[int], str]]
    """Per policy: (latency in ns, outcome), or (None, 'missing')."""


def compare_replay(replay: Replay, runs: Sequence[ScenarioResult]) -> list[ReplayRow]:
    """Captured latency and outcome of each request beside each run's (first seed each)."""
    rows = []
    for i, r in enumerate(replay.requests):
        device = replay.device_of(i)
        modelled: dict[str, tuple[Optional[int], str]] = {}
        for run in runs:
            if run.policy in modelled:
                continue
            mine = run.requests_of(device)
            if not mine:
                modelled[run.policy] = (None, "missing")
                continue
            req = mine[0]
            buf = req.buffers[0]
            modelled[run.policy] = (buf.latency_ns, "ok" if buf.ok else f"failed {buf.errno}")
        rows.append(ReplayRow(device, r.area, r.count, r.align, r.latency_ns, r.ok, modelled))
    return rows


__all__ = ["Replay", "ReplayRow", "build_replay", "compare_replay"]
