"""The Invoiced sandbox service: authentication, routing, idempotency and the admin hooks of the shared app."""
from __future__ import annotations

import base64
import binascii
import contextvars
import hmac
import json
import logging
import time
from typing import ClassVar

from aiohttp import web

from sandboxes.common.limits import RequestsInFlight
from sandboxes.invoiced import contacts, customers, invoices, listing, params, seeding
from sandboxes.invoiced import reference as ref
from sandboxes.invoiced.errors import ApiError, not_found, options_error
from sandboxes.invoiced.store import Store
from sandboxes.settings import SandboxSettings

log = logging.getLogger(__name__)

STANDARD_HEADERS = {"WWW-Authenticate": 'Basic realm="Invoiced"', "Cache-Control": "no-cache, no-store"}
DEFAULT_SETTINGS = {"max_in_flight": ref.MAX_IN_FLIGHT, "idempotency_ttl_seconds": ref.IDEMPOTENCY_TTL_SECONDS}
_UNLIMITED = 1 << 62
# The store of the account whose API key the request in this task carries (set for the handler's duration only).
_ACCOUNT_STORE: contextvars.ContextVar[Store | None] = contextvars.ContextVar("invoiced_account_store", default=None)


def scrub(key: str) -> str:
    """Mask a key for error messages the way the server does: ``abc**********nop``."""
    if len(key) <= 6:
        return key
    return key[:3] + "*" * (len(key) - 6) + key[-3:]


def _plain_value(record: dict, field: str, _at: int):
    """A stored field, for filtering and sorting customers and contacts."""
    return record.get(field)


def _ident(raw: str) -> int | None:
    """A path id as an integer, or None when it is not one (which then reads as not found)."""
    return int(raw) if raw.isdigit() else None


