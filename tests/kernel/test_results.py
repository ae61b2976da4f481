"""The results stream the agent writes, read back without QEMU."""

from __future__ import annotations

import pytest

from cmadev.kernel.errors import ResultsError
from cmadev.kernel.results import FINAL_SAMPLE, MAGIC, assemble, read_records


def _rec(tag: str, attrs: str, payload: str) -> bytes:
    data = payload.encode()
    return f"@@ {tag} {len(data)} {attrs}\n".encode() + data + b"\n"


MEMINFO0 = (
    "MemTotal:         500000 kB\nMemFree:          400000 kB\n"
    "CmaTotal:         131072 kB\nCmaFree:          131072 kB\n"
)
MEMINFO1 = MEMINFO0.replace("CmaFree:          131072", "CmaFree:           65536")


def _stream(end: bool = True) -> bytes:
    parts = [
        MAGIC,
        _rec(
            "meta",
            "",
            "uname_r=6.1.192\nt0_mono_ns=2600000000\nagent_start_ns=2500000000\ncma_area=reserved\n",
        ),
        _rec("file", "t=0 k=0 path=/proc/meminfo", MEMINFO0),
        _rec("file", "t=0 k=0 path=/proc/vmstat", "pgmigrate_success 10\noom_kill 0\n"),
        _rec("file", "t=0 k=0 path=/sys/kernel/debug/cma/reserved/used", "0\n"),
        _rec("file", "t=0 k=0 path=/sys/kernel/mm/cma/reserved/nope errno=ENOENT", ""),
        _rec("sample", "t=0 k=0", "took_ns=1234\n"),
        _rec(
            "trace",
            "",
            "  init-1 [000] .....  2.5: cma_alloc_start: name=reserved count=4 align=2\n",
        ),
        _rec(
            "request",
            "device=cam seq=0 buffer=0",
            "via=dma_heap\nheap=reserved\npages=4\nalign=2\nissue_ns=100\ndone_ns=300\n"
            "latency_ns=200\nresult=-12\nerrno=ENOMEM\nprobe_ns=40\n",
        ),
        _rec(
            "action",
            "device=cam seq=0 action=start mode=1080p%20hd",
            "issue_ns=90\ndone_ns=310\nlatency_ns=220\nscheduled_ns=80\nbuffers=2\n"
            "allocated=0\nok=0\n",
        ),
        _rec("release", "device=cam seq=0 buffers=0 pages=0", "issue_ns=311\ndone_ns=312\n"),
        _rec(
            "trace",
            "",
            "  init-1 [000] .....  2.6: cma_alloc_finish: name=reserved "
            "pfn=0xffffffffffffffff page=0000000000000000 count=4 align=2\n",
        ),
        _rec("file", f"t=5000 k={FINAL_SAMPLE} path=/proc/meminfo", MEMINFO1),
        _rec(
            "file",
            f"t=5000 k={FINAL_SAMPLE} path=/proc/vmstat",
            "pgmigrate_success 25\noom_kill 1\n",
        ),
        _rec("file", f"t=5000 k={FINAL_SAMPLE} path=/sys/kernel/debug/cma/reserved/used", "1024\n"),
        _rec(
            "workload",
            "id=0 name=hog kind=anon_hog",
            "started=1\nfinished=0\nsignal=9\nops=5\nskipped=2\nfailures=0\nlast_errno=OK\n"
            "pages_faulted=5\ntouches=0\nnote=killed by SIGKILL\n",
        ),
        _rec("note", "", "trace: something"),
        _rec("calib", "key=memcpy_page_ns", "4500"),
        _rec(
            "dmesg",
            "",
            "[    3.000000] cma: cma_alloc: reserved: alloc failed, req-size: 4 pages, ret: -16\n",
        ),
    ]
    if end:
        parts.append(_rec("end", "bytes=1", "uptime_ns=1\n"))
    return b"".join(parts) + b"\0" * 4096


