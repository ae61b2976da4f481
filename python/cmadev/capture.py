"""Reading what a real device recorded: an ftrace text capture and ``/proc`` snapshots, as
plain data (no engine: :mod:`cmadev.sim.replay` turns them into a run).

A trace is read line by line with the kernel's own layout. Every event line of
``/sys/kernel/tracing/trace`` starts with the context ``trace_print_context`` prints (Linux
6.1 ``kernel/trace/trace_output.c``): the task name right-aligned in 16 columns, ``-``, the
pid left-aligned in 7, an optional ``(tgid)``, ``[CPU]`` in three digits, the latency flags
(``irqs-off``, ``need-resched``, ``hardirq/softirq``, ``preempt-depth``,
``migrate-disable``), the timestamp ``%5lu.%06lu`` and ``: event: body``. ``trace-cmd
report`` prints the same context without the flags column by default and pads the event
name; both are accepted, and a ``trace.dat`` is read through ``trace-cmd report`` when
``trace-cmd`` is installed. The body of each event the replay uses is checked against its
``TP_printk`` format (6.1 and mainline where they differ: ``cma_alloc_start``'s
``count``/``request_count``, ``cma_alloc_finish``'s ``errorno``); other events are counted
and skipped. A line that is neither a comment, an event line nor a known trace-cmd banner is
a :class:`~cmadev.errors.TraceParseError` naming the file and the line number.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Optional, Union

from cmadev.errors import TraceParseError

PathLike = Union[str, "os.PathLike[str]"]

_PREFIX = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*[\d-]+\)\s+)?"  # tgid, with the record-tgid option
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:[.dDbXNnLpshHzZ0-9]{4,5}\s+)?"  # latency flags (absent in trace-cmd report)
    r"(?P<ts>\d+\.\d+):\s+"
    r"(?P<event>[\w:]+):\s*(?P<body>.*?)\s*$"
)
_FIELD = re.compile(r"(\w+)=(\S*)")
_TRACE_CMD_BANNER = re.compile(r"^(cpus=\d+|CPU \d+ is empty|CPU:\d+ \[LOST \d+ EVENTS\])$")

_INT = re.compile(r"^-?\d+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")

# The fields each event the replay reads must have, and how they parse ('d' decimal,
# 'x' 0x-hex, 's' text). Alternatives are separated by '|' (6.1 name|mainline name).
EVENT_FIELDS: dict[str, dict[str, str]] = {
    "cma_alloc_start": {"name": "s", "count|request_count": "d", "align": "d"},
    "cma_alloc_finish": {"name": "s", "pfn": "x", "page": "s", "count": "d", "align": "d"},
    "cma_alloc_busy_retry": {"name": "s", "pfn": "x", "count": "d", "align": "d"},
    "cma_release": {"name": "s", "pfn": "x", "count": "d"},
    "test_pages_isolated": {"start_pfn": "x", "end_pfn": "x", "fin_pfn": "x", "ret": "s"},
    "mm_migrate_pages": {"nr_succeeded": "d", "nr_failed": "d", "reason": "s"},
    "mm_migrate_pages_start": {"mode": "s", "reason": "s"},
    "mm_page_alloc": {"pfn": "x", "order": "d", "migratetype": "d", "gfp_flags": "s"},
    "mm_page_free": {"pfn": "x", "order": "d"},
    "mm_page_free_batched": {"pfn": "x"},
    "mm_page_alloc_extfrag": {"pfn": "x", "alloc_migratetype": "d"},
    "mm_alloc_contig_migrate_range_info": {"start": "x", "end": "x", "nr_migrated": "d"},
    "mm_vmscan_kswapd_wake": {"nid": "d", "order": "d"},
    "mm_vmscan_kswapd_sleep": {"nid": "d"},
}
"""The events the importer understands (their ``TP_printk`` fields it needs)."""


class TraceEvent(NamedTuple):
    """One event line."""

    line: int
    ts_ns: int
    comm: str
    pid: int
    cpu: int
    event: str
    fields: dict[str, str]

    def int(self, key: str) -> int:
        """Field ``key`` as a number (decimal, or ``0x`` hex; ``-1`` printed as
        ``0xffffffffffffffff`` stays that)."""
        return int(self.fields[key], 0)


@dataclass
class Trace:
    """A parsed trace: the events the importer knows, in file order, and counts of the
    others (skipped)."""

    source: str
    events: list[TraceEvent]
    unknown: Counter[str] = field(default_factory=Counter)
    lines: int = 0

    def of(self, *names: str) -> list[TraceEvent]:
        return [e for e in self.events if e.event in names]

    @property
    def start_ns(self) -> int:
        return self.events[0].ts_ns if self.events else 0

    @property
    def end_ns(self) -> int:
        return self.events[-1].ts_ns if self.events else 0


_SPECS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    event: tuple((tuple(key.split("|")), kind) for key, kind in fields.items())
    for event, fields in EVENT_FIELDS.items()
}


def _bad_field(source: str, lineno: int, event: str, names: tuple[str, ...], value: object) -> None:
    if value is None:
        raise TraceParseError(
            f"{source}:{lineno}: {event} has no {' or '.join(n + '=' for n in names)} field "
            f"(its TP_printk prints it): is the line cut, or from another kernel's format?"
        )
    raise TraceParseError(f"{source}:{lineno}: {event} {names[0]}={value!r} is not a number")


def _check_fields(source: str, lineno: int, event: str, fields: dict[str, str]) -> None:
    for names, kind in _SPECS[event]:
        value = fields.get(names[0])
        if value is None:
            for other in names[1:]:
                value = fields.get(other)
                if value is not None:
                    break
            else:
                _bad_field(source, lineno, event, names, None)
        assert value is not None
        if kind == "d":
            if not value.isdigit() and not (value[:1] == "-" and value[1:].isdigit()):
                raise TraceParseError(
                    f"{source}:{lineno}: {event} {names[0]}={value!r} is not a decimal number"
                )
        elif kind == "x" and not value.isdigit() and _HEX.match(value) is None:
            raise TraceParseError(
                f"{source}:{lineno}: {event} {names[0]}={value!r} is not a 0x hex number"
            )


def parse_trace_text(text: str, source: str = "<trace>") -> Trace:
    """Parse ftrace text (the ``trace`` file, ``trace_pipe`` or ``trace-cmd report``)."""
    events: list[TraceEvent] = []
    unknown: Counter[str] = Counter()
    known = _SPECS
    match = _PREFIX.match
    findall = _FIELD.findall
    append = events.append
    lineno = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw or raw[0] == "#" or raw.isspace():
            continue
        m = match(raw)
        if m is None:
            if _TRACE_CMD_BANNER.match(raw.strip()) or raw.startswith("version = "):
                continue
            raise TraceParseError(
                f"{source}:{lineno}: not an ftrace event line (expected 'comm-pid [cpu] "
                f"flags seconds.micros: event: fields', as trace_output.c prints it): "
                f"{raw[:120]!r}"
            )
        comm, pid, cpu, ts, event, body = m.groups()
        if ":" in event:
            event = event.rpartition(":")[2]
        if event not in known:
            unknown[event] += 1
            continue
        fields = dict(findall(body))
        _check_fields(source, lineno, event, fields)
        secs, _, frac = ts.partition(".")
        ts_ns = int(secs) * 1_000_000_000 + int((frac + "000000000")[:9])
        append(TraceEvent(lineno, ts_ns, comm.strip(), int(pid), int(cpu), event, fields))
    return Trace(source, events, unknown, lineno)


TRACE_DAT_MAGIC = b"\x17\x08\x44tracing"
"""The first bytes of a ``trace-cmd record`` file (``trace.dat``)."""


def read_trace(path: PathLike) -> Trace:
    """Read a capture: ftrace text or ``trace-cmd report`` output (either may be gzipped), or
    a ``trace.dat`` (through ``trace-cmd report``, which must be installed: Debian's
    ``trace-cmd``)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(len(TRACE_DAT_MAGIC))
    except OSError as err:
        raise TraceParseError(f"{p}: cannot read the capture ({err.strerror})") from None
    if head == TRACE_DAT_MAGIC:
        return parse_trace_text(_trace_cmd_report(p), f"{p} (trace-cmd report)")
    try:
        if head[:2] == b"\x1f\x8b":  # gzip: a capture kept compressed
            text = gzip.decompress(p.read_bytes()).decode("utf-8")
        else:
            text = p.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise TraceParseError(
            f"{p}: byte {err.start} is not text: give the ftrace text, 'trace-cmd report' "
            f"output or a trace.dat"
        ) from None
    except (OSError, EOFError) as err:  # a cut or corrupt gzip file
        raise TraceParseError(f"{p}: cannot read the capture ({err})") from None
    return parse_trace_text(text, str(p))


