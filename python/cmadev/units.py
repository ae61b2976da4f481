"""Human units for sizes, durations and rates.

Every size, duration and rate in a cmadev description may be written for people
(``"12MiB"``, ``"150ms"``, ``"200MiB/s"``) or as a plain number in the base unit (bytes,
nanoseconds, bytes per second). The parsers below turn either form into the base unit; the
``Annotated`` types (:data:`Size`, :data:`Duration`, :data:`Rate`, :data:`PerSecond`) plug
them into pydantic models, and models serialise back to the plain number.

Size suffixes are binary whatever their spelling, as on the kernel command line
(``cma=256M`` is 256 MiB): ``K``, ``KB`` and ``KiB`` all mean 1024 bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from cmadev.errors import SpecError

PAGE_SIZE = 4096
"""Bytes in a page frame (4 KiB, as on x86-64 and most arm64 kernels)."""

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


MAX_DURATION = 2**63 - 1
"""The longest duration: about 292 years in nanoseconds (a signed 64-bit count, as the
kernel's ``ktime_t``); the engine's clock is 64-bit."""

MAX_SIZE = 2**53
"""The largest size: 8 PiB (every size is exact in a double, and a board's memory and its
workloads are bounded far below it by the board itself)."""


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (a positive integer)."""
    return -(-value // multiple) * multiple


def pages_for(nbytes: int) -> int:
    """Whole 4 KiB pages holding ``nbytes``: the kernel's ``PAGE_ALIGN(n) >> PAGE_SHIFT``
    (a partial page occupies a page)."""
    return -(-nbytes // PAGE_SIZE)


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "k": KiB,
    "kb": KiB,
    "kib": KiB,
    "m": MiB,
    "mb": MiB,
    "mib": MiB,
    "g": GiB,
    "gb": GiB,
    "gib": GiB,
    "t": TiB,
    "tb": TiB,
    "tib": TiB,
}

_DURATION_UNITS = {
    "": 1,
    "ns": 1,
    "us": NS_PER_US,
    "\u00b5s": NS_PER_US,  # MICRO SIGN
    "\u03bcs": NS_PER_US,  # GREEK SMALL LETTER MU
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "sec": NS_PER_S,
    "min": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}

# The time unit after "/" or "per" in a rate: "200MiB/s", "50 per min".
_PER_UNITS = {
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "sec": NS_PER_S,
    "second": NS_PER_S,
    "min": 60 * NS_PER_S,
    "minute": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "hour": 3600 * NS_PER_S,
}

_QUANTITY = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[^\s0-9.]*)\s*$")
_RATE = re.compile(r"^(?P<amount>.*?)\s*(?:/|\s+per\s+)\s*(?P<per>[A-Za-z]+)\s*$", re.IGNORECASE)

SIZE_FORMS = (
    "an integer number of bytes (4096) or a number with a unit: B, KiB, MiB, GiB, TiB "
    "(K/M/G/T and KB/MB/GB/TB also mean binary multiples, as in the kernel's cma=256M), "
    'case-insensitive, e.g. "12MiB", "4 KiB", "1.5GiB", "256M"'
)
DURATION_FORMS = (
    "an integer number of nanoseconds (150000000) or a number with a unit: "
    'ns, us (or \u00b5s), ms, s, min, h, e.g. "150ms", "2us", "1.5s", "2min"'
)
RATE_FORMS = (
    'an integer number of bytes per second or a size per time unit, e.g. "200MiB/s", '
    '"10MB/s" (binary, like sizes), "1 GiB per min"'
)
PER_SECOND_FORMS = (
    'a number of events per second or a count per time unit, e.g. 50, "50/s", "50Hz", '
    '"2kHz", "3000/min", "1 per ms"'
)


def _fail(kind: str, value: object, forms: str, why: str = "") -> SpecError:
    reason = f" ({why})" if why else ""
    return SpecError(f"invalid {kind} {value!r}{reason}: expected {forms}")


def _quantity(
    value: object, kind: str, units: dict[str, int], forms: str, shown: object = None
) -> Decimal:
    """A non-negative amount in the base unit of ``units``, as an exact Decimal.

    Errors quote ``shown`` (the whole input, when ``value`` is only a part of it).
    """
    if shown is None:
        shown = value
    if isinstance(value, bool):
        raise _fail(kind, shown, forms, "a boolean is not a number")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _fail(kind, shown, forms, "not a finite number")
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise _fail(kind, shown, forms, "must not be negative")
        match = _QUANTITY.match(text)
        if match is None:
            raise _fail(kind, shown, forms)
        unit = match["unit"].lower()
        if unit not in units:
            raise _fail(kind, shown, forms, f"unknown unit {match['unit']!r}")
        try:
            amount = Decimal(match["num"]) * units[unit]
        except InvalidOperation as err:  # pragma: no cover - the regex admits only numbers
            raise _fail(kind, shown, forms) from err
    else:
        raise _fail(kind, shown, forms, f"a {type(value).__name__} is neither a number nor text")
    if amount < 0:
        raise _fail(kind, shown, forms, "must not be negative")
    return amount


def _whole(amount: Decimal, kind: str, value: object, forms: str, base: str) -> int:
    if amount != amount.to_integral_value():
        raise _fail(
            kind, value, forms, f"that is {amount.normalize():f} {base}, not a whole number"
        )
    return int(amount)


def parse_size(value: object) -> int:
    """Bytes from ``4096``, ``"12MiB"``, ``"4 KiB"``, ``"1.5GiB"`` or ``"256M"``.

    Raises :class:`~cmadev.errors.SpecError` for anything else, including negative sizes and
    fractions of a byte.
    """
    amount = _quantity(value, "size", _SIZE_UNITS, SIZE_FORMS)
    if amount > MAX_SIZE:
        raise _fail("size", value, SIZE_FORMS, "above 8 PiB, the largest size")
    return _whole(amount, "size", value, SIZE_FORMS, "bytes")


def parse_duration(value: object) -> int:
    """Nanoseconds from ``150000000``, ``"150ms"``, ``"2us"``, ``"1.5s"`` or ``"2min"``.

    A bare number, or a string without a unit, is nanoseconds. Raises
    :class:`~cmadev.errors.SpecError` for anything else, including negative durations and
    fractions of a nanosecond.
    """
    amount = _quantity(value, "duration", _DURATION_UNITS, DURATION_FORMS)
    if amount > MAX_DURATION:
        raise _fail(
            "duration", value, DURATION_FORMS, "longer than 292 years (2^63 ns), the longest"
        )
    return _whole(amount, "duration", value, DURATION_FORMS, "ns")


def _split_rate(value: object, kind: str, forms: str) -> tuple[object, int]:
    """The amount part of a rate and the length of its time unit in ns.

    A bare number (or a string holding only a number) is per second; a string with a unit
    must say per what ("200MiB/s"), so that a size is never taken for a rate by mistake.
    """
    if not isinstance(value, str):
        return value, NS_PER_S
    match = _RATE.match(value.strip())
    if match is None:
        bare = _QUANTITY.match(value.strip())
        if bare is None or bare["unit"] == "":
            return value, NS_PER_S  # a plain number, or nonsense that _quantity rejects
        raise _fail(kind, value, forms, "missing the time unit, e.g. '/s'")
    per = match["per"].lower()
    if per not in _PER_UNITS:
        raise _fail(kind, value, forms, f"unknown time unit {match['per']!r}")
    return match["amount"], _PER_UNITS[per]


def parse_rate(value: object) -> int:
    """Bytes per second from ``209715200``, ``"200MiB/s"``, ``"10MB/s"`` or ``"1GiB per min"``.

    The result is rounded to a whole number of bytes per second.
    """
    amount, per_ns = _split_rate(value, "rate", RATE_FORMS)
    size = _quantity(amount, "rate", _SIZE_UNITS, RATE_FORMS, shown=value)
    return int((size * NS_PER_S / per_ns).to_integral_value())


def parse_per_second(value: object) -> float:
    """Events per second from ``50``, ``"50/s"``, ``"50Hz"``, ``"2kHz"``, ``"3000/min"``."""
    if isinstance(value, str) and value.strip().lower().endswith("hz"):
        number = value.strip()[:-2]
        scale = 1
        if number.lower().endswith("k"):
            scale, number = 1000, number[:-1]
        count = _quantity(number, "rate", {"": 1}, PER_SECOND_FORMS, shown=value)
        return float(count * scale)
    amount, per_ns = _split_rate(value, "rate", PER_SECOND_FORMS)
    count = _quantity(amount, "rate", {"": 1}, PER_SECOND_FORMS, shown=value)
    return float(count * NS_PER_S / per_ns)


def _short(x: float) -> str:
    """Three significant digits at most, without trailing zeros: 12, 2.97, 37.2, 512."""
    digits = 2 if x < 10 else 1 if x < 100 else 0
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_size(nbytes: float) -> str:
    """``12582912`` -> ``"12 MiB"``; ``3110400`` -> ``"2.97 MiB"``; ``100`` -> ``"100 B"``."""
    sign = "-" if nbytes < 0 else ""
    n = abs(nbytes)
    for unit, mult in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= mult:
            return f"{sign}{_short(n / mult)} {unit}"
    return f"{sign}{_short(n)} B"


def format_duration(ns: float) -> str:
    """``37200000`` -> ``"37.2 ms"``; ``1500`` -> ``"1.5 us"``; ``5000000000`` -> ``"5 s"``."""
    sign = "-" if ns < 0 else ""
    n = abs(ns)
    for unit, mult in (("s", NS_PER_S), ("ms", NS_PER_MS), ("us", NS_PER_US)):
        if n >= mult:
            return f"{sign}{_short(n / mult)} {unit}"
    return f"{sign}{_short(n)} ns"


def format_rate(bytes_per_second: float) -> str:
    """``209715200`` -> ``"200 MiB/s"``."""
    return format_size(bytes_per_second) + "/s"


def _schema(base: str, forms: str, examples: list[int | str]) -> WithJsonSchema:
    """JSON schema of a unit type: a number in the base unit, or a string with a unit."""
    number = "number" if base == "events per second" else "integer"
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": number, "minimum": 0, "description": f"{base}"},
                {"type": "string", "description": forms},
            ],
            "examples": examples,
        },
        mode="validation",
    )


