"""Guest programs: what the agent in the guest does, and when.

A :class:`GuestProgram` is the machine to boot (:class:`GuestBoard`), the workloads to run
(:class:`GuestWorkload`), the devices (:class:`GuestDevice`) and their timeline
(:class:`GuestStep`), and the run's options. :meth:`GuestProgram.to_text` writes it in the
line format the agent reads (``cmadev/kernel/guest/main.c``)::

    cmadev-program version=1
    run mode=run duration_ns=45000000000 sample_interval_ns=100000000 time_scale=1 ...
    sysctl name=vm.watermark_scale_factor value=10
    workload id=0 kind=anon_hog name=browser_heap start_ns=0 stop_ns=0 target_pages=131072 ...
    device name=decoder via=dma_heap heap=reserved
    step seq=0 t_ns=15000000000 device=decoder action=start mode=1080p buffers=13003:8,...
    end

one ``verb key=value ...`` per line, values %-encoded (so they hold no space).

:func:`program_from_scenario` makes a program from a scenario's pieces as plain data: the
board as :meth:`cmadev.models.Board.to_engine` (or ``model_dump``) gives it, the workloads as
:meth:`cmadev.workloads.WorkloadBase.to_engine` gives them, and the device timeline as
``(time_ns, device, action, [(pages, align_order), ...], heap)`` tuples. Whatever the guest
cannot reproduce as asked is said in :attr:`GuestProgram.notes` (and the agent adds its own
notes to the results): nothing is skipped silently.

Time: the guest replays the program in its own wall time (``CLOCK_MONOTONIC``). A TCG guest
does less work per second than hardware (memcpy about 15x slower), not less time, so a
workload whose rate it cannot reach falls behind and says so (``skipped`` operations).
``time_scale`` stretches the whole program (times multiplied, rates divided) for a slow
guest; results carry guest times, and :meth:`cmadev.kernel.results.GuestRun.scenario_ns`
converts back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional, Union
from urllib.parse import quote

from cmadev.kernel.errors import ProgramError

PAGE_SIZE = 4096
MiB = 1 << 20
GUEST_AREA = "reserved"
"""The name Linux gives the default CMA area that ``cma=`` creates (kernel/dma/contiguous.c:
``dma_contiguous_reserve_area(..., "reserved", ...)``); the CMA dma-heap is named after its
area (drivers/dma-buf/heaps/cma_heap.c: ``exp_info.name = cma_get_name(cma)``), so the
guest's heap is ``/dev/dma_heap/reserved``."""

X86_PAGEBLOCK_ORDER = 9
"""pageblock_order of the guest kernel: HUGETLB_PAGE_ORDER (9: 2 MiB) since the config enables
hugetlbfs (include/linux/pageblock-flags.h, 6.1; without it, MAX_ORDER - 1 = 10)."""

ACTIONS = ("start", "stop", "change_resolution")
VIAS = ("dma_heap", "debugfs")
FS_TYPES = ("ext4", "ext2")

# The engine's workload fields (rust/mm/src/workload.rs WorkloadSpec) the agent implements,
# per kind: (name, required).
_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "page_cache_reader": (
        ("file_pages", True),
        ("rate_pages_per_s", True),
        ("zipf_s", False),
        ("sequential", False),
    ),
    "writer": (("file_pages", True), ("rate_pages_per_s", True), ("fsync_every_pages", False)),
    "anon_hog": (
        ("target_pages", True),
        ("growth_pages_per_s", True),
        ("touch_rate_pages_per_s", False),
        ("write_fraction", False),
        ("mlock", False),
    ),
    "direct_io": (
        ("buffer_pages", True),
        ("ios_per_s", True),
        ("pages_per_io", True),
        ("pin_mean_ns", True),
        ("pin_distribution", False),
        ("hold", False),
    ),
    "longterm_pinner": (("pages", True), ("hold_ns", False), ("populate_first", False)),
    "fs_mount": (("superblock_pages", False),),
    "kernel_alloc": (("rate_allocs_per_s", True), ("order", False), ("lifetime_mean_ns", True)),
    "tmpfs_file": (
        ("file_pages", True),
        ("rate_pages_per_s", True),
        ("access_rate_pages_per_s", False),
        ("write_fraction", False),
    ),
}
WORKLOAD_KINDS = tuple(_FIELDS)

