"""What the engine needs to know of each API entity: listing, ids, change times, carried ids, create and update.

Adapters speak to the API clients only (through the small interfaces below, never to Airflow hooks); they hold no
state of their own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

from pogo_invoiced_sync.clients.errors import PermanentApiError
from pogo_invoiced_sync.clients.listing import Listing
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, get_path

Page = list[dict[str, Any]]


class ApiClientLike(Protocol):
    """What the engine needs of any API client: its call counters and a scope for a writer's fan-out."""

    @property
    def stats(self) -> dict[str, Any]:
        """Calls by method and status, retries, waits (``calls_total`` among them)."""
        ...

    def keep_slots(self) -> AbstractContextManager[None]:
        """A scope in which a writer's threads keep their in-flight slots across calls."""
        ...


class PowerOfficeGoApi(ApiClientLike, Protocol):
    """What the engine needs of a PowerOffice Go client (:class:`~pogo_invoiced_sync.clients.PowerOfficeGoClient`)."""

    def iter_pages(
        self, endpoint: str, params: Mapping[str, Any] | None = None, *, listing: Listing | None = None
    ) -> Iterator[Page]: ...

    def iter_changed(
        self,
        endpoint: str,
        since: dt.datetime | None,
        params: Mapping[str, Any] | None = None,
        *,
        listing: Listing | None = None,
    ) -> Iterator[Page]: ...

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None: ...

    def create(self, endpoint: str, body: Mapping[str, Any], safe_to_repeat: bool = False) -> dict[str, Any]: ...

    def patch(
        self, endpoint: str, changes: Mapping[str, Any], current: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None: ...


class InvoicedApi(ApiClientLike, Protocol):
    """What the engine needs of an Invoiced client (:class:`~pogo_invoiced_sync.clients.InvoicedClient`)."""

    def iter_pages(
        self, endpoint: str, params: Mapping[str, Any] | None = None, *, listing: Listing | None = None
    ) -> Iterator[Page]: ...

    def iter_changed(
        self,
        endpoint: str,
        since_unix: int | None,
        params: Mapping[str, Any] | None = None,
        *,
        listing: Listing | None = None,
    ) -> Iterator[Page]: ...

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None: ...

    def create(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        safe_to_repeat: bool = False,
    ) -> dict[str, Any]: ...

    def update(self, endpoint: str, body: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]: ...


EXTERNAL_REF_KEY = "poweroffice_go_id"  # Invoiced metadata key carrying the PowerOffice Go id (MAPPING.md, decision 2)
_IN_USE = re.compile(r"is used on \(contact\) Id = (\d+)|is used on .*?Id = ([0-9a-fA-F-]{8,})", re.IGNORECASE)


def parse_time(value: Any) -> dt.datetime | None:
    """An API timestamp (ISO 8601 text or unix seconds) as an aware datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def set_path(body: dict, path: str, value: Any) -> None:
    """Assign a dotted path in a nested body."""
    *parents, leaf = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value


class Entity:
    """Base of the adapters."""

    system: str
    list_path: str
    id_field: str
    ref_prefix: str = ""

    def record_id(self, raw: dict) -> str:
        value = raw.get(self.id_field)
        if value in (None, ""):
            raise ValueError(f"{self.system} record without {self.id_field}: {sorted(raw)[:8]}")
        return str(value)

    def filter_time(self, raw: dict) -> dt.datetime | None:
        """The time the incremental filter looks at (drives the cursor)."""
        return self.changed_at(raw)

    def changed_at(self, raw: dict) -> dt.datetime | None:
        raise NotImplementedError

    def external_ref(self, raw: dict) -> str | None:
        raise NotImplementedError

    def split_writable(self, assignments: dict, current: dict | None) -> tuple[dict, dict, str | None]:
        """Split a write into what the API can hold and what is left out, with the reason for the sync log (None:
        left out silently, e.g. a default the API fills in on a create).

        ``current`` holds the target record's present values by native path (None on a create).
        """
        return assignments, {}, None

    def meta(self, raw: dict, paths: list[str]) -> dict:
        """Facts the writer needs later: which parent objects of mapped paths are null on the record."""
        parents = sorted({p.split(".")[0] for p in paths if "." in p})
        return {"null_parents": [p for p in parents if raw.get(p) is None]} if parents else {}

    # What each system's adapter does with its client (typed there by that system's interface).

    def list(
        self, client: Any, since: dt.datetime | None, params: dict | None = None, listing: Listing | None = None
    ) -> Iterator[Page]:
        """Pages of the records changed after ``since`` (all of them when None)."""
        raise NotImplementedError

    def get(self, client: Any, record_id: str) -> dict | None:
        """One record; None when it is gone."""
        raise NotImplementedError

    def create(self, client: Any, assignments: dict, defaults: dict, origin_id: str, idempotency_key: str) -> dict:
        """Create the record carrying ``origin_id``; return it as the API answered."""
        raise NotImplementedError

    def update(self, client: Any, record_id: str, assignments: dict, meta: dict) -> dict | None:
        """Write ``assignments`` to a record; return it as the API answered."""
        raise NotImplementedError

    def find_created(self, client: Any, origin_id: str, intent: dict) -> dict | None:
        """The record an earlier attempt created for ``origin_id``, if any."""
        raise NotImplementedError


class PowerOfficeGoEntity(Entity):
    """PowerOffice Go: PascalCase, ISO timestamps, JSON Patch, ``ExternalImportReference`` carries our key."""

    system = POGO
    id_field = "Id"
    create_path: str

    def list(
        self,
        client: PowerOfficeGoApi,
        since: dt.datetime | None,
        params: dict | None = None,
        listing: Listing | None = None,
    ) -> Iterator[Page]:
        if since is None:
            yield from client.iter_pages(self.list_path, params or None, listing=listing)
        else:
            yield from client.iter_changed(self.list_path, since, params or None, listing=listing)

    def filter_time(self, raw: dict) -> dt.datetime | None:
        return parse_time(raw.get("LastChangedDateTimeOffset"))

    def changed_at(self, raw: dict) -> dt.datetime | None:
        read = [
            parse_time(raw.get("LastChangedDateTimeOffset")),
            parse_time(get_path(raw, "MailAddress.LastChangedDateTimeOffset")),
        ]
        times = [t for t in read if t]
        return max(times) if times else None

    def external_ref(self, raw: dict) -> str | None:
        ref = raw.get("ExternalImportReference") or ""
        return ref[len(self.ref_prefix) :] if ref.startswith(self.ref_prefix) else None

    def create_body(self, assignments: dict, defaults: dict, origin_id: str) -> dict:
        body: dict = {}
        for path, value in {**defaults, **assignments}.items():
            if value is not None:
                set_path(body, path, value)
        body["ExternalImportReference"] = f"{self.ref_prefix}{origin_id}"
        return body

    def create(
        self, client: PowerOfficeGoApi, assignments: dict, defaults: dict, origin_id: str, idempotency_key: str
    ) -> dict:
        body = self.create_body(assignments, defaults, origin_id)
        try:
            # A unique ExternalImportReference makes a repeated POST fail instead of duplicating: safe to retry.
            return client.create(self.create_path, body, safe_to_repeat=True)
        except PermanentApiError as exc:
            match = _IN_USE.search(str(exc))
            if match:
                found = client.get(f"{self.list_path}/{match.group(1) or match.group(2)}")
                if found and self.external_ref(found) == origin_id:
                    return found
            raise

    def update(self, client: PowerOfficeGoApi, record_id: str, assignments: dict, meta: dict) -> dict | None:
        current = dict.fromkeys(meta.get("null_parents", []))
        return client.patch(f"{self.list_path}/{record_id}", assignments, current=current)

    def get(self, client: PowerOfficeGoApi, record_id: str) -> dict | None:
        return client.get(f"{self.list_path}/{record_id}")


class PowerOfficeGoCustomers(PowerOfficeGoEntity):
    list_path = "/Customers"
    create_path = "/Customers"
    ref_prefix = "invoiced-customer-"
    ADDRESS = "MailAddress."
    ADDRESS_REQUIRED = ("City", "ZipCode")  # a posted MailAddress must have both (reference, ContactAddressPostDto)

    def split_writable(self, assignments: dict, current: dict | None) -> tuple[dict, dict, str | None]:
        """Leave out an address PowerOffice Go cannot hold: one with some part but no City or no ZipCode."""
        address = {k: v for k, v in assignments.items() if k.startswith(self.ADDRESS)}
        if not address:
            return assignments, {}, None
        result = {k: v for k, v in (current or {}).items() if k.startswith(self.ADDRESS)}
        result.update(address)
        if not any(v not in (None, "") for v in result.values()):
            return assignments, {}, None  # no address at all (or one being cleared): nothing to refuse
        missing = [m for m in self.ADDRESS_REQUIRED if result.get(self.ADDRESS + m) in (None, "")]
        if not missing:
            return assignments, {}, None
        kept = {k: v for k, v in assignments.items() if k not in address}
        given = ", ".join(f"{k[len(self.ADDRESS) :]}={v!r}" for k, v in result.items() if v not in (None, ""))
        reason = (
            f"address left out of the PowerOffice Go write: PowerOffice Go takes a MailAddress only with City "
            f"and ZipCode, and this one has no {' and no '.join(missing)} ({given}); the rest was written. "
            f"Add the missing part(s) on the other side to send the address."
        )
        return kept, address, reason

    def find_created(self, client: PowerOfficeGoApi, origin_id: str, intent: dict) -> dict | None:
        """The customer an earlier attempt created for ``origin_id``, found by its unique reference."""
        for page in client.iter_pages(self.list_path, {"externalImportReference": f"{self.ref_prefix}{origin_id}"}):
            for raw in page:
                return raw
        return None


class PowerOfficeGoSalesOrders(PowerOfficeGoEntity):
    list_path = "/SalesOrders"
    create_path = "/SalesOrders/Complete"
    ref_prefix = "invoiced-invoice-"

    def list(
        self,
        client: PowerOfficeGoApi,
        since: dt.datetime | None,
        params: dict | None = None,
        listing: Listing | None = None,
    ) -> Iterator[Page]:
        contact_companies: dict[str, Any] | None = None
        for page in super().list(client, since, params, listing):
            needs = [o for o in page if o.get("CustomerId") is None and o.get("CustomerReferenceContactPersonId")]
            if needs and contact_companies is None:
                # The order's customer falls back to its reference contact person's company (MAPPING.md, decision 5).
                contact_companies = {
                    str(c["Id"]): c.get("ContactId") for p in client.iter_pages("/ContactPersons") for c in p
                }
            for order in needs:
                person_id = str(order["CustomerReferenceContactPersonId"])
                order["CustomerReferenceContactPerson"] = {
                    "Id": person_id,
                    "ContactId": (contact_companies or {}).get(person_id),
                }
            yield page

    def changed_at(self, raw: dict) -> dt.datetime | None:
        return parse_time(raw.get("LastChangedDateTimeOffset"))

    # Null on an order means "inherited from the customer (or the client)": only showInherited=true shows the
    # values the order really has. Every read of orders asks for them (reference: sales orders, showInherited).
    SHOW_INHERITED: ClassVar[dict[str, Any]] = {"showInherited": True}

    def create_body(self, assignments: dict, defaults: dict, origin_id: str) -> dict:
        body = super().create_body(assignments, defaults, origin_id)
        body.setdefault("SalesOrderLines", [])
        return body

    def create(
        self, client: PowerOfficeGoApi, assignments: dict, defaults: dict, origin_id: str, idempotency_key: str
    ) -> dict:
        created = super().create(client, assignments, defaults, origin_id, idempotency_key)
        return self._effective(client, created) or created

    def update(self, client: PowerOfficeGoApi, record_id: str, assignments: dict, meta: dict) -> dict | None:
        return self._effective(client, super().update(client, record_id, assignments, meta))

    def get(self, client: PowerOfficeGoApi, record_id: str) -> dict | None:
        return client.get(f"{self.list_path}/{record_id}", self.SHOW_INHERITED)

    def _effective(self, client: PowerOfficeGoApi, answer: dict | None) -> dict | None:
        """A write's answer shows inherited members as null: read the order back with its effective values when
        one we read is null (the currency; the reference person only stands in for a missing customer)."""
        if not isinstance(answer, dict) or not answer.get("Id"):
            return answer
        if answer.get("CurrencyCode") is None or (
            answer.get("CustomerId") is None and answer.get("CustomerReferenceContactPersonId") is None
        ):
            return self.get(client, str(answer["Id"])) or answer
        return answer

    def find_created(self, client: PowerOfficeGoApi, origin_id: str, intent: dict) -> dict | None:
        """The order an earlier attempt created, among orders changed since the intent (no reference filter exists)."""
        since = intent["created_at"] - dt.timedelta(minutes=10)
        for page in client.iter_changed(self.list_path, since, self.SHOW_INHERITED):
            for raw in page:
                if raw.get("ExternalImportReference") == f"{self.ref_prefix}{origin_id}":
                    return raw
        return None


class InvoicedEntity(Entity):
    """Invoiced: flat snake_case, unix-second timestamps, ``metadata.poweroffice_go_id`` carries our key."""

    system = INVOICED
    id_field = "id"

    def list(
        self, client: InvoicedApi, since: dt.datetime | None, params: dict | None = None, listing: Listing | None = None
    ) -> Iterator[Page]:
        if since is None:
            yield from client.iter_pages(self.list_path, params or None, listing=listing)
        else:
            yield from client.iter_changed(self.list_path, int(since.timestamp()), params or None, listing=listing)

    def changed_at(self, raw: dict) -> dt.datetime | None:
        return parse_time(raw.get("updated_at"))

    def external_ref(self, raw: dict) -> str | None:
        value = (raw.get("metadata") or {}).get(EXTERNAL_REF_KEY)
        return None if value in (None, "") else str(value)

    def create(
        self, client: InvoicedApi, assignments: dict, defaults: dict, origin_id: str, idempotency_key: str
    ) -> dict:
        body = {k: v for k, v in {**defaults, **assignments}.items() if v is not None}
        body["metadata"] = {EXTERNAL_REF_KEY: origin_id}
        # The Idempotency-Key makes a repeated POST return the first answer: safe to retry.
        return client.create(self.list_path, body, idempotency_key=idempotency_key, safe_to_repeat=True)

    def update(self, client: InvoicedApi, record_id: str, assignments: dict, meta: dict) -> dict:
        # Never send metadata on update: Invoiced replaces the whole map.
        return client.update(f"{self.list_path}/{record_id}", assignments)

    def get(self, client: InvoicedApi, record_id: str) -> dict | None:
        return client.get(f"{self.list_path}/{record_id}")

    def find_created(self, client: InvoicedApi, origin_id: str, intent: dict) -> dict | None:
        """The record an earlier attempt created for ``origin_id``, found by its metadata."""
        for page in client.iter_pages(self.list_path, {f"metadata[{EXTERNAL_REF_KEY}]": origin_id}):
            for raw in page:
                return raw
        return None


class InvoicedCustomers(InvoicedEntity):
    list_path = "/customers"


class InvoicedInvoices(InvoicedEntity):
    list_path = "/invoices"
    DEFAULTED = ("currency",)  # Invoiced fills it in (the customer's, else the account's): null is never a value

    def split_writable(self, assignments: dict, current: dict | None) -> tuple[dict, dict, str | None]:
        """Never send ``currency: null``: an order that shows none has an inherited one we could not read."""
        nulls = {k: v for k, v in assignments.items() if k in self.DEFAULTED and v is None}
        if not nulls:
            return assignments, {}, None
        kept = {k: v for k, v in assignments.items() if k not in nulls}
        if current is None:
            # On a create it is simply not sent: Invoiced takes the customer's, else the account's.
            return kept, nulls, None
        return (
            kept,
            nulls,
            (
                f"{', '.join(nulls)} left out of the Invoiced write: PowerOffice Go shows none (an "
                "inherited value it did not resolve), and Invoiced would put its own default in; "
                "Invoiced keeps its value"
            ),
        )


ENTITIES = {
    (POGO, "customers"): PowerOfficeGoCustomers(),
    (POGO, "sales_orders"): PowerOfficeGoSalesOrders(),
    (INVOICED, "customers"): InvoicedCustomers(),
    (INVOICED, "invoices"): InvoicedInvoices(),
}


def entity_for(system: str, entity: str) -> Entity:
    """The adapter for an entity named in a mapping."""
    try:
        return ENTITIES[(system, entity)]
    except KeyError:
        raise ValueError(f"no adapter for {system} entity {entity!r}") from None
