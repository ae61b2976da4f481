"""What a run produced, as plain data: the schema every backend returns and every report reads.

A :class:`ScenarioResult` holds no simulated machine: it is the record of one run (every
device request with each buffer's ``cma_alloc``, what blocked it and who held it, the time
series, the counters and the kernel's views at the end), whether the run was made by the Rust
model or on a real kernel. So a comparison over many seeds keeps records, not machines, and a
record can cross a process boundary (sweeps on many cores).

:meth:`ScenarioResult.to_json` is deterministic: the same scenario, policy and seed give the
same bytes. The host figures (:attr:`ScenarioResult.host`: wall and CPU seconds, resident
memory, speed-up over real time) differ from run to run and are left out unless asked for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from cmadev.units import PAGE_SIZE, format_duration, format_size

OUTCOMES = ("met", "late", "failed")
"""A device request's outcome: all buffers within the deadline, late, or not all buffers."""


# --------------------------------------------------------------------------------------------
# What blocked a contiguous allocation


@dataclass(frozen=True)
class Blocker:
    """A page that kept a contiguous range from being freed, and who is responsible."""

    pfn: int
    reason: str
    """Why the page could not be freed: pinned, longterm_pinned, referenced, writeback,
    unmovable, busy (a movable page not migrated yet when the attempt ended), ..."""
    page_kind: str
    owner: str
    holder: Optional[str]
    hold_kind: Optional[str]
    since_ns: Optional[int]

    def __str__(self) -> str:
        who = f" by {self.holder} ({self.hold_kind})" if self.holder else ""
        return f"pfn {self.pfn:#x}: {self.reason} {self.page_kind} page of {self.owner}{who}"


@dataclass(frozen=True)
class BlockerGroup:
    """Pages that blocked a request for the same reason, under the same responsible owner."""

    owner: str
    """Who is responsible: the holder of the pin or reference, else the page's owner."""
    reason: str
    """Why the page could not be freed: pinned, longterm_pinned, referenced, writeback, ..."""
    hold_kind: Optional[str]
    """FOLL_PIN, FOLL_LONGTERM, get_page, ...; None when no hold was taken."""
    page_kind: str
    """anon, file, kernel, ..."""
    page_owner: str
    """Who the pages belong to (the workload that allocated them)."""
    pages: int
    """Distinct pages."""
    first_pfn: int
    oldest_since_ns: Optional[int]

    def __str__(self) -> str:
        hold = f" ({self.hold_kind})" if self.hold_kind else ""
        page_of = f"{self.page_kind} pages of {self.page_owner}"
        since = (
            f", held since {format_duration(self.oldest_since_ns)}"
            if self.oldest_since_ns is not None
            else ""
        )
        plural = "s" if self.pages != 1 else ""
        return (
            f"{self.owner}{hold}: {self.pages} {self.reason} page{plural}"
            f" ({page_of}, first pfn {self.first_pfn:#x}{since})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "reason": self.reason,
            "hold_kind": self.hold_kind,
            "page_kind": self.page_kind,
            "page_owner": self.page_owner,
            "pages": self.pages,
            "first_pfn": self.first_pfn,
            "oldest_since_ns": self.oldest_since_ns,
        }


def cause_blockers(blockers: tuple[Blocker, ...]) -> tuple[Blocker, ...]:
    """The blockers of one ``cma_alloc`` that caused its failures: all of them, except the
    plain ``"busy"`` movable pages when there are pages with a stronger reason (pinned,
    referenced, unmovable, writeback), which is what ended the attempt."""
    causes = tuple(b for b in blockers if b.reason != "busy")
    return causes if causes else blockers


