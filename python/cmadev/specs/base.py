"""What every specification shares: the frozen base model, names, and reading files.

Every model is a frozen pydantic v2 model with ``extra="forbid"``: a description cannot change
under a running machine, and a misspelt field in a device file is an error rather than a
silently ignored line.

:func:`load_model` reads a ``.json`` or ``.toml`` file and turns pydantic's ``ValidationError``
into a :class:`~cmadev.errors.SpecError` naming the file, each bad field and the fix;
:func:`validate_model` does the same for data already in memory.

The modules of this floor have no ``from __future__ import annotations``: pydantic evaluates
the annotations at run time; they use ``Optional`` rather than ``X | None``, as written when
the package still ran on Python 3.9.
"""

import difflib
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar, Union, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, WithJsonSchema
from typing_extensions import Self

from cmadev.errors import SpecError
from cmadev.units import PAGE_SIZE, format_size, round_up

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
_NAME_RE = re.compile(NAME_PATTERN)
_NAME_MAX = 64


class Spec(BaseModel):
    """The base of every cmadev specification: frozen, and no unknown fields.

    Building one directly (``AnonHog(size="15TiB")``) raises :class:`SpecError` naming each
    bad field, as loading a file does, never pydantic's own ``ValidationError``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise SpecError(describe_validation_error(type(self), err)) from None

    # pydantic routes validation through a model's own __init__ when it overrides one (so a
    # nested model's errors would arrive wrapped in ours); this marks it as the base one, so
    # only a direct call comes here. (pydantic's BaseModel.__init__ carries the same mark.)
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        """pydantic's ``model_validate``, raising :class:`SpecError` (see :func:`validate_model`,
        which also names the file)."""
        try:
            return super().model_validate(obj, **options)
        except ValidationError as err:
            raise SpecError(describe_validation_error(cls, err)) from None


def check_name(value: str) -> str:
    """A name that becomes a kernel name (``/sys/kernel/mm/cma/<name>``, a task's ``comm`` in
    trace lines): letters, digits, ``_``, ``.`` and ``-`` only, at most 64 characters. So a
    name can never forge a trace line or a path."""
    if not _NAME_RE.match(value) or len(value) > _NAME_MAX:
        fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", value).strip("_")[:_NAME_MAX] or "name0"
        raise ValueError(
            f"{value!r} may hold only letters, digits, '_', '.' and '-', at most {_NAME_MAX} "
            f"characters (it becomes a kernel name such as /sys/kernel/mm/cma/<name> and a "
            f"task name in trace lines); try {fixed!r}"
        )
    return value


Name = Annotated[
    str,
    AfterValidator(check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "maxLength": _NAME_MAX}),
]
"""A name that becomes a kernel name (see :func:`check_name`)."""


def check_pages(value: int, what: str) -> int:
    """``value`` (bytes) must be a whole number of 4 KiB pages."""
    if value % PAGE_SIZE:
        up = round_up(value, PAGE_SIZE)
        raise ValueError(
            f"{what} must be a whole number of 4 KiB pages; got {value} bytes "
            f"({format_size(value)}): use {up} ({format_size(up)})"
        )
    return value


M = TypeVar("M", bound=BaseModel)


def validate_model(cls: type[M], data: Any, source: str = "", context: Any = None) -> M:
    """``cls.model_validate(data)``, raising :class:`SpecError` with a readable message that
    names ``source`` (the file) and each bad field."""
    try:
        return cls.__pydantic_validator__.validate_python(data, context=context)  # type: ignore[no-any-return]
    except ValidationError as err:
        raise SpecError(describe_validation_error(cls, err, source)) from None
    except RecursionError:
        raise SpecError(
            f"{source or cls.__name__}: the data is nested too deeply to be a {cls.__name__}"
        ) from None


def load_model(cls: type[M], path: Any) -> M:
    """Read a ``.json`` or ``.toml`` file into ``cls``; any problem is a :class:`SpecError`.

    ``path`` may also be an ``importlib.resources`` Traversable (a file inside the package).
    TOML needs Python 3.11+ (``tomllib``) or the ``tomli`` package.
    """
    source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    return validate_model(cls, read_document(path), source=source)


SUFFIXES = (".json", ".toml")
"""The file types a specification may be written in."""


def is_path(ref: str) -> bool:
    """Whether ``ref`` names a file (rather than a shipped board, device or scenario)."""
    return ref.endswith(SUFFIXES) or "/" in ref or os.sep in ref


def read_document(path: Any) -> dict[str, Any]:
    """The top-level table of a ``.json`` or ``.toml`` file, as a dict."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    source = str(path)
    name = str(getattr(path, "name", source)).lower()
    if not name.endswith(SUFFIXES):
        raise SpecError(f"{source}: cannot read this file type; use a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{source}: cannot read the file: {err}") from None
    data = _loads_json(text, source) if name.endswith(".json") else _loads_toml(text, source)
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the file must hold one object (a table of fields)")
    return data


