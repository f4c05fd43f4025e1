"""InvoicedHook: the client it builds from an Airflow connection, its logs without the key, the Test button."""

from __future__ import annotations

import logging

import pytest

from pogo_invoiced_sync.hooks import InvoicedHook, RetryableApiError

from .conftest import FAST


def test_secrets_never_appear_in_errors_or_logs(invoiced, sandboxes, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # stdlib loggers (urllib3); Airflow's structlog output goes to capsys
    sandboxes.invoiced.faults(burst_429=1, error_rate=1.0)
    with pytest.raises(RetryableApiError) as caught:
        invoiced.get_conn().get("customers/1")
    logs = caplog.text + "".join(capsys.readouterr())
    assert "retrying" in logs  # the hook did log, so the check below means something
    assert sandboxes.settings.invoiced_api_key not in logs + str(caught.value) + repr(caught.value.body)


def test_test_connection_reports_success_with_a_valid_key(invoiced, sandboxes):
    ok, message = invoiced.test_connection()
    assert ok, message


def test_test_connection_reports_failure_with_a_wrong_key(invoiced_env, sandboxes):
    invoiced_env(api_key="wrong-api-key-0123456789")
    ok, message = InvoicedHook(**FAST).test_connection()
    assert not ok
    assert "wrong-api-key-0123456789" not in message