def group_blockers(blockers: tuple[Blocker, ...]) -> list[BlockerGroup]:
    """Blockers grouped by responsible owner, reason and hold kind, largest group first.

    A page that blocked several attempts (or several buffers) counts once."""
    groups: dict[tuple[str, str, Optional[str], str, str], dict[int, Blocker]] = {}
    for b in blockers:
        key = (b.holder or b.owner, b.reason, b.hold_kind, b.page_kind, b.owner)
        groups.setdefault(key, {}).setdefault(b.pfn, b)
    out = []
    for (owner, reason, hold_kind, page_kind, page_owner), pages in groups.items():
        since = [b.since_ns for b in pages.values() if b.since_ns is not None]
        out.append(
            BlockerGroup(
                owner=owner,
                reason=reason,
                hold_kind=hold_kind,
                page_kind=page_kind,
                page_owner=page_owner,
                pages=len(pages),
                first_pfn=min(pages),
                oldest_since_ns=min(since) if since else None,
            )
        )
    return sorted(out, key=lambda g: (-g.pages, g.owner, g.reason, g.page_owner))


# --------------------------------------------------------------------------------------------
# One cma_alloc, one device request


@dataclass(frozen=True)
class CmaResult:
    """What a finished ``cma_alloc`` did."""

    id: int
    area: str
    count: int
    align: int
    owner: str
    issued_ns: int
    completed_ns: int
    pfn: Optional[int]
    errno: Optional[str]
    busy_retries: int
    passes: int
    pages_migrated: int
    pages_reclaimed: int
    pages_discarded: int
    failed_attempts: int
    lock_wait_ns: int
    cancelled: bool
    blockers: tuple[Blocker, ...]

    @property
    def ok(self) -> bool:
        """The buffer was allocated: the call was made and did not fail. (A real kernel's
        record has no pfn: ``cma_alloc_finish`` in 6.1 does not say which range it got.)"""
        return self.errno is None and not self.cancelled

    @property
    def latency_ns(self) -> int:
        return self.completed_ns - self.issued_ns

    @property
    def outcome(self) -> str:
        return "OK" if self.ok else "FAILED"

    def blocker_groups(self) -> list[BlockerGroup]:
        """The pages that caused the failures, grouped by who is responsible and why."""
        return group_blockers(cause_blockers(self.blockers))

    def describe(self) -> str:
        """This line, then what blocked it (the form the assertion helpers print)."""
        lines = [str(self)]
        groups = self.blocker_groups()
        if groups:
            lines.append("  blocked by:")
            lines.extend(f"    {g}" for g in groups)
        return "\n".join(lines)

    def __str__(self) -> str:
        text = (
            f"cma_alloc({self.area}, {self.count} pages) by {self.owner}: {self.outcome}"
            f" in {format_duration(self.latency_ns)}, {self.pages_migrated} pages migrated,"
            f" {self.busy_retries} busy retries"
        )
        if self.errno:
            text += f", -{self.errno}"
        groups = self.blocker_groups()
        if groups:
            text += "; blocked by " + ", ".join(
                f"{g.owner} ({g.reason}, {g.pages} pages)" for g in groups
            )
        return text


@dataclass(frozen=True)
class ContigResult:
    """What a direct ``alloc_contig_range([start, start + count))`` did; free what it took
    with ``machine.free_contig_range(start, count, owner)``."""

    start: int
    count: int
    """Pages taken: the range's length on success, 0 on failure."""
    owner: str
    errno: Optional[str]
    allocation: Optional[int]
    """The allocation's id (never reused), on success."""
    pages_migrated: int
    pages_reclaimed: int
    pages_discarded: int
    blockers: tuple[Blocker, ...]

    @property
    def ok(self) -> bool:
        return self.errno is None


@dataclass(frozen=True)
class OfflineResult:
    """What ``offline_pages`` (memory hot-remove) did: ``errno`` None when it went offline."""

    errno: Optional[str]
    reason: Optional[str]
    """The kernel's reason for a failure (``memory offlining ... failed due to %s``)."""
    pages_migrated: int
    pages_discarded: int
    passes: int
    elapsed_ns: int
    blockers: tuple[Blocker, ...]


