"""Client of the PowerOffice Go API v2: OAuth client-credentials tokens, paging, JSON Patch, rate limiting.

PowerOffice allows 10 requests per second per subscription key. Within one process every client using the same
subscription key shares one limiter (unless it is given its own) and every client using the same keys shares one
token.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import requests

from pogo_invoiced_sync.clients.base import ApiClient, ApiSettings, find_key
from pogo_invoiced_sync.clients.errors import (
    ApiError,
    AuthenticationError,
    ConnectionConfigError,
    MalformedResponseError,
    PermanentApiError,
)
from pogo_invoiced_sync.clients.limits import Limiter, RequestRateLimiter, credential_fingerprint, shared
from pogo_invoiced_sync.clients.listing import Listing
from pogo_invoiced_sync.clients.shared_limits import rate_limiter

MAX_PAGE_SIZE = 20_000
DEFAULT_PAGE_SIZE = 5000
DEFAULT_REQUESTS_PER_SECOND = 10.0
CHANGED_SINCE_PARAM = "lastChangedDateTimeOffsetGreaterThan"
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
# The roles each API area accepts, (read, write), as the reference's operation summaries list them.
_AREA_ROLES = {
    "customers": (("Customer", "Customer_Full"), ("Customer_Full",)),
    "contactpersons": (
        ("ContactPerson", "ContactPerson_Full", "Customer", "Customer_Full"),
        ("ContactPerson_Full", "Customer_Full"),
    ),
    "salesorders": (("SalesOrders", "SalesOrders_Full"), ("SalesOrders_Full",)),
}


def default_token_url(base_url: str) -> str:
    """The token endpoint beside a ``.../v2`` API root (``.../Demo/v2`` gets ``.../Demo/OAuth/Token``)."""
    host = base_url.rstrip("/")
    if not host.lower().endswith("/v2"):
        raise ValueError("the API URL must end with /v2, or the token URL must be given")
    return host[: -len("/v2")] + "/OAuth/Token"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PowerOfficeGoSettings(ApiSettings):
    """How to reach PowerOffice Go v2 (secrets are left out of ``repr``).

    :param application_key: the integration's application key.
    :param client_key: the client's key.
    :param subscription_key: the APIM subscription key (the rate limit counts per subscription key).
    :param token_url: the OAuth token endpoint (default: beside ``base_url``, see :func:`default_token_url`).
    :param requests_per_second: the process-wide limit of this subscription key.
    :param max_workers: threads a writer may use.
    :param page_size: records per listing page (1 to 20,000).
    """

    application_key: str = dataclasses.field(repr=False)
    client_key: str = dataclasses.field(repr=False)
    subscription_key: str = dataclasses.field(repr=False)
    token_url: str | None = None
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    max_workers: int = 4
    page_size: int = DEFAULT_PAGE_SIZE

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.application_key or not self.client_key:
            raise ValueError("the application key and the client key are required")
        if not self.subscription_key:
            raise ValueError("the subscription key is required")
        if not self.token_url:
            object.__setattr__(self, "token_url", default_token_url(self.base_url))
        if self.requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")


class _Token:
    """One cached access token per credential, renewed by a single thread at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: str | None = None
        self.renew_at = 0.0


