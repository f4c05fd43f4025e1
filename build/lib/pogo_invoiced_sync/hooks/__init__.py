"""Airflow hooks for PowerOffice Go and Invoiced, and the errors they raise."""
from __future__ import annotations

from .common import (
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
from .invoiced import InvoicedHook
from .poweroffice_go import PowerOfficeGoHook

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
