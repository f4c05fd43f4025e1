"""Building the clients from Airflow connections (no server needed): fields, extras, masking, no I/O up front."""

from __future__ import annotations

import json

import pytest

from pogo_invoiced_sync.clients import ConnectionConfigError, InvoicedClient, PowerOfficeGoClient
from pogo_invoiced_sync.clients.limits import InFlightLimiter
from pogo_invoiced_sync.hooks import InvoicedHook, PowerOfficeGoHook

SECRET_CLIENT_KEY = "client-key-that-must-stay-secret"
SECRET_SUBSCRIPTION_KEY = "feedfacefeedfacefeedfacefeedface"


def pogo_connection(host, application_key, client_key, subscription_key, **extra):
    return json.dumps(
        {
            "conn_type": "http",
            "host": host,
            "login": application_key,
            "password": client_key,
            "extra": {"subscription_key": subscription_key, "timeout": 5, **extra},
        }
    )


def invoiced_connection(host, login, password="", **extra):
    return json.dumps(
        {"conn_type": "invoiced", "host": host, "login": login, "password": password, "extra": {"timeout": 5, **extra}}
    )


def test_own_extras_do_not_become_request_headers(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT",
        pogo_connection(
            "https://goapi.poweroffice.net/Demo/v2",
            "app-key",
            SECRET_CLIENT_KEY,
            SECRET_SUBSCRIPTION_KEY,
            requests_per_second=5,
            max_workers=3,
        ),
    )
    client = PowerOfficeGoHook().get_conn()
    session = client.session
    assert not {k.lower() for k in session.headers} & {
        "subscription_key",
        "requests_per_second",
        "max_workers",
        "timeout",
        "verify",
    }
    assert session.auth is None
    assert session.verify is True
    assert client.token_url == "https://goapi.poweroffice.net/Demo/OAuth/Token"
    assert (client.requests_per_second, client.max_workers, client.timeout) == (5.0, 3, 5.0)


def test_extras_with_the_connection_form_prefix_are_read_too(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT",
        json.dumps(
            {
                "conn_type": "poweroffice_go",
                "host": "https://goapi.poweroffice.net/v2",
                "login": "app-key",
                "password": SECRET_CLIENT_KEY,
                "extra": {
                    "extra__poweroffice_go__subscription_key": SECRET_SUBSCRIPTION_KEY,
                    "extra__poweroffice_go__requests_per_second": "4",
                },
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_INVOICED_DEFAULT",
        invoiced_connection("https://api.invoiced.com", "", "key", extra__invoiced__max_in_flight="7"),
    )
    pogo = PowerOfficeGoHook().get_conn()
    assert (pogo.subscription_key, pogo.requests_per_second) == (SECRET_SUBSCRIPTION_KEY, 4.0)
    assert InvoicedHook().get_conn().max_in_flight == 7


def test_the_invoiced_api_key_is_read_from_the_password(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", "", "pw-key"))
    assert InvoicedHook().get_conn().session.auth.username == "pw-key"


def test_an_older_invoiced_connection_with_the_api_key_in_login_still_works(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", "login-key"))
    assert InvoicedHook().get_conn().session.auth.username == "login-key"


def test_an_invoiced_connection_without_a_key_names_the_password_field(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", ""))
    with pytest.raises(ConnectionConfigError, match="password \\(the API key\\) is required") as missing:
        InvoicedHook().get_conn()
    assert missing.value.conn_id == "invoiced_default"
    assert missing.value.host == "https://api.invoiced.com"


def test_a_numeric_extra_that_is_not_a_number_is_a_configuration_error_naming_it(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", "key", max_in_flight="many")
    )
    with pytest.raises(ConnectionConfigError, match="extra 'max_in_flight' must be a number"):
        InvoicedHook().get_conn()


def test_get_conn_builds_the_client_once_per_hook(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", "key"))
    hook = InvoicedHook()
    assert isinstance(hook.get_conn(), InvoicedClient)
    assert hook.get_conn() is hook.get_conn()
    assert InvoicedHook().get_conn() is not hook.get_conn()


def test_a_limiter_given_to_the_hook_is_the_clients(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT",
        pogo_connection("https://goapi.poweroffice.net/v2", "app-key", SECRET_CLIENT_KEY, SECRET_SUBSCRIPTION_KEY),
    )
    limiter = InFlightLimiter(1)
    client = PowerOfficeGoHook(limiter=limiter, max_attempts=2).get_conn()
    assert isinstance(client, PowerOfficeGoClient)
    assert client.limiter is limiter
    assert client.max_attempts == 2


def test_loading_the_connection_registers_its_secrets_with_the_airflow_masker(monkeypatch):
    from airflow.sdk.log import redact

    monkeypatch.setenv(
        "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT",
        pogo_connection("https://goapi.poweroffice.net/v2", "app-key-1234", SECRET_CLIENT_KEY, SECRET_SUBSCRIPTION_KEY),
    )
    PowerOfficeGoHook().get_conn()
    masked = redact(f"client {SECRET_CLIENT_KEY} subscription {SECRET_SUBSCRIPTION_KEY}")
    assert SECRET_CLIENT_KEY not in masked
    assert SECRET_SUBSCRIPTION_KEY not in masked


def test_creating_a_hook_does_no_io(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", raising=False)
    PowerOfficeGoHook("does_not_exist")
    InvoicedHook(invoiced_conn_id="does_not_exist")


def test_the_hooks_leave_the_form_to_the_provider_info():
    from airflow.sdk.bases.hook import BaseHook

    # get_ui_field_behaviour is deprecated: the form is declared in the provider info (provider.py)
    for hook_class in (PowerOfficeGoHook, InvoicedHook):
        ours = hook_class.__mro__[: hook_class.__mro__.index(BaseHook)]
        assert not [c for c in ours if "get_ui_field_behaviour" in vars(c)]