class PowerOfficeGoClient(ApiClient):
    """Talk to PowerOffice Go v2 with a cached bearer token, retries and a shared 10 rps limiter.

    :param settings: URL, keys and limits.
    :param limiter: the limiter every request holds a slot of (default: the process-wide one of the subscription key).
    :param max_attempts: attempts per call including the first (default 6).
    :param backoff_base: first backoff in seconds, doubling per attempt with jitter (default 0.5).
    :param backoff_max: cap of one backoff wait in seconds (default 30).
    """

    system = "PowerOffice Go"
    min_429_wait = 1.0  # PowerOffice: "wait at least 1 s" when throttled
    max_page_size: ClassVar[int] = MAX_PAGE_SIZE
    settings: PowerOfficeGoSettings

    def __init__(self, settings: PowerOfficeGoSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.subscription_key = settings.subscription_key
        self.token_url: str = settings.token_url or default_token_url(settings.base_url)
        self.requests_per_second = float(settings.requests_per_second)
        self.max_workers = int(settings.max_workers)
        self.page_size = int(settings.page_size)
        self._basic = base64.b64encode(f"{settings.application_key}:{settings.client_key}".encode()).decode()
        self._credential = (self.token_url, settings.application_key, settings.client_key, self.subscription_key)
        self._token_requests = 0
        self._shared_token: _Token | None = None

    def _default_limiter(self) -> RequestRateLimiter:
        # APIM counts per subscription key, whatever the client key
        return shared(
            "pogo-rps", (self.base_url, self.subscription_key), lambda: RequestRateLimiter(self.requests_per_second)
        )

    def _shared_limiter(self, connect: Callable[[], Any], where: str) -> Limiter:
        # One integration's subscription key serves every client key (tenant): they all share its requests/s.
        parts = (self.base_url, self.subscription_key)
        return shared(
            "pogo-rps-shared",
            (where, *parts),
            lambda: rate_limiter(
                connect, credential_fingerprint("pogo-rps", *parts), self.requests_per_second, lease=self.slot_lease
            ),
        )

    # ------------------------------------------------------------------ tokens

    def _token_cache(self) -> _Token:
        if self._shared_token is None:
            self._shared_token = shared("pogo-token", self._credential, _Token)
        return self._shared_token

    def get_token(self) -> str:
        """Return a valid access token, requesting one if none is cached or it is near expiry."""
        cache = self._token_cache()
        with cache.lock:
            if cache.value is None or time.monotonic() >= cache.renew_at:
                cache.value, cache.renew_at = self._request_token()
            return cache.value

    def _request_token(self) -> tuple[str, float]:
        """POST the client-credentials grant; return the token and when to renew it."""
        started = time.monotonic()
        with self._stats_lock:
            self._token_requests += 1
        try:
            body = self.request_json(
                "POST",
                self.token_url,
                data="grant_type=client_credentials",
                authenticate=False,
                safe_to_repeat=True,  # a token request changes nothing, so repeating it is harmless
                headers={
                    "Authorization": f"Basic {self._basic}",
                    "Ocp-Apim-Subscription-Key": self.subscription_key,
                    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                },
            )
        except PermanentApiError as exc:
            raise AuthenticationError(
                self.system, exc.status, f"token request refused: {exc.message}", method="POST", path=exc.path
            ) from None
        token = find_key(body, "access_token")
        if not token:
            raise MalformedResponseError(
                self.system, None, "token response has no access_token", method="POST", path=self.token_url
            )
        self._secret(token)
        try:
            lifetime = float(find_key(body, "expires_in") or 600)
        except (TypeError, ValueError):
            lifetime = 600.0
        # renew 60 s early, or at half-life for short lifetimes
        return token, started + lifetime - min(60.0, lifetime / 2)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.get_token()}", "Ocp-Apim-Subscription-Key": self.subscription_key}

    def _renew_auth(self, used_headers: Mapping[str, str]) -> bool:
        cache = self._token_cache()
        with cache.lock:
            # another thread may already have renewed it; only drop the token that was refused
            if cache.value and used_headers.get("Authorization") == f"Bearer {cache.value}":
                cache.value = None
        return True

    @property
    def stats(self) -> dict[str, Any]:
        """Calls by method and status, retries, token requests and renewals, seconds waited in the limiter."""
        stats = super().stats
        with self._stats_lock:
            stats["token_requests"] = self._token_requests
        return stats

    # ------------------------------------------------------------------ errors

    def _error_message(self, body: Any, text: str) -> str:
        """ProblemDetails ``title``/``detail`` (any casing), APIM ``message`` or OAuth ``error_description``."""
        if isinstance(body, Mapping):
            parts = [str(find_key(body, k)) for k in ("title", "detail") if find_key(body, k)]
            errors = find_key(body, "errors")
            if isinstance(errors, Mapping):
                parts += [
                    f"{field}: {'; '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                    for field, msgs in errors.items()
                ]
            if not parts:
                parts = [str(find_key(body, k)) for k in ("error", "error_description", "message") if find_key(body, k)]
            if parts:
                return " - ".join(parts)
        return text.strip()[:200] or "no error body"

    def _forbidden_message(self, method: str, path: str, message: str) -> str:
        """Name the privileges the call needs and those the client holds but cannot use (no module subscription)."""
        area = next((p for p in path.split("?")[0].lower().split("/") if p in _AREA_ROLES), None)
        needs = ""
        if area:
            roles = _AREA_ROLES[area][0 if method in ("GET", "HEAD") else 1]
            needs = f" This call needs the privilege {' or '.join(roles)}."
        invalid = self._invalid_privileges()
        if invalid:
            held = (
                f" PowerOffice Go reports these privileges as invalid for the client (its module subscription is "
                f"missing): {', '.join(invalid)}. Activate the module for the client in PowerOffice Go, or ask "
                "the client's administrator to do so."
            )
        else:
            held = (
                " Grant the integration that privilege in PowerOffice Go (the client's integration settings) "
                "and make sure the client subscribes to the module it belongs to."
            )
        return f"permission denied (HTTP 403: {message}).{needs}{held}"

    def _invalid_privileges(self) -> list[str]:
        """``InvalidPrivileges`` of ``/ClientIntegrationInformation`` (needs no privilege); empty when unreadable."""
        if getattr(self._local, "in_403_lookup", False):
            return []
        self._local.in_403_lookup = True
        try:
            info = self.request_json("GET", "ClientIntegrationInformation", not_found_ok=True)
        except Exception:
            return []
        finally:
            self._local.in_403_lookup = False
        invalid = find_key(info, "InvalidPrivileges") if isinstance(info, Mapping) else None
        return [str(p) for p in invalid] if isinstance(invalid, list) else []

    def configuration_fix(self, exc: ApiError) -> str:
        """Name the connection field behind a refusal: subscription key, client keys, or the token URL."""
        if isinstance(exc, ConnectionConfigError) or exc.status == 403:
            return super().configuration_fix(exc)
        if "subscription key" in exc.message.lower():
            return "check the extra 'subscription_key': it must be the subscription key of this host's environment"
        if exc.message.startswith("token request refused"):
            return (
                "check login (application key) and password (client key), and that the token URL "
                f"{self.token_url} belongs to the same environment (Demo or production) as the host"
            )
        return (
            f"the API refuses the token issued by {self.token_url}: host and token_url must be the same environment "
            "(Demo or production), with keys of that environment"
        )

    def _listing_total(self, response: requests.Response) -> int | None:
        """``totalCount`` of the ``X-Pagination`` header, where the gateway sends it (not documented as certain)."""
        try:
            total = find_key(json.loads(response.headers.get("X-Pagination") or "null"), "totalCount")
            return int(total) if total is not None else None
        except (TypeError, ValueError):
            return None

    def _default_429_wait(self, body: Any) -> float | None:
        # APIM says "Rate limit is exceeded. Try again in 1 seconds." when it sends no Retry-After
        match = _TRY_AGAIN.search(str(find_key(body, "message") or ""))
        return float(match.group(1)) if match else None

    # ------------------------------------------------------------------ reads

    def iter_pages(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        listing: Listing | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield every page of a list endpoint as a list, from ``PageNumber`` 1 to the end, in ``Id`` order.

        Follows ``X-Pagination``'s ``nextPageLink`` where the header carries that member, also past a short page
        (logged); only without it does a page shorter than ``page_size`` end the listing. Stops on 204 or an empty
        array. ``OrderBy=Id`` (unless the caller orders) keeps records in place when they are edited.

        :param listing: filled with the server's time at the start and signs that the list moved between pages.
        """
        if page_size is None:
            page_size = self.page_size
        if not 1 <= page_size <= self.max_page_size:
            raise ValueError(f"page_size must be between 1 and {self.max_page_size}")
        base = {k: v for k, v in (params or {}).items() if k.lower() not in ("pagenumber", "pagesize")}
        if not any(k.lower() == "orderby" for k in base):
            base["OrderBy"] = "Id"
        listing = listing if listing is not None else Listing()
        total = None
        announced = False  # the page before linked this one
        page = 1
        while True:
            response = self.request("GET", endpoint, params={**base, "PageNumber": page, "PageSize": page_size})
            assert response is not None  # only a tolerated 404 answers None
            listing.answered(response)
            pagination = _pagination(response.headers.get("X-Pagination"))
            count = _member(pagination, "totalCount")
            if total is not None and count is not None and count != total:
                listing.move(f"{endpoint}: totalCount went from {total} to {count} between pages")
            total = count if count is not None else total
            current = _member(pagination, "currentPage")
            if current is not None and current != page:
                listing.move(f"{endpoint}: asked for page {page}, X-Pagination says page {current}")
            rows = self.page_rows(response, endpoint)
            if not rows:
                if announced:
                    listing.move(f"{endpoint}: page {page} was empty although the page before announced it")
                return
            listing.listed(endpoint, rows, "Id")
            yield rows
            short = len(rows) < page_size
            if pagination is not None and _has_member(pagination, "nextPageLink"):
                following = bool(_member(pagination, "nextPageLink"))
                if short and following:
                    self.log.warning(
                        "%s page %d has %d of %d rows but X-Pagination links a next page; following it",
                        endpoint,
                        page,
                        len(rows),
                        page_size,
                    )
                elif not short and not following:
                    self.log.info("%s page %d is full but X-Pagination links no next page; stopping", endpoint, page)
                if not following:
                    return
                announced = True
            elif short:
                return
            else:
                announced = False
            page += 1

    def iter_changed(
        self,
        endpoint: str,
        since: dt.datetime | None,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        since_param: str = CHANGED_SINCE_PARAM,
        listing: Listing | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of records changed strictly after ``since`` (all records when None; naive = UTC)."""
        query = dict(params or {})
        if since is not None:
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.UTC)
            query[since_param] = since.isoformat()
        return self.iter_pages(endpoint, query, page_size=page_size, listing=listing)

    # ------------------------------------------------------------------ writes

    def create(self, endpoint: str, body: Mapping[str, Any], safe_to_repeat: bool = False) -> dict[str, Any]:
        """POST a new object and return it (with its ``Id``).

        :param safe_to_repeat: True when repeating the POST cannot duplicate (e.g. it carries a unique
            ``ExternalImportReference``); only then is it retried on 5xx, read timeouts and dropped connections.
        """
        created = self.request_json("POST", endpoint, json_body=dict(body), safe_to_repeat=safe_to_repeat)
        return self.require_id(created, "POST", endpoint)

    def patch(
        self,
        endpoint: str,
        changes: Mapping[str, Any] | list[dict[str, Any]],
        current: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """PATCH an object with dotted-path ``changes`` (or a ready RFC 6902 list); return the updated object.

        Returns None without calling the API when there is nothing to change.
        """
        operations = changes if isinstance(changes, list) else self.json_patch(changes, current)
        if not operations:
            return None
        updated = self.request_json(
            "PATCH",
            endpoint,
            data=json.dumps(operations, separators=(",", ":")),
            headers={"Content-Type": "application/json-patch+json"},
        )
        return self.require_id(updated, "PATCH", endpoint)

    def delete(self, endpoint: str) -> bool:
        """DELETE an object; False when it was already gone (404)."""
        return self.request("DELETE", endpoint, expect_json=False, not_found_ok=True) is not None

    @staticmethod
    def json_patch(changes: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Turn ``{"Name": "X", "MailAddress.City": "Oslo"}`` into RFC 6902 ``replace`` operations.

        When ``current`` holds a parent object of a dotted path as null (e.g. a customer whose ``MailAddress`` is
        null), one ``add`` of the whole parent object replaces the nested operations, because a ``replace`` below a
        null parent fails. Parents absent from ``current`` get ``replace`` operations, so a partial ``current``
        such as ``{"MailAddress": None}`` is enough.
        """
        operations: list[dict[str, Any]] = []
        nested: dict[str, dict[str, Any]] = {}
        order: list[tuple[str, str]] = []
        for key, value in changes.items():
            head, _, rest = key.partition(".")
            if rest:
                if head not in nested:
                    nested[head] = {}
                    order.append(("nested", head))
                nested[head][rest] = value
            else:
                order.append(("plain", key))
        for kind, key in order:
            if kind == "plain":
                operations.append({"op": "replace", "path": f"/{_pointer(key)}", "value": changes[key]})
                continue
            present, parent = _lookup(current, key)
            if present and parent is None:  # only a known null parent: an absent key says nothing
                operations.append({"op": "add", "path": f"/{_pointer(key)}", "value": _nest(nested[key])})
                continue
            inner = PowerOfficeGoClient.json_patch(nested[key], parent if isinstance(parent, Mapping) else None)
            for op in inner:
                operations.append({**op, "path": f"/{_pointer(key)}{op['path']}"})
        return operations

    # ------------------------------------------------------------------ checks

    def check(self) -> tuple[bool, str]:
        """Get a token and read ``/ClientIntegrationInformation`` (or one customer)."""
        attempts, self.max_attempts = self.max_attempts, min(self.max_attempts, 2)
        try:
            info = self.get("ClientIntegrationInformation")
            if info is None:
                self.request("GET", "Customers", params={"PageSize": 1})
                return True, "Connection successfully tested"
            name = find_key(info, "ClientName")
            return True, f"Connection successfully tested{f' (client {name})' if name else ''}"
        except Exception as exc:
            return False, str(exc)
        finally:
            self.max_attempts = attempts


def _pagination(header: str | None) -> Mapping[str, Any] | None:
    """The ``X-Pagination`` JSON object, or None when absent or unreadable."""
    if not header:
        return None
    try:
        value = json.loads(header)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _has_member(pagination: Mapping[str, Any], name: str) -> bool:
    return any(isinstance(k, str) and k.lower() == name.lower() for k in pagination)


def _member(pagination: Mapping[str, Any] | None, name: str) -> Any:
    """A member of ``X-Pagination`` (any casing), None when absent."""
    if pagination is None:
        return None
    return next((v for k, v in pagination.items() if isinstance(k, str) and k.lower() == name.lower()), None)


def _lookup(record: Mapping[str, Any] | None, name: str) -> tuple[bool, Any]:
    """Return ``(present, value)`` for ``name`` in ``record``, matching the key case-insensitively."""
    if not isinstance(record, Mapping):
        return False, None
    for key, value in record.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return True, value
    return False, None


def _pointer(token: str) -> str:
    """Escape one JSON Pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{"City": "Oslo", "Geo.Lat": 1}`` into ``{"City": "Oslo", "Geo": {"Lat": 1}}``."""
    result: dict[str, Any] = {}
    for key, value in flat.items():
        node = result
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return result