@dataclass(frozen=True)
class DeviceResult:
    """One finished device action (a start or a change of resolution): every buffer's
    ``cma_alloc``, latency against the device's deadline, and what blocked it."""

    device: str
    kind: str
    heap: str
    """The dma-heap the buffers came from (``/dev/dma_heap/<area>``)."""
    action: str
    mode: str
    issued_ns: int
    deadline_ns: int
    cancelled: bool
    """The device was stopped while the request was in flight: its buffers went back."""
    buffers: tuple[CmaResult, ...]
    """Each buffer's ``cma_alloc`` result, in the order they were issued."""

    @property
    def completed_ns(self) -> int:
        """When the last buffer was ready (allocated and cleared) or failed."""
        return max(r.completed_ns for r in self.buffers)

    @property
    def latency_ns(self) -> int:
        return self.completed_ns - self.issued_ns

    @property
    def ok(self) -> bool:
        """Every buffer was allocated."""
        return all(r.ok for r in self.buffers)

    @property
    def outcome(self) -> str:
        """``"met"`` (all buffers within the deadline), ``"late"`` or ``"failed"``."""
        if not self.ok:
            return "failed"
        return "met" if self.latency_ns <= self.deadline_ns else "late"

    @property
    def pages(self) -> int:
        """Pages asked for, over all buffers."""
        return sum(b.count for b in self.buffers)

    @property
    def pages_migrated(self) -> int:
        return sum(r.pages_migrated for r in self.buffers)

    @property
    def busy_retries(self) -> int:
        return sum(r.busy_retries for r in self.buffers)

    @property
    def lock_wait_ns(self) -> int:
        """Time the buffers spent queued for the allocation lock, summed over buffers (a
        device's own buffers queue behind each other too)."""
        return sum(r.lock_wait_ns for r in self.buffers)

    @property
    def failed_buffers(self) -> list[CmaResult]:
        return [r for r in self.buffers if not r.ok]

    @property
    def blockers(self) -> tuple[Blocker, ...]:
        """The pages that kept a range from being freed, over all buffers and attempts.

        When an attempt fails on a pinned, referenced, unmovable or writeback page, the engine
        also lists the movable pages it had not migrated yet (reason ``"busy"``): they did not
        cause the failure, so they are left out here (see :func:`cause_blockers`)."""
        return tuple(b for r in self.buffers for b in cause_blockers(r.blockers))

    def blocker_groups(self) -> list[BlockerGroup]:
        """The blockers grouped by who is responsible and why (largest group first)."""
        return group_blockers(self.blockers)

    def describe(self) -> str:
        """Several lines saying what happened: latency against the deadline, the work done,
        the failed buffers and what blocked the request."""
        lines = [str(self)]
        sizes = ", ".join(f"{n} x {format_size(s)}" for s, n in _count_sizes(self.buffers))
        lines.append(
            f"  buffers: {sizes} from {self.heap}; {self.pages_migrated} pages migrated, "
            f"{self.busy_retries} busy retries, {format_duration(self.lock_wait_ns)} waiting "
            f"for the allocation lock (summed over buffers)"
        )
        for i, r in enumerate(self.buffers):
            if not r.ok:
                lines.append(
                    f"  buffer {i + 1} of {len(self.buffers)} "
                    f"({format_size(r.count * PAGE_SIZE)}, cma_alloc #{r.id}) failed: "
                    f"-{r.errno} after {format_duration(r.latency_ns)}, {r.busy_retries} busy "
                    f"retries"
                )
        groups = self.blocker_groups()
        if groups:
            lines.append("  blocked by:")
            lines.extend(f"    {g}" for g in groups)
        else:
            lines.append("  nothing blocked it")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The request as plain data (deterministic: no host figures)."""
        return {
            "device": self.device,
            "kind": self.kind,
            "action": self.action,
            "mode": self.mode,
            "issued_ns": self.issued_ns,
            "completed_ns": self.completed_ns,
            "latency_ns": self.latency_ns,
            "deadline_ns": self.deadline_ns,
            "outcome": self.outcome,
            "cancelled": self.cancelled,
            "pages": self.pages,
            "pages_migrated": self.pages_migrated,
            "busy_retries": self.busy_retries,
            "lock_wait_ns": self.lock_wait_ns,
            "buffers": [
                {
                    "pages": r.count,
                    "align": r.align,
                    "pfn": r.pfn,
                    "errno": r.errno,
                    "issued_ns": r.issued_ns,
                    "completed_ns": r.completed_ns,
                    "lock_wait_ns": r.lock_wait_ns,
                    "pages_migrated": r.pages_migrated,
                    "busy_retries": r.busy_retries,
                    "passes": r.passes,
                }
                for r in self.buffers
            ],
            "blockers": [g.to_dict() for g in self.blocker_groups()],
        }

    def __str__(self) -> str:
        verdict = {"met": "met its deadline", "late": "missed its deadline", "failed": "FAILED"}
        return (
            f"{self.device} {self.action} ({self.mode}): {verdict[self.outcome]}, "
            f"{format_duration(self.latency_ns)} against {format_duration(self.deadline_ns)}"
        )


def _count_sizes(buffers: tuple[CmaResult, ...]) -> list[tuple[int, int]]:
    """(bytes, how many) of the buffers' sizes, in first-seen order."""
    seen: dict[int, int] = {}
    for b in buffers:
        seen[b.count * PAGE_SIZE] = seen.get(b.count * PAGE_SIZE, 0) + 1
    return list(seen.items())


