"""Parsers for the kernel's own text views, as Linux 6.1 prints them.

Each takes the file's text exactly as the guest read it (the agent copies the files byte for
byte) and returns plain Python data. The layouts are those of ``mm/vmstat.c``
(``/proc/vmstat``, ``/proc/buddyinfo``, ``/proc/pagetypeinfo``, ``/proc/zoneinfo``),
``fs/proc/meminfo.c``, ``mm/cma_debug.c`` (the bitmap as a u32 array), the ftrace text output
(``kernel/trace/trace_output.c``) and ``mm/cma.c``'s failure message; ``tests/kernel/captures``
holds real examples.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

MIGRATE_TYPES_6_1 = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")
"""``migratetype_names`` of 6.1 (mm/page_alloc.c) with CONFIG_CMA and CONFIG_MEMORY_ISOLATION."""


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as ``{"MemTotal": kB, ..., "HugePages_Total": count}``."""
    out = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if parts:
            out[key.strip()] = int(parts[0])
    return out


def parse_vmstat(text: str) -> dict[str, int]:
    """``/proc/vmstat`` as ``{"nr_free_pages": n, "pgmigrate_success": n, ...}``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class BuddyZone:
    """One line of ``/proc/buddyinfo``: free blocks of each order in a zone."""

    node: int
    zone: str
    free: tuple[int, ...]

    @property
    def free_pages(self) -> int:
        return sum(n << order for order, n in enumerate(self.free))


_NODE_ZONE = re.compile(r"Node\s+(\d+),\s+zone\s+(\S+)")


def parse_buddyinfo(text: str) -> list[BuddyZone]:
    """``/proc/buddyinfo``: ``Node 0, zone   DMA32    12   4 ...``."""
    out = []
    for line in text.splitlines():
        m = _NODE_ZONE.match(line)
        if m:
            counts = tuple(int(x) for x in line[m.end() :].split())
            out.append(BuddyZone(int(m.group(1)), m.group(2), counts))
    return out


@dataclass
class PageTypeInfo:
    """``/proc/pagetypeinfo``: the pageblock order, free blocks per (node, zone, migratetype)
    and order, and the number of pageblocks of each migratetype per (node, zone)."""

    pageblock_order: int = 0
    free: dict[tuple[int, str, str], tuple[int, ...]] = field(default_factory=dict)
    blocks: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)
    mixed: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)
    """Pageblocks holding pages of other migratetypes (printed with page_owner=on only)."""

    def blocks_of(self, migratetype: str) -> int:
        """Pageblocks of ``migratetype`` in all zones."""
        return sum(b.get(migratetype, 0) for b in self.blocks.values())


def parse_pagetypeinfo(text: str) -> PageTypeInfo:
    """``/proc/pagetypeinfo`` (mm/vmstat.c: pagetypeinfo_show).

    The free counts of 6.1 stop at 100000 per list (``freecount >= 100000`` ends the walk
    and prints ``>100000``): such an entry is parsed as 100001.
    """
    info = PageTypeInfo()
    block_types: list[str] = []
    target = info.blocks
    for line in text.splitlines():
        if line.startswith("Page block order:"):
            info.pageblock_order = int(line.split(":")[1])
        elif line.startswith("Number of blocks type"):
            block_types = line[len("Number of blocks type") :].split()
            target = info.blocks
        elif line.startswith("Number of mixed blocks"):
            block_types = line[len("Number of mixed blocks") :].split()
            target = info.mixed
        m = _NODE_ZONE.match(line)
        if not m:
            continue
        node, zone = int(m.group(1)), m.group(2).rstrip(",")
        rest = line[m.end() :]
        if rest.lstrip(", ").startswith("type"):
            rest = rest.lstrip(", ")[len("type") :]
            parts = rest.split()
            mtype, counts = parts[0], parts[1:]
            info.free[(node, zone, mtype)] = tuple(
                100001 if c.startswith(">") else int(c) for c in counts
            )
        elif block_types:
            numbers = [int(x) for x in rest.split()]
            target[(node, zone)] = dict(zip(block_types, numbers))
    return info


def parse_zoneinfo(text: str) -> dict[str, dict[str, int]]:
    """``/proc/zoneinfo`` as ``{zone: {field: value}}`` (node 0; other nodes' zones are
    named ``"<node>:<zone>"``).

    Fields keep the kernel's names with spaces as underscores: ``pages_free``, ``min``,
    ``low``, ``high``, ``spanned``, ``present``, ``managed``, ``cma``, ``nr_free_pages``,
    ``nr_free_cma``, ... The per-node stats printed under a node's first zone are in
    ``"node<N>"``; per-CPU pagesets are summed into ``pcp_count`` and their ``high`` and
    ``batch`` kept from the first CPU (``pcp_high``, ``pcp_batch``).
    """
    out: dict[str, dict[str, int]] = {}
    cur: Optional[dict[str, int]] = None
    node_stats: Optional[dict[str, int]] = None
    in_node_stats = False
    in_pagesets = False
    for line in text.splitlines():
        m = _NODE_ZONE.match(line)
        if m:
            node, zone = int(m.group(1)), m.group(2)
            cur = out.setdefault(zone if node == 0 else f"{node}:{zone}", {})
            node_stats = out.setdefault(f"node{node}", {})
            in_node_stats = in_pagesets = False
            continue
        if cur is None:
            continue
        stripped = line.strip()
        if stripped == "per-node stats":
            in_node_stats = True
            continue
        if stripped.startswith("pages free"):
            in_node_stats = False
            cur["pages_free"] = int(stripped.split()[-1])
            continue
        if stripped == "pagesets":
            in_pagesets = True
            continue
        if stripped.startswith("protection:"):
            continue
        if in_pagesets:
            key, _, value = stripped.partition(":")
            key = key.strip()
            if key == "count":
                cur["pcp_count"] = cur.get("pcp_count", 0) + int(value)
            elif key in ("high", "batch") and f"pcp_{key}" not in cur:
                cur[f"pcp_{key}"] = int(value)
            elif key in ("vm stats threshold", "node_unreclaimable", "start_pfn"):
                cur[key.replace(" ", "_")] = int(value)
            continue
        parts = stripped.replace(":", " ").split()
        if len(parts) >= 2 and re.fullmatch(r"-?\d+", parts[-1]):
            key = "_".join(parts[:-1])
            target = node_stats if in_node_stats and node_stats is not None else cur
            target[key] = int(parts[-1])
    return out


# --------------------------------------------------------------------------------------------
# ftrace


@dataclass(frozen=True)
class TraceEvent:
    """One line of ftrace text output: ``task-pid [cpu] flags timestamp: event: fields``.

    ``time_s`` is on the trace clock (the agent sets ``mono``: CLOCK_MONOTONIC, the clock of
    the agent's own records). ``fields`` holds the ``key=value`` tokens of the event's text.
    """

    task: str
    pid: int
    cpu: int
    time_s: float
    event: str
    text: str
    fields: dict[str, str]

    def int_field(self, key: str) -> Optional[int]:
        """A numeric field (hex ``0x...`` or decimal), None if absent."""
        v = self.fields.get(key)
        if v is None:
            return None
        try:
            return int(v, 0)
        except ValueError:
            return None


_TRACE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\d][^\s]*)\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<text>.*)$"
)


def parse_trace(text: str) -> list[TraceEvent]:
    """The events of ftrace text (``trace`` or ``trace_pipe``); comment and unparsable lines
    are skipped."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _TRACE.match(line)
        if not m:
            continue
        body = m.group("text")
        fields = {}
        for tok in body.split():
            k, sep, v = tok.partition("=")
            if sep:
                fields[k] = v
        out.append(
            TraceEvent(
                task=m.group("task").strip(),
                pid=int(m.group("pid")),
                cpu=int(m.group("cpu")),
                time_s=float(m.group("ts")),
                event=m.group("event"),
                text=body,
                fields=fields,
            )
        )
    return out


@dataclass(frozen=True)
class CmaCall:
    """One ``cma_alloc`` as the trace shows it (6.1's events: ``cma_alloc_start``, a
    ``cma_alloc_busy_retry`` per range that was busy, ``cma_alloc_finish``), with the
    ``test_pages_isolated`` failures and the pages migrated in between. ``end_s`` is None if
    the trace ends before the call does. Whether it succeeded is not in 6.1's events (the
    finish event prints the last pfn tried either way): match it with the request records."""

    area: str
    count: int
    align: int
    start_s: float
    end_s: Optional[float]
    pfn: Optional[int]
    busy_retries: int
    isolation_failures: int
    migrated: int
    migrate_failed: int
    task: str
    pid: int

    @property
    def duration_s(self) -> Optional[float]:
        return None if self.end_s is None else self.end_s - self.start_s


def cma_calls(events: list[TraceEvent]) -> list[CmaCall]:
    """The ``cma_alloc`` calls in ``events``, in the order they started. Events of a call
    are those of its task (cma_alloc runs in the caller's context) between its start and
    finish."""
    open_calls: dict[int, dict[str, Any]] = {}
    done: list[CmaCall] = []

    def close(c: dict[str, Any], end: Optional[float], pfn: Optional[int]) -> None:
        done.append(CmaCall(end_s=end, pfn=pfn, **c))

    for e in events:
        if e.event == "cma_alloc_start":
            if e.pid in open_calls:
                close(open_calls.pop(e.pid), None, None)
            open_calls[e.pid] = {
                "area": e.fields.get("name", ""),
                "count": e.int_field("count") or 0,
                "align": e.int_field("align") or 0,
                "start_s": e.time_s,
                "busy_retries": 0,
                "isolation_failures": 0,
                "migrated": 0,
                "migrate_failed": 0,
                "task": e.task,
                "pid": e.pid,
            }
            continue
        c = open_calls.get(e.pid)
        if c is None:
            continue
        if e.event == "cma_alloc_busy_retry":
            c["busy_retries"] += 1
        elif e.event == "test_pages_isolated" and e.fields.get("ret") == "fail":
            c["isolation_failures"] += 1
        elif e.event == "mm_migrate_pages":
            c["migrated"] += e.int_field("nr_succeeded") or 0
            c["migrate_failed"] += e.int_field("nr_failed") or 0
        elif e.event == "cma_alloc_finish":
            close(open_calls.pop(e.pid), e.time_s, e.int_field("pfn"))
    for c in open_calls.values():
        close(c, None, None)
    return sorted(done, key=lambda c: c.start_s)


@dataclass(frozen=True)
class CmaPhases:
    """When each phase of one ``cma_alloc`` ended, from the events of a traced call (times on
    the trace clock, seconds). 6.1's ``alloc_contig_range`` runs, in the caller's task:
    ``start_isolate_page_range``; ``drain_all_pages`` (remote since 6.0: the caller frees each
    CPU's lists itself, one ``mm_page_pcpu_drain`` per page); ``lru_cache_disable``
    (``synchronize_rcu_expedited``, then ``__lru_add_drain_all``: a
    ``lru_add_drain_per_cpu`` work item queued on every CPU and flushed); the migration loop
    with its ``isolate_migratepages_range`` walk; ``test_pages_isolated`` (its event ends the
    walk over the range); then ``isolate_freepages_range`` and ``undo_isolate_page_range``
    until ``cma_alloc_finish``. Fields are None where the trace has no such event."""

    count: int
    start_s: float
    isolated_s: Optional[float]
    """The first ``test_pages_isolated`` of the call."""
    finish_s: Optional[float]
    drain_first_s: Optional[float]
    drain_last_s: Optional[float]
    drained_pages: int
    lru_queued_s: Optional[float]
    """The first ``workqueue_queue_work`` of ``lru_add_drain_per_cpu`` by the caller: the end
    of ``synchronize_rcu_expedited``."""
    lru_done_s: Optional[float]
    """The last ``workqueue_execute_end`` of ``lru_add_drain_per_cpu`` before the walk."""
    lru_cpus: int
    migrations: int
    """``mm_migrate_pages`` batches during the call (an idle area has one, of no page)."""
    offcpu_isolating_s: float = 0.0
    """Time the caller was switched out (``sched_switch``) before ``test_pages_isolated``:
    waiting, on an idle area, for ``synchronize_rcu_expedited`` and the flushes."""
    offcpu_finishing_s: float = 0.0
    """The same from ``test_pages_isolated`` to ``cma_alloc_finish``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_LRU_WORK = "lru_add_drain_per_cpu"


def _work_function(e: TraceEvent) -> str:
    """The function of a workqueue event (``function=f`` or ``...: function f``)."""
    return e.fields.get("function") or e.text.rsplit(" ", 1)[-1]


def cma_call_phases(events: list[TraceEvent]) -> list[CmaPhases]:
    """The phases of each ``cma_alloc`` in ``events`` (see :class:`CmaPhases`), in order. It
    needs ``cma:*`` and ``page_isolation:*``; the drain, the LRU drain and the time off the
    CPU also need ``kmem:mm_page_pcpu_drain``, ``workqueue:*`` and ``sched:sched_switch`` (the
    calibration's ``trace_extra``)."""
    out: list[CmaPhases] = []
    open_calls: dict[int, dict[str, Any]] = {}
    switched_out: dict[int, float] = {}

    def close(pid: int, finish: Optional[float]) -> None:
        c = open_calls.pop(pid)
        switched_out.pop(pid, None)
        out.append(CmaPhases(finish_s=finish, **c))

    for e in events:
        if e.event == "sched_switch":
            prev, nxt = e.int_field("prev_pid"), e.int_field("next_pid")
            if prev in open_calls:
                switched_out[prev] = e.time_s
            if nxt in open_calls and nxt in switched_out:
                back = open_calls[nxt]
                key = "offcpu_isolating_s" if back["isolated_s"] is None else "offcpu_finishing_s"
                back[key] += e.time_s - switched_out.pop(nxt)
            continue
        if e.event == "cma_alloc_start":
            if e.pid in open_calls:
                close(e.pid, None)
            open_calls[e.pid] = {
                "count": e.int_field("count") or 0,
                "start_s": e.time_s,
                "isolated_s": None,
                "drain_first_s": None,
                "drain_last_s": None,
                "drained_pages": 0,
                "lru_queued_s": None,
                "lru_done_s": None,
                "lru_cpus": 0,
                "migrations": 0,
                "offcpu_isolating_s": 0.0,
                "offcpu_finishing_s": 0.0,
            }
            continue
        if e.event == "workqueue_execute_end" and _work_function(e) == _LRU_WORK:
            # a kworker finished its item: the flush of every open call that queued one
            for waiting in open_calls.values():
                if waiting["lru_queued_s"] is not None and waiting["isolated_s"] is None:
                    waiting["lru_done_s"] = e.time_s
            continue
        c = open_calls.get(e.pid)
        if c is None:
            continue
        before_walk = c["isolated_s"] is None
        if e.event == "mm_page_pcpu_drain" and before_walk and c["lru_queued_s"] is None:
            if c["drain_first_s"] is None:
                c["drain_first_s"] = e.time_s
            c["drain_last_s"] = e.time_s
            c["drained_pages"] += 1 << (e.int_field("order") or 0)
        elif e.event == "workqueue_queue_work" and _work_function(e) == _LRU_WORK and before_walk:
            if c["lru_queued_s"] is None:
                c["lru_queued_s"] = e.time_s
            c["lru_cpus"] += 1
        elif e.event == "mm_migrate_pages":
            c["migrations"] += 1
        elif e.event == "test_pages_isolated" and before_walk:
            c["isolated_s"] = e.time_s
        elif e.event == "cma_alloc_finish":
            close(e.pid, e.time_s)
    for pid in list(open_calls):
        close(pid, None)
    return sorted(out, key=lambda c: c.start_s)


# --------------------------------------------------------------------------------------------
# dmesg and the CMA bitmap


@dataclass(frozen=True)
class CmaFailure:
    """``cma_alloc: <area>: alloc failed, req-size: <pages> pages, ret: <errno>`` (mm/cma.c,
    6.1, pr_err_ratelimited: at most 10 lines per 5 s reach the log). ``ret`` is the inner
    error the ioctl and debugfs both report as -ENOMEM: -16 (EBUSY) when the last range tried
    was busy, -12 (ENOMEM) when no free range was left or migration ran out of memory."""

    time_s: Optional[float]
    area: str
    pages: int
    ret: int


_CMA_FAIL = re.compile(
    r"(?:\[\s*(?P<ts>\d+\.\d+)\]\s*)?cma: cma_alloc: (?P<area>\S+): alloc failed, "
    r"req-size: (?P<pages>\d+) pages, ret: (?P<ret>-?\d+)"
)


def parse_cma_failures(dmesg: str) -> list[CmaFailure]:
    """The failed ``cma_alloc`` calls the kernel logged."""
    out = []
    for m in _CMA_FAIL.finditer(dmesg):
        ts = m.group("ts")
        out.append(
            CmaFailure(
                time_s=float(ts) if ts else None,
                area=m.group("area"),
                pages=int(m.group("pages")),
                ret=int(m.group("ret")),
            )
        )
    return out


def parse_cma_bitmap(text: str, count: int, order_per_bit: int = 0) -> list[bool]:
    """debugfs ``cma/<area>/bitmap`` (a u32 array, ``debugfs_create_u32_array``: values
    separated by spaces) as one bool per page of the area: True where allocated."""
    words = [int(x) for x in text.split()]
    bits = count >> order_per_bit
    out = []
    for i in range(bits):
        word = words[i // 32] if i // 32 < len(words) else 0
        used = bool(word >> (i % 32) & 1)
        out.extend([used] * (1 << order_per_bit))
    return out[:count]


def free_runs(bitmap: list[bool]) -> list[tuple[int, int]]:
    """The free runs of a CMA bitmap as ``(first page, length)``, in order."""
    runs = []
    start = None
    for i, used in enumerate([*bitmap, True]):
        if not used and start is None:
            start = i
        elif used and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


__all__ = [
    "MIGRATE_TYPES_6_1",
    "BuddyZone",
    "CmaCall",
    "CmaFailure",
    "CmaPhases",
    "PageTypeInfo",
    "TraceEvent",
    "cma_call_phases",
    "cma_calls",
    "free_runs",
    "parse_buddyinfo",
    "parse_cma_bitmap",
    "parse_cma_failures",
    "parse_meminfo",
    "parse_pagetypeinfo",
    "parse_trace",
    "parse_vmstat",
    "parse_zoneinfo",
]
