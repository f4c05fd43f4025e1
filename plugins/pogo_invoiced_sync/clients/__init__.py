"""Plain clients of the PowerOffice Go and Invoiced APIs, free of Airflow; the hooks build them from connections."""

from __future__ import annotations

from pogo_invoiced_sync.clients.base import ApiClient, ApiSettings
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
    configuration_message,
)
from pogo_invoiced_sync.clients.invoiced import InvoicedClient, InvoicedSettings
from pogo_invoiced_sync.clients.limits import InFlightLimiter, Limiter, RequestRateLimiter, clear_shared_state
from pogo_invoiced_sync.clients.listing import Listing
from pogo_invoiced_sync.clients.poweroffice_go import PowerOfficeGoClient, PowerOfficeGoSettings

__all__ = [
    "AmbiguousWriteError",
    "ApiClient",
    "ApiError",
    "ApiSettings",
    "AuthenticationError",
    "ConflictError",
    "ConnectionConfigError",
    "InFlightLimiter",
    "InvoicedClient",
    "InvoicedSettings",
    "Limiter",
    "Listing",
    "MalformedResponseError",
    "NotFoundError",
    "PermanentApiError",
    "PermissionDeniedError",
    "PowerOfficeGoClient",
    "PowerOfficeGoSettings",
    "RequestRateLimiter",
    "RetryableApiError",
    "clear_shared_state",
    "configuration_message",
]
