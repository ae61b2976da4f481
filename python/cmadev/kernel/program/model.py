"""A guest program as data, and the line format the agent in the guest reads.

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

This module knows nothing of scenarios: it is apart from
:mod:`cmadev.kernel.program.from_scenario`, which translates a scenario's pieces into these,
so that the program and its text stand on their own (the calibration's program,
:func:`calibration_program`, is built here from a board alone). Its names are importable from
:mod:`cmadev.kernel.program`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Optional, Union
from urllib.parse import quote

from cmadev.kernel.errors import ProgramError

PAGE_SIZE = 4096
MiB = 1 << 20
GUEST_AREA = "reserved"
"""The name Linux gives the default CMA area that ``cma=`` creates (kernel/dma/contiguous.c:
``dma_contiguous_reserve_area(..., "reserved", ...)``); the CMA dma-heap is named after its
area (drivers/dma-buf/heaps/cma_heap.c: ``exp_info.name = cma_get_name(cma)``), so the
guest's heap is ``/dev/dma_heap/reserved``."""

ACTIONS = ("start", "stop", "change_resolution")
VIAS = ("dma_heap", "debugfs")
FS_TYPES = ("ext4", "ext2")

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


FILE_KINDS = ("page_cache_reader", "writer", "build")
"""The workload kinds with a data file on the guest's data disk (:attr:`GuestWorkload.file`)."""


def build_output_space(w: GuestWorkload) -> int:
    """Pages of a build's output space, as the engine sizes it (``Build::output_space``):
    as given, or what the whole build writes (``processes``, or ``jobs`` x 64, objects)."""
    per_object = int(w.param("output_pages", 0) or 0)
    if per_object == 0:
        return 0
    given = int(w.param("output_space_pages", 0) or 0)
    if given > 0:
        return given
    objects = int(w.param("processes", 0) or 0) or int(w.param("jobs", 1) or 1) * 64
    return min(objects * per_object, (2**32 - 1) // 4)


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
        """The data file of a reader, a writer or a build on the guest's ext4 data disk."""
        return f"w{self.id}.dat"

    def data_files(self) -> list[DataFile]:
        """Its files on the data disk: a reader's or writer's one file; a build's source tree
        (one file, or a folder of files when it has them: ``w<id>.src/<n>``) and its output
        space (``w<id>.out``)."""
        if self.kind != "build":
            return [DataFile(self.file, int(self.param("file_pages", 1) or 1))]
        tree, per_file = int(self.param("source_pages", 1) or 1), self.source_file_pages
        if per_file:
            files = [
                DataFile(f"{self.tree}/{n}", min(per_file, tree - n * per_file))
                for n in range(-(-tree // per_file))
            ]
        else:
            files = [DataFile(self.file, tree)]
        out = build_output_space(self)
        return files + ([DataFile(self.output, out)] if out else [])

    @property
    def source_file_pages(self) -> int:
        return int(self.param("source_file_pages", 0) or 0)

    @property
    def tree(self) -> str:
        """A build's folder of source files on the data disk."""
        return f"w{self.id}.src"

    @property
    def output(self) -> str:
        """A build's output space on the data disk."""
        return f"w{self.id}.out"

    def to_line(self) -> str:
        params = list(self.params)
        if self.kind in FILE_KINDS:
            params.append(("file", self.file))
        if self.kind == "build":
            # the output space resolved (0 in the engine's form: what the build writes)
            params = [(k, v) for k, v in params if k != "output_space_pages"]
            params += [
                ("output_space_pages", build_output_space(self)),
                ("tree", self.tree),
                ("output", self.output),
            ]
        return _line(
            "workload",
            [
                ("id", self.id),
                ("kind", self.kind),
                ("name", self.name),
                ("start_ns", self.start_ns),
                ("stop_ns", self.stop_ns or 0),
                *params,
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
    "paused_reps": 6,
    "pause_ns": 250_000_000,
    "fill_fraction": 0.85,
    "fill_reps": 2,
    "calib_file_pages": 65536,
}
"""The calibration's options (:func:`calibration_program`) and their defaults: ``trace``
(a second idle sweep through debugfs, traced, whose events time each call's phases; the
extra events are the per-CPU list drains, the workqueue items of ``lru_add_drain_all`` and
the caller's context switches),
``small_reps`` (calls of 1 and 16 pages; 5 of the larger sizes), ``phase_reps`` (calls per size
in the traced sweep), ``paused_reps`` and ``pause_ns`` (calls of 1 and 256 pages through
debugfs, each after the guest idled that long, as a device's request comes: the per-call cost
the model charges as ``lru_cache_disable``), ``fill_fraction`` (of ``MemAvailable``, held
by an anonymous process while the ``fill_`` sweep runs, and again for the reclaim
measurement), ``fill_reps`` (more filled sweeps through debugfs, ``fill1_``..., each with a
new filler), ``calib_file_pages`` (a file on the data disk for the storage and reclaim
measurements; 0: none)."""


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
        files = [f for w in self.workloads if w.kind in FILE_KINDS for f in w.data_files()]
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
    "PAGE_SIZE",
    "RUN_OPTIONS",
    "VIAS",
    "DataFile",
    "DioDisk",
    "GuestBoard",
    "GuestDevice",
    "GuestProgram",
    "GuestStep",
    "GuestWorkload",
    "MiB",
    "MountDisk",
    "Value",
    "calibration_program",
    "parse_program_text",
]
