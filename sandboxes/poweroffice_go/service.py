"""The PowerOffice Go v2 sandbox: token endpoint, Customers, ContactPersons and SalesOrders over aiohttp.

Paths match case-insensitively and are served both at the root and under ``/Demo``, like goapi.poweroffice.net.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import re
from typing import ClassVar

from aiohttp import web

from sandboxes.common.app import json_body
from sandboxes.common.limits import RequestsPerSecond
from sandboxes.poweroffice_go import auth, errors, seeding
from sandboxes.poweroffice_go.clock import format_micros
from sandboxes.poweroffice_go.errors import ApiError, not_found
from sandboxes.poweroffice_go.listing import Page, Query
from sandboxes.poweroffice_go.store import CONTACT_PERSON_PROPERTIES, CUSTOMER_PROPERTIES, SALES_ORDER_PROPERTIES, Store
from sandboxes.settings import SandboxSettings

DEFAULT_CONFIG = {"token_ttl_seconds": 1200, "rate_limit_per_second": 10, "invalid_privileges": []}
# The roles each area accepts (spec: every operation's summary lists them); writes need a _Full role.
_AREA_ROLES = {
    "customers": (("Customer", "Customer_Full"), ("Customer_Full",)),
    "contactpersons": (("ContactPerson", "ContactPerson_Full", "Customer", "Customer_Full"),
                       ("ContactPerson_Full", "Customer_Full")),
    "salesorders": (("SalesOrders", "SalesOrders_Full"), ("SalesOrders_Full",)),
}
_JSON_TYPES = re.compile(r"^(application/json|text/json|application/[\w.+-]*\+json)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BINDING_TITLE = "One or more validation errors occurred."
# The store of the client whose token the request in this task carries (set for the handler's duration only).
_CLIENT_STORE: contextvars.ContextVar[Store | None] = contextvars.ContextVar("pogo_client_store", default=None)


class Unlimited:
    """Stands in for the limiter when rate limiting is configured off."""

    def acquire(self, _key: str) -> bool:
        return True

    def release(self, _key: str) -> None:
        """Nothing to release."""


def _int_id(raw: str, name: str = "id") -> int:
    if not re.fullmatch(r"-?\d{1,19}", raw):
        raise ApiError(400, _BINDING_TITLE, f"The value '{raw}' is not valid for {name}.")
    return int(raw)


def _uuid_id(raw: str, name: str = "id") -> str:
    if not _UUID.match(raw):
        raise ApiError(400, _BINDING_TITLE, f"The value '{raw}' is not valid for {name}.")
    return raw.lower()


async def _json(request: web.Request, patch: bool = False):
    """Read a JSON body; PATCH takes only ``application/json-patch+json`` (a plain JSON object is a classic bug)."""
    if patch and request.content_type != "application/json-patch+json":
        raise ApiError(415, "Unsupported Media Type", f"Content-Type '{request.content_type}' is not supported. "
                                                      "PATCH requires 'application/json-patch+json' with an RFC 6902 "
                                                      "JSON Patch array.")
    if not patch and not _JSON_TYPES.match(request.content_type or ""):
        raise ApiError(415, "Unsupported Media Type", f"Content-Type '{request.content_type}' is not supported.")
    text = await request.text()
    if not text.strip():
        raise ApiError(400, _BINDING_TITLE, "A non-empty request body is required.")
    try:
        body = json.loads(text)
    except ValueError:
        raise ApiError(400, _BINDING_TITLE, "The request body is not valid JSON.") from None
    if patch and not isinstance(body, list):
        raise ApiError(400, _BINDING_TITLE, "The JSON patch document must be an array of operations "
                                            "(application/json-patch+json, RFC 6902).")
    return body


class PowerOfficeGoService:
    """PowerOffice Go v2 as the shared sandbox app expects a service to be."""

    name = "poweroffice_go"

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        # Issued tokens survive a reset: wiping data does not revoke credentials in the real service either.
        self.tokens = auth.Tokens()
        self.reset()
        self.routes = self._route_table()

    # -- Service protocol ---------------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The data of the client the current request's token belongs to; outside requests, the default client's."""
        active = _CLIENT_STORE.get()
        return active if active is not None else self.stores[self.settings.pogo_client_key]

    @store.setter
    def store(self, value: Store) -> None:
        self.stores[self.settings.pogo_client_key] = value

    def client_store(self, client: str | None) -> Store:
        """The data of the client with key ``client`` (None: the default client); an unknown key is an error."""
        if client is None:
            return self.store
        if client not in self.stores:
            raise web.HTTPNotFound(text=json.dumps({"error": "unknown client key"}), content_type="application/json")
        return self.stores[client]

    def reset(self) -> None:
        """Empty every client's store and restore the default settings."""
        # One store per client key: the default one, then any opted-in extra clients under the same subscription.
        keys = (self.settings.pogo_client_key, *self.settings.pogo_extra_client_keys)
        self.stores: dict[str, Store] = {key: Store() for key in keys}
        self.config = dict(DEFAULT_CONFIG)
        self.limiter = RequestsPerSecond(DEFAULT_CONFIG["rate_limit_per_second"])

    def snapshot(self) -> dict:
        """The state a restart keeps (``--state-file``): the store, the settings and the issued tokens."""
        extra = {k: v for k, v in self.stores.items() if k != self.settings.pogo_client_key}
        return {"store": self.store, "config": dict(self.config), "tokens": self.tokens, "clients": extra}

    def restore(self, state: dict) -> None:
        """Take back a :meth:`snapshot` (a rate-limit window starts afresh, as after a real restart)."""
        self.store, self.tokens = state["store"], state["tokens"]
        self.stores.update({k: v for k, v in state.get("clients", {}).items() if k in self.stores})
        self.config = dict(DEFAULT_CONFIG)
        self.configure(state["config"])

    def configure(self, settings: dict) -> dict:
        """Change ``token_ttl_seconds``, ``rate_limit_per_second`` (0 or null switches the limit off) and/or
        ``invalid_privileges`` (roles the client's module subscriptions do not cover: calls needing them get 403)."""
        unknown = set(settings) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
        if "token_ttl_seconds" in settings:
            ttl = settings["token_ttl_seconds"]
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
                raise ValueError("token_ttl_seconds must be a positive number")
            self.config["token_ttl_seconds"] = ttl
        if "rate_limit_per_second" in settings:
            limit = settings["rate_limit_per_second"] or 0
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError("rate_limit_per_second must be a non-negative integer or null")
            self.config["rate_limit_per_second"] = limit
            self.limiter = RequestsPerSecond(limit) if limit else Unlimited()
        if "invalid_privileges" in settings:
            invalid = settings["invalid_privileges"] or []
            if not isinstance(invalid, list) or set(invalid) - set(auth.ROLES):
                raise ValueError(f"invalid_privileges must be a list of {auth.ROLES}")
            self.config["invalid_privileges"] = list(invalid)
        return dict(self.config)

    def seed(self, spec: dict) -> dict:
        """Seed deterministic Nordic customers, contact persons and sales orders (``client``: that client key's)."""
        spec = dict(spec or {})
        store = self.client_store(spec.pop("client", None))
        try:
            return seeding.seed(store, spec)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": str(exc)}), content_type="application/json") from None

    def inspect(self, entity: str, query: dict) -> list[dict]:
        """Every stored record of ``entity`` as the API shows it (``id`` narrows to one, ``client`` picks a client)."""
        store = self.client_store(query.get("client"))
        views = {
            "customers": lambda: (store.render_customer(r) for r in store.customers.values()),
            "contact_persons": lambda: (store.render_contact_person(r) for r in store.contact_persons.values()),
            # As the API shows them with showInherited=true (the values in effect), unless showInherited=false.
            "sales_orders": lambda: (store.render_order_complete(r, query.get("showInherited", "true") != "false")
                                     for r in store.orders.values()),
            "invoices": lambda: iter(store.invoices.values()),
        }
        if entity not in views:
            raise web.HTTPNotFound(text=json.dumps({"error": f"unknown entity {entity!r}; known: {sorted(views)}"}),
                                   content_type="application/json")
        wanted = query.get("id")
        return [r for r in views[entity]() if wanted is None or str(r["Id"]).lower() == wanted.lower()]

    def rate_limit_key(self, request: web.Request) -> str | None:
        """APIM limits per subscription key; requests without one are refused before they count."""
        return request.headers.get("Ocp-Apim-Subscription-Key") or request.query.get("subscription-key") or None

    def error(self, status: int, message: str, **extra) -> web.Response:
        """An error in the shape PowerOffice Go's gateway or API would use for ``status``."""
        if status == 429:
            return errors.apim(429, "Rate limit is exceeded. Try again in 1 seconds.", headers={"Retry-After": "1"})
        return errors.problem(status, extra.get("title"), message, extra.get("instance"))

    def add_routes(self, app: web.Application) -> None:
        """Serve every path through one case-insensitive dispatcher (the admin routes are registered first)."""
        app.router.add_route("*", "/{tail:.*}", self._dispatch)

    _LISTS: ClassVar[dict[str, str]] = {
        "customers": "customers", "salesorders": "sales_orders", "contactpersons": "contact_persons"}

    def list_page(self, request: web.Request) -> tuple[str, int] | None:
        """``(entity, page number)`` of a list request, for edits landed between pages."""
        tail = request.path.rstrip("/").lower()
        if not tail.startswith(("/v2/", "/demo/v2/")):
            return None
        entity = self._LISTS.get(tail.rsplit("/v2/", 1)[1])
        if entity is None:
            return None
        try:
            return entity, Query(request.query).integer("PageNumber", 1)
        except ApiError:
            return None

    owner_field = "client"

    def request_owner(self, request: web.Request) -> str | None:
        """The client whose data the request reads: the one its bearer token was issued to."""
        return self._token_client(request)

    def has_owner(self, owner: str) -> bool:
        return owner in self.stores

    def edit(self, entity: str, record_id, values: dict, append: dict, backdate_seconds: float = 0,
             owner: str | None = None) -> None:
        """Edit one record of ``owner``'s (a client key; None: the default client) through the JSON Patch path
        (``append`` adds text to the current value)."""
        store = self.client_store(owner)
        if entity == "customers":
            record_id = int(record_id)
            current, patch = store.render_customer(store.customer(record_id)), store.patch_customer
        else:
            current, patch = store.render_order(store.order(str(record_id))), store.patch_order
        changes = {**values, **{k: f"{current.get(k) or ''}{v}" for k, v in append.items()}}
        record = patch(record_id, [{"op": "replace", "path": f"/{k}", "value": v} for k, v in changes.items()])
        if backdate_seconds:
            stamp = dt.datetime.fromisoformat(record["LastChangedDateTimeOffset"])
            record["LastChangedDateTimeOffset"] = format_micros(
                int((stamp - dt.timedelta(seconds=backdate_seconds)).timestamp() * 1_000_000))
            store.touched()

    # -- routing and the gateway --------------------------------------------------------------------------------

    def _route_table(self) -> list[tuple[re.Pattern, dict]]:
        table = [
            (r"/oauth/token", {"POST": self.token}),
            (r"/v2/clientintegrationinformation", {"GET": self.client_information}),
            (r"/v2/customers", {"GET": self.list_customers, "POST": self.create_customer}),
            (r"/v2/customers/(?P<id>[^/]+)", {"GET": self.get_customer, "PATCH": self.patch_customer,
                                              "DELETE": self.delete_customer}),
            (r"/v2/contactpersons", {"GET": self.list_contact_persons}),
            (r"/v2/contactpersons/(?P<contact>[^/]+)", {"POST": self.create_contact_person}),
            (r"/v2/contactpersons/(?P<contact>[^/]+)/(?P<id>[^/]+)", {
                "GET": self.get_contact_person, "PATCH": self.patch_contact_person,
                "DELETE": self.delete_contact_person}),
            (r"/v2/salesorders", {"GET": self.list_orders}),
            (r"/v2/salesorders/complete", {"POST": self.create_order}),
            (r"/v2/salesorders/sentstate", {"GET": self.sent_state}),
            (r"/v2/salesorders/(?P<id>[^/]+)", {"GET": self.get_order, "PATCH": self.patch_order,
                                                "DELETE": self.delete_order}),
            (r"/v2/salesorders/(?P<id>[^/]+)/complete", {"GET": self.get_order_complete}),
            (r"/v2/salesorders/(?P<id>[^/]+)/createandsendinvoice", {"POST": self.send_order}),
        ]
        return [(re.compile(rf"^(?P<demo>/demo)?{path}/?$", re.IGNORECASE), methods) for path, methods in table]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for pattern, methods in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            handler = methods.get(request.method)
            if handler is None:
                allowed.update(methods)
                continue
            environment = "demo" if match.group("demo") else "prod"
            params = {k: v for k, v in match.groupdict().items() if k != "demo"}
            active = None
            try:
                if handler != self.token:
                    denied = self._gateway(request, environment, bearer=True)
                    if denied is not None:
                        return denied
                    self._check_privilege(request)
                    active = _CLIENT_STORE.set(self.stores.get(self._token_client(request)))
                return await handler(request, environment, **params)
            except ApiError as exc:
                return errors.problem(exc.status, exc.title, exc.detail, request.path)
            finally:
                if active is not None:
                    _CLIENT_STORE.reset(active)
        if allowed:
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(allowed))})
        return web.Response(status=404)

    def _gateway(self, request: web.Request, environment: str, bearer: bool) -> web.Response | None:
        """APIM's subscription-key check, then the bearer token; None when the call may pass."""
        key = self.rate_limit_key(request)
        if key is None:
            return errors.apim(401, errors.APIM_MISSING_KEY)
        if key != self.settings.pogo_subscription_key:
            return errors.apim(401, errors.APIM_INVALID_KEY)
        if bearer:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else None
            if not self.tokens.valid(token, environment):
                return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None

    def _token_client(self, request: web.Request) -> str | None:
        """The client key the request's bearer token was issued to."""
        header = request.headers.get("Authorization", "")
        return self.tokens.client(header[7:].strip() if header[:7].lower() == "bearer " else None)

    def _check_privilege(self, request: web.Request) -> None:
        """403 when every role the call accepts is invalid on this client (a missing module subscription)."""
        invalid = set(self.config["invalid_privileges"])
        if not invalid:
            return
        parts = [p for p in request.path.lower().split("/") if p]
        area = parts[parts.index("v2") + 1] if "v2" in parts and parts.index("v2") + 1 < len(parts) else ""
        if area not in _AREA_ROLES:
            return
        read, write = _AREA_ROLES[area]
        accepted = read if request.method in ("GET", "HEAD") else write
        if set(accepted) <= invalid:
            # The reference documents the status, not the body: a plain ProblemDetails naming nothing.
            raise ApiError(403, "Forbidden", "Access to this resource is forbidden.")

    # -- token ---------------------------------------------------------------------------------------------------

    async def token(self, request: web.Request, environment: str) -> web.Response:
        """POST /OAuth/Token: client credentials with Basic application key:client key."""
        denied = self._gateway(request, environment, bearer=False)
        if denied is not None:
            return denied
        if request.content_type != "application/x-www-form-urlencoded":
            return errors.oauth(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
        form = await request.post()
        grant_type = form.get("grant_type")
        if grant_type is None:
            return errors.oauth(400, "invalid_request", "The grant_type parameter is missing.")
        if grant_type != "client_credentials":
            return errors.oauth(400, "unsupported_grant_type", "Only the client_credentials grant is supported.")
        keys = auth.parse_basic(request.headers.get("Authorization"))
        if keys is None:
            return errors.oauth(400, "invalid_client", "The Authorization header must be 'Basic ' followed by "
                                                       "base64(application key:client key).")
        if keys[0] != self.settings.pogo_application_key or keys[1] not in self.stores:
            return errors.oauth(400, "invalid_client", "Client integration not found. Please ensure the provided keys "
                                                       "are matching the desired environment.")
        ttl = self.config["token_ttl_seconds"]
        identity = auth.client_identity(keys[1], self.settings.pogo_client_key)
        token = self.tokens.issue(environment, ttl, keys[1], identity)
        return json_body({"access_token": token, "token_type": "bearer", "expires_in": int(ttl)},
                         headers={"Cache-Control": "no-store"})

    async def client_information(self, request: web.Request, environment: str) -> web.Response:
        """GET /ClientIntegrationInformation: who the token belongs to and what it may do."""
        client_id, client_name = auth.client_identity(self._token_client(request) or self.settings.pogo_client_key,
                                                      self.settings.pogo_client_key)
        return json_body({"ClientId": client_id, "ClientName": client_name,
                          "ActiveClientSubscriptions": ["Invoicing"],
                          "ValidPrivileges": [r for r in auth.ROLES if r not in self.config["invalid_privileges"]],
                          "InvalidPrivileges": list(self.config["invalid_privileges"])})

    # -- lists ---------------------------------------------------------------------------------------------------

    def _list(self, request: web.Request, ids_of, records: dict, render, properties: list[str], dto: str):
        query = Query(request.query)
        page = Page(query, properties, dto)
        ids = ids_of(query, page)
        start, end = page.window(len(ids))
        headers = {"X-Pagination": page.header(request.url, len(ids))}
        if start >= end:
            return web.Response(status=204, headers=headers)
        body = [page.project(render(records[i])) for i in ids[start:end]]
        return json_body(body, headers=headers)

    @staticmethod
    def _created(request: web.Request, environment: str, path: str, dto: dict) -> web.Response:
        prefix = "/Demo" if environment == "demo" else ""
        return json_body(dto, status=201, headers={"Location": f"{request.url.origin()}{prefix}/v2/{path}"})

    # -- customers -----------------------------------------------------------------------------------------------

    async def list_customers(self, request, environment):
        """GET /Customers."""
        store = self.store
        return self._list(request, store.customer_ids, store.customers, store.render_customer, CUSTOMER_PROPERTIES,
                          "CustomerDto")

    async def get_customer(self, request, environment, id):
        """GET /Customers/{id}."""
        return json_body(self.store.render_customer(self.store.customer(_int_id(id))))

    async def create_customer(self, request, environment):
        """POST /Customers."""
        record = self.store.create_customer(await _json(request))
        return self._created(request, environment, f"Customers/{record['Id']}", self.store.render_customer(record))

    async def patch_customer(self, request, environment, id):
        """PATCH /Customers/{id} (JSON Patch)."""
        customer_id = _int_id(id)
        self.store.customer(customer_id)
        record = self.store.patch_customer(customer_id, await _json(request, patch=True))
        return json_body(self.store.render_customer(record))

    async def delete_customer(self, request, environment, id):
        """DELETE /Customers/{id}."""
        self.store.delete_customer(_int_id(id))
        return web.Response(status=200)

    # -- contact persons -----------------------------------------------------------------------------------------

    async def list_contact_persons(self, request, environment):
        """GET /ContactPersons."""
        store = self.store
        return self._list(request, store.contact_person_ids, store.contact_persons, store.render_contact_person,
                          CONTACT_PERSON_PROPERTIES, "ContactPersonDto")

    async def create_contact_person(self, request, environment, contact):
        """POST /ContactPersons/{contactId}."""
        contact_id = _int_id(contact, "contactId")
        record = self.store.create_contact_person(contact_id, await _json(request))
        return self._created(request, environment, f"ContactPersons/{contact_id}/{record['Id']}",
                             self.store.render_contact_person(record))

    async def get_contact_person(self, request, environment, contact, id):
        """GET /ContactPersons/{contactId}/{id}."""
        record = self.store.contact_person(_int_id(contact, "contactId"), _int_id(id))
        return json_body(self.store.render_contact_person(record))

    async def patch_contact_person(self, request, environment, contact, id):
        """PATCH /ContactPersons/{contactId}/{id} (JSON Patch)."""
        contact_id, person_id = _int_id(contact, "contactId"), _int_id(id)
        self.store.contact_person(contact_id, person_id)
        record = self.store.patch_contact_person(contact_id, person_id, await _json(request, patch=True))
        return json_body(self.store.render_contact_person(record))

    async def delete_contact_person(self, request, environment, contact, id):
        """DELETE /ContactPersons/{contactId}/{id}."""
        self.store.delete_contact_person(_int_id(contact, "contactId"), _int_id(id))
        return web.Response(status=200)

    # -- sales orders --------------------------------------------------------------------------------------------

    async def list_orders(self, request, environment):
        """GET /SalesOrders (headers only); ``showInherited=true`` fills inherited members with their values."""
        store, shown = self.store, Query(request.query).boolean("showInherited")
        return self._list(request, store.order_ids, store.orders, lambda r: store.render_order(r, bool(shown)),
                          SALES_ORDER_PROPERTIES, "SalesOrderDto")

    async def get_order(self, request, environment, id):
        """GET /SalesOrders/{id} (``showInherited``)."""
        shown = bool(Query(request.query).boolean("showInherited"))
        return json_body(self.store.render_order(self.store.order(_uuid_id(id)), shown))

    async def get_order_complete(self, request, environment, id):
        """GET /SalesOrders/{id}/Complete (``showInherited``)."""
        shown = bool(Query(request.query).boolean("showInherited"))
        return json_body(self.store.render_order_complete(self.store.order(_uuid_id(id)), shown))

    async def create_order(self, request, environment):
        """POST /SalesOrders/Complete."""
        record = self.store.create_order(await _json(request))
        return self._created(request, environment, f"SalesOrders/{record['Id']}",
                             self.store.render_order_complete(record))

    async def patch_order(self, request, environment, id):
        """PATCH /SalesOrders/{id} (JSON Patch on the header)."""
        order_id = _uuid_id(id)
        self.store.order(order_id)
        record = self.store.patch_order(order_id, await _json(request, patch=True))
        return json_body(self.store.render_order(record))

    async def delete_order(self, request, environment, id):
        """DELETE /SalesOrders/{id}."""
        self.store.delete_order(_uuid_id(id))
        return web.Response(status=200)

    async def send_order(self, request, environment, id):
        """POST /SalesOrders/{id}/createAndSendInvoice: 202, and the order turns into an invoice."""
        order_id = _uuid_id(id)
        self.store.order(order_id)
        body = await _json(request) if request.can_read_body and (await request.text()).strip() else None
        sent = self.store.send_order(order_id, body)
        prefix = "/Demo" if environment == "demo" else ""
        return json_body(sent, status=202, headers={
            "Location": f"{request.url.origin()}{prefix}/v2/SalesOrders/sentState?id={order_id}"})

    async def sent_state(self, request, environment):
        """GET /SalesOrders/sentState?id=: the invoice a sent order became."""
        raw = Query(request.query).get("id")
        if raw is None:
            raise ApiError(400, _BINDING_TITLE, "The id parameter is required.")
        invoice = self.store.invoices.get(_uuid_id(raw))
        if invoice is None:
            if raw.lower() in self.store.orders:
                return web.Response(status=204)
            raise not_found(f"SalesOrder with id = {raw} not found.")
        return json_body([{"Id": invoice["Id"], "InvoiceNo": invoice["InvoiceNo"], "DueDate": invoice["DueDate"],
                           "SentDateTimeOffset": invoice["SentDateTimeOffset"],
                           "InvoiceDeliveryType": invoice["InvoiceDeliveryType"], "IsInvoiceBeingProcessed": False,
                           "LastErrorMessage": None}])