Size = Annotated[
    int, BeforeValidator(parse_size), _schema("bytes", SIZE_FORMS, ["12MiB", "4 KiB", 4096])
]
"""A size in bytes; accepts ``"12MiB"`` and the other forms of :func:`parse_size`."""

Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    _schema("nanoseconds", DURATION_FORMS, ["150ms", "2us", "1.5s"]),
]
"""A duration in nanoseconds; accepts ``"150ms"`` and the other forms of :func:`parse_duration`."""

Rate = Annotated[
    int,
    BeforeValidator(parse_rate),
    _schema("bytes per second", RATE_FORMS, ["200MiB/s", "10MB/s"]),
]
"""A data rate in bytes per second; accepts ``"200MiB/s"`` (see :func:`parse_rate`)."""

PerSecond = Annotated[
    float,
    BeforeValidator(parse_per_second),
    _schema("events per second", PER_SECOND_FORMS, ["50/s", "50Hz", 10]),
]
"""An event rate per second; accepts ``"50/s"``, ``"50Hz"`` (see :func:`parse_per_second`)."""

__all__ = [
    "DURATION_FORMS",
    "MAX_DURATION",
    "MAX_SIZE",
    "NS_PER_MS",
    "NS_PER_S",
    "NS_PER_US",
    "PAGE_SIZE",
    "PER_SECOND_FORMS",
    "RATE_FORMS",
    "SIZE_FORMS",
    "Duration",
    "GiB",
    "KiB",
    "MiB",
    "PerSecond",
    "Rate",
    "Size",
    "TiB",
    "format_duration",
    "format_rate",
    "format_size",
    "pages_for",
    "parse_duration",
    "parse_per_second",
    "parse_rate",
    "parse_size",
    "round_up",
]
