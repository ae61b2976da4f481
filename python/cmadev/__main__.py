"""``python -m cmadev``: the demo and the command line (see :mod:`cmadev.cli`)."""

from cmadev.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
