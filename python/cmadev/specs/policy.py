"""Policies: a placement of movable pages in CMA memory plus any set of fixes, the named
presets, and the grammar users write them in.

A policy is written, on the command line and in Python alike, as

- a preset: ``mainline-today``, ``vendor-android``, or a placement alone (``legacy``);
- a placement with fixes joined by ``+``: ``legacy+migrate_on_longterm_pin``, or with the short
  names of a table label, ``balanced+longterm_pin+sb_unmovable`` (so that a label printed in a
  table can be typed back), and the switches ``vendor_retry`` and ``per_area_lock``;
- the path of a policy ``.json``/``.toml`` file;
- ``kernel`` (or ``kernel:PATH`` of a bzImage): not a model policy but a real Linux under
  QEMU, which places pages its own way (``Scenario.run(backend="kernel")``).

:func:`parse_policy` reads any of these; :meth:`Policy.coerce` takes that or a Policy or a
dict.
"""

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Optional, Union, get_args

from pydantic import Field, ValidationInfo, field_serializer, field_validator

from cmadev.errors import SpecError
from cmadev.specs.base import SUFFIXES, Spec, load_model, validate_model
from cmadev.units import NS_PER_MS, Duration, format_duration

Placement = Literal["legacy", "legacy_2014", "balanced", "zone_cma", "movable_zone", "gcma"]
Fix = Literal[
    "migrate_on_longterm_pin",
    "migrate_on_pin",
    "migrate_on_first_dirty",
    "warn_cma_pins",
    "pin_duration_warn",
    "fs_superblock_unmovable",
]
CmaLock = Literal["global", "per_area"]

PLACEMENTS: tuple[str, ...] = get_args(Placement)
FIXES: tuple[str, ...] = get_args(Fix)

_NOTHING_TO_MOVE = (
    "a gcma area holds only discardable cache pages, never a movable page that could be "
    "pinned or dirtied, so there is nothing to migrate out of it"
)
_NOTHING_TO_WARN = "no page of a gcma area can be referenced or pinned, so the warning never fires"
_SB_NEVER_IN_CMA = (
    "superblock buffers come from the block device's page cache (GFP_USER | __GFP_MOVABLE, no "
    "__GFP_HIGHMEM), which this placement never puts in CMA memory, so the fix keeps nothing out"
)

# Why a fix makes no sense with a placement (the engine's PolicyConfig::validate says the same).
_POINTLESS: dict[str, dict[str, str]] = {
    "gcma": {
        "migrate_on_longterm_pin": _NOTHING_TO_MOVE,
        "migrate_on_pin": _NOTHING_TO_MOVE,
        "migrate_on_first_dirty": _NOTHING_TO_MOVE,
        "warn_cma_pins": _NOTHING_TO_WARN,
        "pin_duration_warn": _NOTHING_TO_WARN,
        "fs_superblock_unmovable": _SB_NEVER_IN_CMA,
    },
    "zone_cma": {"fs_superblock_unmovable": _SB_NEVER_IN_CMA},
    "movable_zone": {"fs_superblock_unmovable": _SB_NEVER_IN_CMA},
}


def sensible_fixes(placement: str, fixes: "frozenset[str] | set[str]") -> frozenset[str]:
    """The subset of ``fixes`` that makes sense under ``placement`` (for comparisons that
    apply one set of fixes to every placement)."""
    pointless = _POINTLESS.get(placement, {})
    return frozenset(f for f in fixes if f not in pointless)


FIX_LABELS = {
    "migrate_on_longterm_pin": "longterm_pin",
    "migrate_on_pin": "pin",
    "migrate_on_first_dirty": "first_dirty",
    "warn_cma_pins": "warn_pins",
    "pin_duration_warn": "pin_duration",
    "fs_superblock_unmovable": "sb_unmovable",
}
"""Each fix's short name in policy labels (``balanced+longterm_pin``)."""

SWITCHES: dict[str, dict[str, Any]] = {
    "vendor_retry": {"vendor_retry": True},
    "per_area_lock": {"cma_lock": "per_area"},
}
"""Label parts that are not fixes but switches of a Policy."""

_DEFAULT_PIN_THRESHOLD = 100 * NS_PER_MS
_DEFAULT_RETRY_PASSES = 5
_DEFAULT_RETRY_SLEEP = 100 * NS_PER_MS


class Preset(NamedTuple):
    """A named policy: its fields and a line saying what it reproduces."""

    fields: dict[str, Any]
    note: str


_TODAY_FIXES = ["migrate_on_longterm_pin", "fs_superblock_unmovable"]