def _trace_cmd_report(path: Path) -> str:
    exe = shutil.which("trace-cmd")
    if exe is None:
        raise TraceParseError(
            f"{path} is a trace.dat: reading it needs trace-cmd (apt-get install trace-cmd), "
            f"or give the output of 'trace-cmd report -i {path.name}'"
        )
    done = subprocess.run(
        [exe, "report", "-i", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise TraceParseError(f"{path}: trace-cmd report failed ({why})")
    if not done.stdout.strip():
        raise TraceParseError(
            f"{path}: trace-cmd report printed nothing: is it a whole trace-cmd record file "
            f"(trace.dat)? Check it with 'trace-cmd report -i {path.name}'"
        )
    return done.stdout


# --------------------------------------------------------------------------------------------
# What the trace says: CMA requests, background load, pins


@dataclass(frozen=True)
class CapturedRequest:
    """One ``cma_alloc`` of the capture: ``cma_alloc_start`` to ``cma_alloc_finish`` in
    one task."""

    area: str
    count: int
    align: int
    comm: str
    pid: int
    start_ns: int
    finish_ns: int
    ok: bool
    pfn: Optional[int]
    busy_retries: int
    released_ns: Optional[int] = None
    line: int = 0

    @property
    def latency_ns(self) -> int:
        return self.finish_ns - self.start_ns


def cma_requests(trace: Trace) -> list[CapturedRequest]:
    """The ``cma_alloc`` calls, paired start to finish by task, in the order they started;
    with their release times."""
    open_by_pid: dict[int, tuple[TraceEvent, int]] = {}
    done: list[CapturedRequest] = []
    releases: dict[int, int] = {}
    for e in trace.events:
        if e.event == "cma_alloc_start":
            if e.pid in open_by_pid:
                raise TraceParseError(
                    f"{trace.source}:{e.line}: task {e.comm}-{e.pid} starts a cma_alloc while "
                    f"its cma_alloc of line {open_by_pid[e.pid][0].line} has not finished"
                )
            open_by_pid[e.pid] = (e, 0)
        elif e.event == "cma_alloc_busy_retry" and e.pid in open_by_pid:
            start, retries = open_by_pid[e.pid]
            open_by_pid[e.pid] = (start, retries + 1)
        elif e.event == "cma_alloc_finish":
            if e.pid not in open_by_pid:
                continue  # started before the capture
            start, retries = open_by_pid.pop(e.pid)
            errorno = int(e.fields.get("errorno", "0"))
            ok = e.fields["page"] not in ("0000000000000000", "(null)", "0") and errorno == 0
            count = int(start.fields.get("count", start.fields.get("request_count", "0")))
            done.append(
                CapturedRequest(
                    area=start.fields["name"],
                    count=count,
                    align=int(start.fields["align"]),
                    comm=start.comm,
                    pid=start.pid,
                    start_ns=start.ts_ns,
                    finish_ns=e.ts_ns,
                    ok=ok,
                    pfn=e.int("pfn") if ok else None,
                    busy_retries=retries,
                    line=start.line,
                )
            )
        elif e.event == "cma_release":
            releases[e.int("pfn")] = e.ts_ns
    done.sort(key=lambda r: (r.start_ns, r.line))
    return [
        r if r.pfn is None or r.pfn not in releases else _released(r, releases[r.pfn]) for r in done
    ]


def _released(r: CapturedRequest, at: int) -> CapturedRequest:
    return replace(r, released_ns=at)


def gfp_class(gfp_flags: str, migratetype: int) -> str:
    """``anon`` (a zeroed movable folio: ``vma_alloc_zeroed_movable_folio``), ``migration``
    (a migration target: ``alloc_migration_target``'s ``GFP_USER | __GFP_MOVABLE |
    __GFP_RETRY_MAYFAIL``, a copy of a page already counted), ``file`` (other movable
    allocations: the page cache), or ``kernel`` (unmovable or reclaimable)."""
    if migratetype == 1 or "MOVABLE" in gfp_flags:
        if "__GFP_ZERO" in gfp_flags:
            return "anon"
        return "migration" if "__GFP_RETRY_MAYFAIL" in gfp_flags else "file"
    return "kernel"


@dataclass
class Background:
    """The page allocator's traffic outside the CMA requests (``kmem:mm_page_alloc`` /
    ``mm_page_free``): pages by class and migratetype, rates, lifetimes."""

    span_ns: int
    allocated: dict[str, int]
    """Pages allocated, by class (anon, file, kernel, migration)."""
    by_migratetype: dict[int, int]
    """Pages allocated, by the migratetype number ``mm_page_alloc`` prints."""
    by_gfp: dict[str, int]
    """Pages allocated, by ``gfp_flags`` as printed."""
    freed: int
    lifetimes_ns: dict[str, list[int]]
    """Alloc-to-free times of the pages freed in the capture, by class."""
    live_peak: dict[str, int]
    """Most pages of each class alive at once, counting from the first event."""
    peak_ns: dict[str, int]
    """When each class first reached its peak, from the first page event."""
    live_end: dict[str, int]

    def growth(self, cls: str) -> float:
        """Pages a second class ``cls`` grew at, from the first event to its peak."""
        at = self.peak_ns.get(cls, 0)
        return self.live_peak.get(cls, 0) * 1e9 / at if at > 0 else self.rate(cls)

    def rate(self, cls: str) -> float:
        """Pages a second of class ``cls``."""
        return self.allocated.get(cls, 0) * 1e9 / self.span_ns if self.span_ns else 0.0

    def median_lifetime_ns(self, cls: str) -> Optional[int]:
        times = sorted(self.lifetimes_ns.get(cls, []))
        return times[len(times) // 2] if times else None


def background(trace: Trace) -> Background:
    """Derive the background load from the page allocation and free events."""
    allocated: Counter[str] = Counter()
    by_mt: Counter[int] = Counter()
    by_gfp: Counter[str] = Counter()
    live: dict[int, tuple[str, int, int]] = {}  # pfn -> (class, pages, since)
    alive: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    peak_at: dict[str, int] = {}
    lifetimes: dict[str, list[int]] = {}
    freed = 0
    first = last = None
    for e in trace.events:
        if e.event == "mm_page_alloc":
            pages = 1 << int(e.fields["order"])
            cls = gfp_class(e.fields["gfp_flags"], int(e.fields["migratetype"]))
            allocated[cls] += pages
            by_mt[int(e.fields["migratetype"])] += pages
            by_gfp[e.fields["gfp_flags"]] += pages
            live[e.int("pfn")] = (cls, pages, e.ts_ns)
            alive[cls] += pages
            if alive[cls] > peak[cls]:
                peak[cls] = alive[cls]
                peak_at[cls] = e.ts_ns
        elif e.event == "mm_page_free":
            freed += 1 << int(e.fields["order"])
            got = live.pop(e.int("pfn"), None)
            if got is not None:
                cls, pages, since = got
                alive[cls] -= pages
                lifetimes.setdefault(cls, []).append(e.ts_ns - since)
        else:
            continue
        first = e.ts_ns if first is None else first
        last = e.ts_ns
    span = (last - first) if first is not None and last is not None else 0
    return Background(
        span_ns=span,
        allocated=dict(allocated),
        by_migratetype=dict(by_mt),
        by_gfp=dict(by_gfp),
        freed=freed,
        lifetimes_ns=lifetimes,
        live_peak=dict(peak),
        peak_ns={k: v - (first or 0) for k, v in peak_at.items()},
        live_end=dict(alive),
    )


@dataclass(frozen=True)
class Pins:
    """What the capture shows of pinned or referenced pages: pages that failed to migrate
    during the CMA requests (``mm_migrate_pages`` ``nr_failed``, summed per
    ``alloc_contig_range`` attempt) and the busy pfns ``test_pages_isolated`` stopped at."""

    pages: int
    """Most pages that failed to migrate in one attempt: an estimate of the pinned pages."""
    busy_pfns: tuple[int, ...]
    first_ns: Optional[int]
    last_ns: Optional[int]


def pins(trace: Trace) -> Pins:
    failed, most, busy = 0, 0, []
    first = last = None
    for e in trace.events:
        if e.event == "mm_migrate_pages" and e.fields["reason"] == "contig_range":
            n = int(e.fields["nr_failed"])
            if n:
                failed += n
                first = e.ts_ns if first is None else first
                last = e.ts_ns
        elif e.event == "test_pages_isolated":
            if e.fields["ret"] == "fail":
                busy.append(e.int("fin_pfn"))
            most, failed = max(most, failed), 0
    return Pins(max(most, failed), tuple(dict.fromkeys(busy)), first, last)


# --------------------------------------------------------------------------------------------
# /proc snapshots


def _lines(path: PathLike) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise TraceParseError(f"{path}: cannot read the snapshot ({err.strerror})") from None


def read_meminfo(path: PathLike) -> dict[str, int]:
    """``/proc/meminfo``: kB (the ``HugePages_*`` lines in pages), by key."""
    out = {}
    for i, line in enumerate(_lines(path), 1):
        m = re.match(r"^([\w()]+):\s+(\d+)(?: kB)?$", line)
        if m is None:
            raise TraceParseError(
                f"{path}:{i}: not a /proc/meminfo line ('Key:   value kB'): {line!r}"
            )
        out[m[1]] = int(m[2])
    for key in ("MemTotal", "MemFree"):
        if key not in out:
            raise TraceParseError(f"{path}: no {key} line: is it /proc/meminfo?")
    return out


def read_vmstat(path: PathLike) -> dict[str, int]:
    """``/proc/vmstat``: counters by name."""
    out = {}
    for i, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise TraceParseError(f"{path}:{i}: not a /proc/vmstat line ('name value'): {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def read_pagetypeinfo(path: PathLike) -> dict[str, dict[str, int]]:
    """``/proc/pagetypeinfo``'s block counts: ``{zone: {migratetype: pageblocks}}``."""
    lines = _lines(path)
    try:
        at = next(i for i, line in enumerate(lines) if line.startswith("Number of blocks type"))
    except StopIteration:
        raise TraceParseError(
            f"{path}: no 'Number of blocks type' header: is it /proc/pagetypeinfo?"
        ) from None
    types = lines[at].split()[4:]
    out: dict[str, dict[str, int]] = {}
    for i, line in enumerate(lines[at + 1 :], at + 2):
        m = re.match(r"^Node\s+\d+, zone\s+(\S+)\s+([\d\s]+)$", line)
        if m is None:
            if not line.strip():
                break
            raise TraceParseError(f"{path}:{i}: not a block-count row: {line!r}")
        counts = [int(x) for x in m[2].split()]
        if len(counts) != len(types):
            raise TraceParseError(
                f"{path}:{i}: {len(counts)} counts under {len(types)} migratetype columns"
            )
        out[m[1]] = dict(zip(types, counts))
    return out


@dataclass
class Snapshot:
    """The ``/proc`` snapshots a replay may start from (each optional)."""

    meminfo: dict[str, int] = field(default_factory=dict)
    vmstat: dict[str, int] = field(default_factory=dict)
    pagetypeinfo: dict[str, dict[str, int]] = field(default_factory=dict)


__all__ = [
    "EVENT_FIELDS",
    "Background",
    "CapturedRequest",
    "Pins",
    "Snapshot",
    "Trace",
    "TraceEvent",
    "background",
    "cma_requests",
    "gfp_class",
    "parse_trace_text",
    "pins",
    "read_meminfo",
    "read_pagetypeinfo",
    "read_trace",
    "read_vmstat",
]
