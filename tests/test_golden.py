"""Golden results for the shipped scenario: the device requests and key counters of
``tv_evening`` under each placement, checked in as text. Any change to the engine's behaviour
shows up here as a diff to read; when the change is intended, regenerate the files with
``CMADEV_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and commit them with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cmadev.specs.scenario import load_scenario

GOLDEN = Path(__file__).parent / "golden"
POLICIES = ("legacy", "balanced", "zone_cma", "gcma", "mainline-today")
COUNTERS = (
    "cma_alloc_success",
    "cma_alloc_fail",
    "pgmigrate_success",
    "pgscan_kswapd",
    "pgsteal_kswapd",
    "workingset_refault_file",
    "allocstall_normal",
)


def summary(policy: str) -> str:
    """The requests (one line each) and the counters of one seeded run, as text."""
    result = load_scenario("tv_evening").run(policy=policy, seed=1).to_dict()
    lines = [f"# tv_evening under {policy}, seed 1"]
    for r in result["requests"]:
        lines.append(
            f"{r['issued_ns']:>12} {r['device']:<8} {r['action']:<17} {r['mode']:<6} "
            f"{r['outcome']:<7} latency={r['latency_ns']} migrated={r['pages_migrated']} "
            f"retries={r['busy_retries']}"
        )
    lines += [f"{name} {result['counters'][name]}" for name in COUNTERS]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("policy", POLICIES)
def test_tv_evening_matches_its_golden_summary(policy: str) -> None:
    path = GOLDEN / f"tv_evening_{policy}.txt"
    actual = summary(policy)
    if os.environ.get("CMADEV_UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert path.exists(), f"{path} is missing: run with CMADEV_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(), (
        f"tv_evening under {policy} no longer matches {path.name}; if the engine change is "
        f"intended, regenerate with CMADEV_UPDATE_GOLDEN=1 and commit the new file"
    )
