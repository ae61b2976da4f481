"""The exceptions and warnings cmadev raises.

Every error the engine reports arrives as a subclass of :class:`CmadevError`: the binding
maps each variant of the Rust engine's error enum onto one of these classes in one table
(``rust/py/src/errors.rs``, checked by the compiler), so the hierarchy lives here, in plain
Python, where users can read it.
"""

from __future__ import annotations


class CmadevError(Exception):
    """Base class of every error cmadev raises on purpose."""


class SpecError(CmadevError, ValueError):
    """A board, device, workload, policy or scenario description is invalid.

    The message names the file (when there is one), the field, what was wrong, and how to
    fix it.
    """


class InvalidConfigError(SpecError):
    """The engine rejected a machine configuration (a board or policy that cannot be built)."""


class MisuseError(CmadevError, ValueError):
    """An API call that makes no sense in the current state: freeing a page twice,
    unpinning a page that is not pinned, naming a page that does not exist."""


class OutOfMemoryError(CmadevError, MemoryError):
    """An allocation could not be satisfied even after reclaim (the kernel's -ENOMEM)."""


class CmaError(CmadevError):
    """A CMA call that cannot be made at all: an unknown area, a request larger than its
    area. (A request that is made and then fails is not an exception: it is an outcome.)"""


class EventBudgetError(CmadevError, RuntimeError):
    """A run passed its event budget (``max_events``) and was stopped rather than left to run
    for hours: a workload rate, a sampling interval or a duration asks for more than the
    engine can simulate in reasonable time. Raise ``max_events`` to go on."""


class TraceParseError(CmadevError, ValueError):
    """A captured trace or ``/proc`` snapshot cannot be read: the message names the file, the
    line number, what was expected there and how to fix it."""


class EngineBugError(CmadevError, RuntimeError):
    """An internal consistency check failed. This is a bug in cmadev: please report it
    with the seed and the script that produced it."""


class CmadevWarning(UserWarning):
    """Base class of the warnings cmadev issues."""


class SlowRunWarning(CmadevWarning):
    """A scenario ran at less than ten simulated seconds per wall second: far slower than the
    engine should be (``tv_evening`` runs over a thousand times faster than real time), the
    sign of a slow path in the engine. The message names the scenario, the policy and the
    speed; please report it with the scenario file and the seed."""


__all__ = [
    "CmaError",
    "CmadevError",
    "CmadevWarning",
    "EngineBugError",
    "EventBudgetError",
    "InvalidConfigError",
    "MisuseError",
    "OutOfMemoryError",
    "SlowRunWarning",
    "SpecError",
    "TraceParseError",
]
