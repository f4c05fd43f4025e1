"""Airflow hooks for PowerOffice Go and Invoiced (their ``get_conn()`` returns the API client), and its errors."""

from __future__ import annotations

from pogo_invoiced_sync.clients.errors import (
    AmbiguousWriteError,
    ApiError,
    AuthenticationError,
    ConflictError,
    ConnectionConfigError,
    MalformedResponseError,
    NotFoundError,
    PermanentApiError,
    PermissionDeniedError,
    RetryableApiError,
)
from pogo_invoiced_sync.hooks.invoiced import InvoicedHook
from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

__all__ = [
    "AmbiguousWriteError",
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "ConnectionConfigError",
    "InvoicedHook",
    "MalformedResponseError",
    "NotFoundError",
    "PermanentApiError",
    "PermissionDeniedError",
    "PowerOfficeGoHook",
    "RetryableApiError",
]
