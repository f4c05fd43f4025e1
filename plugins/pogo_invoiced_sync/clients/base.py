"""The request loop shared by the API clients: sessions, authentication, retries, limiting and statistics.

A client is built from a plain settings object and owns everything between a method call and the HTTP exchange:
a ``requests`` session per thread (sessions are not thread-safe), the credentials, TLS verification, timeouts,
a retry loop (tenacity) that honours ``Retry-After`` and repeats only what is safe to repeat, and counters of
what it did. It imports nothing from Airflow; the hooks build clients from Airflow connections.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote, urlencode, urlsplit

import requests
import tenacity
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

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
from pogo_invoiced_sync.clients.limits import Limiter

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    """What every client needs: where the API is and how to talk to it.

    :param base_url: the API's root URL (e.g. ``https://api.invoiced.com``); paths are joined to it.
    :param timeout: read timeout of one request in seconds (connecting gets at most 10 s).
    :param verify: TLS verification: True, False (explicit opt-out only) or the path of a CA bundle.
    :param proxies: ``requests`` proxies by scheme, if any.
    :param conn_id: where these settings came from (an Airflow connection id), named in configuration errors.
    """

    base_url: str
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    conn_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", (self.base_url or "").rstrip("/"))
        if not urlsplit(self.base_url).scheme:
            raise ValueError(f"host must be a full URL with its scheme (https://...), got {self.base_url!r}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


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
    return urlencode(flat, safe="[]", quote_via=quote)


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


_UNPARSED = object()


def json_body(response: requests.Response) -> Any:
    """The response's JSON body, parsed once: the client checks it is JSON, and the caller then reads it."""
    body = getattr(response, "_pogo_json", _UNPARSED)
    if body is _UNPARSED:
        body = response.json()
        response._pogo_json = body  # type: ignore[attr-defined]
    return body


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


class _Adapter(TCPKeepAliveAdapter):
    """Keep-alive adapter that works out a connection pool's key once per origin and TLS setting, not per request."""

    def __init__(self, **kwargs: Any) -> None:
        self._pool_keys: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # requests stats a CA bundle path (isdir) on every request: a syscall that gives the GIL away under load.
        split = urlsplit(request.url or "")
        key = (split.scheme, split.hostname, split.port, verify, tuple(cert) if isinstance(cert, list) else cert)
        found = self._pool_keys.get(key)
        if found is None:
            found = self._pool_keys[key] = super().build_connection_pool_key_attributes(request, verify, cert)
        return dict(found[0]), dict(found[1])


class _ThreadStats:
    """One thread's call counters, under a lock of its own (uncontended: no wait on the hot path)."""

    __slots__ = ("calls", "limiter_wait", "lock", "statuses")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.limiter_wait = 0.0


