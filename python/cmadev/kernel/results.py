"""What a guest run brings back: the raw captures, as plain dataclasses.

The agent writes framed records to a raw disk (``cmadev/kernel/guest/results.c``)::

    CMADEV-RESULTS 1
    @@ <tag> <payload length> <key=value attributes>
    <payload>
    ...
    @@ end <n> bytes=...

:func:`read_records` splits the stream; :func:`assemble` turns the records into a
:class:`GuestRun`. Times in the records are guest nanoseconds since the program's time 0
(``t0``, CLOCK_MONOTONIC); :meth:`GuestRun.scenario_ns` divides by the program's
``time_scale`` to get back to scenario time.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import unquote

from cmadev.kernel import parsers
from cmadev.kernel.errors import ResultsError

MAGIC = b"CMADEV-RESULTS 1\n"
FINAL_SAMPLE = 0xFFFFFFFF
"""The index of the sample taken at the end of the run (after requests in flight finish)."""


@dataclass(frozen=True)
class Record:
    tag: str
    attrs: dict[str, str]
    payload: bytes

    @property
    def text(self) -> str:
        return self.payload.decode(errors="replace")

    def kv(self) -> dict[str, str]:
        """The payload's ``key=value`` lines."""
        out = {}
        for line in self.text.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                out[k] = v
        return out


def read_records(data: bytes) -> tuple[list[Record], bool]:
    """The records of a results stream, and whether it reached its ``end`` record.

    A stream cut short (the guest died) gives the records before the cut and False; a stream
    that does not start with the magic line raises :class:`ResultsError`.
    """
    if not data.startswith(MAGIC):
        raise ResultsError(
            "the results disk does not start with the agent's magic line: the agent never "
            "ran (see the console)"
        )
    pos = len(MAGIC)
    out = []
    while pos < len(data) and data[pos : pos + 3] == b"@@ ":
        end = data.find(b"\n", pos)
        if end < 0:
            break
        head = data[pos + 3 : end].decode(errors="replace").split(" ")
        if len(head) < 2 or not head[1].isdigit():
            raise ResultsError(f"bad record header at offset {pos}: {head!r}")
        tag, length = head[0], int(head[1])
        attrs = {}
        for tok in head[2:]:
            k, sep, v = tok.partition("=")
            if sep:
                attrs[k] = v
        start = end + 1
        if start + length > len(data):
            break  # cut short
        out.append(Record(tag, attrs, data[start : start + length]))
        pos = start + length + 1
        if tag == "end":
            return out, True
    return out, False


# --------------------------------------------------------------------------------------------
# the captures


@dataclass
class Sample:
    """The kernel's views at one time: ``files`` maps each path (``/proc/meminfo``,
    ``/sys/kernel/mm/cma/reserved/alloc_pages_success``, ...) to its text as read.
    ``index`` 0 is taken just before time 0, :data:`FINAL_SAMPLE` at the end."""

    index: int
    t_ns: int
    files: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    took_ns: Optional[int] = None

    def file(self, suffix: str) -> Optional[str]:
        """The text of the file whose path ends with ``suffix`` (``"meminfo"``, ``"used"``)."""
        for path, text in self.files.items():
            if path.endswith(suffix):
                return text
        return None

    def meminfo(self) -> dict[str, int]:
        return parsers.parse_meminfo(self.files.get("/proc/meminfo", ""))

    def vmstat(self) -> dict[str, int]:
        return parsers.parse_vmstat(self.files.get("/proc/vmstat", ""))

    def buddyinfo(self) -> list[parsers.BuddyZone]:
        return parsers.parse_buddyinfo(self.files.get("/proc/buddyinfo", ""))

    def pagetypeinfo(self) -> parsers.PageTypeInfo:
        return parsers.parse_pagetypeinfo(self.files.get("/proc/pagetypeinfo", ""))

    def zoneinfo(self) -> dict[str, dict[str, int]]:
        return parsers.parse_zoneinfo(self.files.get("/proc/zoneinfo", ""))

    def cma_value(self, name: str) -> Optional[int]:
        """A CMA sysfs or debugfs number of this sample (``used``, ``maxchunk``,
        ``alloc_pages_success``, ``alloc_pages_fail``)."""
        text = self.file(f"/{name}")
        return int(text.split()[0]) if text and text.split() else None


