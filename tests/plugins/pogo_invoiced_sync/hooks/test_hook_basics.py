"""Behaviour of the hooks that needs no server: patches, query strings, limiters, connection handling."""
from __future__ import annotations

import json
import threading
import time

import pytest

from pogo_invoiced_sync.hooks import InvoicedHook, PowerOfficeGoHook
from pogo_invoiced_sync.hooks.common import RequestRateLimiter, encode_query, parse_retry_after


SECRET_CLIENT_KEY = "client-key-that-must-stay-secret"
SECRET_SUBSCRIPTION_KEY = "feedfacefeedfacefeedfacefeedface"


def pogo_connection(host, application_key, client_key, subscription_key, **extra):
    return json.dumps({"conn_type": "http", "host": host, "login": application_key, "password": client_key,
                       "extra": {"subscription_key": subscription_key, "timeout": 5, **extra}})


def invoiced_connection(host, api_key, **extra):
    return json.dumps({"conn_type": "http", "host": host, "login": api_key, "password": "",
                       "extra": {"timeout": 5, **extra}})


def test_json_patch_turns_dotted_paths_into_replace_operations():
    ops = PowerOfficeGoHook.json_patch({"Name": "X", "MailAddress.City": "Oslo"})
    assert ops == [{"op": "replace", "path": "/Name", "value": "X"},
                   {"op": "replace", "path": "/MailAddress/City", "value": "Oslo"}]


def test_json_patch_adds_the_whole_parent_when_the_current_parent_is_null():
    ops = PowerOfficeGoHook.json_patch({"MailAddress.City": "Oslo", "MailAddress.ZipCode": "0150", "Name": "X"},
                                       current={"Name": "Y", "mailAddress": None})
    assert ops == [{"op": "add", "path": "/MailAddress", "value": {"City": "Oslo", "ZipCode": "0150"}},
                   {"op": "replace", "path": "/Name", "value": "X"}]


def test_json_patch_replaces_nested_fields_of_a_parent_absent_from_a_partial_current():
    ops = PowerOfficeGoHook.json_patch({"MailAddress.City": "Oslo", "Name": "X"}, current={"StreetAddress": None})
    assert ops == [{"op": "replace", "path": "/MailAddress/City", "value": "Oslo"},
                   {"op": "replace", "path": "/Name", "value": "X"}]


def test_json_patch_replaces_nested_fields_when_the_current_parent_exists():
    ops = PowerOfficeGoHook.json_patch({"MailAddress.City": "Oslo"}, current={"MailAddress": {"City": "Bergen"}})
    assert ops == [{"op": "replace", "path": "/MailAddress/City", "value": "Oslo"}]


def test_query_strings_keep_brackets_and_encode_plus_and_spaces():
    query = encode_query({"filter[number]": "A 1", "metadata": {"external_id": "x+y"}, "sort": "updated_at asc",
                          "since": "2025-01-01T00:00:00+00:00", "skip": None})
    assert query == ("filter[number]=A%201&metadata[external_id]=x%2By&sort=updated_at%20asc"
                     "&since=2025-01-01T00%3A00%3A00%2B00%3A00")


def test_retry_after_is_read_as_seconds_or_ignored_when_unreadable():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_rate_limiter_never_admits_more_than_the_limit_within_one_second_of_completion():
    limiter = RequestRateLimiter(per_second=20)
    finished: list[float] = []
    started: list[float] = []
    lock = threading.Lock()

    def work():
        for _ in range(4):
            with limiter.slot():
                with lock:
                    started.append(time.monotonic())
                time.sleep(0.005)
                with lock:
                    finished.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started.sort()
    # any 21 consecutive starts span more than a second
    assert all(started[i + 20] - started[i] >= 1.0 for i in range(len(started) - 20))


def test_own_extras_do_not_become_request_headers(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection(
        "https://goapi.poweroffice.net/Demo/v2", "app-key", SECRET_CLIENT_KEY, SECRET_SUBSCRIPTION_KEY,
        requests_per_second=5, max_workers=3))
    hook = PowerOfficeGoHook()
    session = hook.get_conn()
    assert not {k.lower() for k in session.headers} & {"subscription_key", "requests_per_second", "max_workers",
                                                       "timeout", "verify"}
    assert session.auth is None and session.verify is True
    assert hook.token_url == "https://goapi.poweroffice.net/Demo/OAuth/Token"
    assert (hook.requests_per_second, hook.max_workers, hook.timeout) == (5.0, 3, 5.0)


def test_loading_the_connection_registers_its_secrets_with_the_airflow_masker(monkeypatch):
    from airflow.sdk.log import redact

    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection(
        "https://goapi.poweroffice.net/v2", "app-key-1234", SECRET_CLIENT_KEY, SECRET_SUBSCRIPTION_KEY))
    PowerOfficeGoHook().connection()
    masked = redact(f"client {SECRET_CLIENT_KEY} subscription {SECRET_SUBSCRIPTION_KEY}")
    assert SECRET_CLIENT_KEY not in masked and SECRET_SUBSCRIPTION_KEY not in masked


def test_invoiced_sends_the_api_key_as_user_with_an_empty_password(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", "test",
                                                                             max_in_flight=50))
    hook = InvoicedHook()
    session = hook.get_conn()
    assert (session.auth.username, session.auth.password) == ("test", "")
    assert "max_in_flight" not in session.headers
    assert hook.max_in_flight == 19  # capped below the server's 20


def test_creating_a_hook_does_no_io(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", raising=False)
    PowerOfficeGoHook(http_conn_id="does_not_exist")
    InvoicedHook(http_conn_id="does_not_exist")


def test_each_thread_gets_its_own_session(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("https://api.invoiced.com", "test"))
    hook = InvoicedHook()
    sessions = []
    thread = threading.Thread(target=lambda: sessions.append(hook.get_conn()))
    thread.start()
    thread.join()
    assert sessions[0] is not hook.get_conn() and hook.get_conn() is hook.get_conn()


def test_idempotency_keys_outside_6_to_64_characters_are_refused_before_sending(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection("http://127.0.0.1:9", "test"))
    with pytest.raises(ValueError, match="6 to 64"):
        InvoicedHook().create("customers", {"name": "X"}, idempotency_key="short")
