"""Calibration: a board's cost model fitted to what a real kernel measures (issue 12).

:func:`measure` boots the calibration program (:func:`cmadev.kernel.measure_costs`: the
agent's micro-measurements in the guest, and its memory ones on the host in the same run);
:func:`fit` turns those raw figures into the fields of :class:`~cmadev.specs.board.CostModel`,
each with the measurement it came from; :func:`cmadev.kernel.board_file.calibrated_board`
writes them into a board.
``python -m cmadev kernel calibrate BOARD --out my_board.json`` does all three.

What each cost is fitted from (``qemu64`` guest, Linux 6.1; medians of repeats, and the
quietest call of each size where the host's load only ever adds delay):

========================  ====================================================================
``zero_page``             the dma-heap's idle latency minus debugfs's at the same size (the
                          heap clears every page; debugfs does not), per page: the quickest
                          rate of the sizes >= 4 MiB (a longer clear is preempted more)
``page_alloc``            ``munmap`` per page: zap the PTE and free the page (the buddy
                          allocator's work on one page, without a fault's trap or clearing)
``page_copy``             a copy-on-write fault minus an anonymous fault, plus the clearing
                          the latter does: the kernel's ``copy_page`` with the COW fault's
                          bookkeeping (an upper bound; a user-space memcpy under TCG runs SSE
                          code that the kernel's copy does not, and is slower still)
``migrate_fixed``         with memory filled, a debugfs allocation's latency minus the idle one,
                          per page migrated (the quickest of the filled sweeps), minus
                          ``page_copy`` and two ``page_alloc`` (the target's allocation, the
                          source's free)
``isolate_pageblock``     the CPU time of a traced idle call (its phases from
                          ``cma_alloc_start``, ``test_pages_isolated``, ``cma_alloc_finish``,
                          less the time switched out and the drain) per pageblock of the range:
                          ``start_isolate_page_range`` with the per-page walks over the range
                          (``isolate_migratepages_range``, ``test_pages_isolated``,
                          ``isolate_freepages_range``), which the model has no field for
``drain_per_cpu``         the pages a traced call drained (``mm_page_pcpu_drain``) per CPU, at
                          the cost of freeing a page into the buddy lists (the finishing phase
                          of calls smaller than a MAX_ORDER block, which free its tail back
                          page by page); 6.1 drains every CPU's lists from the caller
``reclaim_scan_page``     kswapd's CPU time, and the filler's beyond its faults, per page
                          scanned, while an anonymous process pushes clean page cache out
``storage_*``             ``O_DIRECT`` requests of 4 KiB and 1 MiB on the guest's virtio disk
``cleancache_hit``        one ``page_copy``
``lru_cache_disable``     the per-call cost the model charges once per ``alloc_contig_range``:
                          the quietest debugfs call of 1 and of 256 pages made after the guest
                          idled for ``pause_ns`` (as a device's request comes), less the
                          per-pageblock and drain costs (the expedited grace period and the
                          drain work waking idle CPUs, the buddy block's tail freed back, the
                          system call)
========================  ====================================================================

``migrate_fail`` is not measured (the input board's value is kept). The same remainder of
calls made right after one another (the idle sweep) is :data:`FIXED_FIELD`, reported beside
the fit: the model charges one per-call cost and does not tell the two apart (in a 6.1 TCG
guest a 1 MiB call after 250 ms of idle took 0.5-0.9 ms, one 2 ms after another 0.16-0.26
ms). On a loaded host a call also waits, switched out, for ``synchronize_rcu_expedited``
(its other vCPUs must run): :attr:`CostFit.figures` has that wait (``call_wait_ns``).

A TCG guest is slower than the hardware it runs on, and by different factors for different
work: :attr:`CostFit.ratio` gives guest / host for each memory figure the agent measured on
both, so that the costs can be scaled to another machine (divide by the ratio).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from cmadev.kernel.errors import CalibrationError
from cmadev.kernel.program import guest_board
from cmadev.kernel.runner import KernelArg, measure_costs
from cmadev.specs.base import validate_model
from cmadev.specs.board import Board, CostModel
from cmadev.units import PAGE_SIZE, format_duration, format_size

PAGEBLOCK_PAGES = 512
"""Pages per pageblock in the x86-64 guest (``pageblock_order`` 9)."""
MAX_ORDER_PAGES = 1024
"""Pages of the largest buddy block (order 10, ``MAX_ORDER`` 11 in 6.1)."""

FIXED_FIELD = "alloc_contig_fixed"
"""The fixed cost of an ``alloc_contig_range`` call made right after another (6.1:
``lru_cache_disable``, whose ``synchronize_rcu_expedited`` waits for every CPU; the
``cma_mutex``; the call itself), beside ``lru_cache_disable`` fitted from calls after a pause:
the model charges one per-call cost, once per attempt (a busy retry pays it again)."""

KERNEL_RATIO_KEYS = ("anon_fault_ns", "anon_unmap_page_ns", "cow_fault_ns", "populate_page_ns")
"""The memory figures that are mostly kernel work (faults, frees): their ratio scales
``page_alloc``, ``migrate_fixed``, ``isolate_pageblock``, ``drain_per_cpu``,
``reclaim_scan_page`` and the fixed per-call cost."""
MEMORY_RATIO_KEYS = ("zero_page_ns",)
"""The figure that is memory bandwidth as the kernel uses it: its ratio scales ``page_copy``,
``zero_page``, ``cleancache_hit`` (the kernel copies and clears pages with plain string
instructions; ``memcpy_page_ns``, a user-space memcpy, runs SSE code, which TCG emulates
instruction by instruction, so its ratio is several times larger and scales only that)."""

Progress = Callable[[str], None]
CALIBRATED_MARK = "Costs calibrated by 'cmadev kernel calibrate'"


@dataclass(frozen=True)
class Fitted:
    """One fitted cost: its value in ns and the measurement it came from."""

    ns: int
    source: str


@dataclass(frozen=True)
class CostFit:
    """A cost model fitted to a calibration run, with where each figure came from."""

    costs: dict[str, Fitted]
    """:class:`CostModel` field -> fitted value; fields absent here were not measured."""
    fixed: Fitted
    """The fixed cost of a contiguous allocation right after another (:data:`FIXED_FIELD`)."""
    ratio: dict[str, float]
    """Guest / host for each memory figure measured on both (quietest repeat of each)."""
    figures: dict[str, float]
    """The intermediate figures of the fit (per page migrated, pages drained per call, ...)."""
    reserved: Optional[int] = None
    """Bytes of the guest's RAM that its kernel and agent hold before a program starts."""
    min_free_kbytes: Optional[int] = None
    """``vm.min_free_kbytes`` as the guest kernel computed it."""
    context: dict[str, Any] = field(default_factory=dict)
    """Where it was measured: kernel, accel, CPU model, host, load, date, wall time."""
    notes: tuple[str, ...] = ()

    @property
    def kernel_ratio(self) -> Optional[float]:
        """Geometric mean of the kernel-work ratios (:data:`KERNEL_RATIO_KEYS`)."""
        return _geomean([self.ratio[k] for k in KERNEL_RATIO_KEYS if k in self.ratio])

    @property
    def memory_ratio(self) -> Optional[float]:
        """Geometric mean of the memory-bandwidth ratios (:data:`MEMORY_RATIO_KEYS`)."""
        return _geomean([self.ratio[k] for k in MEMORY_RATIO_KEYS if k in self.ratio])

    def cost_model(self, base: Optional[CostModel] = None) -> CostModel:
        """``base`` (default: the defaults) with the fitted fields replaced."""
        data = (base or CostModel()).model_dump()
        data.update({name: f.ns for name, f in self.costs.items()})
        return validate_model(CostModel, data, source="the fitted cost model")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``--fit-out`` writes)."""
        return {
            "costs": {k: asdict(v) for k, v in self.costs.items()},
            "back_to_back": {FIXED_FIELD: asdict(self.fixed)},
            "ratio": self.ratio,
            "kernel_ratio": self.kernel_ratio,
            "memory_ratio": self.memory_ratio,
            "figures": self.figures,
            "reserved": self.reserved,
            "min_free_kbytes": self.min_free_kbytes,
            "context": self.context,
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """A paragraph for a board's description: every figure and its source."""
        parts = [
            f"{name} {format_duration(f.ns)} ({f.source})" for name, f in sorted(self.costs.items())
        ]
        ctx = self.context
        where = ", ".join(
            str(x)
            for x in (
                f"Linux {ctx.get('kernel', '?')}",
                f"{ctx.get('accel', '?')} -cpu {ctx.get('cpu', '?')}",
                f"on {ctx.get('host_cpu', 'an unknown host CPU')}",
                f"{ctx.get('host_cpus', '?')} host CPUs",
                f"load average {ctx.get('load', '?')}",
                ctx.get("date", ""),
            )
            if x
        )
        ratios = ", ".join(f"{k.removesuffix('_ns')} x{v:.1f}" for k, v in self.ratio.items())
        return (
            f"{CALIBRATED_MARK} ({where}): "
            + "; ".join(parts)
            + f". Not measured: {', '.join(sorted(set(CostModel.model_fields) - set(self.costs)))}"
            + f" (kept). A contiguous allocation right after another costs less than after a "
            f"pause, which the model does not tell apart ({FIXED_FIELD}: "
            f"{format_duration(self.fixed.ns)}, {self.fixed.source}). Guest / "
            f"host on the same run: {ratios}; these are TCG times, not hardware times: divide "
            f"kernel-path costs by x{self.kernel_ratio or 0:.1f} and memory-bandwidth costs by "
            f"x{self.memory_ratio or 0:.1f} to estimate this host's hardware."
        )


