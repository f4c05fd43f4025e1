"""Fixtures of the fault suite: the end-to-end ``stack`` (tests/conftest.py) with a fresh hook state per test."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_hook_state():
    """Hooks share tokens and limiters per credential in the process: start and end each test without them."""
    from pogo_invoiced_sync.clients import clear_shared_state

    clear_shared_state()
    yield
    clear_shared_state()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """The hooks' exponential backoff at a tenth of its length, to keep the suite within CI's time.

    Waits the server asks for (``Retry-After``) are honoured in full: those are part of what is under test.
    """
    from pogo_invoiced_sync.clients.base import ApiClient

    original = ApiClient._backoff

    def backoff(self, attempt, retry_after):
        wait = original(self, attempt, retry_after)
        return wait if retry_after is not None else wait / 10

    monkeypatch.setattr(ApiClient, "_backoff", backoff)
