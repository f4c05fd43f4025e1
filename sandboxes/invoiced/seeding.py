"""Deterministic seed data from ``sandboxes.common.nordic``: customers, their contacts, and invoices in every state.

Records are built directly (not through the API validators) so that 100,000 of each take seconds, not minutes.
"""
from __future__ import annotations

import gc

from aiohttp import web

from sandboxes.common import nordic
from sandboxes.invoiced import contacts, customers, invoices
from sandboxes.invoiced.store import Store

# Seeded records are dated from here, so that the same spec always gives the same data.
EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
DAY = 86_400
DEFAULT_SEED = 2
_MASK = (1 << 64) - 1
_CUSTOMER, _INVOICE = 1, 2


def _mix(seed: int, kind: int, index: int) -> int:
    """A 64-bit pseudo-random number from ``(seed, kind, index)`` (splitmix64): as repeatable as ``random.Random``
    seeded per record, and much cheaper to set up, which matters at 100,000 records."""
    z = (seed * 0x9E3779B97F4A7C15 + kind * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _count(spec: dict, key: str, default: int = 0) -> int:
    """A count from the seed spec, refused (400) unless it is an integer in range."""
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise web.HTTPBadRequest(text=f'{{"error": "{key} must be an integer from 0 to 1000000"}}',
                                 content_type="application/json")
    return value


def _customer(store: Store, seed: int, index: int, details: dict, name: str, kind: str) -> dict:
    """A customer record from nordic company or person details."""
    created = EPOCH + index * 60
    record = customers.blank(store.new_id("customer"), created)
    address = details["address"]
    record.update(
        name=name, number=store.next_auto_number("customer", "CUST"), type=kind, email=details["email"],
        phone=details["phone"], address1=address["line1"], address2=address["line2"], city=address["city"],
        postal_code=address["postal_code"], country=address["country"], currency=details["currency"].lower(),
        tax_id=details.get("organization_number"), updated_at=created + _mix(seed, _CUSTOMER, index) % (90 * DAY),
    )
    customers.insert(store, record)
    return record


def _contact(store: Store, seed: int, index: int, customer: dict) -> None:
    """Nordic contact person ``index`` at ``customer``."""
    person = nordic.contact_person(seed, index)
    record = contacts.blank(store.new_id("contact"), customer, customer["created_at"])
    record.update(name=f"{person['first_name']} {person['last_name']}", title=person["title"],
                  email=person["email"], phone=person["phone"])
    contacts.insert(store, record)


def _invoice(store: Store, seed: int, index: int, pool: list[dict]) -> None:
    """Invoice ``index``: a customer from the pool, one to four lines plus 25 % VAT, and a state.

    About 15 % are drafts, 10 % paid in full, 5 % voided; the rest are issued and open (half of them sent).
    """
    bits = _mix(seed, _INVOICE, index)
    customer = pool[bits % len(pool)]
    bits //= len(pool)
    date = EPOCH + index * 600 + bits % 600
    invoice = invoices.blank(store.new_id("invoice"), customer, date)
    currency = nordic.order_currency(seed, index, (customer["currency"] or "nok").upper()).lower()
    lines = nordic.order_lines(seed, index)
    items = []
    for line in lines:
        item = {"id": store.new_id("line_item"), "object": "line_item", "catalog_item": None, "type": None,
                "name": line["description"], "description": None, "quantity": line["quantity"],
                "unit_cost": line["unit_price"], "amount": 0.0, "discountable": True, "discounts": [],
                "taxable": True, "taxes": [], "plan": None, "metadata": {}}
        items.append(item)
    vat = sum(line["quantity"] * line["unit_price"] * line["vat_rate"] for line in lines)
    invoice.update(
        number=store.next_auto_number("invoice", "INV"), currency=currency, items=items,
        taxes=[{"id": store.new_id("line_item"), "object": "tax", "amount": round(vat, 2), "tax_rate": None}],
        due_date=date + 30 * DAY, updated_at=date + (bits >> 10) % (30 * DAY),
    )
    roll = (bits >> 32) % 100
    invoice["draft"] = roll < 15
    invoice["_sent"] = not invoice["draft"] and (bits >> 40) % 2 == 0
    invoices.calculate(invoice)
    if 15 <= roll < 25:
        invoice["_amount_paid"] = invoice["total"]
        invoice["_sent"] = True
        invoices.calculate(invoice)
    elif 25 <= roll < 30:
        invoice["_voided"] = True
        invoice["closed"] = True
        invoices.calculate(invoice)
    invoices.insert(store, invoice)


def seed(store: Store, spec: dict) -> dict:
    """Add ``companies``, ``persons`` (each company with ``contacts_per_company`` contacts, default 1) and
    ``invoices`` for random seeded-or-existing customers; the same spec on an empty store gives the same data."""
    seed_value = spec.get("seed", DEFAULT_SEED)
    n_companies, n_persons = _count(spec, "companies"), _count(spec, "persons")
    n_invoices, per_company = _count(spec, "invoices"), _count(spec, "contacts_per_company", 1)
    unknown = set(spec) - {"seed", "companies", "persons", "invoices", "contacts_per_company"}
    if unknown:
        raise web.HTTPBadRequest(text=f'{{"error": "unknown seed keys: {sorted(unknown)}"}}',
                                 content_type="application/json")
    # Millions of new small dicts make the cyclic GC rescan the whole heap again and again; none of them form cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _seed(store, seed_value, n_companies, n_persons, n_invoices, per_company)
    finally:
        if gc_was_enabled:
            gc.enable()


def _seed(store: Store, seed_value: int, n_companies: int, n_persons: int, n_invoices: int, per_company: int) -> dict:
    """Build the records; companies first, then persons, then invoices spread over all customers."""
    n_contacts = 0
    for i in range(n_companies):
        details = nordic.company(seed_value, i)
        record = _customer(store, seed_value, i, details, details["name"], "company")
        for j in range(min(per_company, 100)):
            _contact(store, seed_value, i * 100 + j, record)
            n_contacts += 1
    for i in range(n_persons):
        details = nordic.person(seed_value, i)
        name = f"{details['first_name']} {details['last_name']}"
        _customer(store, seed_value, n_companies + i, details, name, "person")
    pool = list(store.customers.values())
    if n_invoices and not pool:
        raise web.HTTPBadRequest(text='{"error": "invoices need customers: seed companies or persons too"}',
                                 content_type="application/json")
    for i in range(n_invoices):
        _invoice(store, seed_value, i, pool)
    return {"customers": n_companies + n_persons, "companies": n_companies, "persons": n_persons,
            "contacts": n_contacts, "invoices": n_invoices}
