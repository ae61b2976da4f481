"""Parsing and formatting of human units (cmadev.units)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from cmadev.errors import SpecError
from cmadev.units import (
    Duration,
    GiB,
    KiB,
    MiB,
    PerSecond,
    Rate,
    Size,
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_per_second,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (4096, 4096),
        (0, 0),
        ("4096", 4096),
        ("12MiB", 12 * MiB),
        ("4 KiB", 4 * KiB),
        ("1GiB", GiB),
        ("1.5GiB", 3 * GiB // 2),
        ("256M", 256 * MiB),
        ("256m", 256 * MiB),
        ("10MB", 10 * MiB),
        ("1kb", KiB),
        ("2T", 2 * 1024 * GiB),
        ("7 B", 7),
        ("  3 mib ", 3 * MiB),
        (".5KiB", 512),
        (8192.0, 8192),
    ],
)
def test_parse_size_accepts(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-1MiB", "must not be negative"),
        (-4096, "must not be negative"),
        ("1.3KiB", "not a whole number"),
        ("12 parsecs", "unknown unit 'parsecs'"),
        ("12MiB/s", "unknown unit"),
        (True, "boolean"),
        (None, "NoneType"),
        ("", "expected"),
        (float("inf"), "finite"),
    ],
)
def test_parse_size_rejects_with_reason_and_forms(text: object, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_size(text)
    message = str(info.value)
    assert reason in message
    assert repr(text) in message  # says what was given
    assert "MiB" in message and "e.g." in message  # and which forms are accepted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (100, 100),
        ("100ns", 100),
        ("2us", 2_000),
        ("2\u00b5s", 2_000),
        ("2\u03bcs", 2_000),
        ("150ms", 150_000_000),
        ("5s", 5_000_000_000),
        ("1.5s", 1_500_000_000),
        ("2min", 120_000_000_000),
        ("1h", 3_600_000_000_000),
        ("37.2 ms", 37_200_000),
    ],
)
def test_parse_duration_accepts(text: object, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-5ms", "must not be negative"),
        ("1.5ns", "not a whole number"),
        ("3 fortnights", "unknown unit"),
        ("5m", "unknown unit 'm'"),  # minutes are "min": "m" would be ambiguous
        ("12MiB", "unknown unit"),
    ],
)
def test_parse_duration_rejects(text: str, reason: str) -> None:
    with pytest.raises(SpecError, match="invalid duration") as info:
        parse_duration(text)
    assert reason in str(info.value)
    assert "150ms" in str(info.value)


def test_parse_rate() -> None:
    assert parse_rate("200MiB/s") == 200 * MiB
    assert parse_rate("10MB/s") == 10 * MiB
    assert parse_rate("60 MiB per min") == MiB
    assert parse_rate("1KiB/ms") == 1000 * KiB
    assert parse_rate(5000) == 5000
    assert parse_rate("5000") == 5000
    with pytest.raises(SpecError, match="missing the time unit"):
        parse_rate("200MiB")
    with pytest.raises(SpecError, match="unknown time unit 'fortnight'"):
        parse_rate("1MiB/fortnight")
    with pytest.raises(SpecError, match="must not be negative"):
        parse_rate("-1MiB/s")


def test_parse_per_second() -> None:
    assert parse_per_second("50/s") == 50.0
    assert parse_per_second("50Hz") == 50.0
    assert parse_per_second("2kHz") == 2000.0
    assert parse_per_second("3000/min") == 50.0
    assert parse_per_second("1 per ms") == 1000.0
    assert parse_per_second(0.5) == 0.5
    with pytest.raises(SpecError, match="invalid rate"):
        parse_per_second("lots/s")


def test_formatting() -> None:
    assert format_size(12 * MiB) == "12 MiB"
    assert format_size(3_110_400) == "2.97 MiB"
    assert format_size(3 * GiB // 2) == "1.5 GiB"
    assert format_size(100) == "100 B"
    assert format_size(0) == "0 B"
    assert format_size(-4096) == "-4 KiB"
    assert format_duration(37_200_000) == "37.2 ms"
    assert format_duration(1_500) == "1.5 us"
    assert format_duration(5_000_000_000) == "5 s"
    assert format_duration(999) == "999 ns"
    assert format_rate(200 * MiB) == "200 MiB/s"


def test_formatting_round_trips_through_parsing() -> None:
    for value in (12 * MiB, 3 * GiB // 2, 4 * KiB, 100):
        assert parse_size(format_size(value)) == value
    for value in (37_200_000, 1_500, 5_000_000_000, 999):
        assert parse_duration(format_duration(value)) == value


class _Example(BaseModel):
    size: Size
    wait: Duration
    rate: Rate = 0
    events: PerSecond = 0.0


def test_annotated_types_in_a_model() -> None:
    m = _Example(size="12MiB", wait="150ms", rate="1MiB/s", events="50Hz")
    assert (m.size, m.wait, m.rate, m.events) == (12 * MiB, 150_000_000, MiB, 50.0)
    # Serialised back to the base unit, not to a string.
    assert m.model_dump() == {
        "size": 12 * MiB,
        "wait": 150_000_000,
        "rate": MiB,
        "events": 50.0,
    }
    with pytest.raises(ValidationError) as info:
        _Example(size="12 parsecs", wait="1s")
    (error,) = info.value.errors()
    assert error["loc"] == ("size",)
    assert "unknown unit 'parsecs'" in error["msg"]


def test_json_schema_shows_number_or_string() -> None:
    schema = _Example.model_json_schema()["properties"]
    size_types = {variant["type"] for variant in schema["size"]["anyOf"]}
    assert size_types == {"integer", "string"}
    assert "12MiB" in schema["size"]["examples"]
    assert "150ms" in schema["wait"]["examples"]
    assert {v["type"] for v in schema["events"]["anyOf"]} == {"number", "string"}
    # Serialisation schema: the plain number.
    out = _Example.model_json_schema(mode="serialization")["properties"]
    assert out["size"]["type"] == "integer"