# --------------------------------------------------------------------------------------------
# measuring


def _host_context() -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "host": platform.node(),
        "host_kernel": platform.release(),
        "host_cpus": os.cpu_count(),
        "date": datetime.date.today().isoformat(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                ctx["host_cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30)
        ctx["qemu"] = (out.stdout.splitlines() or [""])[0]
    return ctx


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(
    board: Board,
    *,
    kernel: KernelArg = None,
    accel: str = "tcg",
    progress: Optional[Progress] = None,
    **options: Any,
) -> dict[str, Any]:
    """Boot the calibration program on a guest with ``board``'s memory, CPUs and CMA area
    (several areas run as one) and return the raw figures of
    :func:`cmadev.kernel.measure_costs`, with the host's context (CPU, load before and
    after). ``options`` go to the calibration program
    (:data:`cmadev.kernel.program.CALIBRATION_OPTIONS`)."""
    gb, _ = guest_board(board.to_engine("balanced", seed=0), merge_areas=True)
    before = _load()
    raw = measure_costs(gb, kernel=kernel, accel=accel, progress=progress, **options)
    raw["context"] = {**_host_context(), "load": f"{before} -> {_load()}"}
    raw["board_name"] = board.name
    return raw


# --------------------------------------------------------------------------------------------
# fitting


def _geomean(values: Sequence[float]) -> Optional[float]:
    vals = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _through_origin(points: Sequence[tuple[float, float]]) -> Optional[float]:
    """Least-squares slope of y = a x."""
    sxx = sum(x * x for x, _ in points)
    return sum(x * y for x, y in points) / sxx if sxx > 0 else None


def _line(points: Sequence[tuple[float, float]]) -> Optional[tuple[float, float]]:
    """Least-squares (slope, intercept) of y = a x + b; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return slope, my - slope * mx


def _sizes(guest: Mapping[str, float], prefix: str) -> list[int]:
    """The sizes (pages) measured under ``prefix`` (``idle_debugfs``...)."""
    head, tail = f"{prefix}_alloc_", "_ns"
    out = []
    for key in guest:
        if key.startswith(head) and key.endswith(tail):
            middle = key[len(head) : -len(tail)]
            if middle.isdigit():
                out.append(int(middle))
    return sorted(out)


def _quietest(guest: Mapping[str, float], prefix: str, pages: int) -> Optional[float]:
    """The quietest call of a size (the host's load only ever adds delay), else the median."""
    key = f"{prefix}_alloc_{pages}_ns"
    value = guest.get(f"{key}_min", guest.get(key))
    return None if value is None else float(value)


def _per_call_rest(
    guest: Mapping[str, float], prefix: str, costs: dict[str, Fitted], drain_ns: float
) -> list[float]:
    """What the quietest call of each size measured under ``prefix`` costs beyond its
    pageblocks (``isolate_pageblock``) and the drain: the fixed part of a call."""
    return [
        lat - costs["isolate_pageblock"].ns * _blocks(n) - drain_ns
        for n in _sizes(guest, prefix)
        if (lat := _quietest(guest, prefix, n)) is not None
    ]


def _fit_paused_call(
    guest: Mapping[str, float],
    costs: dict[str, Fitted],
    figures: dict[str, float],
    notes: list[str],
    drain_ns: float,
    warm: Fitted,
) -> None:
    """``lru_cache_disable``, the per-call cost the model charges: what the quietest debugfs
    call made after the guest idled costs beyond its pageblocks and the drain. A device's
    request comes after a quiet spell, and then 6.1's ``lru_cache_disable`` (its expedited
    grace period, the drain work) has CPUs to wake from idle; a call right after another
    costs less (``warm``, :data:`FIXED_FIELD`)."""
    rest = _per_call_rest(guest, "paused_debugfs", costs, drain_ns)
    if not rest:
        notes.append("lru_cache_disable: no debugfs calls after a pause: kept")
        return
    value = max(statistics.median(rest), 1.0)
    figures["paused_call_ns"] = value
    costs["lru_cache_disable"] = Fitted(
        _ns(value),
        f"the quietest debugfs call made after the guest idled, of each of {len(rest)} sizes, "
        f"less isolate_pageblock per pageblock and the drain, median (the expedited grace "
        f"period and the drain work waking idle CPUs, the system call, the buddy block's tail "
        f"freed back); right after another call the same remainder is "
        f"{format_duration(warm.ns)} ({FIXED_FIELD})",
    )


def _blocks(pages: int) -> int:
    return -(-pages // PAGEBLOCK_PAGES)


def _tail(pages: int) -> int:
    """Pages of the MAX_ORDER block that an idle ``alloc_contig_range`` of ``pages`` from
    a block's start takes with it and frees back (``outer_end - end``)."""
    return -pages % MAX_ORDER_PAGES


def _ns(value: float) -> int:
    return max(1, round(value))


def _need(guest: Mapping[str, float], *keys: str) -> list[float]:
    absent = [k for k in keys if k not in guest]
    if absent:
        raise CalibrationError(
            f"the calibration lacks {', '.join(absent)}: run it again with this cmadev's "
            f"guest agent (an older agent does not measure them)"
        )
    return [float(guest[k]) for k in keys]


def _ratios(guest: Mapping[str, float], host: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for key in ("memcpy_page_ns", *MEMORY_RATIO_KEYS, *KERNEL_RATIO_KEYS):
        pick = f"{key}_min" if f"{key}_min" in guest and f"{key}_min" in host else key
        g, h = guest.get(pick), host.get(pick)
        if g and h and g > 0 and h > 0:
            out[key] = float(g) / float(h)
    return out


def fit(raw: Mapping[str, Any]) -> CostFit:
    """The cost model in ``raw`` (what :func:`measure` returns; see the module docstring
    for what each field is fitted from). Raises :class:`CalibrationError` when a figure the
    fit needs is missing."""
    guest: Mapping[str, float] = raw.get("guest") or {}
    host: Mapping[str, float] = raw.get("host") or {}
    cpus = int((raw.get("board") or {}).get("cpus") or 1)
    ram = int((raw.get("board") or {}).get("ram") or 0)
    costs: dict[str, Fitted] = {}
    figures: dict[str, float] = {}
    notes: list[str] = []

    # zero_page: the dma-heap clears every page, debugfs does not
    both = [n for n in _sizes(guest, "idle_dma_heap") if n >= 1024]
    both = [n for n in both if n in _sizes(guest, "idle_debugfs")]
    rates = [
        (
            (_quietest(guest, "idle_dma_heap", n) or 0.0)
            - (_quietest(guest, "idle_debugfs", n) or 0.0)
        )
        / n
        for n in both
    ]
    rates = [r for r in rates if r > 0]
    if rates:
        # the host's load adds delay, the more the longer a call: the slowest clear of 64 MiB
        # is preempted, the quickest rate is the least disturbed
        costs["zero_page"] = Fitted(
            _ns(min(rates)),
            f"dma-heap minus debugfs idle latency per page, the quickest of {len(rates)} "
            f"sizes of {format_size(both[0] * PAGE_SIZE)} to {format_size(both[-1] * PAGE_SIZE)}",
        )
    else:
        (memset,) = _need(guest, "zero_page_ns")
        costs["zero_page"] = Fitted(_ns(memset), "a memset of 4 KiB in the guest")
        notes.append("zero_page: no dma-heap sizes to compare; a user-space memset instead")
    zero_ns = costs["zero_page"].ns

    # page_alloc: a page freed by munmap (zap and free, no fault)
    (unmap,) = _need(guest, "anon_unmap_page_ns")
    costs["page_alloc"] = Fitted(_ns(unmap), "munmap per page: zap the PTE and free the page")

    # page_copy: a COW fault copies where an anonymous fault clears
    cow, fault = _need(guest, "cow_fault_ns", "anon_fault_ns")
    copy = cow - fault + zero_ns
    figures["cow_fault_ns"], figures["anon_fault_ns"] = cow, fault
    if copy > 0:
        costs["page_copy"] = Fitted(
            _ns(copy), "a copy-on-write fault minus an anonymous fault, plus one zero_page"
        )
    else:
        (memcpy,) = _need(guest, "memcpy_page_ns")
        costs["page_copy"] = Fitted(_ns(memcpy), "a memcpy of 4 KiB in the guest")
        notes.append("page_copy: a COW fault cost less than an anonymous one; memcpy instead")
    costs["cleancache_hit"] = Fitted(costs["page_copy"].ns, "one page_copy")

    # migration: each filled sweep against the idle one, per page migrated; the quickest
    sweeps = []
    for tag in ["fill", *(f"fill{r}" for r in range(1, 10))]:
        points = []
        for n in _sizes(guest, f"{tag}_debugfs"):
            migrated = float(guest.get(f"{tag}_debugfs_alloc_{n}_migrated", 0))
            lat = _quietest(guest, f"{tag}_debugfs", n)
            idle = _quietest(guest, "idle_debugfs", n)
            if migrated >= 256 and lat is not None and idle is not None:
                points.append((migrated, lat - idle))
        slope = _through_origin(points)
        if slope is not None and slope > 0:
            sweeps.append((slope, points))
    if not sweeps:
        raise CalibrationError(
            "no allocation under fill migrated 256 pages or more: the fill did not put pages "
            "in the CMA area (raise fill_fraction)"
        )
    per_page, points = min(sweeps)
    figures["migrated_page_ns"] = per_page
    figures["migrated_page_sweeps"] = float(len(sweeps))
    fixed_part = per_page - costs["page_copy"].ns - 2 * costs["page_alloc"].ns
    if fixed_part < 1:
        notes.append(
            f"migrate_fixed: a migrated page cost {per_page:.0f} ns, less than page_copy and "
            f"two page_alloc: clamped to 1 ns"
        )
    costs["migrate_fixed"] = Fitted(
        _ns(fixed_part),
        f"{format_duration(per_page)} per page migrated under fill (the quickest of "
        f"{len(sweeps)} sweeps: {len(points)} sizes, {sum(int(x) for x, _ in points)} pages) "
        f"less page_copy and two page_alloc",
    )

    # isolation, drain and the fixed cost: the traced idle calls
    phases = [p for p in raw.get("phases") or () if p.get("finish_s") and p.get("isolated_s")]
    drained: list[float] = []
    work_by_size: dict[int, float] = {}
    finish_by_size: dict[int, float] = {}
    waits: list[float] = []
    for p in phases:
        window = 0.0
        if p.get("drain_first_s") is not None:
            window = p["drain_last_s"] - p["drain_first_s"]
            drained.append(float(p["drained_pages"]))
        off = p.get("offcpu_isolating_s", 0.0) + p.get("offcpu_finishing_s", 0.0)
        work = (p["finish_s"] - p["start_s"] - off - window) * 1e9
        finishing = (p["finish_s"] - p["isolated_s"] - p.get("offcpu_finishing_s", 0.0)) * 1e9
        n = int(p["count"])
        work_by_size[n] = min(work, work_by_size.get(n, math.inf))
        finish_by_size[n] = min(finishing, finish_by_size.get(n, math.inf))
        waits.append(off * 1e9)
    # alloc_contig_range takes the whole MAX_ORDER buddy block and frees its tail back page
    # by page (free_contig_range): the finishing phase against the tail's pages is the cost
    # of freeing a page into the buddy lists, as a drain does
    tails = [(float(_tail(n)), t) for n, t in finish_by_size.items() if n <= MAX_ORDER_PAGES]
    free_fit = _line(tails)
    if free_fit is None or free_fit[0] <= 0 or not waits:
        raise CalibrationError(
            "the traced idle sweep has too few calls to time their phases (is the trace on? "
            "measure with trace=True, phase_reps of 3 or more, and sizes of 1 to 1024 pages)"
        )
    free_page = free_fit[0]
    figures["free_page_ns"] = free_page
    block_fit = _line(
        [(float(_blocks(n)), w - free_page * _tail(n)) for n, w in work_by_size.items()]
    )
    if block_fit is None or block_fit[0] <= 0:
        raise CalibrationError("the traced idle calls do not grow with the range: no slope")
    costs["isolate_pageblock"] = Fitted(
        _ns(block_fit[0]),
        f"CPU time of traced idle calls per pageblock ({len(work_by_size)} sizes of "
        f"{min(work_by_size)}-{max(work_by_size)} pages, quietest of each; the buddy block's "
        f"tail freed back taken out): the isolation with the per-page walks over the range",
    )
    if drained:
        per_cpu = statistics.median(drained) / cpus
        figures["drained_pages_per_cpu"] = per_cpu
        costs["drain_per_cpu"] = Fitted(
            _ns(per_cpu * free_page),
            f"{per_cpu:.0f} pages on a CPU's lists at a traced call (mm_page_pcpu_drain, "
            f"median) at {free_page:.0f} ns a page freed (the tail of the buddy block that "
            f"alloc_contig_range frees back)",
        )
    else:
        notes.append("drain_per_cpu: the trace has no mm_page_pcpu_drain: kept")
    wait = statistics.median(waits)
    figures["call_wait_ns"], figures["call_wait_max_ns"] = wait, max(waits)

    # the fixed per-call cost: the quietest untraced idle calls less what the model charges
    drain_ns = costs["drain_per_cpu"].ns * cpus if "drain_per_cpu" in costs else 0
    rest = _per_call_rest(guest, "idle_debugfs", costs, drain_ns)
    if not rest:
        raise CalibrationError("the calibration lacks the idle debugfs sweep")
    fixed = Fitted(
        _ns(max(statistics.median(rest), 1.0)),
        f"the quietest idle debugfs call of each of {len(rest)} sizes, less isolate_pageblock "
        f"per pageblock and the drain, median (lru_cache_disable, the buddy block's tail freed "
        f"back, the system call); traced calls also waited {format_duration(wait)} switched "
        f"out (median, up to {format_duration(max(waits))}: synchronize_rcu_expedited on a "
        f"loaded host)",
    )
    _fit_paused_call(guest, costs, figures, notes, drain_ns, fixed)

    # reclaim: kswapd's CPU time, and the filler's beyond its own faults, per page scanned
    scanned = float(guest.get("reclaim_pgscan_kswapd", 0)) + float(
        guest.get("reclaim_pgscan_direct", 0)
    )
    if scanned >= 1000 and "reclaim_kswapd_cpu_ns" in guest:
        direct = max(
            0.0,
            float(guest.get("reclaim_filler_cpu_ns", 0))
            - float(guest.get("reclaim_fill_pages", 0)) * fault,
        )
        cpu = float(guest["reclaim_kswapd_cpu_ns"]) + direct
        figures["reclaim_cpu_ns"], figures["reclaim_scanned"] = cpu, scanned
        costs["reclaim_scan_page"] = Fitted(
            _ns(cpu / scanned),
            f"kswapd's CPU time and the filler's beyond its faults ({format_duration(cpu)}) "
            f"over {int(scanned)} pages scanned of clean page cache",
        )
    else:
        notes.append("reclaim_scan_page: no reclaim measured (no data disk): kept")

    # storage: O_DIRECT on the guest's virtio disk
    for kind in ("read", "write"):
        small, big = guest.get(f"storage_{kind}_4k_ns"), guest.get(f"storage_{kind}_1m_ns")
        if small is None or big is None:
            continue
        page = max((float(big) - float(small)) / 255.0, 1.0)
        costs[f"storage_{kind}_page"] = Fitted(
            _ns(page), f"O_DIRECT 1 MiB minus 4 KiB {kind}s, per page (virtio disk)"
        )
        costs[f"storage_{kind}_request"] = Fitted(
            _ns(float(small) - page), f"an O_DIRECT 4 KiB {kind} less one page (virtio disk)"
        )
    if "storage_read_page" not in costs:
        notes.append("storage: not measured (no data disk): kept")

    reserved = None
    if ram and "mem_free_kb" in guest:
        reserved = max(0, ram - int(guest["mem_free_kb"]) * 1024) // PAGE_SIZE * PAGE_SIZE
    mfk = int(guest["min_free_kbytes"]) if "min_free_kbytes" in guest else None
    context = dict(raw.get("context") or {})
    for key in ("kernel", "accel", "cpu", "wall_s", "boot_s"):
        if key in raw:
            context[key] = raw[key]
    return CostFit(
        costs=costs,
        fixed=fixed,
        ratio=_ratios(guest, host),
        figures=figures,
        reserved=reserved,
        min_free_kbytes=mfk,
        context=context,
        notes=tuple(notes),
    )


def fit_runs(raws: Sequence[Mapping[str, Any]]) -> CostFit:
    """One cost model from several calibration runs: each run fitted, then the median of
    each figure (a TCG guest on a shared host varies two- to threefold from run to run)."""
    if not raws:
        raise CalibrationError("no calibration runs to fit")
    fits = [fit(raw) for raw in raws]
    if len(fits) == 1:
        return fits[0]

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    def combined(items: Sequence[Fitted]) -> Fitted:
        values = [f.ns for f in items]
        spread = f"{format_duration(min(values))}-{format_duration(max(values))}"
        return Fitted(
            _ns(med(values)), f"{items[0].source}; median of {len(items)} runs ({spread})"
        )

    names = [k for k in fits[0].costs if all(k in f.costs for f in fits)]
    keys = set.intersection(*(set(f.ratio) for f in fits))
    figs = set.intersection(*(set(f.figures) for f in fits))
    reserved = [f.reserved for f in fits if f.reserved is not None]
    mfk = [f.min_free_kbytes for f in fits if f.min_free_kbytes is not None]
    context = dict(fits[0].context)
    context["runs"] = len(fits)
    context["wall_s"] = sum(float(f.context.get("wall_s", 0.0)) for f in fits)
    context["load"] = "; ".join(str(f.context.get("load", "?")) for f in fits)
    return CostFit(
        costs={k: combined([f.costs[k] for f in fits]) for k in names},
        fixed=combined([f.fixed for f in fits]),
        ratio={k: med([f.ratio[k] for f in fits]) for k in fits[0].ratio if k in keys},
        figures={k: med([f.figures[k] for f in fits]) for k in fits[0].figures if k in figs},
        reserved=int(med(reserved)) // PAGE_SIZE * PAGE_SIZE if reserved else None,
        min_free_kbytes=int(med(mfk)) if mfk else None,
        context=context,
        notes=tuple(dict.fromkeys(n for f in fits for n in f.notes)),
    )


__all__ = [
    "FIXED_FIELD",
    "KERNEL_RATIO_KEYS",
    "MEMORY_RATIO_KEYS",
    "CalibrationError",
    "CostFit",
    "Fitted",
    "fit",
    "fit_runs",
    "measure",
]
