"""TLS certificates are verified by default (issue 5 §4): both hooks, built from https connections without a
``verify`` extra, have sessions that verify, and refuse a self-signed server; ``verify: false`` is an explicit
opt-out only."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import ssl
import threading

import pytest

from pogo_invoiced_sync.clients import ApiError, InvoicedClient, clear_shared_state
from pogo_invoiced_sync.hooks.invoiced import InvoicedHook
from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook


def _pogo(host: str, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "http",
            "host": host,
            "login": "application-key",
            "password": "client-key",
            "extra": {"subscription_key": "subscription-key", "timeout": 5, **extra},
        }
    )


def _invoiced(host: str, **extra) -> str:
    return json.dumps(
        {"conn_type": "http", "host": host, "login": "api-key", "password": "", "extra": {"timeout": 5, **extra}}
    )


@pytest.fixture(autouse=True)
def fresh_state():
    clear_shared_state()
    yield
    clear_shared_state()


@pytest.fixture
def real_endpoints(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", _pogo("https://goapi.poweroffice.net/v2"))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", _invoiced("https://api.invoiced.com"))


@pytest.mark.parametrize("hook_class", [PowerOfficeGoHook, InvoicedHook])
def test_a_hook_on_an_https_connection_without_a_verify_extra_verifies_certificates(real_endpoints, hook_class):
    session = hook_class().get_conn().session
    assert session.verify is True
    # What requests will actually use for a call (environment CA bundles may name a file; never False).
    settings = session.merge_environment_settings("https://example.invalid/", {}, None, session.verify, None)
    assert settings["verify"] not in (False, None, "")


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 that no trust store knows."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer([])

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer({"access_token": "t", "expires_in": 600})

    def log_message(self, *args):
        pass


@pytest.fixture
def self_signed_server(tmp_path):
    cert, key = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def _list(client) -> list:
    return [
        row
        for page in client.iter_pages("customers" if isinstance(client, InvoicedClient) else "Customers")
        for row in page
    ]


@pytest.mark.parametrize("hook_class", [PowerOfficeGoHook, InvoicedHook])
def test_a_self_signed_server_is_refused_by_default_and_accepted_only_when_the_connection_says_so(
    self_signed_server, monkeypatch, hook_class
):
    url, ca_bundle = self_signed_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")  # as on many hosts
    env, conn = (
        ("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", lambda **e: _pogo(f"{url}/v2", **e))
        if hook_class is PowerOfficeGoHook
        else ("AIRFLOW_CONN_INVOICED_DEFAULT", lambda **e: _invoiced(url, **e))
    )
    monkeypatch.setenv(env, conn())
    with pytest.raises(ApiError, match="TLS error"):
        _list(hook_class(max_attempts=1).get_conn())
    clear_shared_state()
    monkeypatch.setenv(env, conn(verify=False))
    assert (
        _list(hook_class(max_attempts=1).get_conn()) == []
    )  # the same server answers once verification is switched off
    clear_shared_state()
    # A private CA named in the connection wins over the environment's bundle (requests would let the
    # environment override it unless the hook passes verify with each request).
    monkeypatch.setenv(env, conn(verify=ca_bundle))
    assert _list(hook_class(max_attempts=1).get_conn()) == []
