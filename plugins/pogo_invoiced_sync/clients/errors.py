"""Errors of the API clients: what failed, whether repeating can help, and what to fix (never a secret)."""

from __future__ import annotations

from typing import Any

#: Refusals of the caller's set-up (credentials, payment, privileges), not of a record: no retry can pass them.
CONFIGURATION_STATUSES = frozenset({401, 402, 403})


class ApiError(Exception):
    """A call to an external API failed; ``str()`` carries the API's own message but never a secret."""

    #: Set on a configuration failure: where the settings came from (an Airflow connection id), the host, what to fix.
    conn_id: str | None = None
    host: str | None = None
    fix: str | None = None

    def __init__(
        self,
        system: str,
        status: int | None,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        body: Any = None,
    ) -> None:
        self.system = system
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.body = body
        where = f" {method} {path}" if method and path else ""
        code = f" -> HTTP {status}" if status is not None else ""
        super().__init__(f"{system}{where}{code}: {message}")

    @property
    def needs_configuration(self) -> bool:
        """True when the set-up is at fault (credentials, payment, privileges): fix the connection, do not retry."""
        return self.status in CONFIGURATION_STATUSES


class RetryableApiError(ApiError):
    """Retries ran out on a transient failure (429, 5xx, network); trying again later may succeed."""


class AmbiguousWriteError(RetryableApiError):
    """A write not safe to repeat failed after it may have reached the server; look the record up before retrying."""


class PermanentApiError(ApiError):
    """The API refused the request (4xx): the record's or the caller's fault; repeating will not help."""


class NotFoundError(PermanentApiError):
    """HTTP 404: the object (or something the body refers to) does not exist."""


class ConflictError(PermanentApiError):
    """HTTP 409: e.g. deleting something still in use."""


class PermissionDeniedError(PermanentApiError):
    """HTTP 403: the credentials are valid but lack a privilege or module; a renewed token would not help."""


class AuthenticationError(ApiError):
    """Credentials were refused (401, also after one token renewal; 402), or the token request failed."""

    needs_configuration = True


class ConnectionConfigError(ApiError, ValueError):
    """The connection does not exist, or lacks (or has an unreadable) field the client needs."""

    needs_configuration = True


class MalformedResponseError(ApiError):
    """The API answered 2xx with something unusable (not JSON, no id, wrong shape)."""


def configuration_message(exc: ApiError) -> str:
    """The fail-fast message of a configuration failure: what was refused, the connection and host, what to fix."""
    where = f"connection {exc.conn_id!r}" if exc.conn_id else "the connection"
    if exc.host:
        where += f" (host {exc.host})"
    return (
        f"{exc}. Fix the Airflow {where}: {exc.fix or 'check its credentials and settings'}. Not retried: "
        "repeating the call cannot succeed until the connection is fixed."
    )
