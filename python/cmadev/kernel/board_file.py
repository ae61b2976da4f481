"""A calibrated board and its file: :func:`calibrated_board` puts a :class:`CostFit` (from
:mod:`cmadev.kernel.calibrate`) into a board, :func:`write_board` writes a board as a board
file, with sizes and durations in their units."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

from cmadev.kernel.calibrate import CALIBRATED_MARK, CostFit
from cmadev.specs.base import validate_model
from cmadev.specs.board import Board


def calibrated_board(
    board: Board,
    costs: CostFit,
    *,
    name: Optional[str] = None,
    as_guest: bool = False,
    description: Optional[str] = None,
) -> Board:
    """``board`` with the fitted cost model (fields not measured keep the board's values)
    and a description that says where each figure came from. ``as_guest``: the board
    describes the QEMU guest itself, so its ``reserved`` memory and ``min_free_kbytes`` are
    the guest kernel's too."""
    data = board.model_dump()
    data["cost"] = costs.cost_model(board.cost).model_dump()
    if name:
        data["name"] = name
    if as_guest:
        if costs.reserved is not None:
            data["reserved"] = costs.reserved
        if costs.min_free_kbytes is not None:
            data["min_free_kbytes"] = costs.min_free_kbytes
    head = board.description if description is None else description
    head = head.split(CALIBRATED_MARK)[0].strip()  # a board calibrated before: the new figures
    data["description"] = f"{head} {costs.describe()}".strip()
    return validate_model(Board, data, source="the calibrated board")


def board_document(board: Board) -> dict[str, Any]:
    """A board as a board file holds it: sizes and durations with their units."""
    data = board.model_dump()
    doc: dict[str, Any] = {"name": data["name"], "description": data["description"]}
    doc["ram"] = _size(data["ram"])
    doc["cpus"] = data["cpus"]
    doc["reserved"] = _size(data["reserved"])
    for key in ("pageblock_order", "min_free_kbytes", "watermark_scale_factor"):
        doc[key] = data[key]
    doc["cma_areas"] = [
        {"name": a["name"], "size": _size(a["size"]), "order_per_bit": a["order_per_bit"]}
        for a in data["cma_areas"]
    ]
    doc["swap"] = _size(data["swap"])
    doc["dirty_expire"] = f"{data['dirty_expire']}ns"
    doc["dirty_ratio"] = data["dirty_ratio"]
    doc["cost"] = {k: f"{v}ns" for k, v in data["cost"].items()}
    return doc


def _size(nbytes: int) -> Union[str, int]:
    for unit, mult in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes and nbytes % mult == 0:
            return f"{nbytes // mult}{unit}"
    return nbytes


def write_board(board: Board, path: Union[str, os.PathLike[str]]) -> Path:
    """Write ``board`` as a JSON board file (loadable with :func:`cmadev.load_board`)."""
    out = Path(path)
    out.write_text(json.dumps(board_document(board), indent=2) + "\n")
    return out


__all__ = ["board_document", "calibrated_board", "write_board"]
