"""The sandboxes refuse wrong credentials, and the hooks say so with an ``AuthenticationError`` whose message
carries neither the key sent nor the right one (issue 5 §4)."""

from __future__ import annotations

import logging

import pytest

from pogo_invoiced_sync.clients import AuthenticationError, InvoicedClient, PowerOfficeGoClient, clear_shared_state
from pogo_invoiced_sync.hooks.invoiced import InvoicedHook
from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

from .conftest import invoiced_connection_json, pogo_connection_json

WRONG = "wrong-LEAKMARK-0b5e7d"


@pytest.fixture(autouse=True)
def fresh_state(secret_sandbox, caplog):
    secret_sandbox.reset()
    clear_shared_state()
    caplog.set_level(logging.DEBUG)
    yield
    clear_shared_state()


def _assert_clean(error: AuthenticationError, secrets, caplog, *extra: str) -> None:
    text = "\n".join([str(error), repr(error.args), repr(error.message), repr(error.body), caplog.text])
    leaked = [
        label
        for label, value in {
            **secrets.all,
            "wrong key sent": WRONG,
            **{f"extra {i}": v for i, v in enumerate(extra)},
        }.items()
        if value in text
    ]
    assert leaked == [], f"{leaked} in: {text[:500]}"


def _pogo(monkeypatch, secret_sandbox, **overrides) -> PowerOfficeGoClient:
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection_json(secret_sandbox, **overrides))
    return PowerOfficeGoHook(max_attempts=2, backoff_base=0.01).get_conn()


@pytest.mark.parametrize("wrong", ["application_key", "client_key"])
def test_wrong_poweroffice_go_keys_are_refused_at_the_token_endpoint_as_invalid_client(
    secret_sandbox, secrets, monkeypatch, caplog, wrong
):
    hook = _pogo(monkeypatch, secret_sandbox, **{wrong: WRONG})
    with pytest.raises(AuthenticationError) as refused:
        hook.get("/Customers/1")
    assert refused.value.status == 400
    assert "invalid_client" in str(refused.value)
    assert "token request refused" in str(refused.value)
    _assert_clean(refused.value, secrets, caplog)


def test_a_wrong_subscription_key_is_refused_by_the_gateway_with_401(secret_sandbox, secrets, monkeypatch, caplog):
    hook = _pogo(monkeypatch, secret_sandbox, subscription_key=WRONG)
    with pytest.raises(AuthenticationError) as refused:
        hook.get("/Customers/1")
    assert refused.value.status == 401
    assert "subscription key" in str(refused.value).lower()
    _assert_clean(refused.value, secrets, caplog)


def test_a_call_without_a_bearer_token_is_refused_with_401(secret_sandbox, secrets, monkeypatch, caplog):
    hook = _pogo(monkeypatch, secret_sandbox)
    with pytest.raises(AuthenticationError) as refused:
        hook.request(
            "GET", "/Customers", authenticate=False, headers={"Ocp-Apim-Subscription-Key": secrets.subscription_key}
        )
    assert refused.value.status == 401
    _assert_clean(refused.value, secrets, caplog)


def test_a_token_the_api_refuses_is_renewed_once_then_reported_with_401(secret_sandbox, secrets, monkeypatch, caplog):
    # Tokens of the /Demo environment are not valid on the production paths: every token is refused.
    hook = _pogo(monkeypatch, secret_sandbox, token_url=f"{secret_sandbox.pogo_url}/Demo/OAuth/Token")
    issued: list[str] = []
    original = PowerOfficeGoClient._request_token

    def recording(self):
        token, renew_at = original(self)
        issued.append(token)
        return token, renew_at

    monkeypatch.setattr(PowerOfficeGoClient, "_request_token", recording)
    with pytest.raises(AuthenticationError) as refused:
        hook.get("/Customers/1")
    assert refused.value.status == 401
    assert hook.stats["auth_renewals"] == 1
    assert len(issued) == 2
    _assert_clean(refused.value, secrets, caplog, *issued)


def test_a_wrong_invoiced_api_key_is_refused_with_401(secret_sandbox, secrets, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection_json(secret_sandbox, api_key=WRONG))
    hook: InvoicedClient = InvoicedHook(max_attempts=2, backoff_base=0.01).get_conn()
    with pytest.raises(AuthenticationError) as refused:
        hook.get("/customers/1")
    assert refused.value.status == 401
    _assert_clean(refused.value, secrets, caplog)


def test_the_right_keys_pass(secret_sandbox, monkeypatch):
    """The refusals above are about the keys, not the set-up: the same connections with the right keys work."""
    secret_sandbox.pogo.seed(companies=1)
    secret_sandbox.invoiced.seed(companies=1)
    assert len(_pogo(monkeypatch, secret_sandbox).request_json("GET", "/Customers")) == 1
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection_json(secret_sandbox))
    assert len(InvoicedHook().get_conn().request_json("GET", "/customers")) == 1
