"""Shared test configuration."""

from __future__ import annotations

import contextlib
import os
import warnings

from hypothesis import settings

# Hypothesis profiles: "fast" by default (CI), "slow" on demand:
#   HYPOTHESIS_PROFILE=slow pytest tests/test_properties.py
settings.register_profile("fast", max_examples=30, deadline=None)
settings.register_profile("slow", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# Hypothesis writes a patch of failing examples when a test fails; the module that does it
# imports libcst, whose import emits a DeprecationWarning (mypy_extensions.TypedDict) that
# `filterwarnings = ["error"]` turns into an INTERNALERROR hiding the real failure. Import it
# once here, quietly, so that the failure report is the failing example.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401
