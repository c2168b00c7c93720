"""Fixtures of these tests: the bare pipeline of tests/support/pipeline.py."""

from __future__ import annotations

from tests.support.pipeline import pipeline  # noqa: F401  (a fixture)