Value = Union[str, int, float, bool, None]


def _enc(value: Value) -> str:
    """A value as the agent reads it: numbers plain, booleans 0/1, None 0, strings %-encoded."""
    if value is None or value is False:
        return "0"
    if value is True:
        return "1"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ProgramError(f"a program value must be finite; got {value}")
        return repr(value)
    return quote(str(value), safe=":,")  # the agent splits buffers= on both


def _line(verb: str, fields: Iterable[tuple[str, Value]]) -> str:
    return " ".join([verb, *(f"{k}={_enc(v)}" for k, v in fields)])


# --------------------------------------------------------------------------------------------
# the pieces


@dataclass(frozen=True)
class GuestBoard:
    """The machine QEMU boots: ``ram`` bytes (``-m``), ``cpus`` (``-smp``), one CMA area of
    ``cma_bytes`` (``cma=``; 0 for none), ``swap`` bytes of swap disk, and the sysctls to set.

    ``areas`` names the scenario's CMA areas this guest area stands for (the x86 guest has
    one default area, :data:`GUEST_AREA`).
    """

    ram: int
    cpus: int = 1
    cma_bytes: int = 0
    swap: int = 0
    name: str = "board"
    area: str = GUEST_AREA
    areas: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.ram < 64 * MiB or self.ram % MiB:
            raise ProgramError(
                f"board ram must be a whole number of MiB, at least 64 MiB; got {self.ram} bytes"
            )
        if not 1 <= self.cpus <= 64:
            raise ProgramError(f"board cpus must be 1 to 64 for the guest; got {self.cpus}")
        if self.cma_bytes < 0 or self.cma_bytes % (4 * MiB):
            raise ProgramError(
                f"the CMA area must be a multiple of 4 MiB; got {self.cma_bytes} bytes"
            )
        if self.cma_bytes and self.ram - self.cma_bytes < 48 * MiB:
            raise ProgramError(
                f"a {self.cma_bytes // MiB} MiB CMA area leaves under 48 MiB of the "
                f"{self.ram // MiB} MiB guest for the kernel and everything else: shrink it"
            )
        if self.swap < 0 or self.swap % PAGE_SIZE:
            raise ProgramError(f"swap must be whole 4 KiB pages; got {self.swap} bytes")

    @property
    def ram_mib(self) -> int:
        return self.ram // MiB

    def cmdline_cma(self) -> str:
        """The ``cma=`` argument (``cma=0`` turns the default area off)."""
        return f"cma={self.cma_bytes // MiB}M"


@dataclass(frozen=True)
class GuestWorkload:
    """One workload: its engine kind and fields (sizes in pages, rates per second, times in
    program ns), plus what the guest needs to know (``fstype`` of a mount)."""

    id: int
    kind: str
    name: str
    start_ns: int = 0
    stop_ns: Optional[int] = None
    params: tuple[tuple[str, Value], ...] = ()

    def param(self, key: str, default: Value = None) -> Value:
        for k, v in self.params:
            if k == key:
                return v
        return default

    @property
    def file(self) -> str:
        """The data file of a reader or writer on the guest's ext4 data disk."""
        return f"w{self.id}.dat"

    def to_line(self) -> str:
        extra: list[tuple[str, Value]] = []
        if self.kind in ("page_cache_reader", "writer"):
            extra.append(("file", self.file))
        return _line(
            "workload",
            [
                ("id", self.id),
                ("kind", self.kind),
                ("name", self.name),
                ("start_ns", self.start_ns),
                ("stop_ns", self.stop_ns or 0),
                *self.params,
                *extra,
            ],
        )


