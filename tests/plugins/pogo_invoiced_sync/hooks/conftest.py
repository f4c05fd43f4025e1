"""Fixtures for the hook tests: connections from env vars pointing at the sandboxes, fresh shared state."""

from __future__ import annotations

import json

import pytest

from pogo_invoiced_sync.clients import clear_shared_state
from pogo_invoiced_sync.hooks import InvoicedHook, PowerOfficeGoHook

FAST = {"backoff_base": 0.02, "backoff_max": 0.2}


@pytest.fixture(autouse=True)
def fresh_shared_state():
    """Each test starts without cached tokens or limiters from earlier tests."""
    clear_shared_state()
    yield
    clear_shared_state()


def pogo_connection(host: str, application_key: str, client_key: str, subscription_key: str, **extra) -> str:
    """A PowerOffice Go connection in Airflow's JSON form."""
    return json.dumps(
        {
            "conn_type": "http",
            "host": host,
            "login": application_key,
            "password": client_key,
            "extra": {"subscription_key": subscription_key, "timeout": 5, **extra},
        }
    )


def invoiced_connection(host: str, api_key: str, **extra) -> str:
    """An Invoiced connection in Airflow's JSON form."""
    return json.dumps(
        {"conn_type": "http", "host": host, "login": api_key, "password": "", "extra": {"timeout": 5, **extra}}
    )


@pytest.fixture
def pogo_env(sandboxes, monkeypatch):
    """Point ``poweroffice_go_default`` at the sandbox; call it again to override keys or extras."""
    settings = sandboxes.settings

    def configure(**overrides):
        keys = {
            "application_key": settings.pogo_application_key,
            "client_key": settings.pogo_client_key,
            "subscription_key": settings.pogo_subscription_key,
        }
        extra = {k: v for k, v in overrides.items() if k not in keys}
        keys.update({k: v for k, v in overrides.items() if k in keys})
        monkeypatch.setenv(
            "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection(sandboxes.pogo_url + "/v2", **keys, **extra)
        )

    configure()
    return configure


@pytest.fixture
def invoiced_env(sandboxes, monkeypatch):
    """Point ``invoiced_default`` at the sandbox; call it again to override the key or extras."""

    def configure(api_key: str | None = None, **extra):
        monkeypatch.setenv(
            "AIRFLOW_CONN_INVOICED_DEFAULT",
            invoiced_connection(sandboxes.invoiced_url, api_key or sandboxes.settings.invoiced_api_key, **extra),
        )

    configure()
    return configure


@pytest.fixture
def pogo(pogo_env) -> PowerOfficeGoHook:
    """A PowerOffice Go hook on the sandbox with short backoffs."""
    return PowerOfficeGoHook(**FAST)


@pytest.fixture
def invoiced(invoiced_env) -> InvoicedHook:
    """An Invoiced hook on the sandbox with short backoffs."""
    return InvoicedHook(**FAST)
