"""The capture importer, the replay of a real 6.1 capture, and the trace exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmadev.capture import (
    Trace,
    background,
    cma_requests,
    parse_trace_text,
    read_meminfo,
    read_trace,
)
from cmadev.cli import main
from cmadev.errors import TraceParseError
from cmadev.sim.replay import build_replay, compare_replay
from cmadev.specs.scenario import load_scenario

CAPTURE = Path(__file__).parent / "data" / "kernel-6.1"
FULL = Path(__file__).parent / "data" / "kernel-6.1-full"
GUEST = CAPTURE / "board.json"


def test_the_capture_parses_with_unknown_events_counted() -> None:
    trace = read_trace(CAPTURE / "trace.txt")
    assert trace.lines == 893
    assert trace.unknown == {"set_migration_pte": 60, "remove_migration_pte": 60}
    reqs = cma_requests(trace)
    assert [(r.area, r.count, r.align, r.ok, r.busy_retries) for r in reqs] == [
        ("reserved", 28672, 8, False, 17),
        ("reserved", 4096, 0, True, 0),
    ]
    assert reqs[0].latency_ns == 10_672_362_000 - 10_294_169_000
    assert reqs[1].pfn == 0x17C00
    bg = background(trace)
    assert bg.allocated == {"anon": 60} and bg.freed == 60


@pytest.fixture(scope="module")
def whole() -> Trace:
    """The whole capture, read once (about 250,000 lines)."""
    return read_trace(FULL / "trace.txt.gz")


def test_the_whole_capture_gives_the_background_load_by_class(whole: Trace) -> None:
    trace = whole
    assert trace.lines == 251_564
    reqs = cma_requests(trace)
    assert [(r.count, r.ok, r.busy_retries) for r in reqs] == [(28672, True, 14), (4096, False, 0)]
    assert reqs[0].latency_ns > 4 * 10**9 and reqs[0].released_ns is not None
    bg = background(trace)
    # the hog (220 MiB) and the 64 MiB buffer: 284 MiB of anonymous memory at the peak
    assert 72_000 <= bg.live_peak["anon"] <= 73_000
    assert bg.allocated["migration"] > 9_000, "targets of the first request's migrations"
    assert bg.live_peak["file"] * 4096 >= 24 * 2**20, "the reader's 24 MiB working set"
    from cmadev.capture import pins

    assert pins(trace).pages > 100


def test_the_whole_capture_replays(whole: Trace) -> None:
    replay = build_replay(whole, str(GUEST))
    kinds = {w.kind for w in replay.scenario.workloads}
    assert kinds == {"anon_hog", "page_cache_reader", "kernel_alloc", "direct_io"}
    runs = [replay.scenario.run(p) for p in ("legacy", "balanced")]
    rows = compare_replay(replay, runs)
    assert [r.pages for r in rows] == [28672, 4096]
    legacy, balanced = (rows[0].modelled[p][0] for p in ("legacy", "balanced"))
    assert legacy is not None and balanced is not None and balanced > legacy, (
        "balanced lends the area out and migrates it back; legacy keeps it empty"
    )


def test_a_malformed_line_names_its_number() -> None:
    good = (
        "            init-36      [001] .....    10.294169: cma_alloc_start: name=r count=8 align=0"
    )
    with pytest.raises(TraceParseError, match=r"t.txt:3: not an ftrace event line"):
        parse_trace_text(f"# tracer: nop\n{good}\ngarbage here\n", "t.txt")
    with pytest.raises(TraceParseError, match=r"t.txt:1: cma_alloc_start count='x'"):
        parse_trace_text(good.replace("count=8", "count=x"), "t.txt")
    with pytest.raises(TraceParseError, match=r"t.txt:1: cma_alloc_start has no name="):
        parse_trace_text(good.replace("name=r ", ""), "t.txt")


def test_trace_cmd_report_lines_parse() -> None:
    text = (
        "cpus=2\n"
        "            init-36    [001]    10.294169: cma_alloc_start:      name=r count=8 align=0\n"
        "            init-36    [001]    10.294269: cma_alloc_finish:     name=r pfn=0x100 "
        "page=ffffea0000004000 count=8 align=0\n"
    )
    (req,) = cma_requests(parse_trace_text(text))
    assert req.ok and req.latency_ns == 100_000


def test_a_trace_dat_goes_through_trace_cmd(tmp_path: Path) -> None:
    bad = tmp_path / "trace.dat"
    bad.write_bytes(b"\x17\x08\x44tracing" + b"\0" * 64)
    with pytest.raises(TraceParseError, match=r"trace.dat"):
        read_trace(bad)


def test_the_shipped_capture_replays_under_several_policies() -> None:
    trace = read_trace(CAPTURE / "trace.txt")
    meminfo = read_meminfo(CAPTURE / "proc/meminfo")
    from cmadev.capture import Snapshot

    replay = build_replay(trace, "camera_512m", Snapshot(meminfo=meminfo))
    runs = [replay.scenario.run(p) for p in ("legacy", "balanced", "gcma")]
    rows = compare_replay(replay, runs)
    assert [r.pages for r in rows] == [28672, 4096]
    assert rows[0].captured_ns == 378_193_000 and not rows[0].captured_ok
    for row in rows:
        assert set(row.modelled) == {"legacy", "balanced", "gcma"}
        assert all(ns is not None and ns > 0 for ns, _ in row.modelled.values())
    anon = next(w for w in replay.scenario.workloads if w.kind == "anon_hog")
    assert anon.size == 227068 * 1024, "the snapshot's AnonPages"


def test_replay_command_prints_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["replay", str(CAPTURE / "trace.txt"), "--board", "camera_512m", "--policies"]
    assert main([*args, "legacy", "gcma", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["pages"] for r in doc["requests"]] == [28672, 4096]
    assert set(doc["requests"][0]["modelled"]) == {"legacy", "gcma"}
    assert main(["replay", str(CAPTURE / "nope.txt"), "--board", "camera_512m"]) == 1
    assert "nope.txt: cannot read the capture" in capsys.readouterr().err


def test_trace_exports_parse_back(tmp_path: Path) -> None:
    txt, js = tmp_path / "t.txt", tmp_path / "t.json"
    for out in (txt, js):
        code = main(["run", "tv_evening", "--policy", "balanced", "--duration", "20s",
                     "--trace", str(out)])  # fmt: skip
        assert code == 0
    text = txt.read_text()
    assert text.startswith("# tracer: nop\n#\n# entries-in-buffer/entries-written: ")
    parsed = parse_trace_text(text, str(txt))
    assert parsed.of("cma_alloc_start") and parsed.of("cma_alloc_finish")
    assert len(cma_requests(parsed)) == len(parsed.of("cma_alloc_start"))
    doc = json.loads(js.read_text())
    events = doc["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert slices and {e["name"] for e in slices} == {"cma_alloc"}
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert counters == {"CMA use (pages)", "free memory (MiB)", "kswapd (busy share)"}
    threads = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert threads and threads <= {d.name for d in load_scenario("tv_evening").devices}
    assert main(["run", "tv_evening", "--trace", str(tmp_path / "t.csv")]) == 1


def test_area_pictures_for_late_or_failed_requests(tmp_path: Path) -> None:
    from cmadev.report.comparison import compare
    from cmadev.report.plots import area_plots, plot_area

    comparison = compare("tv_evening", ["legacy"], 1, run_options={"area_maps": 256})
    run = comparison.runs[0]
    assert run.area_maps["t_ns"] and run.area_maps["areas"][0]["name"] == "tv"
    late = [r for r in run.requests if r.outcome != "met"]
    assert len(area_plots(comparison, tmp_path)) == len(late)
    out = tmp_path / "one.png"
    plot_area(run, run.requests[0], out)
    assert out.stat().st_size > 10_000


def test_the_readme_replay_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A device's own trace in, a trace people can open out\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"trace.txt"', repr(str(CAPTURE / "trace.txt")))
    code = code.replace('"meminfo.txt"', repr(str(CAPTURE / "proc/meminfo")))
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.count("init-") == 2


def test_compare_writes_a_trace_per_run_and_says_when_the_ring_overflowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp.txt"
    args = ["compare", "tv_evening", "--policies", "legacy", "gcma", "--duration", "20s"]
    assert main([*args, "--trace", str(out), "--trace-limit", "5"]) == 0
    err = capsys.readouterr().err
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["cmp-gcma-seed1.txt", "cmp-legacy-seed1.txt"]
    assert "legacy seed 1: the trace kept the last 5 of" in err
    text = (tmp_path / "cmp-legacy-seed1.txt").read_text()
    assert len(parse_trace_text(text).events) == 5
    assert "# entries-in-buffer/entries-written: 5/" in text


def test_replay_writes_its_trace_and_report(tmp_path: Path) -> None:
    trace = tmp_path / "replay.json"
    args = ["replay", str(CAPTURE / "trace.txt"), "--board", str(GUEST), "--policies", "legacy"]
    assert main([*args, "--trace", str(trace), "--out", str(tmp_path / "rep")]) == 0
    doc = json.loads(trace.read_text())
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert names == {"init-36", "init-37"}
    assert (tmp_path / "rep" / "summary.md").exists()


def test_the_plots_are_the_same_files_whoever_draws_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """draw_plots draws each figure in a forked worker when it can, or in a standby process
    and its forks: the files must be those one process draws, byte for byte."""
    import multiprocessing

    from cmadev.report.comparison import compare
    from cmadev.report.plots import PlotStandby, draw_plots

    forks: list[str] = []
    real = multiprocessing.get_context

    def spy(method: str) -> object:
        forks.append(method)
        return real(method)

    monkeypatch.setattr(multiprocessing, "get_context", spy)

    comparison = compare("tv_evening", ["legacy", "balanced"], 1, run_options={"area_maps": 128})
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    alone = draw_plots(comparison, tmp_path / "one", workers=1)
    shared = draw_plots(comparison, tmp_path / "two", workers=2)
    assert forks == ["fork"], "two workers draw in forked processes"
    assert alone.keys() == shared.keys() and len(alone) > 3
    for kind, path in alone.items():
        assert path.read_bytes() == shared[kind].read_bytes(), kind
    (tmp_path / "standby").mkdir()
    with PlotStandby() as standby:  # forked before the runs in the demo: now will do
        drawn = draw_plots(comparison, tmp_path / "standby", standby=standby)
    assert forks == ["fork", "fork"] and list(drawn) == list(alone)
    for kind, path in alone.items():
        assert path.read_bytes() == drawn[kind].read_bytes(), kind


def test_the_plot_standby_raises_what_drawing_raised(tmp_path: Path) -> None:
    """An error in a plot process (here: no folder to write into) is raised in the caller,
    and a standby let go unused ends."""
    from cmadev.report.comparison import compare
    from cmadev.report.plots import PlotStandby, draw_plots

    comparison = compare("tv_evening", ["legacy"], 1, run_options={"area_maps": 128})
    with PlotStandby() as standby, pytest.raises(FileNotFoundError):
        draw_plots(comparison, tmp_path / "missing", workers=2, standby=standby)
    unused = PlotStandby()
    unused.close()
    assert not unused.ready