@dataclass(frozen=True)
class GuestDevice:
    """A device: its name, the path its requests take (``dma_heap`` or ``debugfs``) and the
    guest CMA area (heap) they go to."""

    name: str
    via: str = "dma_heap"
    heap: str = GUEST_AREA

    def __post_init__(self) -> None:
        if self.via not in VIAS:
            raise ProgramError(
                f"device {self.name!r}: via {self.via!r} is not a request path: use "
                f"{' or '.join(map(repr, VIAS))}"
            )


@dataclass(frozen=True)
class GuestStep:
    """At ``t_ns`` (program time) ``device`` does ``action``: ``start`` and
    ``change_resolution`` allocate ``buffers`` (``(pages, align_order)`` each) one after the
    other; ``stop`` releases what the device holds."""

    seq: int
    t_ns: int
    device: str
    action: str
    buffers: tuple[tuple[int, int], ...] = ()
    mode: str = ""
    heap: str = ""

    def to_line(self) -> str:
        bufs = ",".join(f"{p}:{a}" for p, a in self.buffers)
        fields: list[tuple[str, Value]] = [
            ("seq", self.seq),
            ("t_ns", self.t_ns),
            ("device", self.device),
            ("action", self.action),
            ("mode", self.mode or "-"),
        ]
        if bufs:
            fields.append(("buffers", bufs))
        return _line("step", fields)


@dataclass(frozen=True)
class DataFile:
    """A file made on the host in the ext4 data image (``/data/<name>`` in the guest)."""

    name: str
    pages: int


@dataclass(frozen=True)
class DioDisk:
    """A disk for a direct-I/O workload: QEMU's ``null-co`` driver, answering every request
    after ``latency_ns`` (guest time), so that O_DIRECT holds its pages for that long."""

    workload: int
    latency_ns: int
    size: int = 1 << 30

    @property
    def serial(self) -> str:
        return f"cmadev-dio{self.workload}"


@dataclass(frozen=True)
class MountDisk:
    """A small filesystem image for an ``fs_mount`` workload."""

    workload: int
    fstype: str = "ext4"
    size: int = 64 * MiB

    @property
    def serial(self) -> str:
        return f"cmadev-mnt{self.workload}"


RUN_OPTIONS: dict[str, Value] = {
    "trace": True,
    "trace_kmem": "cma",
    "trace_buffer_kb": 4096,
    "trace_limit_bytes": 64 << 20,
    "drop_caches": True,
    "request_grace_ns": 120_000_000_000,
    "trace_extra": "",
}
"""The run options and their defaults: ``trace`` (ftrace events on), ``trace_kmem`` (``cma``:
kmem:mm_page_alloc/free only for pfns in the CMA area; ``all``; ``off``), ``trace_buffer_kb``
(per-CPU ring buffer), ``trace_limit_bytes`` (trace text kept at most), ``drop_caches``
(before time 0), ``request_grace_ns`` (how long requests in flight at the end may take),
``trace_extra`` (more trace events, ``system:event`` joined by commas; ``-system:event``
turns one of the default systems' events off), ``thp``
(``always``/``madvise``/``never``; absent: the kernel's default, madvise), and for the
calibration :data:`CALIBRATION_OPTIONS`."""

CALIBRATION_OPTIONS: dict[str, Value] = {
    "trace": True,
    "trace_kmem": "off",
    "trace_extra": "kmem:mm_page_pcpu_drain,workqueue:workqueue_queue_work,"
    "workqueue:workqueue_execute_end,sched:sched_switch",
    "small_reps": 31,
    "phase_reps": 5,
    "fill_fraction": 0.85,
    "fill_reps": 2,
    "calib_file_pages": 65536,
}
"""The calibration's options (:func:`calibration_program`) and their defaults: ``trace``
(a second idle sweep through debugfs, traced, whose events time each call's phases; the
extra events are the per-CPU list drains, the workqueue items of ``lru_add_drain_all`` and
the caller's context switches),
``small_reps`` (calls of 1 and 16 pages; 5 of the larger sizes), ``phase_reps`` (calls per size
in the traced sweep), ``fill_fraction`` (of ``MemAvailable``, held by an anonymous process
while the ``fill_`` sweep runs, and again for the reclaim measurement), ``fill_reps`` (more
filled sweeps through debugfs, ``fill1_``..., each with a new filler), ``calib_file_pages``
(a file on the data disk for the storage and reclaim measurements; 0: none)."""


