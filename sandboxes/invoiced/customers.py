"""Customers: defaults, validation and the create/update/delete rules of the real server."""
from __future__ import annotations

from sandboxes.invoiced import fields as f
from sandboxes.invoiced import reference as ref
from sandboxes.invoiced.errors import bad_request
from sandboxes.invoiced.store import Store, now

STRING_FIELDS = ("attention_to", "address1", "address2", "city", "state", "postal_code", "phone", "notes", "tax_id",
                 "avalara_entity_use_code", "avalara_exemption_number")
BOOL_FIELDS = ("autopay", "chase", "credit_hold", "taxable", "active")
INT_FIELDS = ("autopay_delay_days", "chasing_cadence", "next_chase_step", "owner", "parent_customer", "sign_up_page",
              "ach_gateway", "cc_gateway")


def blank(ident: int, created_at: int) -> dict:
    """A customer with every field at the server's default."""
    return {
        "id": ident, "object": "customer", "name": None, "number": None, "email": None, "type": "company",
        "autopay": False, "autopay_delay_days": -1, "payment_terms": ref.ACCOUNT_PAYMENT_TERMS, "payment_source": None,
        "attention_to": None, "address1": None, "address2": None, "city": None, "state": None, "postal_code": None,
        "country": ref.ACCOUNT_COUNTRY, "language": None, "currency": None, "chase": True, "chasing_cadence": None,
        "next_chase_step": None, "phone": None, "notes": None, "tax_id": None, "credit_hold": False,
        "credit_limit": None, "owner": None, "taxable": True, "taxes": [], "avalara_entity_use_code": None,
        "avalara_exemption_number": None, "parent_customer": None, "sign_up_page": None, "sign_up_url": None,
        "statement_pdf_url": f"{ref.PUBLIC_BASE}/statements/{ident}/pdf", "ach_gateway": None, "cc_gateway": None,
        "active": True, "metadata": {}, "created_at": created_at, "updated_at": created_at,
    }


def _changes(store: Store, data: dict, current: dict | None) -> tuple[dict, dict | None]:
    """Validate ``data`` against the current record (None on create); return the changes and the metadata echo."""
    f.blocked(data, ref.CUSTOMER_BLOCKED, "Customer")
    creating = current is None
    changes: dict = {}
    if creating or "name" in data:
        changes["name"] = f.text("name", data.get("name"), max_length=255, required=True)
    if "number" in data and not (creating and f.blank(data["number"])):
        number = f.text("number", data["number"], max_length=32, required=True).strip()
        owner = store.customer_numbers.get(store.number_key(number))
        if owner is not None and (creating or owner != current["id"]):
            raise bad_request(f"The given customer number has already been taken: {number}", "number")
        changes["number"] = number
    if "email" in data:
        changes["email"] = f.email("email", data["email"])
    if "type" in data:
        kind = data["type"] if not f.blank(data["type"]) else "company"
        if kind not in ref.CUSTOMER_TYPES:
            raise bad_request("Type must be one of the allowed values", "type")
        changes["type"] = kind
    if "country" in data:
        changes["country"] = f.country("country", data["country"], ref.ACCOUNT_COUNTRY)
    if "language" in data:
        language = f.text("language", data["language"])
        if language is not None and len(language) != 2:
            raise bad_request("Language is invalid", "language")
        changes["language"] = language.lower() if language else None
    if "currency" in data:
        changes["currency"] = f.currency(data["currency"])
    for key in STRING_FIELDS:
        if key in data:
            changes[key] = f.text(key, data[key])
    for key in BOOL_FIELDS:
        if key in data:
            changes[key] = f.boolean(key, data[key])
    for key in INT_FIELDS:
        if key in data:
            changes[key] = f.integer(key, data[key])
    if "credit_limit" in data:
        changes["credit_limit"] = f.number("credit_limit", data["credit_limit"])
    if "taxes" in data:
        taxes = data["taxes"] if data["taxes"] not in (None, "") else []
        if not isinstance(taxes, list):
            raise bad_request("Taxes must be an array", "taxes")
        changes["taxes"] = taxes
    if "payment_terms" in data:
        changes["payment_terms"] = f.text("payment_terms", data["payment_terms"])
    # Payment terms follow the account while autopay is off and are cleared when it is on.
    autopay = changes.get("autopay", current["autopay"] if current else False)
    if autopay:
        changes["payment_terms"] = None
    echo = None
    if "metadata" in data:
        changes["metadata"], echo = f.metadata(data["metadata"])
    return changes, echo


def build(store: Store, data: dict) -> tuple[dict, dict | None]:
    """Validate a new customer and build its record without storing it; return it and the metadata echo."""
    changes, echo = _changes(store, data, None)
    if "number" not in changes:
        changes["number"] = store.next_auto_number("customer", "CUST")
    record = blank(store.new_id("customer"), now())
    record.update(changes)
    return record, echo


def create(store: Store, data: dict) -> dict:
    """Create a customer; the write response shows metadata exactly as sent."""
    record, echo = build(store, data)
    insert(store, record)
    return with_echo(record, echo)


def insert(store: Store, record: dict) -> None:
    """Add a built customer to the table and the number index."""
    store.customers[record["id"]] = record
    store.customer_numbers[store.number_key(record["number"])] = record["id"]
    store.changed("customer")


def update(store: Store, record: dict, data: dict) -> dict:
    """Apply a PATCH; sending ``metadata`` replaces the whole map, as the server deletes and re-inserts it."""
    changes, echo = _changes(store, data, record)
    if "number" in changes and changes["number"] != record["number"]:
        del store.customer_numbers[store.number_key(record["number"])]
        store.customer_numbers[store.number_key(changes["number"])] = record["id"]
    record.update(changes)
    record["updated_at"] = now()
    store.changed("customer")
    return with_echo(record, echo)


def delete(store: Store, record: dict) -> None:
    """Delete a customer without transactions; its contacts go with it."""
    if store.invoices_by_customer[record["id"]]:
        raise bad_request("Customers with transactions cannot be deleted")
    del store.customers[record["id"]]
    store.customer_numbers.pop(store.number_key(record["number"]), None)
    for contact_id in store.contacts_by_customer.pop(record["id"], {}):
        store.contacts.pop(contact_id, None)
    store.changed("customer")
    store.changed("contact")


def with_echo(record: dict, echo: dict | None) -> dict:
    """The record as a write returns it: the model is hydrated with the metadata sent, not the stored strings."""
    shown = dict(record)
    if echo is not None:
        shown["metadata"] = echo
    return shown
