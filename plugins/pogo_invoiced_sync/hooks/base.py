"""What both hooks share: load the Airflow connection once, build the API client from it, explain what to fix."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.sdk.bases.hook import BaseHook
from airflow.sdk.log import mask_secret  # masks in the task process and tells the supervisor too

from pogo_invoiced_sync.clients.base import ApiClient
from pogo_invoiced_sync.clients.errors import ApiError, ConnectionConfigError
from pogo_invoiced_sync.clients.limits import Limiter

ClientT = TypeVar("ClientT", bound=ApiClient)
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


class ClientHook(BaseHook, Generic[ClientT]):
    """An Airflow hook whose :meth:`get_conn` returns the API client built from its connection (once per hook).

    :param conn_id: the Airflow connection (default: the hook's ``default_conn_name``).
    :param limiter: a limiter for the client instead of the process-wide one (an object with ``slot()``).
    :param client_kwargs: passed to the client (``max_attempts``, ``backoff_base``, ``backoff_max``).
    """

    conn_type: ClassVar[str]
    default_conn_name: ClassVar[str]
    system: ClassVar[str] = "API"

    def __init__(self, conn_id: str | None = None, *, limiter: Limiter | None = None, **client_kwargs: Any) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self.limiter = limiter
        self.client_kwargs = client_kwargs
        self._lock = threading.Lock()
        self._client: ClientT | None = None

    def get_conn(self) -> ClientT:
        """The API client of this hook's connection, built on first use (thread-safe; no I/O before that)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client

    def _build(self) -> ClientT:
        try:
            conn = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            raise self._explained(
                ConnectionConfigError(self.system, None, f"connection {self.conn_id!r} does not exist"),
                None,
                f"create the connection {self.conn_id!r} (README, Configuration: Connections), or point the "
                "task's api_conn_id at an existing one",
            ) from None
        for secret in self._secrets(conn):
            if secret:
                mask_secret(secret)
        base_url = self._base_url(conn)
        try:
            return self._client_from(conn, base_url)
        except ValueError as exc:  # a missing or unreadable field: the message names it
            message = str(exc) if str(exc).startswith("Connection ") else f"Connection {self.conn_id!r}: {exc}"
            raise self._explained(
                ConnectionConfigError(self.system, None, message),
                base_url or None,
                "fill in or correct the field the message names",
            ) from None

    def _explained(self, exc: ApiError, host: str | None, fix: str) -> ApiError:
        exc.conn_id, exc.host, exc.fix = self.conn_id, host, fix
        return exc

    @staticmethod
    def _base_url(conn: Any) -> str:
        """The API root: ``host`` as a full URL (or ``schema://host``, http by default), with ``port`` when set."""
        host = conn.host or ""
        url = host if "://" in host else f"{conn.schema or 'http'}://{host}" if host else ""
        if url and conn.port:
            url = f"{url}:{conn.port}"
        return url.rstrip("/")

    def extra(self, conn: Any, name: str, default: Any = None) -> Any:
        """An extra field, bare (``name``) or as the connection form stores it (``extra__<conn_type>__name``)."""
        extra: Mapping[str, Any] = conn.extra_dejson
        for key in (name, f"extra__{self.conn_type}__{name}"):
            value = extra.get(key)
            if value not in (None, ""):
                return value
        return default

    def number(self, conn: Any, name: str, default: float, kind: type = float) -> Any:
        """A numeric extra (a form may send it as text)."""
        value = self.extra(conn, name, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"Connection {self.conn_id!r}: extra {name!r} must be a number, got {value!r}") from None

    def common_settings(self, conn: Any, base_url: str) -> dict[str, Any]:
        """Settings every client takes: URL, timeout, TLS verification, proxies, and the connection id."""
        verify: Any = self.extra(conn, "verify", self.extra(conn, "verify_ssl", True))
        if isinstance(verify, str) and verify.strip().lower() in _TRUE | _FALSE:
            verify = verify.strip().lower() in _TRUE
        proxies = self.extra(conn, "proxies", self.extra(conn, "proxy"))
        return {
            "base_url": base_url,
            "timeout": self.number(conn, "timeout", 60.0),
            "verify": verify,
            "proxies": proxies if isinstance(proxies, Mapping) else None,
            "conn_id": self.conn_id,
        }

    def client_options(self) -> dict[str, Any]:
        """The client's keyword arguments: the injected limiter, attempts and backoff, and log masking."""
        return {"limiter": self.limiter, "on_secret": mask_secret, **self.client_kwargs}

    def _secrets(self, conn: Any) -> list[str | None]:
        """Secrets of the connection to mask in logs."""
        return [conn.password]

    def _client_from(self, conn: Any, base_url: str) -> ClientT:
        """Build the client from the connection (raise ValueError naming a missing or wrong field)."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """Check credentials and reachability for the UI's Test button (a message, never a traceback)."""
        try:
            return self.get_conn().check()
        except Exception as exc:  # the UI wants a message; messages carry no secrets
            return False, str(exc)