PRESETS: dict[str, Preset] = {
    "mainline-2015": Preset(
        {"placement": "legacy"},
        "mainline 2015-2020: CMA used only once the movable free lists are empty",
    ),
    "mainline-2014": Preset(
        {"placement": "legacy_2014"},
        "mainline 3.x-4.0 (2014), the kernels the GCMA and ZONE_CMA RFCs measured: CMA first "
        "among movable fallbacks, largest free CMA block first (before dc67647b78b9)",
    ),
    "mainline-today": Preset(
        {"placement": "balanced", "fixes": _TODAY_FIXES},
        "mainline today: balanced placement (2020), FOLL_LONGTERM migration (2019), "
        "unmovable superblock buffers (ext4 2014/2020)",
    ),
    "legacy": Preset(
        {"placement": "legacy"},
        "placement alone: CMA only once the movable free lists are empty (mainline 2015)",
    ),
    "legacy_2014": Preset(
        {"placement": "legacy_2014"},
        "placement alone: CMA once the movable free lists are empty, breaking the largest free "
        "CMA block each time (mainline before 4.1)",
    ),
    "balanced": Preset(
        {"placement": "balanced"},
        "placement alone: CMA first when it holds over half the free memory (Roman Gushchin, 2020)",
    ),
    "zone_cma": Preset(
        {"placement": "zone_cma"},
        "placement alone: the area as its own zone, ZONE_CMA (Joonsoo Kim, never merged)",
    ),
    "movable_zone": Preset(
        {"placement": "movable_zone"},
        "placement alone: the area as ZONE_MOVABLE (Joonsoo Kim, 4.17, reverted)",
    ),
    "gcma": Preset(
        {"placement": "gcma"},
        "placement alone: only discardable pages in the area, guaranteed CMA (SeongJae Park)",
    ),
    "mel-gorman": Preset(
        {
            "placement": "legacy",
            "fixes": ["migrate_on_pin", "migrate_on_first_dirty", "warn_cma_pins"],
        },
        "Mel Gorman's proposals: migrate out of CMA on every pin and on first dirtying, warn "
        "on get_page of CMA pages",
    ),
    "instrumented": Preset(
        {"placement": "balanced", "fixes": ["warn_cma_pins", "pin_duration_warn"]},
        "today's placement with the pin instrumentation on, to name what blocks a device",
    ),
    "vendor-android": Preset(
        {"placement": "balanced", "fixes": _TODAY_FIXES, "vendor_retry": True},
        "Android vendor kernels: mainline today plus 'retry 5 passes with msleep(100)'",
    ),
}
"""The named policies. Each placement is also a preset of its own, without fixes."""


def _preset_key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


_PRESET_KEYS = {_preset_key(name): name for name in PRESETS}


