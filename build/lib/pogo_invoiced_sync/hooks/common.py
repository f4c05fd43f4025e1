"""Shared machinery of the PowerOffice Go and Invoiced hooks: errors, the retrying request loop, rate limiters.

Both hooks subclass :class:`~airflow.providers.http.hooks.http.HttpHook` for its connection handling (base URL,
TLS, proxies, keep-alive) but own the request loop, because ``HttpHook.run`` neither retries safely per method
nor honours ``Retry-After`` nor maps API error bodies.

Rate limits are enforced per credential *within one process* by module-level limiters. Across processes and
workers the Airflow pools ``poweroffice_go_api`` and ``invoiced_api`` (one slot each) serialise the tasks that talk
to one API, so the process-local limiter is exact.
"""
from __future__ import annotations

import collections
import contextlib
import email.utils
import hashlib
import json
import random
import threading
import time
import types
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from airflow.providers.common.compat.sdk import AirflowException, AirflowNotFoundException
from airflow.providers.http.hooks.http import HttpHook

try:  # Airflow 3: masks in the task process and tells the supervisor too
    from airflow.sdk.log import mask_secret
except ImportError:  # pragma: no cover - Airflow 2 fallback
    from airflow.utils.log.secrets_masker import mask_secret

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Refusals of the caller's set-up (credentials, payment, privileges), not of a record: no retry can pass them.
CONFIGURATION_STATUSES = frozenset({401, 402, 403})


# --------------------------------------------------------------------------------------------------- errors


class ApiError(AirflowException):
    """A call to an external API failed; ``str()`` carries the API's own message but never a secret."""

    #: Set by the hook on a configuration failure: the connection id, its host, and what to fix.
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
    """A non-repeatable write failed after it may have reached the server; look the record up before retrying."""


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
    """The Airflow connection does not exist, or lacks a field the hook needs."""

    needs_configuration = True


class MalformedResponseError(ApiError):
    """The API answered 2xx with something unusable (not JSON, no id, wrong shape)."""


def configuration_message(exc: ApiError) -> str:
    """The fail-fast message of a configuration failure: what was refused, the connection and host, what to fix."""
    where = f"connection {exc.conn_id!r}" if exc.conn_id else "the connection"
    if exc.host:
        where += f" (host {exc.host})"
    return (f"{exc}. Fix the Airflow {where}: {exc.fix or 'check its credentials and settings'}. Not retried: "
            "repeating the call cannot succeed until the connection is fixed.")


# --------------------------------------------------------------------------------------------------- limiters


