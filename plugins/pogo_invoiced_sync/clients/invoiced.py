"""Client of the Invoiced REST API: Basic auth with the API key, Link-header paging, idempotency keys.

Invoiced allows at most 20 requests in flight per API key. Within one process every client using the same key
shares one semaphore of ``max_in_flight`` slots (default 10, at most the server's 20), unless it is given its own
limiter; with shared limits (the default) every process of the deployment using the key shares them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.auth import HTTPBasicAuth

from pogo_invoiced_sync.clients.base import ApiClient, ApiSettings
from pogo_invoiced_sync.clients.errors import ApiError, MalformedResponseError
from pogo_invoiced_sync.clients.limits import InFlightLimiter, Limiter, credential_fingerprint, shared
from pogo_invoiced_sync.clients.listing import Listing
from pogo_invoiced_sync.clients.shared_limits import in_flight_limiter

SERVER_IN_FLIGHT_LIMIT = 20
DEFAULT_MAX_IN_FLIGHT = 10
MAX_PER_PAGE = 100

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class InvoicedSettings(ApiSettings):
    """How to reach Invoiced (the API key is left out of ``repr``).

    :param api_key: the API key (sent as the Basic auth user name, with an empty password).
    :param max_in_flight: requests in flight at once for this key (at most the server's 20). The default of 10
        leaves room for other users of the key; 20 is for a key only this deployment uses (with shared limits,
        every task and worker of the deployment then shares the 20, and anyone else using the key gets 429s).
    :param max_workers: threads a writer may use (default: ``max_in_flight``).
    """

    api_key: str = dataclasses.field(repr=False)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_workers: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.api_key:
            raise ValueError("the API key is required")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.max_in_flight > SERVER_IN_FLIGHT_LIMIT:
            log.warning(
                "max_in_flight %d is above Invoiced's limit of %d; using %d",
                self.max_in_flight,
                SERVER_IN_FLIGHT_LIMIT,
                SERVER_IN_FLIGHT_LIMIT,
            )
            object.__setattr__(self, "max_in_flight", SERVER_IN_FLIGHT_LIMIT)


class InvoicedClient(ApiClient):
    """Talk to Invoiced with retries, paging and a shared in-flight limiter.

    :param settings: URL, API key and limits.
    :param limiter: the limiter every request holds a slot of (default: the process-wide one of the API key).
    :param max_attempts: attempts per call including the first (default 6).
    :param backoff_base: first backoff in seconds, doubling per attempt with jitter (default 0.5).
    :param backoff_max: cap of one backoff wait in seconds (default 30).
    """

    system = "Invoiced"
    settings: InvoicedSettings

    def __init__(self, settings: InvoicedSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.max_in_flight = settings.max_in_flight
        self.max_workers = settings.max_workers if settings.max_workers is not None else settings.max_in_flight
        self._credential = (self.base_url, settings.api_key)

    def _session_auth(self) -> HTTPBasicAuth:
        """API key as the user name, empty password (None would be sent as the string 'None')."""
        return HTTPBasicAuth(self.settings.api_key, "")

    def _default_limiter(self) -> InFlightLimiter:
        return shared("invoiced-in-flight", self._credential, lambda: InFlightLimiter(self.max_in_flight))

    def _shared_limiter(self, connect: Callable[[], Any], where: str) -> Limiter:
        return shared(
            "invoiced-in-flight-shared",
            (where, *self._credential),
            lambda: in_flight_limiter(
                connect,
                credential_fingerprint("invoiced-in-flight", *self._credential),
                self.max_in_flight,
                lease=self.slot_lease,
            ),
        )

    def _error_message(self, body: Any, text: str) -> str:
        """Invoiced's ``message``, plus ``param`` when one field caused the error."""
        if isinstance(body, Mapping) and body.get("message"):
            param = body.get("param")
            return f"{body['message']} (param: {param})" if param else str(body["message"])
        return text.strip()[:200] or "no error body"

    def configuration_fix(self, exc: ApiError) -> str:
        """Name what to change behind a refused API key (401) or an account that is not paid for (402)."""
        if exc.status == 401:
            return (
                "check login (the API key): a key works only on its own host (sandbox keys on "
                "api.sandbox.invoiced.com, live keys on api.invoiced.com)"
            )
        if exc.status == 402:
            return "the Invoiced account of this API key has no active subscription: settle it in Invoiced"
        return super().configuration_fix(exc)

    def _listing_total(self, response: requests.Response) -> int | None:
        """``X-Total-Count`` of a list answer."""
        return _total(response)

    # ------------------------------------------------------------------ reads

    def iter_pages(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        per_page: int = MAX_PER_PAGE,
        listing: Listing | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield every page of a list endpoint, following ``Link: <...>; rel="next"`` verbatim to the end.

        Bracket parameters work as keys (``{"filter[number]": "X"}``) or nested (``{"metadata": {"k": "v"}}``).

        :param listing: filled with the server's time at the start and signs that the list moved between pages
            (a record listed twice, an ``X-Total-Count`` that changed).
        """
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        listing = listing if listing is not None else Listing()
        url = self.url_for(endpoint, {**(params or {}), "per_page": per_page})
        seen = {url}
        total = None
        while True:
            response = self._list_request(url)
            listing.answered(response)
            rows = self.page_rows(response, endpoint)
            count = _total(response)
            if total is not None and count is not None and count != total:
                listing.move(f"{endpoint}: X-Total-Count went from {total} to {count} between pages")
            total = count if count is not None else total
            listing.listed(endpoint, rows, "id")
            if rows:
                yield rows
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url = self._next_url(url, following, response, endpoint)
            if url in seen:  # a server bug must not make us loop forever
                raise MalformedResponseError(
                    self.system,
                    response.status_code,
                    "Link rel=next points back to a page already read",
                    method="GET",
                    path=endpoint,
                )
            seen.add(url)

    def _list_request(self, url: str) -> requests.Response:
        response = self.request("GET", url)
        assert response is not None  # only a tolerated 404 answers None
        return response

    def _next_url(self, url: str, following: str, response: requests.Response, endpoint: str) -> str:
        url = urljoin(url, following)
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:  # never send the API key elsewhere
            raise MalformedResponseError(
                self.system,
                response.status_code,
                "Link rel=next points to another host",
                method="GET",
                path=endpoint,
            )
        return url

    def iter_changed(
        self,
        endpoint: str,
        since_unix: int | None,
        params: Mapping[str, Any] | None = None,
        per_page: int = MAX_PER_PAGE,
        listing: Listing | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of objects updated strictly after ``since_unix`` (all when None), oldest first.

        Pages by key, not by page number: the list is sorted by ``updated_at`` and each request starts again at
        the last second seen (``updated_after`` = that second - 1, since the filter is strict and times have
        whole seconds), so a record edited meanwhile moves to the end instead of shifting unread records onto a
        page already read. Records of that second read before are not yielded again. Only when one second holds
        a whole page does it take the next page number of the same request; if a record was edited while it did
        (one with a change time at or after the listing's start shows up), ``listing`` is told the list moved.
        """
        listing = listing if listing is not None else Listing()
        listing.keyset = True
        base = {**(params or {}), "sort": "updated_at asc", "per_page": per_page}
        after = None if since_unix is None else int(since_unix)
        page = 1
        yielded: dict[Any, Any] = {}
        by_number: list[int] = []  # the seconds paged by page number
        newest: int | None = None
        while True:
            query = dict(base)
            if after is not None:
                query["updated_after"] = after
            if page > 1:
                query["page"] = page
            response = self._list_request(self.url_for(endpoint, query))
            listing.answered(response)
            rows = self.page_rows(response, endpoint)
            fresh = []
            for row in rows:
                key, stamp = (row.get("id"), row.get("updated_at")) if isinstance(row, Mapping) else (None, None)
                if key is not None and key in yielded and yielded[key] == stamp:
                    continue  # read already, unchanged: the overlap of two key requests
                if key is not None:
                    yielded[key] = stamp
                fresh.append(row)
            stamps: list[Any] = [r.get("updated_at") for r in rows if isinstance(r, Mapping)]
            if any(not isinstance(t, int) for t in stamps) or stamps != sorted(stamps):
                listing.move(f"{endpoint}: the answer is not sorted by updated_at; cannot page by key")
            elif stamps:
                newest = max(newest or stamps[-1], stamps[-1])
            if fresh:
                yield fresh
            if "next" not in response.links or not rows:
                break
            last = stamps[-1] if stamps and isinstance(stamps[-1], int) else None
            if last is None or listing.moved:
                # No key to go on: follow the page numbers (and the listing is not trusted to be complete).
                page += 1
            elif after is None or last - 1 > after:
                after, page = last - 1, 1
            else:
                page += 1  # the whole page lies in the second after ``after``: the next page number of it
                by_number.append(last)
        # A record of such a second edited meanwhile leaves it and shifts the rest back by one: one may be skipped.
        # It shows up again at the end with a change time at or after the start. Only seconds before the start
        # matter: the caller's cursor stays before the start anyway.
        start = int(listing.started_at.timestamp()) if listing.started_at else None
        if by_number and (start is None or (min(by_number) < start and newest is not None and newest >= start)):
            listing.move(f"{endpoint}: paged one second's records by page number while records were edited")

    # ------------------------------------------------------------------ writes

    def create(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        safe_to_repeat: bool = False,
    ) -> dict[str, Any]:
        """POST a new object and return it (with its ``id``).

        :param idempotency_key: sent as ``Idempotency-Key`` (6-64 characters); Invoiced replays the first answer.
        :param safe_to_repeat: True when repeating the POST cannot duplicate (an idempotency key or a unique
            external reference); only then is it retried on 5xx, read timeouts and dropped connections.
        """
        created = self.request_json(
            "POST",
            endpoint,
            json_body=dict(body),
            safe_to_repeat=safe_to_repeat,
            headers=_idempotency(idempotency_key),
        )
        return self.require_id(created, "POST", endpoint)

    def update(self, endpoint: str, body: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """PATCH an object with the given fields and return it."""
        updated = self.request_json("PATCH", endpoint, json_body=dict(body), headers=_idempotency(idempotency_key))
        return self.require_id(updated, "PATCH", endpoint)

    def post(
        self,
        endpoint: str,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        safe_to_repeat: bool = False,
    ) -> dict[str, Any] | None:
        """POST an action such as ``invoices/{id}/void`` (an empty body is sent as ``{}``); return the answer."""
        answer: dict[str, Any] | None = self.request_json(
            "POST",
            endpoint,
            json_body=dict(body or {}),
            safe_to_repeat=safe_to_repeat,
            headers=_idempotency(idempotency_key),
        )
        return answer

    def delete(self, endpoint: str) -> bool:
        """DELETE an object; False when it was already gone (404)."""
        return self.request("DELETE", endpoint, expect_json=False, not_found_ok=True) is not None

    # ------------------------------------------------------------------ checks

    def check(self) -> tuple[bool, str]:
        """Read one customer to check the key and the URL."""
        attempts, self.max_attempts = self.max_attempts, min(self.max_attempts, 2)
        try:
            self.request("GET", "customers", params={"per_page": 1})
            return True, "Connection successfully tested"
        except Exception as exc:
            return False, str(exc)
        finally:
            self.max_attempts = attempts


def _total(response: requests.Response) -> int | None:
    """``X-Total-Count`` as an int, or None."""
    try:
        return int(response.headers.get("X-Total-Count"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _idempotency(key: str | None) -> dict[str, str]:
    """The ``Idempotency-Key`` header, validated as Invoiced does (6-64 characters)."""
    if key is None:
        return {}
    if not 6 <= len(key) <= 64:
        raise ValueError("idempotency_key must be 6 to 64 characters long")
    return {"Idempotency-Key": key}
