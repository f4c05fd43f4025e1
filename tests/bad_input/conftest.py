"""Fixtures of the bad-input tests (the ``stack`` fixture comes from tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture
def quick_retries(monkeypatch):
    """Hooks retry as many times as in production, but without waiting between attempts."""
    from pogo_invoiced_sync.clients.base import ApiClient

    monkeypatch.setattr(ApiClient, "_backoff", lambda self, attempt, retry_after: 0.01)
