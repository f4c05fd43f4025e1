"""The OAuth 2.0 client-credentials token endpoint and bearer-token checks of PowerOffice Go."""
from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid

# The privileges the sandbox's integration holds, as the JWT ``role`` claim lists them.
ROLES = ["Customer", "Customer_Full", "ContactPerson", "ContactPerson_Full", "SalesOrders", "SalesOrders_Full"]
CLIENT_ID = "6f0d6b52-2b5c-4a59-9d8e-3c1f2a7b9e10"
CLIENT_NAME = "Sandbox Demo AS"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """Return ``(application key, client key)`` from a Basic header, or None when it is absent or malformed."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    application_key, client_key = decoded.split(":", 1)
    return application_key, client_key


def client_identity(client_key: str, default_key: str) -> tuple[str, str]:
    """``(ClientId, ClientName)`` of the client a client key opens: the sandbox's own, or one derived from the key."""
    if client_key == default_key:
        return CLIENT_ID, CLIENT_NAME
    return str(uuid.uuid5(uuid.UUID(CLIENT_ID), client_key)), f"Sandbox Client {client_key[:24]}"


class Tokens:
    """Issued access tokens with their expiry; each is valid only in the environment (prod or demo) that issued it."""

    def __init__(self) -> None:
        self._expiry: dict[str, tuple] = {}

    def clear(self) -> None:
        """Forget every token."""
        self._expiry.clear()

    def issue(self, environment: str, ttl: int, client: str | None = None,
              identity: tuple[str, str] = (CLIENT_ID, CLIENT_NAME)) -> str:
        """Mint a JWT-looking opaque token that expires ``ttl`` seconds from now, bound to ``client`` (its key)."""
        now = time.time()
        # Drop expired tokens now and then so the table stays small under long runs.
        if len(self._expiry) > 1000:
            self._expiry = {t: v for t, v in self._expiry.items() if v[0] > now}
        claims = {"iss": "https://goapi.poweroffice.net", "aud": "goapi", "iat": int(now), "nbf": int(now),
                  "exp": int(now + ttl), "goClientId": identity[0], "goClientName": identity[1],
                  "goActiveClientSubscriptions": ["Invoicing"], "goInvalidPrivileges": [], "role": ROLES,
                  "jti": secrets.token_hex(16)}
        token = ".".join([_b64({"alg": "RS256", "typ": "JWT"}), _b64(claims), secrets.token_urlsafe(32)])
        self._expiry[token] = (now + ttl, environment, client)
        return token

    def valid(self, token: str | None, environment: str) -> bool:
        """Tell whether ``token`` was issued for ``environment`` and has not expired."""
        entry = self._expiry.get(token or "")
        return entry is not None and entry[1] == environment and time.time() < entry[0]

    def client(self, token: str | None) -> str | None:
        """The client key ``token`` was issued to (None for tokens of older snapshots)."""
        entry = self._expiry.get(token or "")
        return entry[2] if entry is not None and len(entry) > 2 else None