@dataclass(frozen=True)
class BufferRequest:
    """One ``cma_alloc`` a device made (one buffer): guest times in ns since t0, the result
    (0 or -errno: the dma-heap ioctl and the debugfs write both report any failure as
    -ENOMEM; :meth:`GuestRun.cma_failures` has the kernel's inner error)."""

    device: str
    seq: int
    buffer: int
    via: str
    heap: str
    pages: int
    align: int
    issue_ns: int
    done_ns: int
    latency_ns: int
    result: int
    errno: str
    migrated: Optional[int] = None
    """``pgmigrate_success``'s growth over the call (all migrations in the guest meanwhile);
    None from an agent that did not record it."""
    probe_ns: int = 0
    """Time its action spent reading ``/proc/vmstat`` (for ``migrated``) before this call:
    the agent's measuring, left out of the device's latency (0 from older agents)."""

    @property
    def ok(self) -> bool:
        return self.result == 0


@dataclass(frozen=True)
class DeviceAction:
    """One timeline step that allocates (start, change_resolution): all its buffers, one
    after the other. ``latency_ns`` runs from the step's issue to its last buffer;
    ``scheduled_ns`` is when the program asked for it."""

    device: str
    seq: int
    action: str
    mode: str
    issue_ns: int
    done_ns: int
    latency_ns: int
    scheduled_ns: int
    buffers: int
    allocated: int
    ok: bool


@dataclass(frozen=True)
class Release:
    """A device giving its buffers back (stop, change_resolution, or a failed action)."""

    device: str
    seq: int
    buffers: int
    pages: int
    issue_ns: int
    done_ns: int


@dataclass(frozen=True)
class WorkloadReport:
    """What a workload process did: its operations, those it could not do in time
    (``skipped``), failures, the signal that ended it (9: killed, by the OOM killer if dmesg
    says so), its kind's counters and the agent's note on what it could not do as asked."""

    id: int
    name: str
    kind: str
    started: bool
    finished: bool
    signal: int
    ops: int
    skipped: int
    failures: int
    last_errno: str
    counters: dict[str, int]
    note: str