class ApiClient:
    """A thread-safe, retrying, rate-limited request loop for one JSON API.

    :param settings: where the API is and how to reach it.
    :param limiter: the limiter every request holds a slot of (default: the process-wide one of the credential).
    :param max_attempts: attempts per call, including the first.
    :param backoff_base: first backoff in seconds; doubles per attempt, with jitter.
    :param backoff_max: cap of one backoff wait (an honoured ``Retry-After`` may be longer).
    :param on_secret: called with every secret the client learns at run time (a token), e.g. to mask it in logs.
    """

    system: ClassVar[str] = "API"
    #: Shortest wait after a 429 without ``Retry-After``.
    min_429_wait: ClassVar[float] = 0.0
    #: Longest ``Retry-After`` honoured; a server asking for more gets this.
    max_retry_after: ClassVar[float] = 120.0

    def __init__(
        self,
        settings: ApiSettings,
        *,
        limiter: Limiter | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.settings = settings
        self.base_url = settings.base_url
        self.timeout = float(settings.timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.log = logging.getLogger(f"{__name__.rsplit('.', 1)[0]}.{type(self).__name__}")
        self._on_secret = on_secret
        self._limiter_override = limiter
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self._thread_stats: list[_ThreadStats] = []
        self._retries = 0
        self._auth_renewals = 0
        self.listing_total: int | None = None

    # ------------------------------------------------------------------ sessions

    @property
    def session(self) -> requests.Session:
        """This thread's ``requests.Session`` (one per thread: sessions are not thread-safe)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = self._session_auth()
            session.verify = self.settings.verify
            if self.settings.proxies:
                session.proxies.update(self.settings.proxies)
            # Each session gets its own adapter: a shared pool of 10 would drop connections with many threads.
            adapter = _Adapter(idle=120, count=20, interval=30)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            self._local.send_settings = {}
        return session

    def _send_settings(self, session: requests.Session, url: str) -> dict[str, Any]:
        """Proxies, CA bundle and stream flag for ``url`` as ``Session.request`` merges them from the environment.

        Worked out once per thread and origin: requests reads the whole environment (proxies, ``no_proxy``,
        ``REQUESTS_CA_BUNDLE``) on every request otherwise. The environment is read when a thread first calls.
        """
        split = urlsplit(url)
        origin = (split.scheme, split.netloc)
        cache: dict[tuple[str, str], dict[str, Any]] = self._local.send_settings
        found = cache.get(origin)
        if found is None:
            # verify passed explicitly: otherwise requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
            # the settings' ``verify`` (a CA bundle path, or false) (psf/requests#3829).
            found = cache[origin] = dict(session.merge_environment_settings(url, {}, None, session.verify, None))
        return found

    def _session_auth(self) -> Any:
        """Authentication every request of a session carries (None: calls add headers instead)."""
        return None

    def _secret(self, value: str) -> None:
        """Hand a secret learnt at run time to whoever masks logs."""
        if self._on_secret is not None and value:
            self._on_secret(value)

    # ------------------------------------------------------------------ stats

    @property
    def stats(self) -> dict[str, Any]:
        """Calls by method and status, retries, token renewals and seconds spent waiting in the limiter."""
        calls: collections.Counter[str] = collections.Counter()
        statuses: collections.Counter[str] = collections.Counter()
        waited = 0.0
        with self._stats_lock:
            for part in self._thread_stats:
                with part.lock:
                    calls.update(part.calls)
                    statuses.update(part.statuses)
                    waited += part.limiter_wait
            return {
                "calls": dict(calls),
                "calls_total": sum(calls.values()),
                "statuses": dict(statuses),
                "retries": self._retries,
                "auth_renewals": self._auth_renewals,
                "limiter_wait_seconds": round(waited, 3),
            }

    def _count(self, method: str, status: int | str, waited: float) -> None:
        # Counters per thread: one lock shared by every worker thread was contended on each call.
        part: _ThreadStats | None = getattr(self._local, "stats", None)
        if part is None:
            part = self._local.stats = _ThreadStats()
            with self._stats_lock:
                self._thread_stats.append(part)
        with part.lock:
            part.calls[method] += 1
            part.statuses[str(status)] += 1
            part.limiter_wait += waited

    # ------------------------------------------------------------------ what subclasses provide

    @property
    def limiter(self) -> Limiter:
        """The limiter every request holds a slot of: the injected one, else the process-wide one."""
        if self._limiter_override is None:
            self._limiter_override = self._default_limiter()
        return self._limiter_override

    def keep_slots(self) -> contextlib.AbstractContextManager[None]:
        """A scope in which a writer's threads keep their in-flight slots across calls (limits shared only)."""
        keep = getattr(self.limiter, "keep", None)
        return keep() if keep is not None else contextlib.nullcontext()

    def _default_limiter(self) -> Limiter:
        """The process-wide limiter of this credential."""
        raise NotImplementedError

    @property
    def slot_lease(self) -> float:
        """Seconds a shared slot may stay held: past any one request (connect and read timeouts), then freed."""
        return max(120.0, 2 * self.timeout + 30.0)

    def share_limits(self, connect: Callable[[], Any], where: str = "") -> None:
        """Hold this credential's slots in PostgreSQL, shared with every process using it (``shared_limits``).

        :param connect: opens a connection to the database holding the slots (the link store's).
        :param where: names that database (a connection id), so one process never mixes two of them.
        """
        self._limiter_override = self._shared_limiter(connect, where)

    def _shared_limiter(self, connect: Callable[[], Any], where: str) -> Limiter:
        """This credential's limiter shared through PostgreSQL."""
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
        return (
            f"permission denied ({message}): the credentials are valid but not allowed to {method} this "
            f"endpoint; give the integration the missing permission in {self.system}"
        )

    def _default_429_wait(self, body: Any) -> float | None:
        """A wait read from a 429 body when the response has no ``Retry-After``."""
        return None

    def _listing_total(self, response: requests.Response) -> int | None:
        """The record count of a whole listing, when the API's paging headers carry it."""
        return None

    def configuration_fix(self, exc: ApiError) -> str:
        """What to change when ``exc`` is a configuration failure (clients name their own connection fields)."""
        if isinstance(exc, ConnectionConfigError):
            return "fill in or correct the field the message names"
        if exc.status == 403:
            return f"give the credentials the permission the call needs in {self.system}"
        return "check the credentials in the connection (login, password, extras) and that they belong to this host"

    def explained(self, exc: ApiError) -> ApiError:
        """Attach the connection id, its host and what to fix to a configuration failure (no secret in them)."""
        if exc.conn_id is None:
            exc.conn_id = self.settings.conn_id
            exc.host = self.base_url or None
            exc.fix = self.configuration_fix(exc)
        return exc

    # ------------------------------------------------------------------ the request loop

    def url_for(self, endpoint: str, params: Mapping[str, Any] | None = None) -> str:
        """Absolute URL of ``endpoint`` (a path, or an absolute URL taken verbatim) plus encoded ``params``."""
        if urlsplit(endpoint).scheme:
            url = endpoint
        elif endpoint and not endpoint.startswith("/"):
            url = f"{self.base_url}/{endpoint}"
        else:
            url = self.base_url + endpoint
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
        safe_to_repeat: bool = False,
        not_found_ok: bool = False,
        authenticate: bool = True,
    ) -> requests.Response | None:
        """Send one logical call with retries; return the final 2xx response (None for a tolerated 404).

        :param safe_to_repeat: the caller says repeating this (POST) is harmless, so retry it on 5xx, read
            timeouts and dropped connections too; without it a POST is retried only on 429 and connect errors.
        :param expect_json: a 2xx body must be JSON (an empty body is allowed for 204); a non-JSON body is
            treated as a transient gateway fault.
        """
        try:
            response = self._send(
                method,
                endpoint,
                params,
                json_body,
                data,
                headers,
                expect_json,
                safe_to_repeat,
                not_found_ok,
                authenticate,
            )
        except ApiError as exc:
            if exc.needs_configuration:
                self.explained(exc)
            raise
        if response is not None and method.upper() == "GET":
            total = self._listing_total(response)
            if total is not None:
                self.listing_total = total  # progress logs show "done / total" of the listing being read
        return response

    def _send(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        expect_json: bool,
        safe_to_repeat: bool,
        not_found_ok: bool,
        authenticate: bool,
    ) -> requests.Response | None:
        """The retry loop of :meth:`request`: tenacity repeats failures that may be repeated, with backoff."""
        method = method.upper()
        url = self.url_for(endpoint, params)
        split = urlsplit(url)
        path = split.path + (f"?{split.query}" if split.query else "")
        repeatable = method in IDEMPOTENT_METHODS or safe_to_repeat
        payload = json.dumps(json_body, separators=(",", ":")) if json_body is not None else data
        renewed = False
        attempts = 0
        max_attempts = self.max_attempts

        def attempt() -> requests.Response | None:
            nonlocal renewed, attempts
            attempts += 1
            while True:
                try:
                    return self._attempt(
                        method, url, path, payload, headers, expect_json, repeatable, not_found_ok, authenticate
                    )
                except _RenewAuth as refused:
                    status, message = refused.args
                    if renewed or not self._renew_auth(self._local.last_auth):
                        raise AuthenticationError(self.system, status, message, method=method, path=path) from None
                    renewed = True  # a renewal is not a failed attempt: the call is repeated at once
                    with self._stats_lock:
                        self._auth_renewals += 1
                    self.log.info(
                        "%s %s %s was refused (HTTP %s); renewing the token once", self.system, method, path, status
                    )

        # tenacity (as Airflow's own providers use it); a Retrying per call costs about 50 µs of CPU, well under
        # 1 % of a call's time, for one well-known retry loop instead of our own.
        def wait(state: tenacity.RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            return self._backoff(state.attempt_number, getattr(failure, "wait", None))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            with self._stats_lock:
                self._retries += 1
            self.log.warning(
                "%s %s %s failed (%s); attempt %d/%d, retrying in %.2f s",
                self.system,
                method,
                path,
                getattr(failure, "message", failure),
                state.attempt_number,
                max_attempts,
                state.next_action.sleep if state.next_action else 0.0,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            stop=tenacity.stop_after_attempt(max_attempts),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retry as failure:
            raise RetryableApiError(
                self.system,
                failure.status,
                f"{failure.message} (gave up after {attempts} attempts)",
                method=method,
                path=path,
                body=failure.body,
            ) from None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; an honoured ``Retry-After`` replaces it (capped at ``max_retry_after``)."""
        exponential = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        jittered = random.uniform(exponential / 2, exponential)
        if retry_after is not None:
            # small spread so that threads told the same Retry-After do not return in lockstep
            return min(retry_after, self.max_retry_after) + random.uniform(0, min(0.1, jittered))
        return jittered

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        payload: Any,
        headers: Mapping[str, str] | None,
        expect_json: bool,
        repeatable: bool,
        not_found_ok: bool,
        authenticate: bool,
    ) -> requests.Response | None:
        """One HTTP exchange; raises _Retry/_RenewAuth/ApiError or returns the response."""
        session = self.session
        send_headers = dict(headers or {})
        auth = self._auth_headers() if authenticate else {}
        self._local.last_auth = auth  # kept out of exceptions: it holds the token
        send_headers.update(auth)
        if payload is not None and "Content-Type" not in send_headers:
            send_headers["Content-Type"] = "application/json"
        # What Session.request does, with the request prepared before a slot is taken and the environment's
        # settings worked out once per thread.
        prepared = session.prepare_request(
            # params "" (the query is in the URL already): requests then skips its merging and encoding, whose
            # runtime Protocol checks are slow on Python 3.11.
            requests.Request(method, url, headers=send_headers, data=payload if payload is not None else {}, params="")
        )
        send_settings = self._send_settings(session, url)
        with self.limiter.slot() as waited:
            try:
                response = session.send(
                    prepared, timeout=(min(10.0, self.timeout), self.timeout), allow_redirects=True, **send_settings
                )
            except requests.exceptions.SSLError as exc:
                self._count(method, "ssl-error", waited)
                raise ApiError(
                    self.system, None, f"TLS error: {type(exc).__name__}", method=method, path=path
                ) from None
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                self._count(method, "network-error", waited)
                connect = is_connect_failure(exc)
                target = urlsplit(url)
                port = target.port or (443 if target.scheme == "https" else 80)
                reason = f"{'connect' if connect else 'network'} error {type(exc).__name__} to {target.hostname}:{port}"
                if connect or repeatable:
                    raise _Retry(None, reason) from None
                raise AmbiguousWriteError(
                    self.system,
                    None,
                    f"{reason}; not repeated because the request may have been applied",
                    method=method,
                    path=path,
                ) from None
        self._count(method, response.status_code, waited)
        return self._check(response, method, path, auth, expect_json, repeatable, not_found_ok)

    def _check(
        self,
        response: requests.Response,
        method: str,
        path: str,
        auth: Mapping[str, str],
        expect_json: bool,
        repeatable: bool,
        not_found_ok: bool,
    ) -> requests.Response | None:
        """Map a response to a result or an error."""
        status = response.status_code
        if 200 <= status < 300:
            if expect_json and status != 204 and response.content.strip():
                try:
                    json_body(response)
                except ValueError:
                    self._transient_or_ambiguous(
                        status, "response body is not JSON", repeatable, method, path, response.text[:200]
                    )
            return response
        body = self._json_or_none(response)
        message = self._error_message(body, response.text[:300])
        if status == 404 and not_found_ok:
            return None
        if status == 401 and auth:
            raise _RenewAuth(status, message)
        if status == 403:
            # A missing privilege or module, not a stale token: renewing and repeating cannot help.
            raise PermissionDeniedError(
                self.system,
                status,
                self._forbidden_message(method, path, message),
                method=method,
                path=path,
                body=body,
            )
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is None:
                wait = self._default_429_wait(body)
            if wait is None and self.min_429_wait:
                wait = self.min_429_wait
            raise _Retry(429, message, wait, body)
        if status in RETRYABLE_STATUSES or status >= 500:
            self._transient_or_ambiguous(status, message, repeatable, method, path, body)
        error_class: type[ApiError] = {
            401: AuthenticationError,
            402: AuthenticationError,
            404: NotFoundError,
            409: ConflictError,
        }.get(status, PermanentApiError)
        raise error_class(self.system, status, message, method=method, path=path, body=body)

    def _transient_or_ambiguous(
        self, status: int, message: str, repeatable: bool, method: str, path: str, body: Any
    ) -> NoReturn:
        if repeatable:
            raise _Retry(status, message, None, body)
        raise AmbiguousWriteError(
            self.system,
            status,
            f"{message}; not repeated because the request may have been applied",
            method=method,
            path=path,
            body=body,
        )

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return json_body(response)
        except ValueError:
            return None

    def request_json(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """Like :meth:`request` but return the parsed JSON body (None for 204, an empty body or a tolerated 404)."""
        response = self.request(method, endpoint, **kwargs)
        if response is None or response.status_code == 204 or not response.content.strip():
            return None
        return json_body(response)

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """GET one object; None on 404."""
        result: dict[str, Any] | None = self.request_json("GET", endpoint, params=params, not_found_ok=True)
        return result

    def page_rows(self, response: requests.Response, endpoint: str) -> list[Any]:
        """The records of one listing page: a JSON array (an empty body or 204 is none); else MalformedResponseError."""
        rows = [] if response.status_code == 204 or not response.content.strip() else json_body(response)
        if not isinstance(rows, list):
            raise MalformedResponseError(
                self.system,
                response.status_code,
                f"expected a JSON array, got {type(rows).__name__}",
                method="GET",
                path=endpoint,
            )
        return rows

    def require_id(self, record: Any, method: str, endpoint: str) -> dict[str, Any]:
        """Return ``record`` if it is an object with an id, else raise :class:`MalformedResponseError`."""
        if not isinstance(record, dict) or find_key(record, "id") in (None, ""):
            shape = type(record).__name__ if not isinstance(record, dict) else f"keys {sorted(record)[:10]}"
            raise MalformedResponseError(
                self.system, None, f"expected an object with an id, got {shape}", method=method, path=endpoint
            )
        return record

    def check(self) -> tuple[bool, str]:
        """Check credentials and reachability with one cheap read (at most two attempts)."""
        raise NotImplementedError