class Policy(Spec):
    """A placement strategy for movable pages plus any set of fixes.

    Build one with ``Policy(placement=..., fixes=[...])``, from a preset with
    :meth:`Policy.preset`, or from whatever a user passed with :meth:`Policy.coerce` (a
    preset, ``"balanced+migrate_on_pin"``, a policy file, a dict).
    """

    placement: Placement = Field(
        description="Where movable pages may go in CMA memory: 'legacy' (mainline 2015: CMA "
        "only once movable free lists are empty), 'legacy_2014' (mainline before 4.1: the "
        "same, but the largest free CMA block is broken each time), 'balanced' (mainline since "
        "2020: CMA first when it holds over half the free memory), 'zone_cma' (ZONE_CMA, "
        "Joonsoo Kim), "
        "'movable_zone' (CMA as ZONE_MOVABLE, 4.17, reverted), 'gcma' (guaranteed CMA: only "
        "discardable pages, SeongJae Park)."
    )
    fixes: frozenset[Fix] = Field(
        frozenset(),
        description="Fixes switched on: migrate_on_longterm_pin (mainline FOLL_LONGTERM), "
        "migrate_on_pin and migrate_on_first_dirty (Mel Gorman), warn_cma_pins (warn on "
        "get_page of a CMA page), pin_duration_warn (Dave Hansen: warn on long pins), "
        "fs_superblock_unmovable (superblock buffers allocated unmovable).",
    )
    pin_duration_threshold: Duration = Field(
        _DEFAULT_PIN_THRESHOLD,
        gt=0,
        description="With pin_duration_warn: put_page warns when a page stayed pinned longer "
        "than this.",
    )
    cma_lock: CmaLock = Field(
        "global",
        description="Serialisation of cma_alloc: 'global' (one cma_mutex, most kernels) or "
        "'per_area' (one lock per area, since 2025).",
    )
    vendor_retry: bool = Field(
        False,
        description="Android vendor kernels' retry: when a cma_alloc walk fails, sleep and "
        "walk the area again, up to vendor_retry_passes times. Mainline has no retry.",
    )
    vendor_retry_passes: int = Field(
        _DEFAULT_RETRY_PASSES,
        ge=1,
        le=100,
        description="With vendor_retry: how many walks over the area at most.",
    )
    vendor_retry_sleep: Duration = Field(
        _DEFAULT_RETRY_SLEEP,
        description="With vendor_retry: the sleep between walks (msleep(100) in vendor trees).",
    )

    @field_validator("fixes")
    @classmethod
    def _fixes_fit_placement(cls, fixes: frozenset[str], info: ValidationInfo) -> frozenset[str]:
        placement = str(info.data.get("placement"))
        table = _POINTLESS.get(placement, {})
        pointless = [fix for fix in FIXES if fix in fixes and fix in table]
        if pointless:
            reasons = "; ".join(f"{fix}: {table[fix]}" for fix in pointless)
            raise ValueError(
                f"{', '.join(pointless)} make{'s' if len(pointless) == 1 else ''} no sense "
                f"with placement {placement!r} ({reasons}). Remove "
                f"{'it' if len(pointless) == 1 else 'them'} from fixes, or choose another "
                f"placement."
            )
        return fixes

    @field_serializer("fixes")
    def _fixes_in_order(self, fixes: frozenset[str]) -> list[str]:
        # A frozenset has no stable order across runs; serialise in declaration order.
        return [fix for fix in FIXES if fix in fixes]

    def has(self, fix: str) -> bool:
        """Whether ``fix`` is on (``fix`` must be one of :data:`FIXES`)."""
        if fix not in FIXES:
            raise SpecError(f"unknown fix {fix!r}; the fixes are: {', '.join(FIXES)}")
        return fix in self.fixes

    @property
    def label(self) -> str:
        """A short name for tables: ``"balanced+longterm_pin+sb_unmovable"``."""
        parts: list[str] = [self.placement]
        for fix in FIXES:
            if fix not in self.fixes:
                continue
            label = FIX_LABELS[fix]
            if fix == "pin_duration_warn" and self.pin_duration_threshold != (
                _DEFAULT_PIN_THRESHOLD
            ):
                label += f">{_short_duration(self.pin_duration_threshold)}"
            parts.append(label)
        if self.vendor_retry:
            if (self.vendor_retry_passes, self.vendor_retry_sleep) == (
                _DEFAULT_RETRY_PASSES,
                _DEFAULT_RETRY_SLEEP,
            ):
                parts.append("vendor_retry")
            else:
                sleep = _short_duration(self.vendor_retry_sleep)
                parts.append(f"vendor_retry({self.vendor_retry_passes}x{sleep})")
        if self.cma_lock == "per_area":
            parts.append("per_area_lock")
        return "+".join(parts)

    def to_engine(self) -> dict[str, Any]:
        """The dict the Rust engine deserialises (its ``PolicyConfig``)."""
        return {
            "placement": self.placement,
            "migrate_on_longterm_pin": "migrate_on_longterm_pin" in self.fixes,
            "migrate_on_pin": "migrate_on_pin" in self.fixes,
            "migrate_on_first_dirty": "migrate_on_first_dirty" in self.fixes,
            "warn_cma_pins": "warn_cma_pins" in self.fixes,
            "pin_duration_warn_ns": (
                self.pin_duration_threshold if "pin_duration_warn" in self.fixes else None
            ),
            "fs_superblock_unmovable": "fs_superblock_unmovable" in self.fixes,
            "cma_lock": self.cma_lock,
            "vendor_retry_passes": self.vendor_retry_passes if self.vendor_retry else 0,
            "vendor_retry_sleep_ns": self.vendor_retry_sleep,
        }

    @staticmethod
    def presets() -> list[str]:
        """The names :meth:`preset` accepts."""
        return list(PRESETS)

    @classmethod
    def preset(cls, name: str) -> "Policy":
        """The named policy ("mainline-today", "mel-gorman", "gcma", ...).

        Case and ``_``/``-`` do not matter. Raises :class:`SpecError` listing the names.
        """
        key = preset_name(name)
        if key is None:
            raise SpecError(_unknown_policy(str(name), list(PRESETS)))
        return validate_model(cls, PRESETS[key].fields, source=f"policy preset {key!r}")

    @classmethod
    def coerce(cls, value: Union["Policy", str, "os.PathLike[str]", Mapping[str, Any]]) -> "Policy":
        """A :class:`Policy` from a Policy, anything :func:`parse_policy` reads (a preset,
        ``"legacy+migrate_on_pin"``, a policy file), or a dict of fields."""
        if isinstance(value, Policy):
            return value
        if isinstance(value, (str, os.PathLike)):
            return parse_policy(value).policy
        if isinstance(value, Mapping):
            return validate_model(cls, dict(value), source="policy")
        raise SpecError(
            f"a policy must be a Policy, a preset name ({', '.join(PRESETS)}), a placement "
            f"with fixes ('legacy+migrate_on_pin'), a policy file or a dict of Policy fields; "
            f"got {type(value).__name__} {value!r}"
        )


