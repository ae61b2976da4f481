"""The differential suite: each case of ``differential.py`` on the model and on Linux 6.1
under QEMU, one test per figure (marker ``kernel``), and the comparison itself (always run).

A figure passes when the effect has the same direction on both backends and they agree
within 2x. A figure whose disagreement comes from a mechanism the model lacks is a strict
xfail naming it: when the model gains the mechanism the test passes, strict turns that into
a failure, and the mark comes off. Each test prints its table row (``-s`` to see them); the
whole table: ``python -m tests.kernel.differential``.

A calibration run starts the module (the model's costs, fitted now: a TCG guest's speed
follows the host's load); each case boots once (its ``boots`` times for the timing cases) and
its figures share the boot; the QEMU tests skip, naming the missing Debian packages, where a
guest cannot boot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pytest
from differential import (
    CASES,
    HEADER,
    POLICY,
    Case,
    Figure,
    Row,
    Run,
    agree,
    costs_line,
    line,
    markdown,
    row,
    run_case,
    run_model,
    session_board,
)

from cmadev.errors import SpecError
from cmadev.kernel.backend import device_paths, scenario_program
from cmadev.kernel.build import KernelImage
from cmadev.kernel.initramfs import Initramfs
from cmadev.specs.workloads import AnonHog

# --------------------------------------------------------------------------------------------
# the comparison (always run)


@pytest.mark.parametrize(
    ("model", "kernel", "ok"),
    [
        (10.0, 10.0, True),
        (10.0, 19.9, True),
        (10.0, 20.1, False),
        (20.1, 10.0, False),
        (5.0, 2.5, True),
        (0.0, 0.0, True),
        (0.0, 1.0, False),  # no effect against an effect
        (-1.0, 1.0, False),  # opposite directions
        (-3.0, -2.0, True),
    ],
)
def test_within_2x_and_the_same_direction(model: float, kernel: float, ok: bool) -> None:
    assert agree("within_2x", model, kernel)[0] is ok


def test_same_means_equal() -> None:
    assert agree("same", "ENOMEM", "ENOMEM")[0]
    assert not agree("same", "ENOMEM", "EBUSY")[0]
    assert not agree("same", True, False)[0]
    assert not agree("within_2x", "ENOMEM", "ENOMEM")[0]  # not numbers: never "within"


def _fake() -> Run:
    return Run("kernel", None, None, None)  # type: ignore[arg-type]


def test_a_row_takes_the_median_of_the_boots_and_keeps_the_mechanism() -> None:
    values = iter([30.0, 4.0, 10.0, 3.0])  # the three boots, then the model
    fig = Figure("x", lambda run: next(values), xfail="a mechanism")
    case = Case("c", "", {}, (fig,))
    r = row(case, fig, _fake(), [_fake(), _fake(), _fake()])
    assert r.model == 3.0 and r.kernel == 10.0 and r.kernel_runs == (30.0, 4.0, 10.0)
    assert not r.ok and r.verdict == "xfail" and r.ratio == pytest.approx(0.3)
    assert "(boots: 30, 4, 10)" in line(r)
    table = markdown([r])
    assert "xfail [1]" in table and "[1] The model lacks a mechanism." in table
    # without a model run (the model cannot build the case), the row cannot pass
    const = Figure("y", lambda run: 1.0, xfail="a mechanism")
    none = row(case, const, None, [_fake()])
    assert none.model is None and not none.ok and none.verdict == "xfail"


def test_every_case_has_a_distinct_name_and_figures() -> None:
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names) >= 8
    for c in CASES:
        assert c.figures and all(f.check in ("within_2x", "same") for f in c.figures)
        assert c.kernel_scenario().board == "qemu_x86_512m"
        assert c.kernel_scenario().policy == POLICY


def test_devices_that_do_not_clear_go_through_debugfs() -> None:
    sc = next(c for c in CASES if c.name == "latency_debugfs").kernel_scenario()
    assert set(device_paths(sc).values()) == {"debugfs"}
    heap = next(c for c in CASES if c.name == "latency_dma_heap").kernel_scenario()
    assert set(device_paths(heap).values()) == {"dma_heap"}
    program = scenario_program(sc, options={"trace_kmem": "off"})
    assert {d.via for d in program.devices} == {"debugfs"}
    assert program.option("trace_kmem") == "off"


def _model_marks(c: Case) -> list[Any]:
    return [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_model_marks(c)) for c in CASES])
def test_the_model_side_of_every_case_runs(case: Case) -> None:
    """The model runs each case in a fraction of a second and gives every figure (the
    mlock case cannot be written for it yet: its hog has a field the model lacks)."""
    try:
        run = run_model(case)
    except SpecError as err:
        pytest.fail(f"the model cannot run {case.name}: {err}")
    for figure in case.figures:
        figure.get(run)


def test_the_mlock_case_runs_an_mlocked_hog_on_both_sides() -> None:
    case = next(c for c in CASES if c.name == "mlock")
    model = case.model_scenario()
    (hog,) = model.workloads
    assert isinstance(hog, AnonHog) and hog.mlock is True
    assert case.kernel_scenario().workloads[0].model_dump()["mlock"] is True


# --------------------------------------------------------------------------------------------
# the suite (boots)


Both = tuple[Optional[Run], list[Run], Optional[str]]


class Sides:
    """Each case on both backends, run the first time one of its figures asks (the model on
    the board calibrated at the start of the module), and the rows the tests made (printed
    as one table at the end of the module)."""

    def __init__(self, kernel: KernelImage, initramfs: Initramfs, accel: str) -> None:
        self.options = {"kernel": kernel, "initramfs": initramfs, "accel": accel}
        self.board, self.fitted = session_board(kernel, accel)
        self.done: dict[str, Both] = {}
        self.rows: list[Row] = []

    def __call__(self, case: Case) -> Both:
        if case.name not in self.done:
            self.done[case.name] = run_case(case, self.board, **self.options)
        return self.done[case.name]


@pytest.fixture(scope="module")
def sides(guest_kernel: KernelImage, guest_initramfs: Initramfs, accel: str) -> Iterator[Sides]:
    both = Sides(guest_kernel, guest_initramfs, accel)
    print(f"\n{costs_line(both.fitted)}\n{HEADER}")
    yield both
    print("\n" + markdown(both.rows))


def _figure_marks(case: Case, figure: Figure) -> list[Any]:
    reason = figure.xfail or case.xfail
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("case", "figure"),
    [
        pytest.param(c, f, id=f"{c.name}-{f.name}", marks=_figure_marks(c, f))
        for c in CASES
        for f in c.figures
    ],
)
def test_model_and_kernel_agree(sides: Sides, case: Case, figure: Figure) -> None:
    model, kernel, why = sides(case)
    r = row(case, figure, model, kernel)
    sides.rows.append(r)
    print(line(r))
    if model is None:
        pytest.fail(f"{case.name}: the model cannot run it: {why}")
    assert r.ok, (
        f"{case.name}: {figure.name}: model {r.model!r}, kernel {r.kernel!r} "
        f"(boots {r.kernel_runs or '-'}): {r.why}"
    )
