"""The wheel is one abi3 wheel for every CPython from 3.10, installs without a Rust toolchain,
and carries the shipped boards, devices and scenarios (package data).

Slow (a release build and a fresh virtual environment, about a minute), so it runs only with
``CMADEV_WHEEL_TEST=1``::

    CMADEV_WHEEL_TEST=1 python3 -m pytest tests/test_wheel.py -v

The check runs in the fresh environment, away from the checkout, so a file that is only in the
repository and not in the wheel makes it fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Run by the venv's Python: load every shipped declaration, run a short scenario, and check
# that the pytest plugin is registered.
CHECK = """
import json, sys
from importlib.metadata import entry_points

import cmadev
from cmadev.specs.catalog import list_boards, list_devices, load_board, load_device
from cmadev.specs.catalog import list_scenarios, list_sweeps
from cmadev.specs.scenario import load_scenario
from cmadev.specs.sweep import load_sweep

assert "site-packages" in cmadev.__file__, cmadev.__file__
boards = {name: load_board(name).ram for name in list_boards()}
devices = {name: load_device(name).kind for name in list_devices()}
scenarios = {name: load_scenario(name).duration for name in list_scenarios()}
sweeps = {name: load_sweep(name).runs for name in list_sweeps()}
short = load_scenario("tv_evening").with_changes(duration="1s", timeline=[])
result = short.run(policy="legacy", seed=1)
plugins = sorted(ep.value for ep in entry_points(group="pytest11"))
print(json.dumps({"file": cmadev.__file__, "boards": sorted(boards), "devices": sorted(devices),
                  "scenarios": sorted(scenarios), "sweeps": sorted(sweeps),
                  "end_ns": result.end_ns, "plugins": plugins,
                  "version": cmadev.__version__}))
"""


def _run(
    *args: str | os.PathLike[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    proc = subprocess.run(
        [os.fspath(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CMADEV_WHEEL_TEST") != "1", reason="set CMADEV_WHEEL_TEST=1 (builds a wheel)"
)
def test_wheel_installs_and_loads_shipped_files(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "maturin", "build", "--release", "-o", wheels, cwd=REPO)
    [wheel] = wheels.glob("cmadev-*.whl")
    assert "-cp310-abi3-" in wheel.name, f"{wheel.name} is not an abi3 wheel for Python >= 3.10"
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    # No Rust toolchain on the PATH: installing the wheel must not need one.
    no_rust = {**os.environ, "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "CARGO": "/nonexistent"}
    _run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "-q",
        "--only-binary",
        "cmadev",
        wheel,
        env=no_rust,
    )
    out = json.loads(_run(venv / "bin" / "python", "-c", CHECK, cwd=tmp_path))
    shipped = REPO / "python" / "cmadev" / "devices"
    assert out["boards"] == sorted(p.stem for p in (shipped / "boards").glob("*.json"))
    assert out["devices"] == sorted(p.stem for p in shipped.glob("*.json"))
    assert out["scenarios"] == sorted(p.stem for p in (shipped / "scenarios").glob("*.json"))
    assert "tv_evening" in out["scenarios"]
    assert out["sweeps"] == sorted(p.stem for p in (shipped / "sweeps").glob("*.toml"))
    assert out["sweeps"], "no shipped sweep in the wheel"
    assert out["end_ns"] == 1_000_000_000
    assert "cmadev.pytest_plugin" in out["plugins"]
    assert out["version"] == wheel.name.split("-")[1]
    assert str(venv) in out["file"]