def _short_duration(ns: int) -> str:
    return format_duration(ns).replace(" ", "")


def preset_name(name: object) -> "str | None":
    """The preset ``name`` refers to (case and ``_``/``-`` do not matter), or None."""
    return _PRESET_KEYS.get(_preset_key(name)) if isinstance(name, str) else None


# --------------------------------------------------------------------------------------------
# The grammar


@dataclass(frozen=True)
class PolicyChoice:
    """A policy as the user wrote it: its name for tables and results (the preset's name as
    typed, else the policy's label) and the policy itself; or, for ``kernel`` (and
    ``kernel:PATH`` of a bzImage), the real kernel under QEMU, which runs its own."""

    label: str
    policy: Policy
    backend: str = "model"
    """Which backend runs it: ``model``, or ``kernel`` (``Scenario.run(backend=...)``)."""
    kernel: Optional[str] = None
    """With the kernel backend: the bzImage to boot (None: the cmadev kernel)."""


def _fix_names() -> dict[str, str]:
    """Each fix by its full name and by its short name in policy labels."""
    return {**{fix: fix for fix in FIXES}, **{short: fix for fix, short in FIX_LABELS.items()}}


def parse_policy(text: "str | os.PathLike[str]") -> PolicyChoice:
    """A preset ("mainline-today"), a placement with fixes ("legacy+migrate_on_longterm_pin",
    or the short names of a table label: "balanced+longterm_pin+sb_unmovable"), or the path
    of a policy file; any problem is a :class:`SpecError` saying what is known."""
    if isinstance(text, os.PathLike) or str(text).strip().endswith(SUFFIXES):
        policy = load_model(Policy, text)
        return PolicyChoice(policy.label, policy)
    text = text.strip()
    if not text:
        raise SpecError(_unknown_policy(text, list(PRESETS)))
    if text == "kernel" or text.startswith("kernel:"):
        path = text.partition(":")[2] or None
        return PolicyChoice(text, Policy.preset("mainline-today"), "kernel", path)
    if "+" not in text:
        key = preset_name(text)
        if key is None:
            raise SpecError(_unknown_policy(text, list(PRESETS)))
        return PolicyChoice(text, Policy.preset(key))
    placement, *parts = text.split("+")
    if placement not in PLACEMENTS:
        raise SpecError(_unknown_policy(placement, list(PLACEMENTS), whole=text))
    fields: dict[str, Any] = {"placement": placement, "fixes": []}
    names = _fix_names()
    for part in parts:
        if part in SWITCHES:
            fields.update(SWITCHES[part])
        elif part in names:
            fields["fixes"].append(names[part])
        else:
            raise SpecError(_unknown_fix(part, text, [*names, *SWITCHES]))
    policy = validate_model(Policy, fields, source=f"policy {text!r}")
    return PolicyChoice(policy.label, policy)


def _unknown_policy(name: str, known: list[str], whole: str = "") -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f" in policy {whole!r}" if whole else ""
    what = "placement" if whole else "policy"
    return (
        f"unknown {what} {name!r}{where}.{hint} Use a preset ({', '.join(PRESETS)}), a "
        f"placement with fixes joined by '+' ('legacy+migrate_on_longterm_pin'; placements: "
        f"{', '.join(PLACEMENTS)}), the path of a policy .json/.toml file, or 'kernel' (a "
        f"real Linux under QEMU). 'python -m cmadev devices' lists the presets."
    )


def _unknown_fix(part: str, whole: str, known: list[str]) -> str:
    close = difflib.get_close_matches(part, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown fix {part!r} in policy {whole!r}.{hint} The fixes are: {', '.join(FIXES)} "
        f"(or their short names in table labels); also vendor_retry and per_area_lock."
    )


__all__ = [
    "FIXES",
    "FIX_LABELS",
    "PLACEMENTS",
    "PRESETS",
    "SWITCHES",
    "CmaLock",
    "Fix",
    "Placement",
    "Policy",
    "PolicyChoice",
    "Preset",
    "parse_policy",
    "preset_name",
    "sensible_fixes",
]
