"""PowerOfficeGoHook: the client it builds from an Airflow connection, its masking of secrets, the Test button."""

from __future__ import annotations

import logging

import pytest
from airflow.sdk.log import redact

from pogo_invoiced_sync.hooks import AuthenticationError, PowerOfficeGoHook, RetryableApiError

from .conftest import FAST


def test_secrets_never_appear_in_errors_or_logs(pogo_env, sandboxes, caplog, capsys):
    settings = sandboxes.settings
    caplog.set_level(logging.DEBUG)  # stdlib loggers (urllib3); Airflow's structlog output goes to capsys
    client = PowerOfficeGoHook(max_attempts=2, **FAST).get_conn()
    sandboxes.pogo.faults(burst_429=1, retry_after=0.05, path_pattern="^/v2/")
    client.get("Customers/1")
    token = client.get_token()
    sandboxes.pogo.faults(error_rate=1.0, path_pattern="^/v2/")
    with pytest.raises(RetryableApiError) as caught:
        client.get("Customers/1")
    pogo_env(client_key="another-wrong-client-key")
    with pytest.raises(AuthenticationError) as refused:
        PowerOfficeGoHook(**FAST).get_conn().get("Customers/1")
    logs = caplog.text + "".join(capsys.readouterr())
    assert "retrying" in logs  # the hook did log, so the check below means something
    text = logs + str(caught.value) + str(refused.value) + repr(caught.value.body)
    for secret in (settings.pogo_client_key, settings.pogo_subscription_key, token, "another-wrong-client-key"):
        assert secret not in text
    assert token not in redact(f"Bearer {token}")  # the token is registered with Airflow's masker too


def test_test_connection_reports_success_with_valid_keys(pogo, sandboxes):
    ok, message = pogo.test_connection()
    assert ok, message


def test_test_connection_reports_failure_with_a_wrong_subscription_key(pogo_env, sandboxes):
    pogo_env(subscription_key="00000000000000000000000000000000")
    ok, message = PowerOfficeGoHook(**FAST).test_connection()
    assert not ok
    assert "00000000000000000000000000000000" not in message
