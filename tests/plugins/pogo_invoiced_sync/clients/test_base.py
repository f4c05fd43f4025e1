"""Behaviour of the clients that needs no server: patches, query strings, limiters, sessions, settings."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from pogo_invoiced_sync.clients import InvoicedClient, InvoicedSettings, PowerOfficeGoClient, PowerOfficeGoSettings
from pogo_invoiced_sync.clients.base import encode_query, parse_retry_after
from pogo_invoiced_sync.clients.limits import RequestRateLimiter


def invoiced_client(base_url: str = "https://api.invoiced.com", api_key: str = "test", **settings) -> InvoicedClient:
    return InvoicedClient(InvoicedSettings(base_url=base_url, api_key=api_key, timeout=5, **settings))


def test_json_patch_turns_dotted_paths_into_replace_operations():
    ops = PowerOfficeGoClient.json_patch({"Name": "X", "MailAddress.City": "Oslo"})
    assert ops == [
        {"op": "replace", "path": "/Name", "value": "X"},
        {"op": "replace", "path": "/MailAddress/City", "value": "Oslo"},
    ]


def test_json_patch_adds_the_whole_parent_when_the_current_parent_is_null():
    ops = PowerOfficeGoClient.json_patch(
        {"MailAddress.City": "Oslo", "MailAddress.ZipCode": "0150", "Name": "X"},
        current={"Name": "Y", "mailAddress": None},
    )
    assert ops == [
        {"op": "add", "path": "/MailAddress", "value": {"City": "Oslo", "ZipCode": "0150"}},
        {"op": "replace", "path": "/Name", "value": "X"},
    ]


def test_json_patch_replaces_nested_fields_of_a_parent_absent_from_a_partial_current():
    ops = PowerOfficeGoClient.json_patch({"MailAddress.City": "Oslo", "Name": "X"}, current={"StreetAddress": None})
    assert ops == [
        {"op": "replace", "path": "/MailAddress/City", "value": "Oslo"},
        {"op": "replace", "path": "/Name", "value": "X"},
    ]


def test_json_patch_replaces_nested_fields_when_the_current_parent_exists():
    ops = PowerOfficeGoClient.json_patch({"MailAddress.City": "Oslo"}, current={"MailAddress": {"City": "Bergen"}})
    assert ops == [{"op": "replace", "path": "/MailAddress/City", "value": "Oslo"}]


def test_query_strings_keep_brackets_and_encode_plus_and_spaces():
    query = encode_query(
        {
            "filter[number]": "A 1",
            "metadata": {"external_id": "x+y"},
            "sort": "updated_at asc",
            "since": "2025-01-01T00:00:00+00:00",
            "skip": None,
        }
    )
    assert query == (
        "filter[number]=A%201&metadata[external_id]=x%2By&sort=updated_at%20asc&since=2025-01-01T00%3A00%3A00%2B00%3A00"
    )


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


def test_invoiced_sends_the_api_key_as_user_with_an_empty_password():
    client = invoiced_client(max_in_flight=50)
    session = client.session
    assert (session.auth.username, session.auth.password) == ("test", "")
    assert "max_in_flight" not in session.headers
    assert client.max_in_flight == 20  # capped at the server's 20


def test_poweroffice_go_sends_no_session_auth_and_derives_the_token_url_beside_v2():
    client = PowerOfficeGoClient(
        PowerOfficeGoSettings(
            base_url="https://goapi.poweroffice.net/Demo/v2",
            application_key="app",
            client_key="client",
            subscription_key="sub",
        )
    )
    assert client.session.auth is None
    assert client.session.verify is True
    assert client.token_url == "https://goapi.poweroffice.net/Demo/OAuth/Token"


def test_settings_keep_their_secrets_out_of_repr():
    settings = PowerOfficeGoSettings(
        base_url="https://goapi.poweroffice.net/v2",
        application_key="app-secret",
        client_key="client-secret",
        subscription_key="sub-secret",
    )
    text = repr(settings) + repr(InvoicedSettings(base_url="https://api.invoiced.com", api_key="key-secret"))
    assert "secret" not in text


def test_each_thread_gets_its_own_session():
    client = invoiced_client()
    sessions = []
    thread = threading.Thread(target=lambda: sessions.append(client.session))
    thread.start()
    thread.join()
    assert sessions[0] is not client.session
    assert client.session is client.session


def test_an_injected_limiter_holds_a_slot_for_every_request():
    class Counting:
        def __init__(self):
            self.slots = 0

        def slot(self):
            self.slots += 1
            return RequestRateLimiter(1000).slot()

    limiter = Counting()
    client = InvoicedClient(
        InvoicedSettings(base_url="http://127.0.0.1:9", api_key="test", timeout=1), limiter=limiter, max_attempts=1
    )
    with pytest.raises(Exception, match="connect error"):
        client.get("customers/1")
    assert limiter.slots == 1
    assert client.limiter is limiter


def test_idempotency_keys_outside_6_to_64_characters_are_refused_before_sending():
    with pytest.raises(ValueError, match="6 to 64"):
        invoiced_client("http://127.0.0.1:9").create("customers", {"name": "X"}, idempotency_key="short")


class _RecordingProxy(http.server.BaseHTTPRequestHandler):
    """An HTTP proxy that answers every request itself and keeps its request line."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.requestline)
        body = json.dumps({"id": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_calls_go_through_the_proxy_the_environment_names(monkeypatch):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
        client = invoiced_client(base_url="http://invoiced.example.test")

        assert client.get("/customers/1") == {"id": 1}
        assert client.get("/customers/2") == {"id": 1}
        assert _RecordingProxy.seen == [
            "GET http://invoiced.example.test/customers/1 HTTP/1.1",
            "GET http://invoiced.example.test/customers/2 HTTP/1.1",
        ]
    finally:
        proxy.shutdown()
        proxy.server_close()
