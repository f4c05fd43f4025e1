"""The soak's users: a seeded random generator of what people do in both systems, through the real HTTP APIs.

Every edit that reached a server is kept as an :class:`Edit` (system, record, field, canonical value, the server's
change time from its answer, wall time), so the check can tell whether the newest edit of each field survived.
A user's write goes through the same hooks (and so the same faults) as the sync's: when a write fails after the
hook's retries, the record is read from the sandbox's admin surface to learn whether the edit landed after all.

The seed fixes the sequence of actions, values and waits; which record an action picks depends on what exists at
that moment, so two runs of one seed are alike but, being concurrent with the flows, not identical.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import time
from collections import Counter

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, load_mapping
from pogo_invoiced_sync.engine.entities import parse_time

COMPANY, PERSON, ORDERS = "customers_company", "customers_person", "salesorders_invoices"
ADDRESS = {"address1": "AddressLine1", "address2": "AddressLine2", "city": "City", "postal_code": "ZipCode",
           "country": "CountryCode"}
CITIES = ("Oslo", "Bergen", "Trondheim", "Tromsø", "Stavanger", "Göteborg", "Malmö", "Århus", "Odense", "Turku")
COUNTRIES = ("NO", "SE", "DK", "FI", "IS")
CURRENCIES = ("NOK", "SEK", "DKK", "EUR", "USD")
WORDS = ("Fjord", "Nord", "Lys", "Berg", "Hav", "Skog", "Elv", "Vik", "Dal", "Øy", "Ås", "Strand")
FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Sigrid", "Anders", "Åse", "Bjørn", "Liv", "Erik")
LAST = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Dahl", "Lie", "Haugen", "Bakke")

# How often each action is drawn. ``new_person_without_address`` is off by default: an Invoiced person without an
# address cannot become a PowerOffice Go customer until the engine sends one it accepts (see the report).
WEIGHTS = {
    "rename_company": 8, "rename_person": 5, "edit_address": 10, "edit_both_sides": 6, "new_company": 4,
    "new_person": 4, "new_person_without_address": 0, "new_order": 4, "edit_currency": 6, "switch_type": 1,
    "void_invoice": 1,
}


@dataclasses.dataclass(frozen=True)
class Edit:
    """One user edit that reached a server: ``value`` is canonical (through the flow's mapping)."""

    flow: str
    system: str
    record_id: str
    field: str
    value: object
    at: dt.datetime  # the server's change time of the field, from its answer (or stored record)
    wall: float
    action: str


def field_time(system: str, raw: dict, field: str) -> dt.datetime | None:
    """The server's change time of one mapped field: PowerOffice Go stamps the mail address apart from the customer."""
    if system == INVOICED:
        return parse_time(raw.get("updated_at"))
    if field in ADDRESS:
        return parse_time((raw.get("MailAddress") or {}).get("LastChangedDateTimeOffset"))
    return parse_time(raw.get("LastChangedDateTimeOffset"))


class Users:
    """People editing both systems while the flows run: :meth:`run` in a thread until ``stop`` is set.

    ``mid_listing``: the chance that a user also acts when a run's listing is between two pages.
    """

    def __init__(self, stack, seed: int, weights: dict | None = None, pause: tuple[float, float] = (0.05, 0.25),
                 mid_listing: float = 0.3):
        self.stack = stack
        self.rng = random.Random(f"soak-users:{seed}")
        self.weights = {**WEIGHTS, **(weights or {})}
        self.pause = pause
        self.edits: list[Edit] = []
        self.actions: Counter = Counter()
        self.failed: Counter = Counter()
        self.failure_samples: list[str] = []
        self.left_flow: list[tuple[str, str, str]] = []  # (system, record id, what): type switches, voids
        self.mappings = {f: load_mapping(f) for f in (COMPANY, PERSON, ORDERS)}
        self.lock = threading.Lock()
        self.stepping = threading.RLock()  # the users' thread and a listing's pause take turns
        self.mid_listing = mid_listing
        self.mid_listing_actions = 0
        self.error: BaseException | None = None
        self._n = 0
        self._view: dict = {}

    # -- the loop -------------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.step()
                stop.wait(self.rng.uniform(*self.pause))
        except BaseException as exc:  # surfaced by the soak: a broken generator must fail the run, not hide
            self.error = exc
            raise

    def between_pages(self) -> None:
        """Called by a run's listing between two pages: now and then a user acts right there."""
        if self.rng.random() < self.mid_listing:
            self.mid_listing_actions += 1
            self.step()

    def step(self) -> None:
        with self.stepping:
            self._step()

    def _step(self) -> None:
        if self._n % 10 == 0:
            self._refresh()
        self._n += 1
        names = sorted(n for n, w in self.weights.items() if w > 0)
        action = self.rng.choices(names, [self.weights[n] for n in names])[0]
        done = getattr(self, action)()
        self.actions[action if done is not False else f"{action} (nothing to act on)"] += 1

    def _refresh(self) -> None:
        """What the users see now: every record of both systems and the linked pairs (sorted, for the seed's sake)."""
        admin = self.stack.sandboxes
        self._view = {
            "pogo_customers": sorted(admin.pogo.records("customers"), key=lambda r: r["Id"]),
            "pogo_orders": sorted(admin.pogo.records("sales_orders"), key=lambda r: r["Id"]),
            "inv_customers": sorted(admin.invoiced.records("customers"), key=lambda r: r["id"]),
            "inv_invoices": sorted(admin.invoiced.records("invoices"), key=lambda r: r["id"]),
            "links": {flow: sorted(tuple(r) for r in self.stack.sql(
                "SELECT poweroffice_go_id, invoiced_id FROM {s}.links WHERE flow = %s AND state = 'active'", flow))
                for flow in (COMPANY, PERSON, ORDERS)},
        }

    def _pick(self, items):
        return items[self.rng.randrange(len(items))] if items else None

    # -- values ---------------------------------------------------------------------------------------------------

    def _tag(self) -> int:
        self._n += 1
        return self._n

    def _company_name(self) -> str:
        return f"{self.rng.choice(WORDS)}{self.rng.choice(WORDS).lower()} {self._tag()} AS"

    def _person_name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), f"{self.rng.choice(LAST)}-{self._tag()}"

    def _address_value(self, field: str) -> str:
        if field == "country":
            return self.rng.choice(COUNTRIES)
        if field == "postal_code":
            return f"{self.rng.randrange(1000, 9999)}"
        if field == "city":
            return self.rng.choice(CITIES)
        return f"{self.rng.choice(WORDS)}gata {self._tag()}"

    def _address(self) -> dict:
        return {f: self._address_value(f) for f in ("address1", "city", "postal_code", "country")}

    # -- writes and their record --------------------------------------------------------------------------------

    def _write(self, action: str, flow: str, system: str, entity: str, record_id: str | None, call, fields=()):
        """Do one write; keep an Edit per field of ``fields`` that reached the server. Returns the answer or None."""
        try:
            answer = call()
        except Exception as exc:  # noqa: BLE001 - a user whose click failed; learn from the store what happened
            self.failed[f"{action}: {type(exc).__name__}"] += 1
            if len(self.failure_samples) < 10:
                self.failure_samples.append(f"{action}: {exc}"[:300])
            if record_id is None:
                return None
            found = (self.stack.sandboxes.pogo if system == POGO else self.stack.sandboxes.invoiced).records(
                entity, id=record_id)
            answer = found[0] if found else None
            if answer is None:
                return None
            landed = dict(fields)
            vals = self.mappings[flow].read(system, answer)
            if any(_norm(vals.get(f)) != _norm(v) for f, v in landed.items()):
                return None  # not stored (or already overwritten): not an edit anyone can expect to see
        if answer is None or not fields:
            return answer
        vals = self.mappings[flow].read(system, answer)
        rid = str(answer["Id"] if system == POGO else answer["id"])
        with self.lock:
            for field, _ in fields:
                self.edits.append(Edit(flow, system, rid, field, vals.get(field), field_time(system, answer, field),
                                       time.time(), action))
        return answer

    def _pogo_patch(self, path: str, changes: dict, current: dict | None = None):
        return lambda: self.stack.pogo.patch(path, changes, current=current)

    def _inv_update(self, path: str, body: dict):
        return lambda: self.stack.invoiced.update(path, body)

    # -- customers ------------------------------------------------------------------------------------------------

    def _customers(self, system: str, person: bool) -> list[dict]:
        if system == POGO:
            return [c for c in self._view["pogo_customers"] if bool(c.get("IsPerson")) == person]
        return [c for c in self._view["inv_customers"] if c.get("type") == ("person" if person else "company")]

    def _side(self) -> str:
        return self.rng.choice((POGO, INVOICED))

    def rename_company(self, system: str | None = None, record: dict | None = None, action="rename_company"):
        system = system or self._side()
        record = record or self._pick(self._customers(system, person=False))
        if record is None:
            return False
        name = self._company_name()
        if system == POGO:
            call = self._pogo_patch(f"/Customers/{record['Id']}", {"Name": name})
            return self._write(action, COMPANY, POGO, "customers", str(record["Id"]), call, [("name", name)])
        call = self._inv_update(f"/customers/{record['id']}", {"name": name})
        return self._write(action, COMPANY, INVOICED, "customers", str(record["id"]), call, [("name", name)])

    def rename_person(self, system: str | None = None, record: dict | None = None, action="rename_person"):
        system = system or self._side()
        record = record or self._pick(self._customers(system, person=True))
        if record is None:
            return False
        first, last = self._person_name()
        if system == POGO:
            call = self._pogo_patch(f"/Customers/{record['Id']}", {"FirstName": first, "LastName": last})
            return self._write(action, PERSON, POGO, "customers", str(record["Id"]), call,
                               [("name", f"{first} {last}")])
        call = self._inv_update(f"/customers/{record['id']}", {"name": f"{first} {last}"})
        return self._write(action, PERSON, INVOICED, "customers", str(record["id"]), call,
                           [("name", f"{first} {last}")])

    def edit_address(self, system: str | None = None, record: dict | None = None, field: str | None = None,
                     action="edit_address"):
        system = system or self._side()
        record = record or self._pick(self._customers(system, person=True))
        if record is None:
            return False
        field = field or self.rng.choice(sorted(ADDRESS))
        value = self._address_value(field)
        if system == POGO:
            call = self._pogo_patch(f"/Customers/{record['Id']}", {f"MailAddress.{ADDRESS[field]}": value},
                                    current={"MailAddress": record.get("MailAddress")})
            return self._write(action, PERSON, POGO, "customers", str(record["Id"]), call, [(field, value)])
        call = self._inv_update(f"/customers/{record['id']}", {field: value})
        return self._write(action, PERSON, INVOICED, "customers", str(record["id"]), call, [(field, value)])

    def new_company(self):
        name = self._company_name()
        if self._side() == POGO:
            call = lambda: self.stack.pogo.create("/Customers", {"Name": name, "IsPerson": False,
                                                                  "InvoiceDeliveryType": "Print"})  # noqa: E731
        else:
            call = lambda: self.stack.invoiced.create("/customers", {"name": name, "type": "company"},  # noqa: E731
                                                      idempotency_key=f"soak-user-{self.rng.getrandbits(64):x}",
                                                      safe_to_repeat=True)
        return self._write("new_company", COMPANY, POGO, "customers", None, call)

    def new_person(self, with_address: bool = True, action: str = "new_person"):
        first, last = self._person_name()
        address = self._address() if with_address else {}
        if self._side() == POGO and with_address:
            body = {"FirstName": first, "LastName": last, "IsPerson": True, "InvoiceDeliveryType": "Print",
                    "MailAddress": {ADDRESS[k]: v for k, v in address.items()}}
            call = lambda: self.stack.pogo.create("/Customers", body)  # noqa: E731
        else:
            body = {"name": f"{first} {last}", "type": "person", **address}
            call = lambda: self.stack.invoiced.create("/customers", body,  # noqa: E731
                                                      idempotency_key=f"soak-user-{self.rng.getrandbits(64):x}",
                                                      safe_to_repeat=True)
        return self._write(action, PERSON, POGO, "customers", None, call)

    def new_person_without_address(self):
        return self.new_person(with_address=False, action="new_person_without_address")

    def switch_type(self):
        system = self._side()
        person = self.rng.random() < 0.5
        record = self._pick(self._customers(system, person=person))
        if record is None:
            return False
        rid = str(record["Id"] if system == POGO else record["id"])
        if system == POGO:
            first, last = self._person_name()
            changes = {"IsPerson": False} if person else {"IsPerson": True, "FirstName": first, "LastName": last}
            call = self._pogo_patch(f"/Customers/{rid}", changes)
        else:
            call = self._inv_update(f"/customers/{rid}", {"type": "company" if person else "person"})
        answer = self._write("switch_type", PERSON if person else COMPANY, system, "customers", None, call)
        if answer is not None:
            with self.lock:
                self.left_flow.append((system, rid, "person to company" if person else "company to person"))
        return answer

    # -- orders and invoices --------------------------------------------------------------------------------------

    def new_order(self):
        if self._side() == POGO:
            customer = self._pick(self._view["pogo_customers"])
            if customer is None:
                return False
            body = {"CustomerId": customer["Id"], "CurrencyCode": self.rng.choice(CURRENCIES),
                    "SalesOrderStatus": "Draft", "SalesOrderLines": []}
            call = lambda: self.stack.pogo.create("/SalesOrders/Complete", body)  # noqa: E731
        else:
            customer = self._pick(self._view["inv_customers"])
            if customer is None:
                return False
            body = {"customer": customer["id"], "currency": self.rng.choice(CURRENCIES).lower(), "draft": True}
            call = lambda: self.stack.invoiced.create("/invoices", body,  # noqa: E731
                                                      idempotency_key=f"soak-user-{self.rng.getrandbits(64):x}",
                                                      safe_to_repeat=True)
        return self._write("new_order", ORDERS, POGO, "sales_orders", None, call)

    def _draft_pairs(self) -> list[tuple[dict, dict]]:
        """Linked order/invoice pairs that are drafts on both sides: the only ones people (and the sync) can edit."""
        orders = {str(o["Id"]): o for o in self._view["pogo_orders"] if o.get("SalesOrderStatus") == "Draft"}
        invoices = {str(i["id"]): i for i in self._view["inv_invoices"]
                    if i.get("draft") and i.get("status") != "voided"}
        return [(orders[p], invoices[i]) for p, i in self._view["links"][ORDERS] if p in orders and i in invoices]

    def edit_currency(self, system: str | None = None, pair=None, action="edit_currency"):
        pair = pair or self._pick(self._draft_pairs())
        if pair is None:
            return False
        system = system or self._side()
        currency = self.rng.choice(CURRENCIES)
        if system == POGO:
            order = pair[0]
            call = self._pogo_patch(f"/SalesOrders/{order['Id']}", {"CurrencyCode": currency})
            return self._write(action, ORDERS, POGO, "sales_orders", str(order["Id"]), call, [("currency", currency)])
        invoice = pair[1]
        call = self._inv_update(f"/invoices/{invoice['id']}", {"currency": currency.lower()})
        return self._write(action, ORDERS, INVOICED, "invoices", str(invoice["id"]), call, [("currency", currency)])

    def void_invoice(self):
        invoice = self._pick([i for i in self._view["inv_invoices"] if i.get("draft") and i.get("status") != "voided"])
        if invoice is None:
            return False
        rid = str(invoice["id"])
        answer = self._write("void_invoice", ORDERS, INVOICED, "invoices", None,
                             lambda: self.stack.invoiced.post(f"/invoices/{rid}/void"))
        if answer is not None:
            with self.lock:
                self.left_flow.append((INVOICED, rid, "voided"))
        return answer

    # -- both sides of one pair -----------------------------------------------------------------------------------

    def edit_both_sides(self):
        """The same field of one linked pair edited in both systems, one right after the other: a conflict."""
        flow = self.rng.choice((COMPANY, PERSON, ORDERS))
        first = self._side()
        if flow == ORDERS:
            pair = self._pick(self._draft_pairs())
            if pair is None:
                return False
            for system in (first, INVOICED if first == POGO else POGO):
                self.edit_currency(system, pair, action="edit_both_sides")
            return True
        links = self._view["links"][flow]
        pair = self._pick(links)
        if pair is None:
            return False
        records = {POGO: next((c for c in self._view["pogo_customers"] if str(c["Id"]) == pair[0]), None),
                   INVOICED: next((c for c in self._view["inv_customers"] if str(c["id"]) == pair[1]), None)}
        if None in records.values():
            return False
        field = "name" if flow == COMPANY else self.rng.choice(["name", *sorted(ADDRESS)])
        for system in (first, INVOICED if first == POGO else POGO):
            if flow == COMPANY:
                self.rename_company(system, records[system], action="edit_both_sides")
            elif field == "name":
                self.rename_person(system, records[system], action="edit_both_sides")
            else:
                self.edit_address(system, records[system], field, action="edit_both_sides")
        return True


def _norm(value) -> str:
    return str(value or "").strip().casefold()
