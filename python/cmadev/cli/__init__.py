"""The command line: ``python -m cmadev [demo|run|compare|replay|sweep|kernel|devices|schema]``.

With no arguments it runs the demo: the shipped ``tv_evening`` scenario under every placement,
each with the fixes mainline has today and with none, then prints a comparison table and
writes a report folder (plots, ``results.json``, ``summary.md``; see :mod:`cmadev.report`).

Every error a user can cause (a bad scenario file, an unknown policy, a bad argument) ends
the program with a message on stderr that names what was wrong and how to fix it, and a
non-zero exit code: 1 for a bad input, 2 for bad usage (argparse). Never a traceback: the
messages of :class:`~cmadev.errors.CmadevError` are written for people already.

``--json`` writes one JSON document to stdout and nothing else; the progress bars go to
stderr then, and only when it is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

from cmadev.cli.console import EXIT_INTERRUPTED, EXIT_USAGE, fail
from cmadev.cli.parser import build_parser
from cmadev.cli.run import demo_policies
from cmadev.errors import CmadevError


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0, 1 for a bad input, 2 for bad usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in _TOP_FLAGS):
        args_list.insert(0, "demo")  # `python -m cmadev --seeds 3` is the demo's options
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as stop:  # argparse printed the usage and the error (or the help)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return int(args.handler(args))
    except CmadevError as err:
        return fail(str(err))
    except OSError as err:  # the report folder cannot be written, ...
        where = f"{err.filename}: " if err.filename else ""
        return fail(f"{where}{err.strerror or err}")
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_INTERRUPTED


_TOP_FLAGS = ("-h", "--help", "--version")


__all__ = ["build_parser", "demo_policies", "main"]
