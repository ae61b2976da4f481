"""Example suite: does the camera start in time on a busy board, under each policy?

Written as a product team would write it; copy this folder into your own tests and change
the board, the device and the load. Installing cmadev registers its pytest plugin, which
provides the fixtures used here:

- ``cmadev_machine(board, policy=..., seed=...)`` builds a machine (and checks the engine's
  invariants when the test ends);
- ``@pytest.mark.cmadev_policies(...)`` runs a test once per policy, passed as ``policy``
  (no names: the five placements); ``pytest --cmadev-policy mainline-today`` runs them all
  under one policy instead;
- ``cmadev_scenario(path, **changes)`` loads a scenario file;

and ``cmadev.testing`` has assertions whose failure messages say how late a request was and
which pages, held by whom, were in its way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cmadev import AnonHog, DirectIO, LongtermPinner, Machine, PageCacheReader
from cmadev.testing import (
    assert_allocated,
    assert_blocked_by,
    assert_meets_deadline,
    assert_no_blockers,
)

HERE = Path(__file__).parent
BOARD = "camera_512m"  # 512 MiB, a 128 MiB "camera" CMA area


def busy_board(make: Callable[..., Machine], policy: str) -> Machine:
    """The board after six seconds of load: an app heap and a gallery reading photos fill
    memory, direct I/O pins pages for a few milliseconds at a time, and from 4 s an
    RDMA-like driver holds 32 MiB pinned with FOLL_LONGTERM."""
    m = make(BOARD, policy=policy, seed=1)
    m.start(AnonHog(name="app", size="300MiB", growth="300MiB/s"))
    m.start(PageCacheReader(name="gallery", working_set="200MiB", rate="24MiB/s"))
    m.start(DirectIO(name="dio", buffer="16MiB", iops="200/s", io_size="64KiB", pin_time="5ms"))
    m.start(LongtermPinner(name="rdma", size="32MiB", start="4s"))
    m.run_for("6s")
    return m


@pytest.mark.cmadev_policies
def test_camera_starts_in_time_under_load(cmadev_machine: Any, policy: str) -> None:
    m = busy_board(cmadev_machine, policy)
    camera = m.attach("camera_sensor")
    request = camera.start("4k")  # 4 x 11.9 MiB, 200 ms deadline
    m.run_until(request)
    assert_allocated(request)
    assert_meets_deadline(request)


def test_longterm_pins_sit_in_the_cameras_way_without_the_fix(cmadev_machine: Any) -> None:
    # Balanced placement puts the pinner's pages in CMA once memory is full; nothing moves
    # them out before the pin, so the camera's allocation has to walk around them.
    m = busy_board(cmadev_machine, "balanced")
    request = m.attach("camera_sensor").start("4k")
    m.run_until(request)
    assert_blocked_by(request, "rdma")
    assert request.busy_retries > 0


def test_migrating_before_longterm_pins_keeps_them_out(cmadev_machine: Any) -> None:
    # mainline-today includes migrate_on_longterm_pin (check_and_migrate_cma_pages).
    m = busy_board(cmadev_machine, "mainline-today")
    request = m.attach("camera_sensor").start("4k")
    m.run_until(request)
    assert_no_blockers(request)
    assert_meets_deadline(request)


@pytest.mark.cmadev_policies("legacy", "balanced", "mainline-today", "gcma")
def test_every_call_starts_the_camera_in_time(cmadev_scenario: Any, policy: str) -> None:
    scenario = cmadev_scenario(HERE / "camera_calls.json")
    result = scenario.run(policy=policy)
    starts = result.requests_of("camera")
    assert len(starts) == 5
    for request in starts:
        assert_meets_deadline(request)
