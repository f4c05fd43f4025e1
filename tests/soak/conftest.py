"""Fixtures of the soak: the end-to-end ``stack`` (tests/conftest.py), hook state and backoff as in the fault suite."""
from __future__ import annotations

from tests.resilience.conftest import fresh_hook_state, quick_backoff  # noqa: F401 - autouse fixtures, shared