@dataclass
class GuestRun:
    """The raw captures of one guest run (see the module docstring for the times).

    ``kernel_version`` is the guest's ``uname -r``; ``qemu_command`` the exact command line;
    ``program_text`` what the agent ran; ``notes`` what could not be reproduced as asked
    (from the program builder and from the agent); ``samples`` every sample in order;
    ``trace`` the ftrace text (cma, migrate, page_isolation, kmem events); ``dmesg`` the
    kernel log at the end; ``console`` the serial console; ``calibration`` the
    micro-measurements of a calibration run. ``wall_s`` is the host's wall time for the whole
    run, ``boot_s`` the guest's uptime when the program began.
    """

    kernel_version: str
    qemu_command: tuple[str, ...]
    program_text: str
    time_scale: float
    meta: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    requests: list[BufferRequest] = field(default_factory=list)
    actions: list[DeviceAction] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    workloads: list[WorkloadReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trace: str = ""
    trace_events_enabled: str = ""
    trace_stats: dict[str, str] = field(default_factory=dict)
    dmesg: str = ""
    console: str = ""
    calibration: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    wall_s: float = 0.0
    boot_s: Optional[float] = None
    accel: str = "tcg"

    # ----- time ---------------------------------------------------------------------------

    def scenario_ns(self, guest_ns: int) -> int:
        """A guest time (ns since t0) in scenario time."""
        return round(guest_ns / self.time_scale)

    # ----- samples ------------------------------------------------------------------------

    @property
    def first_sample(self) -> Optional[Sample]:
        return self.samples[0] if self.samples else None

    @property
    def final_sample(self) -> Optional[Sample]:
        return self.samples[-1] if self.samples else None

    def series(self, key: str, source: str = "meminfo") -> list[tuple[int, int]]:
        """``(guest t_ns, value)`` of a meminfo (kB) or vmstat field over the samples."""
        out = []
        for s in self.samples:
            values = s.meminfo() if source == "meminfo" else s.vmstat()
            if key in values:
                out.append((s.t_ns, values[key]))
        return out

    def vmstat_delta(self, key: str) -> Optional[int]:
        """How much a vmstat counter grew from the first sample to the last."""
        if not self.samples:
            return None
        a, b = self.samples[0].vmstat(), self.samples[-1].vmstat()
        if key not in a or key not in b:
            return None
        return b[key] - a[key]

    # ----- requests -----------------------------------------------------------------------

    def requests_of(self, device: str) -> list[BufferRequest]:
        return [r for r in self.requests if r.device == device]

    def actions_of(self, device: str) -> list[DeviceAction]:
        return [a for a in self.actions if a.device == device]

    def workload(self, name: str) -> WorkloadReport:
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(f"no workload {name!r} in this run ({[w.name for w in self.workloads]})")

    # ----- kernel text --------------------------------------------------------------------

    def trace_events(self) -> list[parsers.TraceEvent]:
        return parsers.parse_trace(self.trace)

    def cma_failures(self) -> list[parsers.CmaFailure]:
        return parsers.parse_cma_failures(self.dmesg)

    def cma_calls(self) -> list[parsers.CmaCall]:
        """Each ``cma_alloc`` the trace shows, with its busy retries and duration."""
        return parsers.cma_calls(self.trace_events())

    def trace_overruns(self) -> int:
        """Events the ring buffers overwrote before the agent read them (0: a whole trace)."""
        total = 0
        for key, text in self.trace_stats.items():
            if key.startswith("cpu"):
                for line in text.splitlines():
                    if line.startswith("overrun:"):
                        total += int(line.split(":")[1])
        return total

    def oom_kills(self) -> int:
        """Processes the OOM killer killed (``oom_kill`` in /proc/vmstat, end minus start)."""
        return self.vmstat_delta("oom_kill") or 0

    # ----- export -------------------------------------------------------------------------

    def to_dict(self, with_samples: bool = True) -> dict[str, Any]:
        """Everything as JSON-able data (samples' file texts included unless asked not)."""
        d = asdict(self)
        if not with_samples:
            d["samples"] = [{"index": s.index, "t_ns": s.t_ns} for s in self.samples]
        return d

    def write_captures(self, directory: Union[str, os.PathLike[str]]) -> Path:
        """Write the raw captures as files: the final sample's views under their names
        (``meminfo``, ``pagetypeinfo``, ``cma/used`` ...), ``trace.txt``, ``dmesg.txt``,
        ``console.txt``, ``program.txt``, ``qemu-command.txt`` and ``run.json`` (requests,
        actions, workloads, notes, meta)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        final = self.final_sample
        if final is not None:
            for path, text in final.files.items():
                rel = path.lstrip("/").replace("sys/kernel/debug/", "debugfs/")
                dest = out / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text)
        (out / "trace.txt").write_text(self.trace)
        (out / "dmesg.txt").write_text(self.dmesg)
        (out / "console.txt").write_text(self.console)
        (out / "program.txt").write_text(self.program_text)
        (out / "qemu-command.txt").write_text(" ".join(self.qemu_command) + "\n")
        summary = self.to_dict(with_samples=False)
        for key in ("trace", "dmesg", "console", "program_text"):
            summary.pop(key, None)
        (out / "run.json").write_text(json.dumps(summary, indent=1) + "\n")
        return out


def _int(kv: dict[str, str], key: str, default: int = 0) -> int:
    try:
        return int(kv.get(key, default))
    except ValueError:
        return default


def assemble(
    records: list[Record],
    *,
    kernel_version: str = "",
    qemu_command: tuple[str, ...] = (),
    program_text: str = "",
    time_scale: float = 1.0,
    notes: tuple[str, ...] = (),
) -> GuestRun:
    """A :class:`GuestRun` from the records of a results stream."""
    run = GuestRun(
        kernel_version=kernel_version,
        qemu_command=qemu_command,
        program_text=program_text,
        time_scale=time_scale,
        notes=list(notes),
    )
    samples: dict[int, Sample] = {}
    trace_parts: list[str] = []
    for rec in records:
        a = rec.attrs
        if rec.tag == "meta":
            run.meta.update(rec.kv())
        elif rec.tag == "file":
            k = _int(a, "k")
            s = samples.setdefault(k, Sample(index=k, t_ns=_int(a, "t")))
            path = a.get("path", "?")
            if "errno" in a:
                s.errors[path] = a["errno"]
            else:
                s.files[path] = rec.text
        elif rec.tag == "sample":
            k = _int(a, "k")
            s = samples.setdefault(k, Sample(index=k, t_ns=_int(a, "t")))
            s.took_ns = _int(rec.kv(), "took_ns")
        elif rec.tag == "request":
            kv = rec.kv()
            run.requests.append(
                BufferRequest(
                    device=a.get("device", "?"),
                    seq=_int(a, "seq"),
                    buffer=_int(a, "buffer"),
                    via=kv.get("via", ""),
                    heap=kv.get("heap", ""),
                    pages=_int(kv, "pages"),
                    align=_int(kv, "align"),
                    issue_ns=_int(kv, "issue_ns"),
                    done_ns=_int(kv, "done_ns"),
                    latency_ns=_int(kv, "latency_ns"),
                    result=_int(kv, "result"),
                    errno=kv.get("errno", ""),
                    migrated=_int(kv, "migrated") if "migrated" in kv else None,
                    probe_ns=_int(kv, "probe_ns"),
                )
            )
        elif rec.tag == "action":
            kv = rec.kv()
            run.actions.append(
                DeviceAction(
                    device=a.get("device", "?"),
                    seq=_int(a, "seq"),
                    action=a.get("action", ""),
                    mode=unquote(a.get("mode", "")),
                    issue_ns=_int(kv, "issue_ns"),
                    done_ns=_int(kv, "done_ns"),
                    latency_ns=_int(kv, "latency_ns"),
                    scheduled_ns=_int(kv, "scheduled_ns"),
                    buffers=_int(kv, "buffers"),
                    allocated=_int(kv, "allocated"),
                    ok=kv.get("ok") == "1",
                )
            )
        elif rec.tag == "release":
            kv = rec.kv()
            run.releases.append(
                Release(
                    device=a.get("device", "?"),
                    seq=_int(a, "seq"),
                    buffers=_int(a, "buffers"),
                    pages=_int(a, "pages"),
                    issue_ns=_int(kv, "issue_ns"),
                    done_ns=_int(kv, "done_ns"),
                )
            )
        elif rec.tag == "workload":
            kv = rec.kv()
            fixed = {
                "started",
                "finished",
                "signal",
                "ops",
                "skipped",
                "failures",
                "last_errno",
                "note",
            }
            run.workloads.append(
                WorkloadReport(
                    id=_int(a, "id"),
                    name=unquote(a.get("name", "")),
                    kind=a.get("kind", ""),
                    started=kv.get("started") == "1",
                    finished=kv.get("finished") == "1",
                    signal=_int(kv, "signal"),
                    ops=_int(kv, "ops"),
                    skipped=_int(kv, "skipped"),
                    failures=_int(kv, "failures"),
                    last_errno=kv.get("last_errno", ""),
                    counters={k: _int(kv, k) for k in kv if k not in fixed},
                    note=kv.get("note", ""),
                )
            )
        elif rec.tag == "note":
            run.notes.append(rec.text)
        elif rec.tag == "trace":
            trace_parts.append(rec.text)
        elif rec.tag == "trace_events":
            run.trace_events_enabled = rec.text
        elif rec.tag == "trace_stats":
            run.trace_stats.update({k: v for k, v in a.items() if k != "cpu"})
            run.trace_stats[f"cpu{a.get('cpu', '0')}"] = rec.text
        elif rec.tag == "dmesg":
            run.dmesg = rec.text
        elif rec.tag == "calib":
            with contextlib.suppress(ValueError):
                run.calibration[a.get("key", "?")] = float(rec.text)
        elif rec.tag == "truncated":
            run.truncated = True
            run.notes.append(
                f"results truncated: {a.get('records', '?')} records "
                f"({a.get('bytes', '?')} bytes) did not fit on the results disk"
            )
    run.samples = [samples[k] for k in sorted(samples)]
    run.trace = "".join(trace_parts)
    if not run.kernel_version:
        run.kernel_version = run.meta.get("uname_r", "")
    start = run.meta.get("agent_start_ns")
    if start and start.isdigit():
        # CLOCK_MONOTONIC starts at boot: when PID 1 began is how long the boot took
        run.boot_s = int(start) / 1e9
    return run


def agent_error(records: list[Record]) -> Optional[str]:
    """The agent's own fatal error, if it wrote one."""
    for rec in records:
        if rec.tag == "error":
            return rec.text
    return None


__all__ = [
    "FINAL_SAMPLE",
    "MAGIC",
    "BufferRequest",
    "DeviceAction",
    "GuestRun",
    "Record",
    "Release",
    "Sample",
    "WorkloadReport",
    "agent_error",
    "assemble",
    "read_records",
]
