"""The README shows code that runs: its pytest example is the shipped example suite's own."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _section_code(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, f"README section {title!r} has no python block"
    return blocks[0]


def test_the_readme_pytest_example_is_the_example_suite() -> None:
    example = (REPO / "tests" / "examples" / "test_camera_startup.py").read_text(encoding="utf-8")
    shown = _section_code("A pytest device scenario")
    assert shown in example, "README's snippet differs from tests/examples/test_camera_startup.py"


def test_the_readme_names_no_document_outside_the_repository() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for phrase in ("SPEC", "project brief", "../shared"):
        assert phrase not in text, f"README cites {phrase!r}, which is not in the repository"