def _loads_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"{source}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from None
    except RecursionError:
        raise SpecError(f"{source}: the JSON is nested too deeply to be a description") from None


def _loads_toml(text: str, source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML: {err}") from None
    except RecursionError:
        raise SpecError(f"{source}: the TOML is nested too deeply to be a description") from None


# --------------------------------------------------------------------------------------------
# Explaining a validation error


def _format_loc(loc: tuple[Union[int, str], ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _model_at(cls: type[BaseModel], loc: tuple[Union[int, str], ...]) -> Optional[type[BaseModel]]:
    """The model class whose fields live at ``loc`` (None if there is none)."""
    tp: Any = cls
    for part in loc:
        args = [a for a in get_args(tp) if a is not Ellipsis and a is not type(None)]
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif args:
            tp = args[-1]  # the element of a tuple or list, the value of a dict
        else:
            return None
    args = [a for a in get_args(tp) if a is not type(None)]
    if len(args) == 1:
        tp = args[0]  # Optional[Model]
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _explain(cls: type[BaseModel], error: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    parent = _model_at(cls, loc[:-1]) if loc else None
    if kind == "extra_forbidden" and parent is not None:
        fields = list(parent.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown field; {hint}{parent.__name__} has: {', '.join(fields)}"
    if kind == "missing" and parent is not None:
        field = parent.model_fields.get(str(loc[-1]))
        about = f" ({field.description})" if field is not None and field.description else ""
        return f"required field is missing: add it{about}"
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    got = repr(error.get("input"))
    if len(got) > 60:
        got = got[:57] + "..."
    return f"{message}; got {got}"


_TAG_RE = re.compile(r"^[a-z]+(-[a-z]+)*\[.*\]$")
_TYPE_MISMATCHES = frozenset(
    {"string_type", "int_type", "float_type", "bool_type", "dict_type", "model_type"}
)


def _is_union_tag(part: Union[int, str]) -> bool:
    """Whether a location part names the branch of a union pydantic tried ('str',
    'function-after[_check(), Board]', 'Board') rather than a field."""
    if not isinstance(part, str):
        return False
    return (
        bool(_TAG_RE.match(part))
        or part in {"str", "int", "float", "bool"}
        or (part[:1].isupper() and part in _spec_names())
    )


def _spec_names() -> set[str]:
    names: set[str] = set()
    todo: list[type] = [Spec]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _without_union_noise(problems: list[Any]) -> list[Any]:
    """The problems minus a union branch's "wrong type" when another branch of the same
    union said what is really wrong (an inline board that is a table, not a name, fails the
    ``str`` branch too: that says nothing)."""

    def branch_of(problem: Any) -> tuple[tuple[Any, ...], Any]:
        loc = tuple(problem["loc"])
        for i, part in enumerate(loc):
            if _is_union_tag(part):
                return loc[:i], part
        return loc, None

    def other_branch_spoke(prefix: tuple[Any, ...], tag: Any) -> bool:
        return any(
            branch_of(q)[0] == prefix and branch_of(q)[1] not in (None, tag) for q in problems
        )

    kept = []
    for problem in problems:
        prefix, tag = branch_of(problem)
        noise = tag is not None and problem["type"] in _TYPE_MISMATCHES
        if not (noise and other_branch_spoke(prefix, tag)):
            kept.append(problem)
    for problem in kept:
        problem["loc"] = tuple(part for part in problem["loc"] if not _is_union_tag(part))
    return kept


def describe_validation_error(cls: type[BaseModel], err: ValidationError, source: str = "") -> str:
    """A message naming the source, each bad field (as a path) and what to do about it."""
    problems = _without_union_noise(err.errors(include_url=False))
    where = f"{source}: " if source else ""
    plural = "s" if len(problems) != 1 else ""
    lines = [f"{where}invalid {cls.__name__} ({len(problems)} problem{plural})"]
    for problem in problems:
        path = _format_loc(tuple(problem["loc"])) or "(top level)"
        lines.append(f"  {path}: {_explain(cls, problem)}")
    return "\n".join(lines)


__all__ = [
    "NAME_PATTERN",
    "SUFFIXES",
    "Name",
    "Spec",
    "check_name",
    "check_pages",
    "describe_validation_error",
    "is_path",
    "load_model",
    "read_document",
    "validate_model",
]
