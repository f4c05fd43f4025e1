"""Airflow hook for Invoiced: builds an :class:`~pogo_invoiced_sync.clients.InvoicedClient`.

Connection ``invoiced_default`` (conn_type ``invoiced``, or ``http``; JSON form)::

    {"conn_type": "invoiced", "host": "https://api.invoiced.com", "password": "<API key>",
     "extra": {"max_in_flight": 10, "verify": true, "timeout": 60}}

The API key is read from ``password``, else from ``login`` (where older connections keep it). Extras may also
carry the connection form's prefix (``extra__invoiced__max_in_flight``).

Invoiced allows at most 20 requests in flight per API key. Within one process every client using the same key shares
one semaphore of ``max_in_flight`` slots (default 10, at most the server's 20: set 20 only for a key that nothing
outside this deployment uses). Across processes and workers the slots are shared through the link-store database
(shared limits, on by default); the default tenant's Airflow pool ``invoiced_api`` (1 slot) also serialises the
tasks that talk to Invoiced.
"""

from __future__ import annotations

from typing import Any

from pogo_invoiced_sync.clients.invoiced import DEFAULT_MAX_IN_FLIGHT, InvoicedClient, InvoicedSettings
from pogo_invoiced_sync.hooks.base import ClientHook


class InvoicedHook(ClientHook[InvoicedClient]):
    """Connect to Invoiced; :meth:`get_conn` returns the client (retries, paging, shared in-flight limiter).

    :param invoiced_conn_id: connection id, default ``invoiced_default``.
    :param limiter: a limiter instead of the process-wide one of the API key.
    :param client_kwargs: ``max_attempts`` (default 6), ``backoff_base`` (0.5 s), ``backoff_max`` (30 s).
    """

    conn_name_attr = "invoiced_conn_id"
    default_conn_name = "invoiced_default"
    conn_type = "invoiced"
    hook_name = "Invoiced"
    system = "Invoiced"

    def __init__(self, invoiced_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(invoiced_conn_id, **kwargs)
        self.invoiced_conn_id = self.conn_id

    def _secrets(self, conn: Any) -> list[str | None]:
        return [conn.login, conn.password]

    def _client_from(self, conn: Any, base_url: str) -> InvoicedClient:
        api_key = conn.password or conn.login
        if not api_key:
            raise ValueError(f"Connection {self.conn_id!r}: password (the API key) is required")
        max_in_flight = self.number(conn, "max_in_flight", DEFAULT_MAX_IN_FLIGHT, int)
        if max_in_flight < 1:
            raise ValueError(f"Connection {self.conn_id!r}: max_in_flight must be at least 1")
        max_workers = self.extra(conn, "max_workers")
        settings = InvoicedSettings(
            **self.common_settings(conn, base_url),
            api_key=api_key,
            max_in_flight=max_in_flight,
            max_workers=None if max_workers is None else self.number(conn, "max_workers", 0, int),
        )
        return InvoicedClient(settings, **self.client_options())