@dataclass(frozen=True)
class GuestProgram:
    """Everything one guest run does. Build it with :func:`program_from_scenario` or
    :func:`calibration_program`; :meth:`to_text` is what the agent reads."""

    board: GuestBoard
    duration_ns: int
    workloads: tuple[GuestWorkload, ...] = ()
    devices: tuple[GuestDevice, ...] = ()
    steps: tuple[GuestStep, ...] = ()
    sample_interval_ns: int = 100_000_000
    time_scale: float = 1.0
    seed: int = 1
    mode: str = "run"
    options: tuple[tuple[str, Value], ...] = ()
    fs_types: tuple[tuple[int, str], ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("run", "calibrate"):
            raise ProgramError(f"mode {self.mode!r}: use 'run' or 'calibrate'")
        if self.duration_ns <= 0 and self.mode == "run":
            raise ProgramError("duration_ns must be positive: the program's length in ns")
        if self.sample_interval_ns < 0:
            raise ProgramError("sample_interval_ns must be >= 0 (0: no periodic samples)")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ProgramError(f"time_scale must be a positive number; got {self.time_scale}")
        names = [d.name for d in self.devices]
        for step in self.steps:
            if step.device not in names:
                raise ProgramError(
                    f"step {step.seq} names device {step.device!r}, which the program does not "
                    f"declare (devices: {', '.join(names) or 'none'})"
                )
        known = [*RUN_OPTIONS, "thp", *(k for k in CALIBRATION_OPTIONS if k not in RUN_OPTIONS)]
        for key, _ in self.options:
            if key not in known:
                raise ProgramError(f"unknown run option {key!r}: use one of {', '.join(known)}")

    def option(self, key: str) -> Value:
        for k, v in self.options:
            if k == key:
                return v
        return RUN_OPTIONS.get(key)

    @property
    def guest_seconds(self) -> float:
        """How long the program runs in the guest (its duration times ``time_scale``)."""
        return self.duration_ns * self.time_scale / 1e9

    def with_options(self, **options: Value) -> GuestProgram:
        """The same program with run options changed."""
        merged = dict(self.options)
        merged.update(options)
        return replace(self, options=tuple(merged.items()))

    def data_files(self) -> list[DataFile]:
        """The files the readers and writers need on the data disk (and the calibration's
        ``calib.dat``)."""
        files = [
            DataFile(w.file, int(w.param("file_pages", 1) or 1))
            for w in self.workloads
            if w.kind in ("page_cache_reader", "writer")
        ]
        calib = int(self.option("calib_file_pages") or 0) if self.mode == "calibrate" else 0
        if calib > 0:
            files.append(DataFile("calib.dat", calib))
        return files

    def dio_disks(self) -> list[DioDisk]:
        """One latency disk per O_DIRECT workload (``hold`` = ``pin``)."""
        out = []
        for w in self.workloads:
            if w.kind == "direct_io" and w.param("hold", "pin") == "pin":
                latency = int(int(w.param("pin_mean_ns", 1_000_000) or 1) * self.time_scale)
                size = max(64 * MiB, int(w.param("pages_per_io", 1) or 1) * PAGE_SIZE * 16)
                out.append(DioDisk(w.id, max(latency, 1), size=size))
        return out

    def mount_disks(self) -> list[MountDisk]:
        """One filesystem image per ``fs_mount`` workload."""
        types = dict(self.fs_types)
        return [
            MountDisk(w.id, types.get(w.id, "ext4")) for w in self.workloads if w.kind == "fs_mount"
        ]

    def to_text(self) -> str:
        """The program in the agent's line format."""
        run: dict[str, Value] = {
            "mode": self.mode,
            "duration_ns": self.duration_ns,
            "sample_interval_ns": self.sample_interval_ns,
            "time_scale": float(self.time_scale),
            "seed": self.seed,
            "area": self.board.area,
            **RUN_OPTIONS,
            **dict(self.options),
        }
        lines = ["cmadev-program version=1", _line("run", run.items())]
        lines += [_line("sysctl", [("name", k), ("value", v)]) for k, v in self.board.sysctls]
        types = dict(self.fs_types)
        for w in self.workloads:
            if w.kind == "fs_mount":
                w = replace(w, params=(*w.params, ("fstype", types.get(w.id, "ext4"))))
            lines.append(w.to_line())
        lines += [
            _line("device", [("name", d.name), ("via", d.via), ("heap", d.heap)])
            for d in self.devices
        ]
        lines += [s.to_line() for s in self.steps]
        lines.append("end")
        return "\n".join(lines) + "\n"


def parse_program_text(text: str) -> list[tuple[str, dict[str, str]]]:
    """The lines of a program as ``(verb, {key: value})`` (values %-decoded): what the agent
    sees, for tests and for reading a run's program back."""
    from urllib.parse import unquote

    out = []
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        verb, *tokens = raw.split(" ")
        fields = {}
        for tok in tokens:
            k, _, v = tok.partition("=")
            fields[k] = unquote(v)
        out.append((verb, fields))
    return out


# --------------------------------------------------------------------------------------------
# from a scenario's pieces


def _get(spec: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in spec and spec[key] is not None:
            return spec[key]
    return default


def guest_board(
    board: Mapping[str, Any], *, merge_areas: bool = False, time_scale: float = 1.0
) -> tuple[GuestBoard, list[str]]:
    """The guest machine for a board given as plain data (``Board.to_engine()`` or
    ``Board.model_dump()``: ``ram``, ``cpus``, ``cma_areas`` [{``name``, ``size``,
    ``order_per_bit``}], ``swap``, ``min_free_kbytes``, ``watermark_scale_factor``,
    ``dirty_expire_ns`` or ``dirty_expire``, ``dirty_ratio``, ``pageblock_order``,
    ``reserved``), and the notes on what differs.

    x86 creates one CMA area from ``cma=``: a board with several areas is refused unless
    ``merge_areas``, which gives the guest one area of their total size.
    """
    if not isinstance(board, Mapping):
        raise ProgramError(
            f"board must be a mapping (e.g. Board.to_engine(...) or Board.model_dump()); got "
            f"{type(board).__name__}"
        )
    name = str(board.get("name") or "")
    try:
        ram = int(board["ram"])
    except (KeyError, TypeError, ValueError):
        raise ProgramError("board needs 'ram' in bytes (e.g. 536870912 for 512 MiB)") from None
    cpus = int(_get(board, "cpus", default=1))
    areas = list(_get(board, "cma_areas", default=()))
    what = f"board {name}" if name else "the board"
    notes = [
        f"{what}: an x86-64 guest under QEMU reproduces its memory size ({ram // MiB} "
        f"MiB), CPUs ({cpus}) and CMA area, not its architecture, memory bus or storage"
    ]
    names = tuple(str(a["name"]) for a in areas)
    total = sum(int(a["size"]) for a in areas)
    if len(areas) > 1 and not merge_areas:
        raise ProgramError(
            f"{what} has {len(areas)} CMA areas ({', '.join(names)}); an x86 guest has "
            f"one, the default area cma= creates: reproduce one of them, or pass "
            f"merge_areas=True to run them as one area of {total // MiB} MiB"
        )
    if len(areas) > 1:
        notes.append(
            f"CMA areas {', '.join(names)} run as one guest area {GUEST_AREA!r} of "
            f"{total // MiB} MiB: x86 has only the default area (cma=); their requests share "
            f"its bitmap and free space"
        )
    elif areas and names[0] != GUEST_AREA:
        notes.append(
            f"CMA area {names[0]!r} is the guest's default area {GUEST_AREA!r} "
            f"({total // MiB} MiB, cma={total // MiB}M): /dev/dma_heap/{GUEST_AREA}, "
            f"/sys/kernel/debug/cma/{GUEST_AREA}"
        )
    for a in areas:
        if int(a.get("order_per_bit", 0) or 0):
            notes.append(
                f"CMA area {a['name']!r}: order_per_bit {a['order_per_bit']} asked; the "
                f"default area has order_per_bit 0"
            )
    pb = _get(board, "pageblock_order")
    if pb is not None and int(pb) != X86_PAGEBLOCK_ORDER:
        notes.append(
            f"pageblock_order {pb} asked; x86-64 uses {X86_PAGEBLOCK_ORDER} (2 MiB pageblocks)"
        )
    if int(_get(board, "reserved", default=0)):
        notes.append(
            "the board's 'reserved' memory is not carved out: the guest kernel reserves what "
            "it really needs (its image, memmap, firmware tables); MemTotal shows it"
        )
    sysctls: list[tuple[str, str]] = []
    mfk = _get(board, "min_free_kbytes")
    if mfk is not None:
        sysctls.append(("vm.min_free_kbytes", str(int(mfk))))
    wsf = _get(board, "watermark_scale_factor")
    if wsf is not None:
        sysctls.append(("vm.watermark_scale_factor", str(int(wsf))))
    expire = _get(board, "dirty_expire_ns", "dirty_expire")
    if expire is not None:
        centisecs = max(1, round(int(expire) * time_scale / 10_000_000))
        sysctls.append(("vm.dirty_expire_centisecs", str(centisecs)))
        if time_scale != 1:
            notes.append(f"dirty_expire scaled by time_scale {time_scale}: {centisecs} cs")
    ra = _get(board, "read_ahead_kb")
    if ra is not None and int(ra) != 128:
        notes.append(
            f"read_ahead_kb {ra} asked; the guest's data disk keeps the kernel's default, 128"
        )
    ratio = _get(board, "dirty_ratio")
    if ratio is not None:
        sysctls.append(("vm.dirty_ratio", str(int(ratio))))
    gb = GuestBoard(
        ram=ram,
        cpus=cpus,
        cma_bytes=total,
        swap=int(_get(board, "swap", default=0)),
        name=name or "board",
        areas=names,
        sysctls=tuple(sysctls),
    )
    return gb, notes


def _workload(spec: Mapping[str, Any], wid: int, notes: list[str]) -> GuestWorkload:
    kind = spec.get("kind")
    if kind not in _FIELDS:
        raise ProgramError(
            f"workload {spec.get('name', wid)!r}: kind {kind!r} is not one the guest agent "
            f"runs ({', '.join(WORKLOAD_KINDS)})"
        )
    name = str(spec.get("name") or f"{kind}{wid}")
    params: list[tuple[str, Value]] = []
    for key, required in _FIELDS[kind]:
        value = spec.get(key)
        if value is None:
            if required:
                raise ProgramError(
                    f"workload {name!r} ({kind}) lacks {key!r}: give the engine form "
                    f"(WorkloadBase.to_engine())"
                )
            continue
        params.append((key, value))
    known = {k for k, _ in _FIELDS[kind]} | {"kind", "name", "start_ns", "stop_ns"}
    for key in sorted(set(spec) - known):
        notes.append(f"workload {name!r}: field {key!r} is not reproduced by the guest agent")
    stop = spec.get("stop_ns")
    w = GuestWorkload(
        id=wid,
        kind=str(kind),
        name=name,
        start_ns=int(spec.get("start_ns") or 0),
        stop_ns=int(stop) if stop else None,
        params=tuple(params),
    )
    _kind_notes(w, notes)
    return w


def _kind_notes(w: GuestWorkload, notes: list[str]) -> None:
    """What Linux 6.1 does differently from the model's description of each kind."""
    if w.kind == "direct_io":
        hold = w.param("hold", "pin")
        if hold == "pin":
            notes.append(
                f"workload {w.name!r}: O_DIRECT reads through io_uring from a QEMU null-co "
                f"disk answering after pin_time; 6.1's block layer holds the pages with "
                f"get_user_pages references (FOLL_GET, iov_iter_get_pages2), not FOLL_PIN "
                f"(that came in 6.3)"
            )
            if w.param("pin_distribution", "exponential") == "exponential":
                notes.append(
                    f"workload {w.name!r}: pin times are fixed at the mean (the disk's latency), "
                    f"not exponentially distributed"
                )
        else:
            notes.append(
                f"workload {w.name!r}: hold={hold} is vmsplice() of the buffer into a pipe "
                f"(get_page references held by the pipe for the drawn time); get_page_short "
                f"has no kernel counterpart"
            )
    elif w.kind == "longterm_pinner":
        notes.append(
            f"workload {w.name!r}: IORING_REGISTER_BUFFERS (FOLL_LONGTERM); 6.1 always migrates "
            f"the pages out of CMA first (check_and_migrate_movable_pages: mainline has the "
            f"migrate_on_longterm_pin fix)"
        )
    elif w.kind == "fs_mount":
        notes.append(
            f"workload {w.name!r}: superblock_pages is not chosen by the guest: the buffers "
            f"held are the filesystem's own superblock and group descriptors"
        )
    elif w.kind == "tmpfs_file":
        notes.append(
            f"workload {w.name!r}: a file on a tmpfs of its own (/mnt/{w.name}, sized to the "
            f"file), pwrite() in order then pread()/pwrite() at random; deleted and unmounted "
            f"at stop"
        )


def program_from_scenario(
    board: Mapping[str, Any],
    workloads: Sequence[Mapping[str, Any]],
    timeline: Sequence[Sequence[Any]],
    *,
    duration_ns: int,
    sample_interval_ns: int = 100_000_000,
    seed: int = 1,
    time_scale: float = 1.0,
    via: Union[str, Mapping[str, str]] = "dma_heap",
    merge_areas: bool = False,
    fs_types: Optional[Mapping[str, str]] = None,
    options: Optional[Mapping[str, Value]] = None,
) -> GuestProgram:
    """A guest program from a scenario's pieces, as plain data.

    ``board``: as :meth:`cmadev.models.Board.to_engine` or ``model_dump()`` gives it (see
    :func:`guest_board`). ``workloads``: each as :meth:`WorkloadBase.to_engine` gives it.
    ``timeline``: ``(time_ns, device, action, buffers, heap)`` tuples in any order, where
    ``action`` is ``start``, ``stop`` or ``change_resolution``, ``buffers`` a list of
    ``(pages, align_order)`` (empty for ``stop``) and ``heap`` the scenario's CMA area name;
    a sixth element, if present, is the mode (for reports). ``via``: the request path of
    every device (``dma_heap`` or ``debugfs``), or a mapping from device name to path.
    ``fs_types``: the filesystem of each ``fs_mount`` workload by name (``ext4``, the
    default: 6.1's ext4 reads its superblock with ``sb_bread_unmovable``; ``ext2``: plain
    ``sb_bread``, movable block-device page cache, as ext4 was before 2014). ``options``:
    run options (:data:`RUN_OPTIONS`).

    Raises :class:`ProgramError` naming the piece and the fix.
    """
    notes: list[str] = []
    gb, board_notes = guest_board(board, merge_areas=merge_areas, time_scale=time_scale)
    notes += board_notes
    ws = [_workload(spec, i, notes) for i, spec in enumerate(workloads)]
    names = [w.name for w in ws]
    if len(set(names)) != len(names):
        raise ProgramError(f"workload names must differ; got {names}")
    types: list[tuple[int, str]] = []
    for wname, fstype in (fs_types or {}).items():
        match = [w for w in ws if w.name == wname and w.kind == "fs_mount"]
        if not match:
            raise ProgramError(f"fs_types names {wname!r}, which is not an fs_mount workload")
        if fstype not in FS_TYPES:
            raise ProgramError(f"fs_types[{wname!r}] = {fstype!r}: use one of {FS_TYPES}")
        types.append((match[0].id, fstype))
    for w in ws:
        if w.kind == "fs_mount":
            fstype = dict(types).get(w.id, "ext4")
            notes.append(
                f"workload {w.name!r}: a {fstype} filesystem on a virtio disk; "
                + (
                    "6.1's ext4 reads its superblock and group descriptors unmovable "
                    "(ext4_sb_bread_unmovable): the fs_superblock_unmovable fix is mainline"
                    if fstype == "ext4"
                    else "ext2 reads them with sb_bread (movable), as ext4 did before 2014"
                )
            )
    devices: dict[str, GuestDevice] = {}
    steps: list[GuestStep] = []
    area_names = set(gb.areas)
    entries = sorted(enumerate(timeline), key=lambda e: (int(e[1][0]), e[0]))
    for seq, (_, entry) in enumerate(entries):
        if len(entry) not in (5, 6):
            raise ProgramError(
                f"timeline entry {entry!r}: give (time_ns, device, action, buffers, heap[, mode])"
            )
        t, dev, action, buffers, heap = entry[:5]
        mode = str(entry[5]) if len(entry) == 6 and entry[5] is not None else ""
        t, dev, heap = int(t), str(dev), str(heap)
        if action not in ACTIONS:
            raise ProgramError(f"timeline: action {action!r} of {dev!r}: use one of {ACTIONS}")
        if heap not in area_names:
            raise ProgramError(
                f"timeline: device {dev!r} asks for heap {heap!r}, which is not a CMA area of "
                f"the board ({', '.join(sorted(area_names)) or 'none'})"
            )
        if t >= duration_ns:
            notes.append(f"timeline: {dev} {action} at {t} ns is not before the end: not run")
            continue
        bufs = tuple((int(p), int(a)) for p, a in buffers)
        if action != "stop" and not bufs:
            raise ProgramError(f"timeline: {dev} {action} at {t} ns lists no buffers")
        if any(p <= 0 or not 0 <= a <= 20 for p, a in bufs):
            raise ProgramError(f"timeline: {dev} {action}: bad buffers {bufs}: (pages > 0, order)")
        path = via if isinstance(via, str) else via.get(dev, "dma_heap")
        if dev not in devices:
            devices[dev] = GuestDevice(dev, via=path, heap=gb.area)
        steps.append(GuestStep(seq, t, dev, str(action), bufs, mode, heap))
    if isinstance(via, Mapping):
        unknown = set(via) - set(devices)
        if unknown:
            raise ProgramError(f"via names devices not in the timeline: {sorted(unknown)}")
    return GuestProgram(
        board=gb,
        duration_ns=int(duration_ns),
        workloads=tuple(ws),
        devices=tuple(devices.values()),
        steps=tuple(steps),
        sample_interval_ns=int(sample_interval_ns),
        time_scale=float(time_scale),
        seed=int(seed),
        options=tuple((options or {}).items()),
        fs_types=tuple(types),
        notes=tuple(notes),
    )


def calibration_program(board: GuestBoard, **options: Value) -> GuestProgram:
    """The program of :func:`cmadev.kernel.measure_costs`: micro-measurements, no workloads.
    ``options`` override :data:`CALIBRATION_OPTIONS` (and may set run options)."""
    return GuestProgram(
        board=board,
        duration_ns=1,
        sample_interval_ns=0,
        mode="calibrate",
        options=tuple({**CALIBRATION_OPTIONS, **options}.items()),
    )


__all__ = [
    "ACTIONS",
    "CALIBRATION_OPTIONS",
    "FS_TYPES",
    "GUEST_AREA",
    "RUN_OPTIONS",
    "VIAS",
    "WORKLOAD_KINDS",
    "DataFile",
    "DioDisk",
    "GuestBoard",
    "GuestDevice",
    "GuestProgram",
    "GuestStep",
    "GuestWorkload",
    "MountDisk",
    "calibration_program",
    "guest_board",
    "parse_program_text",
    "program_from_scenario",
]