class InvoicedService:
    """An in-memory Invoiced account behind the REST routes the sync uses."""

    name = "invoiced"

    def __init__(self, settings: SandboxSettings) -> None:
        self.api_key = settings.invoiced_api_key
        # One account per API key: the default one, then any opted-in extra accounts.
        self.stores: dict[str, Store] = {key: Store() for key in (self.api_key, *settings.invoiced_extra_api_keys)}
        self.limiter = RequestsInFlight(ref.MAX_IN_FLIGHT)
        self.settings = dict(DEFAULT_SETTINGS)

    @property
    def store(self) -> Store:
        """The data of the account the current request's API key opens; outside requests, the default account's."""
        active = _ACCOUNT_STORE.get()
        return active if active is not None else self.stores[self.api_key]

    @store.setter
    def store(self, value: Store) -> None:
        self.stores[self.api_key] = value

    def account_store(self, account: str | None) -> Store:
        """The data of the account with API key ``account`` (None: the default account); unknown keys are an error."""
        if account is None:
            return self.store
        if account not in self.stores:
            raise web.HTTPNotFound(text=json.dumps({"error": "unknown account API key"}),
                                   content_type="application/json")
        return self.stores[account]

    # -- the Service protocol -------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Register the API routes, each dispatching by method (405 otherwise), and a catch-all 404."""
        routes = [
            ("/customers", {"GET": self.list_customers, "POST": self.create_customer}),
            ("/customers/{id}", {"GET": self.get_customer, "PATCH": self.update_customer,
                                 "DELETE": self.delete_customer}),
            ("/customers/{customer_id}/contacts", {"GET": self.list_contacts, "POST": self.create_contact}),
            ("/customers/{customer_id}/contacts/{id}", {"GET": self.get_contact, "PATCH": self.update_contact,
                                                        "DELETE": self.delete_contact}),
            ("/invoices", {"GET": self.list_invoices, "POST": self.create_invoice}),
            ("/invoices/{id}", {"GET": self.get_invoice, "PATCH": self.update_invoice, "DELETE": self.delete_invoice}),
            ("/invoices/{id}/void", {"POST": self.void_invoice}),
        ]
        for path, methods in routes:
            app.router.add_route("*", path, self._endpoint(methods))
        app.router.add_route("*", "/{tail:.*}", self._endpoint({}))

    def error(self, status: int, message: str, **extra) -> web.Response:
        """Invoiced's error body: ``invalid_request`` for 4xx, ``rate_limit_error`` for 429, ``api_error`` for 5xx."""
        if status == 429:
            limit = self.settings["max_in_flight"] or ref.MAX_IN_FLIGHT
            kind = "rate_limit_error"
            message = f"Too many concurrent requests! You can only make {limit} concurrent requests at a time."
        elif status >= 500:
            kind = "api_error"
        else:
            kind = "invalid_request"
        body = {"type": kind, "message": message}
        if extra.get("param"):
            body["param"] = extra["param"]
        return self._json(status, body)

    def rate_limit_key(self, request: web.Request) -> str | None:
        """The API key of an authenticated request; the server counts in-flight requests per key."""
        try:
            return self._authenticate(request)
        except ApiError:
            return None

    def reset(self) -> None:
        """Forget all records, caches and replies; restore the default settings."""
        self.stores = {key: Store() for key in self.stores}
        self.configure(dict(DEFAULT_SETTINGS))

    def snapshot(self) -> dict:
        """The state a restart keeps (``--state-file``): the store (records, caches, idempotent replies), settings."""
        extra = {k: v for k, v in self.stores.items() if k != self.api_key}
        return {"store": self.store, "settings": dict(self.settings), "accounts": extra}

    def restore(self, state: dict) -> None:
        """Take back a :meth:`snapshot`; nothing is in flight after a restart."""
        self.store = state["store"]
        self.stores.update({k: v for k, v in state.get("accounts", {}).items() if k in self.stores})
        self.configure(state["settings"])

    def seed(self, spec: dict) -> dict:
        """Add deterministic Nordic customers, contacts and invoices (``account``: that API key's); the counts."""
        spec = dict(spec or {})
        return seeding.seed(self.account_store(spec.pop("account", None)), spec)

    def inspect(self, entity: str, query: dict) -> list[dict]:
        """Every stored ``customers``/``contacts``/``invoices`` record as the API shows it (optionally one ``id``)."""
        store = self.account_store(query.get("account"))
        tables = {"customers": store.customers, "contacts": store.contacts, "invoices": store.invoices}
        if entity not in tables:
            raise web.HTTPNotFound(text=json.dumps({"error": f"unknown entity {entity!r}; use {sorted(tables)}"}),
                                   content_type="application/json")
        records = tables[entity].values()
        if "id" in query:
            records = [r for r in records if str(r["id"]) == str(query["id"])]
        at = int(time.time())
        return [invoices.render(r, at) if entity == "invoices" else dict(r) for r in records]

    def configure(self, settings: dict) -> dict:
        """Change ``max_in_flight`` (0 or null switches the limiter off) or ``idempotency_ttl_seconds``."""
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        for key, value in settings.items():
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{key} must be a non-negative number or null")
            self.settings[key] = value
        self.limiter.limit = self.settings["max_in_flight"] or _UNLIMITED
        return dict(self.settings)

    _LISTS: ClassVar[dict[str, str]] = {"/customers": "customers", "/invoices": "invoices"}

    def list_page(self, request: web.Request) -> tuple[str, int] | None:
        """``(entity, page number)`` of a list request, for edits landed between pages."""
        entity = self._LISTS.get(request.path.rstrip("/"))
        if entity is None:
            return None
        return entity, max(1, params.php_int(request.query.get("page", 1)))

    owner_field = "account"

    def request_owner(self, request: web.Request) -> str | None:
        """The account whose data the request reads: the one its API key opens."""
        return self.rate_limit_key(request)

    def has_owner(self, owner: str) -> bool:
        return owner in self.stores

    def edit(self, entity: str, record_id, values: dict, append: dict, backdate_seconds: float = 0,
             owner: str | None = None) -> None:
        """Edit one record of ``owner``'s (an API key; None: the default account) through the PATCH path (``append``
        adds text to the current value)."""
        store = self.account_store(owner)
        table = {"customers": (store.customers, customers.update, "customer"),
                 "invoices": (store.invoices, invoices.update, "invoice")}[entity]
        record = table[0][int(record_id)]
        data = {**values, **{k: f"{record.get(k) or ''}{v}" for k, v in append.items()}}
        table[1](store, record, data)
        if backdate_seconds:
            record["updated_at"] -= int(backdate_seconds)
            store.changed(table[2])

    # -- request plumbing -----------------------------------------------------------------------------------------

    @staticmethod
    def _credentials(request: web.Request) -> tuple[str, str]:
        """Username and password of HTTP Basic auth, or empty strings."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return "", ""
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        username, _, password = decoded.partition(":")
        return username, password

    def _authenticate(self, request: web.Request) -> str:
        """Return the API key, or raise the server's 401.

        The key normally is the username (empty password); with a password, the username names the account and the
        password is the key.
        """
        username, password = self._credentials(request)
        if username and password:
            if username != ref.ACCOUNT_USERNAME:
                raise ApiError(401, f"We did not find an account matching the username: {username}")
            key = password
        else:
            key = username
        if not key:
            raise ApiError(401, "Missing API key! HINT: You can pass in your API key as the username parameter using "
                                "HTTP Basic Auth.")
        if not any(hmac.compare_digest(key.encode(), known.encode()) for known in self.stores):
            raise ApiError(401, f"We could not authenticate you with the API Key: {scrub(key)}")
        return key

    @staticmethod
    def _idempotency_key(request: web.Request) -> str | None:
        """The ``Idempotency-Key`` header, checked as the server does (POST/PATCH only, 6 to 64 characters)."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            return None
        if request.method not in ("POST", "PATCH"):
            raise ApiError(400, f"Unsupported method: {request.method}. Idempotency keys can only be used with POST "
                                "and PATCH requests.")
        if len(key) < 6:
            raise ApiError(400, "Idempotency key is too short. Must be at least 6 characters long.")
        if len(key) > 64:
            raise ApiError(400, "Idempotency key is too long. Must be no longer than 64 characters.")
        return key

    @staticmethod
    def _json(status: int, payload, headers: dict | None = None, pretty: bool = False) -> web.Response:
        """A JSON response with sorted keys (the server ksorts models) and the standard API headers."""
        if status == 204:
            return web.Response(status=204, headers={**STANDARD_HEADERS, **(headers or {})})
        text = json.dumps(payload, sort_keys=True, indent=4 if pretty else None,
                          separators=(",", ": ") if pretty else (",", ":"))
        return web.Response(status=status, body=text.encode(), content_type="application/json",
                            headers={**STANDARD_HEADERS, **(headers or {})})

    def _endpoint(self, methods: dict):
        """An aiohttp handler dispatching one path to ``methods`` (method name → coroutine)."""
        async def handle(request: web.Request) -> web.Response:
            # The account chosen by the API key holds for this request only, whichever way it ends.
            outer = _ACCOUNT_STORE.set(None)
            try:
                return await self._dispatch(request, methods)
            finally:
                _ACCOUNT_STORE.reset(outer)
        return handle

    async def _dispatch(self, request: web.Request, methods: dict) -> web.Response:
        """Authenticate, honour idempotency keys, route by method, and turn errors into Invoiced's format."""
        replay_key = None
        try:
            api_key = self._authenticate(request)
            _ACCOUNT_STORE.set(self.stores[api_key])
            idempotency_key = self._idempotency_key(request)
            if idempotency_key:
                replay_key = (api_key, idempotency_key)
                cached = self.store.idempotent.get(replay_key)
                if cached and cached[0] > time.monotonic():
                    return web.Response(status=cached[1], body=cached[2] or None,
                                        content_type="application/json" if cached[2] else None,
                                        headers=STANDARD_HEADERS)
            # HEAD is answered like GET (aiohttp leaves the body out).
            handler = methods.get("GET" if request.method == "HEAD" else request.method)
            if handler is None:
                if not methods:
                    raise ApiError(404, f"Request was not recognized: {request.method} {request.path}")
                raise ApiError(405, f"Method not allowed: {request.method} {request.path}")
            status, payload, headers = await handler(request)
            pretty = request.headers.get("User-Agent", "").startswith("curl")
            response = self._json(status, payload, headers, pretty)
        except ApiError as exc:
            response = self.error(exc.status, exc.message, param=exc.param)
        except web.HTTPException:
            raise
        except Exception:  # the real API answers 500 api_error rather than dropping the request
            log.exception("unhandled error in %s %s", request.method, request.path)
            response = self.error(500, "There was an error processing your request.")
        if replay_key is not None:
            ttl = self.settings["idempotency_ttl_seconds"] or 0
            self.store.idempotent[replay_key] = (time.monotonic() + ttl, response.status, response.body or b"")
        return response

    # -- lists ----------------------------------------------------------------------------------------------------

    def _shape(self, record: dict, lq_or_query) -> dict:
        """Apply ``exclude`` and ``expand=customer`` to one record."""
        exclude, expand = lq_or_query
        shown = {k: v for k, v in record.items() if k not in exclude} if exclude else record
        if "customer" in expand and isinstance(record.get("customer"), int) and record.get("object") != "customer":
            customer = self.store.customers.get(record["customer"])
            if customer is not None:
                shown = dict(shown, customer=customer)
        return shown

    def _list(self, request: web.Request, entity: str, records, lq: listing.ListQuery, value, render, parent=None):
        """One page of a list, with the ids cached per query signature until the next write."""
        signature = (parent, *lq.signature())
        ids = self.store.cached_ids(entity, signature, lambda: listing.matching_ids(records(), lq, value))
        if all(field == "id" for field, _ in lq.sort) and (lq.page - 1) * lq.per_page >= ref.DEEP_PAGE_OFFSET:
            # Deep pages of id-sorted lists need the cursor left by fetching the page before.
            cursor = self.store.cursors.get((entity, signature, lq.per_page, lq.page))
            if cursor is None or cursor < time.monotonic():
                raise ApiError(400, "You must retrieve all preceding page numbers before retrieving this page.")
        self._remember_cursor((entity, signature, lq.per_page, lq.page + 1))
        page_ids, last = listing.page_of(ids, lq)
        table = self.store.table(entity)
        at = int(time.time())
        shaping = (lq.exclude, lq.expand)
        body = [self._shape(render(table[i], at), shaping) for i in page_ids]
        headers = {}
        if lq.paginate:
            url = f"{request.scheme}://{request.host}{request.path}"
            headers["X-Total-Count"] = str(len(ids))
            headers["Link"] = listing.link_header(url, request.query.items(), lq, last)
        return 200, body, headers

    def _remember_cursor(self, key: tuple) -> None:
        """Leave the cursor for the next page (5 minutes), pruning expired ones now and then."""
        cursors = self.store.cursors
        at = time.monotonic()
        if len(cursors) > 10_000:
            for stale in [k for k, expiry in cursors.items() if expiry < at]:
                del cursors[stale]
        cursors[key] = at + ref.CURSOR_TTL_SECONDS

    @staticmethod
    def _shaping(request: web.Request) -> tuple[frozenset, frozenset]:
        """``exclude`` and ``expand`` of a single-record GET."""
        split = lambda key: frozenset(p.strip() for p in request.query.get(key, "").split(",") if p.strip())  # noqa: E731
        return split("exclude"), split("expand")

    # -- customers ------------------------------------------------------------------------------------------------

    def _customer(self, raw: str) -> dict:
        """The customer with path id ``raw`` or a 404."""
        record = self.store.customers.get(_ident(raw))
        if record is None:
            raise not_found("Customer", raw)
        return record

    async def list_customers(self, request: web.Request):
        """``GET /customers``: the one list that refuses unknown query keys."""
        query = params.query(request)
        unknown = [key for key in query if key not in ref.CUSTOMER_LIST_OPTIONS]
        if unknown:
            raise options_error(unknown, ref.CUSTOMER_LIST_OPTIONS, "query")
        lq = listing.parse("customer", query, with_metadata=True, with_updated=True)
        return self._list(request, "customer", lambda: self.store.customers.values(), lq, _plain_value,
                          lambda r, _at: r)

    async def create_customer(self, request: web.Request):
        """``POST /customers``."""
        return 201, customers.create(self.store, await params.body(request)), None

    async def get_customer(self, request: web.Request):
        """``GET /customers/:id``."""
        return 200, self._shape(self._customer(request.match_info["id"]), self._shaping(request)), None

    async def update_customer(self, request: web.Request):
        """``PATCH /customers/:id``."""
        data = await params.body(request)
        return 200, customers.update(self.store, self._customer(request.match_info["id"]), data), None

    async def delete_customer(self, request: web.Request):
        """``DELETE /customers/:id``."""
        customers.delete(self.store, self._customer(request.match_info["id"]))
        return 204, None, None

    # -- contacts -------------------------------------------------------------------------------------------------

    def _contact(self, customer: dict, raw: str) -> dict:
        """The contact ``raw`` of ``customer`` or a 404 (also when it belongs to another customer)."""
        record = self.store.contacts.get(_ident(raw))
        if record is None or record["customer"] != customer["id"]:
            raise not_found("Contact", raw)
        return record

    async def list_contacts(self, request: web.Request):
        """``GET /customers/:id/contacts``: no metadata or updated_after here."""
        customer = self._customer(request.match_info["customer_id"])
        lq = listing.parse("contact", params.query(request), with_metadata=False, with_updated=False)
        index = self.store.contacts_by_customer.get(customer["id"], {})
        return self._list(request, "contact", lambda: [self.store.contacts[i] for i in index], lq, _plain_value,
                          lambda r, _at: r, parent=customer["id"])

    async def create_contact(self, request: web.Request):
        """``POST /customers/:id/contacts``."""
        customer = self._customer(request.match_info["customer_id"])
        return 201, contacts.create(self.store, customer, await params.body(request)), None

    async def get_contact(self, request: web.Request):
        """``GET /customers/:id/contacts/:id``."""
        customer = self._customer(request.match_info["customer_id"])
        return 200, self._contact(customer, request.match_info["id"]), None

    async def update_contact(self, request: web.Request):
        """``PATCH /customers/:id/contacts/:id``."""
        data = await params.body(request)
        customer = self._customer(request.match_info["customer_id"])
        return 200, contacts.update(self.store, self._contact(customer, request.match_info["id"]), data), None

    async def delete_contact(self, request: web.Request):
        """``DELETE /customers/:id/contacts/:id``."""
        customer = self._customer(request.match_info["customer_id"])
        contacts.delete(self.store, self._contact(customer, request.match_info["id"]))
        return 204, None, None

    # -- invoices -------------------------------------------------------------------------------------------------

    def _invoice(self, raw: str) -> dict:
        """The invoice with path id ``raw`` or a 404."""
        record = self.store.invoices.get(_ident(raw))
        if record is None:
            raise not_found("Invoice", raw)
        return record

    async def list_invoices(self, request: web.Request):
        """``GET /invoices``: unknown query keys are ignored."""
        query = params.query(request)
        lq = listing.parse("invoice", query, with_metadata=True, with_updated=True)
        # start_date / end_date bound the invoice date, both inclusive.
        if query.get("start_date") not in (None, ""):
            lq.conditions.append(("date", ">=", float(params.php_int(query["start_date"]))))
        if query.get("end_date") not in (None, ""):
            lq.conditions.append(("date", "<=", float(params.php_int(query["end_date"]))))
        return self._list(request, "invoice", lambda: self.store.invoices.values(), lq, invoices.value,
                          invoices.render)

    async def create_invoice(self, request: web.Request):
        """``POST /invoices``."""
        return 201, invoices.create(self.store, await params.body(request)), None

    async def get_invoice(self, request: web.Request):
        """``GET /invoices/:id``."""
        return 200, self._shape(invoices.render(self._invoice(request.match_info["id"])), self._shaping(request)), None

    async def update_invoice(self, request: web.Request):
        """``PATCH /invoices/:id``."""
        data = await params.body(request)
        return 200, invoices.update(self.store, self._invoice(request.match_info["id"]), data), None

    async def delete_invoice(self, request: web.Request):
        """``DELETE /invoices/:id``."""
        invoices.delete(self.store, self._invoice(request.match_info["id"]))
        return 204, None, None

    async def void_invoice(self, request: web.Request):
        """``POST /invoices/:id/void`` (the official client sends ``{}``)."""
        await params.body(request)
        return 200, invoices.void(self.store, self._invoice(request.match_info["id"])), None
