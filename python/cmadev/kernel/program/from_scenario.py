"""A guest program from a scenario's pieces: the board, each kind of workload, the timeline.

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

This module is the translation, apart from the program it builds
(:mod:`cmadev.kernel.program.model`): which engine fields of each workload kind the agent
implements, how a board maps onto the x86 guest, and what Linux 6.1 does differently from the
model, said in the notes. Its names are importable from :mod:`cmadev.kernel.program`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from cmadev.kernel.errors import ProgramError
from cmadev.kernel.program.model import (
    ACTIONS,
    FS_TYPES,
    GUEST_AREA,
    GuestBoard,
    GuestDevice,
    GuestProgram,
    GuestStep,
    GuestWorkload,
    MiB,
    Value,
)

X86_PAGEBLOCK_ORDER = 9
"""pageblock_order of the guest kernel: HUGETLB_PAGE_ORDER (9: 2 MiB) since the config enables
hugetlbfs (include/linux/pageblock-flags.h, 6.1; without it, MAX_ORDER - 1 = 10)."""

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
    "build": (
        ("jobs", True),
        ("processes", False),
        ("cpu_ns", True),
        ("anon_pages", True),
        ("touches_per_page", False),
        ("source_pages", True),
        ("reads_per_process", False),
        ("source_zipf", False),
        ("source_file_pages", False),
        ("output_pages", False),
        ("output_space_pages", False),
    ),
}
WORKLOAD_KINDS = tuple(_FIELDS)


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
    elif w.kind == "build":
        notes.append(
            f"workload {w.name!r}: compile processes fork()ed by the workload's process, their "
            f"CPU time burnt in a loop (CLOCK_PROCESS_CPUTIME_ID), the source tree and the "
            f"objects a file on the ext4 data disk; a process's kernel memory is what fork() "
            f"and its mappings really allocate, not the model's 8 + heap/512 pages"
        )
        if not w.param("processes"):
            notes.append(
                f"workload {w.name!r}: without 'processes' the build starts processes until "
                f"the program ends"
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


__all__ = [
    "WORKLOAD_KINDS",
    "X86_PAGEBLOCK_ORDER",
    "guest_board",
    "program_from_scenario",
]
