"""Configuration failures (issue 9 §2, §4): a missing or incomplete connection and refused credentials are errors that
name the connection, its host and what to fix; network errors name the host and port they could not reach."""

from __future__ import annotations

import json

import pytest

from pogo_invoiced_sync.clients.errors import (
    ApiError,
    ConnectionConfigError,
    RetryableApiError,
    configuration_message,
)
from pogo_invoiced_sync.hooks import InvoicedHook, PowerOfficeGoHook
from sandboxes.process import free_port

from .conftest import FAST


def test_a_connection_that_does_not_exist_is_a_configuration_error_naming_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_INVOICED_DEFAULT", raising=False)
    with pytest.raises(ConnectionConfigError) as missing:
        InvoicedHook(**FAST).get_conn().get("/customers/1")
    assert missing.value.needs_configuration
    message = configuration_message(missing.value)
    assert "connection 'invoiced_default' does not exist" in message
    assert "create the connection" in message


def test_a_connection_without_its_subscription_key_is_a_configuration_error_naming_the_field(sandboxes, monkeypatch):
    s = sandboxes.settings
    monkeypatch.setenv(
        "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": f"{sandboxes.pogo_url}/v2",
                "login": s.pogo_application_key,
                "password": s.pogo_client_key,
            }
        ),
    )
    with pytest.raises(ConnectionConfigError) as incomplete:
        PowerOfficeGoHook(**FAST).get_conn()
    assert isinstance(incomplete.value, ValueError)  # callers that caught ValueError still do
    message = configuration_message(incomplete.value)
    assert "'subscription_key' is required" in message
    assert f"connection 'poweroffice_go_default' (host {sandboxes.pogo_url}/v2)" in message


def test_a_wrong_subscription_key_says_which_connection_host_and_field_to_fix(pogo_env, sandboxes):
    pogo_env(subscription_key="0" * 32)
    with pytest.raises(ApiError) as refused:
        PowerOfficeGoHook(**FAST).get_conn().get("/Customers/1")
    assert refused.value.needs_configuration
    assert refused.value.status == 401
    message = configuration_message(refused.value)
    assert f"connection 'poweroffice_go_default' (host {sandboxes.pogo_url}/v2)" in message
    assert "check the extra 'subscription_key'" in message
    assert "0" * 32 not in message


def test_wrong_client_keys_point_at_login_and_password(pogo_env):
    pogo_env(client_key="not-the-client-key")
    with pytest.raises(ApiError) as refused:
        PowerOfficeGoHook(**FAST).get_conn().get("/Customers/1")
    assert refused.value.needs_configuration
    assert "check login (application key) and password (client key)" in configuration_message(refused.value)


def test_a_wrong_invoiced_key_points_at_the_login(invoiced_env, sandboxes):
    invoiced_env(api_key="not-the-key")
    with pytest.raises(ApiError) as refused:
        InvoicedHook(**FAST).get_conn().get("/customers/1")
    message = configuration_message(refused.value)
    assert refused.value.needs_configuration
    assert f"(host {sandboxes.invoiced_url})" in message
    assert "check login (the API key)" in message


def test_a_record_the_api_refuses_is_not_a_configuration_failure(invoiced):
    with pytest.raises(ApiError) as refused:
        invoiced.get_conn().create("/customers", {"name": "X" * 300, "type": "company"})
    assert refused.value.status == 400
    assert not refused.value.needs_configuration


def test_a_connection_refused_names_the_host_and_port(monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_INVOICED_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{port}", "login": "key", "extra": {"timeout": 2}}),
    )
    with pytest.raises(RetryableApiError) as unreachable:
        InvoicedHook(max_attempts=2, **FAST).get_conn().get("/customers/1")
    assert f"connect error ConnectionError to 127.0.0.1:{port}" in str(unreachable.value)
