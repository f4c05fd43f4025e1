"""Airflow hook for PowerOffice Go v2: builds a :class:`~pogo_invoiced_sync.clients.PowerOfficeGoClient`.

Connection ``poweroffice_go_default`` (conn_type ``poweroffice_go``, or ``http``; JSON form)::

    {"conn_type": "poweroffice_go", "host": "https://goapi.poweroffice.net/v2",
     "login": "<application key>", "password": "<client key>",
     "extra": {"subscription_key": "<subscription key>", "requests_per_second": 10,
               "token_url": "https://goapi.poweroffice.net/OAuth/Token", "verify": true, "timeout": 60}}

``token_url`` defaults to ``host`` with its trailing ``/v2`` replaced by ``/OAuth/Token`` (so the demo host
``https://goapi.poweroffice.net/Demo/v2`` gets ``.../Demo/OAuth/Token``). Extras may also carry the connection
form's prefix (``extra__poweroffice_go__subscription_key``).

PowerOffice allows 10 requests per second per subscription key. Within one process every client using the same
subscription key shares one limiter and every client using the same keys shares one token. Across processes and
workers the Airflow pool ``poweroffice_go_api`` (1 slot) serialises the tasks that talk to PowerOffice Go, so the
process-local limiter is exact.
"""

from __future__ import annotations

from typing import Any

from pogo_invoiced_sync.clients.poweroffice_go import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUESTS_PER_SECOND,
    MAX_PAGE_SIZE,
    PowerOfficeGoClient,
    PowerOfficeGoSettings,
)
from pogo_invoiced_sync.hooks.base import ClientHook


class PowerOfficeGoHook(ClientHook[PowerOfficeGoClient]):
    """Connect to PowerOffice Go v2; :meth:`get_conn` returns the client (token, retries, shared 10 rps limiter).

    :param poweroffice_go_conn_id: connection id, default ``poweroffice_go_default``.
    :param limiter: a limiter instead of the process-wide one of the subscription key.
    :param client_kwargs: ``max_attempts`` (default 6), ``backoff_base`` (0.5 s), ``backoff_max`` (30 s).
    """

    conn_name_attr = "poweroffice_go_conn_id"
    default_conn_name = "poweroffice_go_default"
    conn_type = "poweroffice_go"
    hook_name = "PowerOffice Go"
    system = "PowerOffice Go"

    def __init__(self, poweroffice_go_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(poweroffice_go_conn_id, **kwargs)
        self.poweroffice_go_conn_id = self.conn_id

    def _secrets(self, conn: Any) -> list[str | None]:
        return [conn.login, conn.password, self.extra(conn, "subscription_key")]

    def _client_from(self, conn: Any, base_url: str) -> PowerOfficeGoClient:
        name = f"Connection {self.conn_id!r}"
        if not conn.login or not conn.password:
            raise ValueError(f"{name}: login (application key) and password (client key) are required")
        subscription_key = self.extra(conn, "subscription_key")
        if not subscription_key:
            raise ValueError(f"{name}: extra 'subscription_key' is required")
        token_url = self.extra(conn, "token_url")
        if not token_url and not base_url.lower().endswith("/v2"):
            raise ValueError(f"{name}: host must end with /v2, or set extra 'token_url'")
        page_size = self.number(conn, "page_size", DEFAULT_PAGE_SIZE, int)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"{name}: page_size must be between 1 and {MAX_PAGE_SIZE}")
        settings = PowerOfficeGoSettings(
            **self.common_settings(conn, base_url),
            application_key=conn.login,
            client_key=conn.password,
            subscription_key=str(subscription_key),
            token_url=token_url,
            requests_per_second=self.number(conn, "requests_per_second", DEFAULT_REQUESTS_PER_SECOND),
            max_workers=self.number(conn, "max_workers", 4, int),
            page_size=page_size,
        )
        return PowerOfficeGoClient(settings, **self.client_options())
