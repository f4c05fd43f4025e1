"""Fixtures for the client tests: clients built from plain settings pointing at the sandboxes, fresh shared state."""

from __future__ import annotations

from typing import Any

import pytest

from pogo_invoiced_sync.clients import (
    InvoicedClient,
    InvoicedSettings,
    PowerOfficeGoClient,
    PowerOfficeGoSettings,
    clear_shared_state,
)

FAST = {"backoff_base": 0.02, "backoff_max": 0.2}


@pytest.fixture(autouse=True)
def fresh_shared_state():
    """Each test starts without cached tokens or limiters from earlier tests."""
    clear_shared_state()
    yield
    clear_shared_state()


class PogoEnv:
    """The sandbox's PowerOffice Go settings; call it to override keys or settings, ``client()`` to build one."""

    def __init__(self, sandboxes) -> None:
        s = sandboxes.settings
        self.fields: dict[str, Any] = {
            "base_url": sandboxes.pogo_url + "/v2",
            "application_key": s.pogo_application_key,
            "client_key": s.pogo_client_key,
            "subscription_key": s.pogo_subscription_key,
            "timeout": 5,
        }

    def __call__(self, **overrides: Any) -> None:
        self.fields.update(overrides)

    def settings(self) -> PowerOfficeGoSettings:
        return PowerOfficeGoSettings(**self.fields)

    def client(self, **kwargs: Any) -> PowerOfficeGoClient:
        return PowerOfficeGoClient(self.settings(), **kwargs)


class InvoicedEnv:
    """The sandbox's Invoiced settings; call it to override the key or settings, ``client()`` to build one."""

    def __init__(self, sandboxes) -> None:
        self.fields: dict[str, Any] = {
            "base_url": sandboxes.invoiced_url,
            "api_key": sandboxes.settings.invoiced_api_key,
            "timeout": 5,
        }

    def __call__(self, api_key: str | None = None, **overrides: Any) -> None:
        if api_key is not None:
            self.fields["api_key"] = api_key
        self.fields.update(overrides)

    def settings(self) -> InvoicedSettings:
        return InvoicedSettings(**self.fields)

    def client(self, **kwargs: Any) -> InvoicedClient:
        return InvoicedClient(self.settings(), **kwargs)


@pytest.fixture
def pogo_env(sandboxes) -> PogoEnv:
    """PowerOffice Go settings on the sandbox; call it to override keys or settings."""
    return PogoEnv(sandboxes)


@pytest.fixture
def invoiced_env(sandboxes) -> InvoicedEnv:
    """Invoiced settings on the sandbox; call it to override the key or settings."""
    return InvoicedEnv(sandboxes)


@pytest.fixture
def pogo(pogo_env) -> PowerOfficeGoClient:
    """A PowerOffice Go client on the sandbox with short backoffs."""
    return pogo_env.client(**FAST)


@pytest.fixture
def invoiced(invoiced_env) -> InvoicedClient:
    """An Invoiced client on the sandbox with short backoffs."""
    return invoiced_env.client(**FAST)
