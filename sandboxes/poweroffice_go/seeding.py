"""Deterministic bulk seeding from ``sandboxes.common.nordic``, writing sparse records straight into the store.

Record ``i`` of a kind depends only on ``(seed, i)``; on an empty store the ids, numbers and contents of a
seeding are the same every time (only timestamps differ). 100,000 customers take a few seconds.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid

from sandboxes.common import nordic
from sandboxes.poweroffice_go.store import SUBLEDGER_ACCOUNT_OFFSET, Store

MAX_PER_KIND = 100_000
_FIRST_ORDER_DATE = dt.date(2026, 1, 1)


def _count(spec: dict, name: str, default: int = 0) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PER_KIND:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_PER_KIND}")
    return value


def _address(store: Store, source: dict, now: str) -> dict:
    address_id = store.next_address_id
    store.next_address_id += 1
    return {"Id": address_id, "AddressLine1": source["line1"], "AddressLine2": source["line2"], "City": source["city"],
            "ZipCode": source["postal_code"], "CountryCode": source["country"], "ExternalCode": None,
            "LastChangedDateTimeOffset": now}


def _add_customer(store: Store, record: dict, currency: str, now: str) -> dict:
    customer_id = store.next_contact_id
    store.next_contact_id += 1
    record.update({"Id": customer_id, "Number": store.take_customer_number(),
                   "SubledgerAccountId": SUBLEDGER_ACCOUNT_OFFSET + customer_id,
                   "ContactCreatedDateTimeOffset": now, "CustomerCreatedDateTimeOffset": now,
                   "LastChangedDateTimeOffset": now})
    if currency != "NOK":
        record["CurrencyCode"] = currency
    store.customers[customer_id] = record
    store.customer_by_number[record["Number"]] = customer_id
    return record


def seed(store: Store, spec: dict) -> dict:
    """Add ``companies``, ``persons``, ``contact_persons_per_company`` and ``sales_orders``; return the counts."""
    seed_value = spec.get("seed", 1)
    if isinstance(seed_value, bool) or not isinstance(seed_value, int):
        raise ValueError("seed must be an integer")
    unknown = set(spec) - {"companies", "persons", "persons_without_address", "contact_persons_per_company",
                           "sales_orders", "seed"}
    if unknown:
        raise ValueError(f"unknown seed settings: {sorted(unknown)}")
    companies, persons = _count(spec, "companies"), _count(spec, "persons")
    bare_persons = _count(spec, "persons_without_address")
    per_company, orders = _count(spec, "contact_persons_per_company", 1), _count(spec, "sales_orders")
    clock = store.clock
    seeded: list[dict] = []
    contact_persons = 0
    for index in range(companies):
        company = nordic.company(seed_value, index)
        now = clock.now()
        record = _add_customer(store, {"Name": company["name"], "OrganizationNumber": company["organization_number"],
                                       "EmailAddress": company["email"], "PhoneNumber": company["phone"],
                                       "MailAddress": _address(store, company["address"], now)},
                               company["currency"], now)
        seeded.append(record)
        people = store.contact_persons_of.setdefault(record["Id"], [])
        for slot in range(per_company):
            person = nordic.contact_person(seed_value, contact_persons)
            contact_persons += 1
            person_id = store.next_contact_person_id
            store.next_contact_person_id += 1
            now = clock.now()
            store.contact_persons[person_id] = {
                "Id": person_id, "ContactId": record["Id"], "FirstName": person["first_name"],
                "LastName": person["last_name"], "Title": person["title"], "EmailAddress": person["email"],
                "PhoneNumber": person["phone"], "IsDefault": slot == 0, "CreatedDateTimeOffset": now,
                "LastChangedDateTimeOffset": now}
            people.append(person_id)
    for index in range(persons):
        person = nordic.person(seed_value, index)
        now = clock.now()
        seeded.append(_add_customer(store, {
            "Name": f"{person['first_name']} {person['last_name']}", "FirstName": person["first_name"],
            "LastName": person["last_name"], "IsPerson": True, "EmailAddress": person["email"],
            "PhoneNumber": person["phone"], "MailAddress": _address(store, person["address"], now)},
            person["currency"], now))
    for index in range(persons, persons + bare_persons):
        # A person entered with a name only: Go shows its MailAddress as null.
        person = nordic.person(seed_value, index)
        seeded.append(_add_customer(store, {
            "Name": f"{person['first_name']} {person['last_name']}", "FirstName": person["first_name"],
            "LastName": person["last_name"], "IsPerson": True, "InvoiceDeliveryType": "Print"}, "NOK", clock.now()))
    if orders:
        customers = seeded or list(store.customers.values())
        if not customers:
            raise ValueError("sales_orders need customers: seed companies or persons too")
        for index in range(orders):
            _add_order(store, seed_value, index, customers)
    store.touched()
    return {"customers": companies + persons + bare_persons, "companies": companies,
            "persons": persons + bare_persons,
            "contact_persons": contact_persons, "sales_orders": orders,
            "totals": {"customers": len(store.customers), "contact_persons": len(store.contact_persons),
                       "sales_orders": len(store.orders)}}


def _add_order(store: Store, seed_value: int, index: int, customers: list[dict]) -> None:
    """One draft (sometimes confirmed) order made in Go's GUI, with one to four lines."""
    rng = random.Random(f"{seed_value}:pogo-order:{index}")
    customer = customers[rng.randrange(len(customers))]
    order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    lines = []
    for position, source in enumerate(nordic.order_lines(seed_value, index)):
        line = {"Id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "SalesOrderId": order_id,
                "Description": source["description"], "Quantity": source["quantity"],
                "ProductUnitPrice": source["unit_price"], "SortOrder": position}
        lines.append(store.priced_line(line, customer))
    people = store.contact_persons_of.get(customer["Id"]) or []
    now = store.clock.now()
    record = {"Id": order_id, "SalesOrderNo": store.next_sales_order_no, "CustomerId": customer["Id"],
              "CurrencyCode": nordic.order_currency(seed_value, index, customer.get("CurrencyCode", "NOK")),
              "SalesOrderDate": (_FIRST_ORDER_DATE + dt.timedelta(days=rng.randrange(330))).isoformat(),
              "IsCreatedByCurrentIntegration": False, "CreatedDateTimeOffset": now, "LastChangedDateTimeOffset": now,
              **store.order_totals(lines)}
    if people and rng.random() < 0.3:
        record["CustomerReferenceContactPersonId"] = people[rng.randrange(len(people))]
    if rng.random() < 0.2:
        record["SalesOrderStatus"] = "Confirmed"
    store.next_sales_order_no += 1
    store.orders[order_id] = record
    store.lines[order_id] = lines
    store.orders_of_customer[customer["Id"]] = store.orders_of_customer.get(customer["Id"], 0) + 1
