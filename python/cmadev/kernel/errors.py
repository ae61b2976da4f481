"""The exceptions of the kernel backend.

All derive from :class:`cmadev.errors.CmadevError`, so code that catches cmadev's errors
catches these too.
"""

from __future__ import annotations

from cmadev.errors import CmadevError, SpecError


class KernelBackendError(CmadevError):
    """Base class of the kernel backend's errors."""


class HostDependencyError(KernelBackendError):
    """A host program or file the backend needs is missing; the message names the Debian
    packages to ``apt-get install``."""


class KernelBuildError(KernelBackendError):
    """Configuring or building the guest kernel failed (the message says which option or
    step, and where the build log is)."""


class GuestError(KernelBackendError):
    """The guest did not run the program to its end: QEMU failed to start, the kernel
    panicked, the agent failed, or the run timed out. The message ends with the last lines of
    the guest's console; :attr:`console` holds all of it."""

    def __init__(self, message: str, console: str = "", command: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.console = console
        self.command = command


class CalibrationError(KernelBackendError):
    """A calibration's measurements cannot give a cost model: a figure the fit needs is
    missing (the message says which, and how to measure it)."""


class ProgramError(KernelBackendError, SpecError):
    """A guest program, or the scenario pieces it is made from, cannot run on the guest."""


class ResultsError(KernelBackendError):
    """The results the guest wrote cannot be read (a bad frame, a missing end record)."""


__all__ = [
    "GuestError",
    "HostDependencyError",
    "KernelBackendError",
    "KernelBuildError",
    "ProgramError",
    "ResultsError",
]