class RequestRateLimiter:
    """At most ``per_second`` requests in any one-second window, spaced evenly; safe across threads.

    A slot is only freed one second after its request *completed*: the server's window counts arrivals, which
    happen somewhere between our send and our receipt, so counting from completion can never exceed its limit,
    whatever the latency or thread scheduling.
    """

    def __init__(self, per_second: float, margin: float = 0.01) -> None:
        if per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.limit = max(1, int(per_second))
        self.interval = 1.0 / per_second
        self.margin = margin
        self._cond = threading.Condition()
        self._in_flight = 0
        self._cooling: collections.deque[float] = collections.deque()  # monotonic times slots become free
        self._next_start = 0.0

    def acquire(self) -> float:
        """Block until a request may start; return the seconds waited."""
        started = time.monotonic()
        with self._cond:
            while True:
                now = time.monotonic()
                while self._cooling and self._cooling[0] <= now:
                    self._cooling.popleft()
                if self._in_flight + len(self._cooling) >= self.limit:
                    timeout = self._cooling[0] - now if self._cooling else None
                elif now < self._next_start:
                    timeout = self._next_start - now
                else:
                    self._in_flight += 1
                    self._next_start = now + self.interval
                    return now - started
                self._cond.wait(timeout)

    def release(self) -> None:
        """Mark one request as completed; its slot cools down for a second."""
        with self._cond:
            self._in_flight -= 1
            self._cooling.append(time.monotonic() + 1.0 + self.margin)
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a slot for the duration of one request; yields the seconds waited."""
        waited = self.acquire()
        try:
            yield waited
        finally:
            self.release()


class InFlightLimiter:
    """At most ``limit`` requests in flight at once; safe across threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one of the slots for the duration of one request; yields the seconds waited."""
        started = time.monotonic()
        self._semaphore.acquire()
        try:
            yield time.monotonic() - started
        finally:
            self._semaphore.release()


_REGISTRY_LOCK = threading.Lock()
_REGISTRY: dict[tuple, Any] = {}


def shared(kind: str, key_parts: tuple, factory) -> Any:
    """Return the process-wide object of ``kind`` for a credential, creating it once (first settings win)."""
    key = (kind, credential_fingerprint(*key_parts))
    with _REGISTRY_LOCK:
        if key not in _REGISTRY:
            _REGISTRY[key] = factory()
        return _REGISTRY[key]


def clear_shared_state() -> None:
    """Forget every shared limiter and token (tests; a process normally keeps them for its lifetime)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def credential_fingerprint(*parts: Any) -> str:
    """Hash credential parts, so that registries never hold secrets as keys."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------- helpers


def encode_query(params: Mapping[str, Any] | None) -> str:
    """Percent-encode a query string: spaces as ``%20``, ``+`` as ``%2B``, brackets kept (``filter[x]=``).

    Nested dicts become bracket keys (``{"metadata": {"k": "v"}}`` → ``metadata[k]=v``); ``None`` values are dropped.
    """
    flat: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), inner)
        elif isinstance(value, (list, tuple)):
            for inner in value:
                flat.append((prefix, _scalar(inner)))
        else:
            flat.append((prefix, _scalar(value)))

    walk("", dict(params or {}))
    return urlencode(flat, quote_via=lambda s, safe, enc, err: quote(s, safe="[]"))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_retry_after(value: str | None) -> float | None:
    """Read ``Retry-After`` as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def find_key(data: Any, name: str) -> Any:
    """Look up ``name`` in a dict case-insensitively (PowerOffice mixes PascalCase and camelCase)."""
    if not isinstance(data, Mapping):
        return None
    if name in data:
        return data[name]
    lowered = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def is_connect_failure(exc: requests.RequestException) -> bool:
    """Tell whether the request failed before anything was sent (so that even a POST may be repeated)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError) or not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


class _Retry(Exception):
    """Internal: one attempt failed in a way that may be repeated."""

    def __init__(self, status: int | None, message: str, wait: float | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.wait = wait
        self.body = body


class _RenewAuth(Exception):
    """Internal: the credentials were refused; renew them once and repeat the call."""


_NOT_FOUND = object()


# --------------------------------------------------------------------------------------------------- base hook


class ApiHook(HttpHook):
    """An :class:`HttpHook` with a thread-safe, retrying, rate-limited request loop for one JSON API.

    :param http_conn_id: Airflow connection id (conn_type ``http``, JSON form with a full URL in ``host``).
    :param max_attempts: attempts per call, including the first.
    :param backoff_base: first backoff in seconds; doubles per attempt, with jitter.
    :param backoff_max: cap of one backoff wait (an honoured ``Retry-After`` may be longer).
    """

    system: ClassVar[str] = "API"
    #: Extras this hook reads itself; removed before HttpHook turns extras into request headers.
    #: (``timeout`` and ``verify`` are reserved by HttpHook and never become headers.)
    own_extras: ClassVar[frozenset[str]] = frozenset()
    #: Shortest wait after a 429 without ``Retry-After``.
    min_429_wait: ClassVar[float] = 0.0
    default_timeout: ClassVar[float] = 60.0
    #: Longest ``Retry-After`` honoured; a server asking for more gets this.
    max_retry_after: ClassVar[float] = 120.0

    def __init__(
        self,
        http_conn_id: str | None = None,
        *,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=http_conn_id or self.default_conn_name, **kwargs)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._local = threading.local()
        self._conn_lock = threading.Lock()
        self._conn: Any = None
        self._stats_lock = threading.Lock()
        self._calls: collections.Counter = collections.Counter()
        self._statuses: collections.Counter = collections.Counter()
        self._retries = 0
        self._auth_renewals = 0
        self._limiter_wait = 0.0
        self.listing_total: int | None = None

    # ------------------------------------------------------------------ connection and sessions

    def connection(self) -> Any:
        """Load the Airflow connection once (thread-safe), register its secrets for masking, set the base URL."""
        if self._conn is None:
            with self._conn_lock:
                if self._conn is None:
                    try:
                        conn = self.get_connection(self.http_conn_id)
                    except AirflowNotFoundException:
                        raise self._explained(ConnectionConfigError(
                            self.system, None, f"connection {self.http_conn_id!r} does not exist")) from None
                    for secret in self._secrets(conn):
                        if secret:
                            mask_secret(secret)
                    self._set_base_url(conn)
                    self.base_url = self.base_url.rstrip("/")
                    try:
                        self._configure(conn)
                    except ValueError as exc:  # a missing or unreadable field: the message names it
                        raise self._explained(ConnectionConfigError(self.system, None, str(exc))) from None
                    self._conn = conn
        return self._conn

    def _explained(self, exc: ApiError) -> ApiError:
        """Attach the connection id, its host and what to fix to a configuration failure (no secret in them)."""
        if exc.conn_id is None:
            exc.conn_id = self.http_conn_id
            exc.host = getattr(self, "base_url", None) or None
            exc.fix = self._configuration_fix(exc)
        return exc

    def _configuration_fix(self, exc: ApiError) -> str:
        """What to change when ``exc`` is a configuration failure (hooks name their own fields)."""
        if isinstance(exc, ConnectionConfigError):
            if "does not exist" in exc.message:
                return (f"create the connection {self.http_conn_id!r} (README, Configuration: Connections), or "
                        "point the task's api_conn_id at an existing one")
            return "fill in or correct the field the message names"
        if exc.status == 403:
            return f"give the credentials the permission the call needs in {self.system}"
        return "check the credentials in the connection (login, password, extras) and that they belong to this host"

    def _secrets(self, conn: Any) -> list[str]:
        """Secrets of the connection to mask in logs."""
        return [conn.password] if conn.password else []

    def _configure(self, conn: Any) -> None:
        """Read the hook's own extras (called once, under the connection lock)."""
        extra = conn.extra_dejson
        self.timeout = float(extra.get("timeout", self.default_timeout))

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        """Return this thread's ``requests.Session`` (one per thread: sessions are not thread-safe)."""
        if headers or extra_options:
            return super().get_conn(headers, extra_options)
        session = getattr(self._local, "session", None)
        if session is None:
            conn = self.connection()
            session = requests.Session()
            session = self._configure_session_from_auth(session, conn)
            session = self._configure_session_from_extra(session, conn, {})
            session = self._configure_session_from_mount_adapters(session)
            if self.default_headers:
                session.headers.update(self.default_headers)
            self._local.session = session
        return session

    def _configure_session_from_extra(self, session, connection, extra_options):
        """Apply HttpHook's reserved extras (verify, proxies, ...) but not ours, which it would send as headers."""
        extra = {k: v for k, v in connection.extra_dejson.items() if k not in self.own_extras}
        view = types.SimpleNamespace(host=connection.host, extra_dejson=extra)
        return super()._configure_session_from_extra(session, view, extra_options)

    def _configure_session_from_mount_adapters(self, session):
        """Give each session its own adapter: a shared pool of 10 would drop connections with many threads."""
        if self.adapter is not None:
            return super()._configure_session_from_mount_adapters(session)
        adapter: HTTPAdapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    # ------------------------------------------------------------------ stats

    @property
    def stats(self) -> dict[str, Any]:
        """Calls by method and status, retries, token renewals and seconds spent waiting in the limiter."""
        with self._stats_lock:
            return {
                "calls": dict(self._calls),
                "calls_total": sum(self._calls.values()),
                "statuses": dict(self._statuses),
                "retries": self._retries,
                "auth_renewals": self._auth_renewals,
                "limiter_wait_seconds": round(self._limiter_wait, 3),
            }

    def _count(self, method: str, status: int | str, waited: float) -> None:
        with self._stats_lock:
            self._calls[method] += 1
            self._statuses[str(status)] += 1
            self._limiter_wait += waited

    # ------------------------------------------------------------------ what subclasses provide

    def _limiter(self) -> Any:
        """The process-wide limiter of this credential (an object with ``slot()``)."""
        raise NotImplementedError

    def _auth_headers(self) -> dict[str, str]:
        """Headers authenticating one call (may fetch a token)."""
        return {}

    def _renew_auth(self, used_headers: Mapping[str, str]) -> bool:
        """Drop the credentials used for a refused call; return False if nothing can be renewed."""
        return False

    def _error_message(self, body: Any, text: str) -> str:
        """The API's own human message from an error body."""
        raise NotImplementedError

    def _forbidden_message(self, method: str, path: str, message: str) -> str:
        """The text of a 403: the API's own words and what the account needs to allow."""
        return (f"permission denied ({message}): the credentials are valid but not allowed to {method} this "
                f"endpoint; give the integration the missing permission in {self.system}")

    def _default_429_wait(self, body: Any) -> float | None:
        """A wait read from a 429 body when the response has no ``Retry-After``."""
        return None

    # ------------------------------------------------------------------ the request loop

    def url_for(self, endpoint: str, params: Mapping[str, Any] | None = None) -> str:
        """Absolute URL of ``endpoint`` (a path, or an absolute URL taken verbatim) plus encoded ``params``."""
        self.connection()
        url = endpoint if urlsplit(endpoint).scheme else self.url_from_endpoint(endpoint)
        query = encode_query(params)
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        expect_json: bool = True,
        retry_unsafe: bool = False,
        not_found_ok: bool = False,
        authenticate: bool = True,
    ) -> requests.Response | None:
        """Send one logical call with retries; return the final 2xx response (None for a tolerated 404).

        :param retry_unsafe: the caller says repeating this (POST) is harmless, so retry it on 5xx, read
            timeouts and dropped connections too; without it a POST is retried only on 429 and connect errors.
        :param expect_json: a 2xx body must be JSON (an empty body is allowed for 204); a non-JSON body is
            treated as a transient gateway fault.
        """
        try:
            response = self._send(method, endpoint, params, json_body, data, headers, expect_json, retry_unsafe,
                                  not_found_ok, authenticate)
        except ApiError as exc:
            if exc.needs_configuration:
                self._explained(exc)
            raise
        if response is not None and method.upper() == "GET":
            total = self._listing_total(response)
            if total is not None:
                self.listing_total = total  # progress logs show "done / total" of the listing being read
        return response

    def _listing_total(self, response: requests.Response) -> int | None:
        """The record count of a whole listing, when the API's paging headers carry it."""
        return None

    def _send(self, method, endpoint, params, json_body, data, headers, expect_json, retry_unsafe, not_found_ok,
              authenticate):
        """The retry loop of :meth:`request`."""
        method = method.upper()
        url = self.url_for(endpoint, params)
        path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
        repeatable = method in IDEMPOTENT_METHODS or retry_unsafe
        payload = json.dumps(json_body, separators=(",", ":")) if json_body is not None else data
        attempt, renewed = 0, False
        while True:
            attempt += 1
            try:
                return self._attempt(method, url, path, payload, headers, expect_json, repeatable,
                                     not_found_ok, authenticate)
            except _RenewAuth as refused:
                status, message = refused.args
                if renewed or not self._renew_auth(self._local.last_auth):
                    raise AuthenticationError(self.system, status, message, method=method, path=path) from None
                renewed = True
                attempt -= 1  # a renewal is not a failed attempt
                with self._stats_lock:
                    self._auth_renewals += 1
                self.log.info("%s %s %s was refused (HTTP %s); renewing the token once", self.system, method,
                              path, status)
            except _Retry as failure:
                if attempt >= self.max_attempts:
                    raise RetryableApiError(
                        self.system, failure.status, f"{failure.message} (gave up after {attempt} attempts)",
                        method=method, path=path, body=failure.body,
                    ) from None
                wait = self._backoff(attempt, failure.wait)
                with self._stats_lock:
                    self._retries += 1
                self.log.warning("%s %s %s failed (%s); attempt %d/%d, retrying in %.2f s", self.system, method,
                                 path, failure.message, attempt, self.max_attempts, wait)
                time.sleep(wait)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; an honoured ``Retry-After`` replaces it (capped at ``max_retry_after``)."""
        exponential = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        jittered = random.uniform(exponential / 2, exponential)
        if retry_after is not None:
            # small spread so that threads told the same Retry-After do not return in lockstep
            return min(retry_after, self.max_retry_after) + random.uniform(0, min(0.1, jittered))
        return jittered

    def _attempt(self, method, url, path, payload, headers, expect_json, repeatable, not_found_ok, authenticate):
        """One HTTP exchange; raises _Retry/_RenewAuth/ApiError or returns the response."""
        session = self.get_conn()
        send_headers = dict(headers or {})
        auth = self._auth_headers() if authenticate else {}
        self._local.last_auth = auth  # kept out of exceptions: it holds the token
        send_headers.update(auth)
        if payload is not None and "Content-Type" not in send_headers:
            send_headers["Content-Type"] = "application/json"
        with self._limiter().slot() as waited:
            try:
                # verify passed explicitly, as HttpHook.run does: otherwise requests lets REQUESTS_CA_BUNDLE /
                # CURL_CA_BUNDLE override the connection's ``verify`` (a CA bundle path, or false) (psf/requests#3829).
                response = session.request(method, url, data=payload, headers=send_headers, verify=session.verify,
                                           timeout=(min(10.0, self.timeout), self.timeout))
            except requests.exceptions.SSLError as exc:
                self._count(method, "ssl-error", waited)
                raise ApiError(self.system, None, f"TLS error: {type(exc).__name__}", method=method,
                               path=path) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
                self._count(method, "network-error", waited)
                connect = is_connect_failure(exc)
                target = urlsplit(url)
                port = target.port or (443 if target.scheme == "https" else 80)
                reason = f"{'connect' if connect else 'network'} error {type(exc).__name__} to {target.hostname}:{port}"
                if connect or repeatable:
                    raise _Retry(None, reason) from None
                raise AmbiguousWriteError(self.system, None, f"{reason}; not repeated because the request may "
                                          "have been applied", method=method, path=path) from None
        self._count(method, response.status_code, waited)
        return self._check(response, method, path, auth, expect_json, repeatable, not_found_ok)

    def _check(self, response, method, path, auth, expect_json, repeatable, not_found_ok):
        """Map a response to a result or an error."""
        status = response.status_code
        if 200 <= status < 300:
            if expect_json and status != 204 and response.content.strip():
                try:
                    response.json()
                except ValueError:
                    self._transient_or_ambiguous(status, "response body is not JSON", repeatable, method, path,
                                                 response.text[:200])
            return response
        body = self._json_or_none(response)
        message = self._error_message(body, response.text[:300])
        if status == 404 and not_found_ok:
            return None
        if status == 401 and auth:
            raise _RenewAuth(status, message)
        if status == 403:
            # A missing privilege or module, not a stale token: renewing and repeating cannot help.
            raise PermissionDeniedError(self.system, status, self._forbidden_message(method, path, message),
                                        method=method, path=path, body=body)
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is None:
                wait = self._default_429_wait(body)
            if wait is None and self.min_429_wait:
                wait = self.min_429_wait
            raise _Retry(429, message, wait, body)
        if status in RETRYABLE_STATUSES or status >= 500:
            self._transient_or_ambiguous(status, message, repeatable, method, path, body)
        error_class = {401: AuthenticationError, 402: AuthenticationError,
                       404: NotFoundError, 409: ConflictError}.get(status, PermanentApiError)
        raise error_class(self.system, status, message, method=method, path=path, body=body)

    def _transient_or_ambiguous(self, status, message, repeatable, method, path, body):
        if repeatable:
            raise _Retry(status, message, None, body)
        raise AmbiguousWriteError(self.system, status, f"{message}; not repeated because the request may have "
                                  "been applied", method=method, path=path, body=body)

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def request_json(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """Like :meth:`request` but return the parsed JSON body (None for 204, an empty body or a tolerated 404)."""
        response = self.request(method, endpoint, **kwargs)
        if response is None or response.status_code == 204 or not response.content.strip():
            return None
        return response.json()

    def require_id(self, record: Any, method: str, endpoint: str) -> dict:
        """Return ``record`` if it is an object with an id, else raise :class:`MalformedResponseError`."""
        if not isinstance(record, dict) or find_key(record, "id") in (None, ""):
            shape = type(record).__name__ if not isinstance(record, dict) else f"keys {sorted(record)[:10]}"
            raise MalformedResponseError(self.system, None, f"expected an object with an id, got {shape}",
                                         method=method, path=endpoint)
        return record

    def test_connection(self) -> tuple[bool, str]:
        """Check credentials and reachability for the UI's Test button."""
        raise NotImplementedError