# --------------------------------------------------------------------------------------------
# One run


SERIES_FIELDS = (
    "t_ns",
    "mem_free",
    "cma_free",
    "cma_movable",
    "cma_cache",
    "cma_device",
    "kswapd_busy_ns",
    "refaults",
    "pgscan",
    "nr_dirty",
    "nr_writeback",
)
"""The time-series columns the model samples."""


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario run produced: every device request, the time series, the counters,
    the kernel's views at the end, and (apart) how long the host took."""

    scenario: str
    board: str
    policy: str
    """The policy's name: the preset as the user named it, else its label."""
    policy_spec: dict[str, Any]
    """The policy's fields (``Policy.model_dump(mode="json")``)."""
    seed: int
    duration_ns: int
    end_ns: int
    sample_interval_ns: int
    requests: tuple[DeviceResult, ...]
    """Every device request, by issue time."""
    actions: tuple[tuple[int, str, str, Optional[str]], ...]
    """(time, device, action, mode) of each timeline step, in the order they ran."""
    busy: dict[str, list[tuple[int, Optional[int]]]]
    """Each device's intervals [from, to) of claiming or holding buffers (to None: to the
    end)."""
    series: dict[str, list[Any]]
    counters: dict[str, int]
    """``/proc/vmstat`` at the end."""
    cma: dict[str, dict[str, int]]
    """``/sys/kernel/mm/cma/<area>/*`` at the end, by area."""
    meminfo: dict[str, int]
    dmesg: tuple[str, ...]
    workloads: dict[str, Any]
    """Each workload's statistics, by name."""
    trace: tuple[str, ...] = ()
    """The trace lines kept (``trace_limit`` of them at most)."""
    trace_header: str = ""
    """The header the kernel's ``trace`` file starts with (lines kept and written, CPUs);
    empty when no trace was kept."""
    model_counters: dict[str, int] = field(default_factory=dict)
    """The model's counters that have no kernel name (``kswapd_wakeups``, ``pgskip_cma``,
    ``cleancache_*``, ...), apart from :attr:`counters`."""
    area_maps: dict[str, Any] = field(default_factory=dict)
    """Each CMA area's pages by state over time (``Mm.area_maps``), when the run recorded
    them (report folders do); empty otherwise."""
    backend: str = "model"
    host: dict[str, float] = field(default_factory=dict, compare=False)

    # ----- questions ----------------------------------------------------------------------

    def requests_of(self, device: str) -> list[DeviceResult]:
        return [r for r in self.requests if r.device == device]

    @property
    def cma_pages(self) -> int:
        return sum(area["total_pages"] for area in self.cma.values())

    def busy_intervals(self) -> list[tuple[int, int]]:
        """[from, to) intervals during which some device claimed or held buffers."""
        return [
            (start, self.end_ns if end is None else end)
            for intervals in self.busy.values()
            for start, end in intervals
        ]

    def cma_idle_utilisation(self) -> Optional[float]:
        """Mean share of the CMA areas put to use (movable pages, and gcma's discardable cache
        pages) over the samples taken while no device claimed or held a buffer; None without
        such samples."""
        t = self.series.get("t_ns") or []
        movable = self.series.get("cma_movable") or []
        cache = self.series.get("cma_cache") or [0] * len(movable)
        used = [m + c for m, c in zip(movable, cache)]
        busy = self.busy_intervals()
        idle = [u for ts, u in zip(t, used) if not any(start <= ts < end for start, end in busy)]
        if not idle or not self.cma_pages:
            return None
        return float(sum(idle)) / len(idle) / self.cma_pages

    @property
    def refaults(self) -> int:
        c = self.counters
        return c.get("workingset_refault_file", 0) + c.get("workingset_refault_anon", 0)

    @property
    def pages_migrated(self) -> int:
        return self.counters.get("pgmigrate_success", 0)

    @property
    def pgscan(self) -> int:
        return self.counters.get("pgscan_kswapd", 0) + self.counters.get("pgscan_direct", 0)

    @property
    def simulated_s(self) -> float:
        return self.end_ns / 1e9

    @property
    def speedup(self) -> float:
        """Simulated seconds per wall second of the host (the ``host`` figures)."""
        wall = self.host.get("wall_s", 0.0)
        return self.simulated_s / wall if wall > 0 else math.inf

    # ----- output -------------------------------------------------------------------------

    def to_dict(self, host: bool = False) -> dict[str, Any]:
        """Everything as plain data; the host figures only with ``host=True``."""
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "board": self.board,
            "backend": self.backend,
            "policy": self.policy,
            "policy_spec": self.policy_spec,
            "seed": self.seed,
            "duration_ns": self.duration_ns,
            "end_ns": self.end_ns,
            "sample_interval_ns": self.sample_interval_ns,
            "requests": [r.to_dict() for r in self.requests],
            "actions": [list(a) for a in self.actions],
            "busy": {name: [list(iv) for iv in ivs] for name, ivs in self.busy.items()},
            "series": self.series,
            "counters": self.counters,
            "model_counters": self.model_counters,
            "cma": self.cma,
            "meminfo": self.meminfo,
            "dmesg": list(self.dmesg),
            "workloads": self.workloads,
        }
        if self.area_maps:
            out["area_maps"] = self.area_maps
        if host:
            out["host"] = self.host
        return out

    def to_json(self, host: bool = False, indent: Optional[int] = None) -> str:
        """JSON with sorted keys: byte-identical for the same scenario, policy and seed
        (unless ``host=True`` adds the wall-time figures)."""
        return json.dumps(self.to_dict(host=host), sort_keys=True, indent=indent)

    def summary(self) -> str:
        """One line per device request, then the system figures."""
        lines = [
            f"{self.scenario} under {self.policy} (seed {self.seed}): "
            f"{format_duration(self.end_ns)} simulated"
        ]
        for r in self.requests:
            lines.append(
                f"  {format_duration(r.issued_ns):>8}  {r.device:<14} {r.action:<17} "
                f"{r.mode:<6} {r.outcome:<6} {format_duration(r.latency_ns):>9} / "
                f"{format_duration(r.deadline_ns)}  migrated {r.pages_migrated}, "
                f"retries {r.busy_retries}"
            )
        for name, w in self.workloads.items():
            if not isinstance(w, dict) or w.get("kind") != "build":
                continue
            done = w.get("finished_ns")
            when = "not finished" if done is None else f"finished at {format_duration(done)}"
            lines.append(
                f"  {name}: build {when}, swap-ins {w.get('swapins', 0)}, "
                f"stalled {format_duration(w.get('stall_ns', 0))} (all processes)"
            )
        idle = self.cma_idle_utilisation()
        used = "-" if idle is None else f"{100 * idle:.0f}%"
        lines.append(
            f"  CMA use while idle {used}, refaults {self.refaults}, "
            f"pages migrated {self.pages_migrated}, pgscan {self.pgscan}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"<ScenarioResult {self.scenario} {self.policy} seed={self.seed}: "
            f"{len(self.requests)} requests>"
        )


__all__ = [
    "OUTCOMES",
    "SERIES_FIELDS",
    "Blocker",
    "BlockerGroup",
    "CmaResult",
    "ContigResult",
    "DeviceResult",
    "OfflineResult",
    "ScenarioResult",
    "cause_blockers",
    "group_blockers",
]
