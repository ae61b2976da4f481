"""The pytest plugin (cmadev.pytest_plugin) and the assertion helpers (cmadev.testing), run
on small test files with pytester, as a user's suite would use them."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A small board with a camera area, and a camera whose start is blocked by pinned pages:
# memory is filled with movable pages, those outside CMA are freed, and "dio" pins one page
# in every 1 MiB of the area.
CONFTEST = """
import pytest

import cmadev
from cmadev import Board

BOARD = Board(name="cam256", ram="256MiB", cma_areas=[{"name": "camera", "size": "64MiB"}])


def fill_and_pin(m, pin_duration=None):
    base = m.cma_areas()[0]["base_pfn"]
    pages = []
    while True:
        try:
            pages.append(m.alloc("browser"))
        except cmadev.OutOfMemoryError:
            break
    for p in pages:
        if p.pfn < base:
            p.free()
        elif (p.pfn - base) % 256 == 5:
            p.pin(holder="dio", duration=pin_duration)


@pytest.fixture
def board():
    return BOARD
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    return pytester


def test_marker_parametrises_policy(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest

        @pytest.mark.cmadev_policies("legacy", "balanced")
        def test_runs_per_policy(policy, cmadev_machine, board):
            m = cmadev_machine(board, policy=policy)
            assert m.policy.placement == policy

        @pytest.mark.cmadev_policies
        def test_all_placements(policy):
            pass
        """
    )
    result = suite.runpytest("-v")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        ["*test_runs_per_policy[[]legacy[]] PASSED*", "*test_all_placements[[]gcma[]] PASSED*"]
    )


def test_option_replaces_the_policies_and_sets_the_default(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest

        @pytest.mark.cmadev_policies("legacy", "balanced")
        def test_marked(policy):
            assert policy in ("gcma", "zone_cma")

        def test_fixture(cmadev_policy):
            assert cmadev_policy in ("gcma", "zone_cma")

        def test_machine_default(cmadev_machine, board):
            assert cmadev_machine(board).policy.placement == "gcma"
        """
    )
    result = suite.runpytest("-v", "--cmadev-policy", "gcma,zone_cma")
    result.assert_outcomes(passed=5)


def test_cmadev_policy_defaults_to_balanced(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_fixture(cmadev_policy):
            assert cmadev_policy == "balanced"
        """
    )
    suite.runpytest().assert_outcomes(passed=1)


def test_scenario_fixture_loads_and_overrides(suite: pytest.Pytester) -> None:
    suite.makefile(
        ".json",
        quiet="""
        {"name": "quiet", "board": "camera_512m", "duration": "5s",
         "devices": [{"name": "cam", "device": "camera_sensor"}],
         "timeline": [{"at": "1s", "device": "cam", "action": "start", "mode": "4k"}]}
        """,
    )
    suite.makepyfile(
        """
        from cmadev.testing import assert_meets_deadline

        def test_scenario(cmadev_scenario):
            sc = cmadev_scenario("quiet.json", duration="2s")
            assert sc.duration == 2_000_000_000
            result = sc.run(policy="legacy")
            [req] = result.requests
            assert_meets_deadline(req)
        """
    )
    suite.runpytest().assert_outcomes(passed=1)


def test_machine_factory_checks_invariants_at_teardown(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_uses_machines(cmadev_machine, board):
            m = cmadev_machine(board, seed=3)
            m.alloc("app")
            m.check_invariants = lambda: (_ for _ in ()).throw(RuntimeError("checked"))
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: checked*"])


def test_deadline_message_says_how_late_and_who_blocked(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        from cmadev.testing import assert_meets_deadline

        from conftest import fill_and_pin

        def test_camera_in_time(cmadev_machine, board):
            m = cmadev_machine(board, policy="vendor-android", seed=1)
            fill_and_pin(m, pin_duration="300ms")
            cam = m.attach("camera_sensor")
            req = cam.start("1080p")
            m.run_until(req)
            assert_meets_deadline(req)
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the request took * ms, over its deadline of 200 ms by *",
            "*camera_sensor start (1080p): missed its deadline*",
            "*buffers: 4 x 2.97 MiB from /dev/dma_heap/camera; * pages migrated, * busy "
            "retries, * waiting for the allocation lock (summed over buffers)*",
            "*blocked by:*",
            "*dio (FOLL_PIN): * pinned pages (anon pages of browser, first pfn 0x*, held "
            "since 0 ns)*",
        ]
    )


def test_allocated_and_blocker_messages(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest
        from cmadev.testing import (
            assert_allocated, assert_blocked_by, assert_meets_deadline, assert_no_blockers,
        )

        from conftest import fill_and_pin

        @pytest.fixture
        def failed(cmadev_machine, board):
            m = cmadev_machine(board, policy="balanced", seed=1)
            fill_and_pin(m)
            req = m.attach("camera_sensor").start("1080p")
            m.run_until(req)
            return req

        def test_allocated(failed):
            assert_allocated(failed)

        def test_no_blockers(failed):
            assert_no_blockers(failed)

        def test_blocked_by_dio(failed):
            assert_blocked_by(failed, "dio")
            assert_blocked_by(failed, "browser")

        def test_blocked_by_someone_else(failed):
            assert_blocked_by(failed, "fsck")

        def test_deadline_of_failed(failed):
            assert_meets_deadline(failed)

        def test_still_running(cmadev_machine, board):
            m = cmadev_machine(board)
            req = m.attach("camera_sensor").start()
            assert_allocated(req)

        def test_bare_cma_request(cmadev_machine, board):
            m = cmadev_machine(board)
            req = m.cma_alloc("camera", 1024, owner="isp")
            m.run_until(req)
            assert_allocated(req)
            assert_no_blockers(req)
            assert_meets_deadline(req, deadline="1us")
        """
    )
    result = suite.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=6)
    out = result.stdout.str()
    assert "AssertionError: 4 of 4 buffers could not be allocated" in out
    assert "buffer 1 of 4 (2.97 MiB, cma_alloc #0) failed: -EBUSY after" in out
    assert "pages blocked the request, held by dio" in out
    assert "'fsck' did not block the request; it was blocked by dio" in out
    assert "the request failed, so it did not meet its 200 ms deadline" in out
    assert "camera_sensor start (1080p) is still running; call machine.run_until(request)" in out
    assert "over its deadline of 1 us" in out
    assert "cma_alloc(camera, 1024 pages) by isp: OK in" in out
