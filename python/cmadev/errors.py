"""The exceptions and warnings cmadev raises.

Every error the engine reports arrives as a subclass of :class:`CmadevError`; the Rust
engine's error enum is mapped onto these classes by name in one place (the binding's
``to_pyerr``), so the hierarchy lives here, in plain Python, where users can read it.
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
    "InvalidConfigError",
    "MisuseError",
    "OutOfMemoryError",
    "SlowRunWarning",
    "SpecError",
]
