"""Contacts, a sub-resource of customers: strict body validation and at most 100 per customer."""
from __future__ import annotations

from sandboxes.invoiced import fields as f
from sandboxes.invoiced import reference as ref
from sandboxes.invoiced.errors import bad_request, options_error
from sandboxes.invoiced.store import Store, now

STRING_FIELDS = ("title", "department", "phone", "address1", "address2", "city", "state", "postal_code")


def blank(ident: int, customer: dict, created_at: int) -> dict:
    """A contact with the server's defaults; the country follows the parent customer."""
    return {
        "id": ident, "object": "contact", "customer": customer["id"], "customer_id": customer["id"], "name": None,
        "title": None, "department": None, "email": None, "phone": None, "primary": True, "sms_enabled": False,
        "address1": None, "address2": None, "city": None, "state": None, "postal_code": None,
        "country": customer["country"], "send_new_invoices": False, "role": None, "role_id": None,
        "created_at": created_at, "updated_at": created_at,
    }


def _changes(data: dict, creating: bool) -> dict:
    """Validate a contact body; unlike customers, unknown keys are an error here."""
    unknown = [k for k in data if k not in ref.CONTACT_FIELDS]
    if unknown:
        raise options_error(unknown, ref.CONTACT_FIELDS, "request")
    changes: dict = {}
    if creating or "name" in data:
        changes["name"] = f.text("name", data.get("name"), max_length=255, required=True)
    if "email" in data:
        changes["email"] = f.email("email", data["email"])
    for key in STRING_FIELDS:
        if key in data:
            changes[key] = f.text(key, data[key])
    for key in ("primary", "sms_enabled", "send_new_invoices"):
        if key in data:
            changes[key] = f.boolean(key, data[key])
    if "country" in data:
        changes["country"] = f.country("country", data["country"], None)
    if "role" in data:
        changes["role"] = changes["role_id"] = f.integer("role", data["role"])
    return changes


def create(store: Store, customer: dict, data: dict) -> dict:
    """Add a contact to ``customer``."""
    changes = _changes(data, creating=True)
    siblings = store.contacts_by_customer[customer["id"]]
    if len(siblings) >= ref.MAX_CONTACTS_PER_CUSTOMER:
        raise bad_request(f"The maximum number of contacts ({ref.MAX_CONTACTS_PER_CUSTOMER}) per customer has been "
                          "reached.")
    record = blank(store.new_id("contact"), customer, now())
    if changes.get("country") is None:
        changes.pop("country", None)
    record.update(changes)
    insert(store, record)
    return record


def insert(store: Store, record: dict) -> None:
    """Add a built contact to the table and its customer's index."""
    store.contacts[record["id"]] = record
    store.contacts_by_customer[record["customer"]][record["id"]] = None
    store.changed("contact")


def update(store: Store, record: dict, data: dict) -> dict:
    """Apply a PATCH of a contact."""
    record.update(_changes(data, creating=False))
    record["updated_at"] = now()
    store.changed("contact")
    return record


def delete(store: Store, record: dict) -> None:
    """Remove a contact."""
    del store.contacts[record["id"]]
    store.contacts_by_customer[record["customer"]].pop(record["id"], None)
    store.changed("contact")