def test_stream_assembles_into_a_run() -> None:
    records, ended = read_records(_stream())
    assert ended
    run = assemble(
        records, qemu_command=("qemu",), program_text="p", time_scale=2.0, notes=("host note",)
    )
    assert run.kernel_version == "6.1.192"
    assert run.boot_s == 2.5
    assert [s.index for s in run.samples] == [0, FINAL_SAMPLE]
    first, final = run.samples
    assert first.took_ns == 1234 and first.errors == {"/sys/kernel/mm/cma/reserved/nope": "ENOENT"}
    assert first.meminfo()["CmaFree"] == 131072 and final.meminfo()["CmaFree"] == 65536
    assert final.cma_value("used") == 1024
    assert run.series("CmaFree") == [(0, 131072), (5000, 65536)]
    assert run.vmstat_delta("pgmigrate_success") == 15 and run.oom_kills() == 1
    [req] = run.requests
    assert (req.device, req.pages, req.align, req.latency_ns, req.ok) == ("cam", 4, 2, 200, False)
    assert req.errno == "ENOMEM" and req.probe_ns == 40
    [act] = run.actions
    assert act.mode == "1080p hd" and not act.ok and act.scheduled_ns == 80
    assert run.releases[0].done_ns == 312
    hog = run.workload("hog")
    assert hog.signal == 9 and hog.counters == {"pages_faulted": 5, "touches": 0}
    assert hog.note == "killed by SIGKILL"
    assert run.notes == ["host note", "trace: something"]
    assert run.calibration == {"memcpy_page_ns": 4500.0}
    assert [e.event for e in run.trace_events()] == ["cma_alloc_start", "cma_alloc_finish"]
    [fail] = run.cma_failures()
    assert (fail.area, fail.pages, fail.ret) == ("reserved", 4, -16)
    assert run.scenario_ns(5000) == 2500
    with pytest.raises(KeyError, match="no workload 'x'"):
        run.workload("x")


def test_the_agents_vmstat_reads_are_not_in_a_devices_latency() -> None:
    """The agent reads /proc/vmstat before each call (for the pages migrated): a device's
    latency runs from its issue to its last buffer less that reading."""
    from cmadev.kernel.backend import _buffer

    records, _ = read_records(_stream())
    run = assemble(records, qemu_command=("qemu",), program_text="p")
    [req] = run.requests
    buffer = _buffer(run, req, "reserved", None)
    assert (buffer.issued_ns, buffer.completed_ns) == (100 - 40, 300 - 40)
    [act] = run.actions
    assert buffer.completed_ns - act.issue_ns == 300 - 90 - 40


def test_a_stream_cut_short_is_not_ended() -> None:
    data = _stream(end=False)
    records, ended = read_records(data)
    assert not ended and records[-1].tag == "dmesg"
    # a record cut in the middle is dropped, the ones before it kept
    cut = data[: data.index(b"@@ workload") + 30]
    records, ended = read_records(cut)
    assert not ended and records[-1].tag == "file"


def test_a_disk_the_agent_never_wrote_is_an_error() -> None:
    with pytest.raises(ResultsError, match="never ran"):
        read_records(b"\0" * 8192)
    with pytest.raises(ResultsError, match="bad record header"):
        read_records(MAGIC + b"@@ file x\n")


def test_write_captures(tmp_path: object) -> None:
    from pathlib import Path

    records, _ = read_records(_stream())
    run = assemble(records, qemu_command=("qemu", "-m", "512"), program_text="prog\n")
    out = run.write_captures(Path(str(tmp_path)) / "cap")
    assert (out / "proc" / "meminfo").read_text() == MEMINFO1
    assert (out / "debugfs" / "cma" / "reserved" / "used").read_text() == "1024\n"
    assert "cma_alloc_finish" in (out / "trace.txt").read_text()
    assert (out / "qemu-command.txt").read_text() == "qemu -m 512\n"
    assert '"requests"' in (out / "run.json").read_text()
