"""Invoices: line items, totals, derived status, and the server's rules on drafts, voiding and closed documents."""
from __future__ import annotations

import hashlib
import re

from sandboxes.invoiced import customers
from sandboxes.invoiced import fields as f
from sandboxes.invoiced import reference as ref
from sandboxes.invoiced.errors import bad_request
from sandboxes.invoiced.params import php_int
from sandboxes.invoiced.store import Store, now

_NET_TERMS = re.compile(r"^\s*net\s*(\d+)\s*$", re.IGNORECASE)
ITEM_TEXT_FIELDS = ("catalog_item", "type", "name", "description", "plan")


def _token(ident: int) -> str:
    """The opaque client-facing id in invoice URLs."""
    return hashlib.sha1(f"invoice:{ident}".encode()).hexdigest()[:24]


def blank(ident: int, customer: dict, created_at: int) -> dict:
    """An invoice with the server's defaults; terms and autopay are inherited from the customer.

    Keys starting with ``_`` are state the API does not show (sent, viewed, voided, amount paid).
    """
    token = _token(ident)
    return {
        "id": ident, "object": "invoice", "customer": customer["id"], "name": "Invoice", "number": None,
        "currency": customer["currency"] or ref.ACCOUNT_CURRENCY, "date": created_at, "due_date": None,
        "payment_terms": customer["payment_terms"], "purchase_order": None, "autopay": customer["autopay"],
        "draft": False, "closed": False, "paid": False, "items": [], "discounts": [], "taxes": [], "shipping": [],
        "ship_to": None, "subtotal": 0.0, "total": 0.0, "balance": 0.0, "attempt_count": 0,
        "next_payment_attempt": None, "subscription": None, "payment_plan": None, "notes": None,
        "url": f"{ref.PUBLIC_BASE}/invoices/{token}", "payment_url": f"{ref.PUBLIC_BASE}/invoices/{token}/payment",
        "pdf_url": f"{ref.PUBLIC_BASE}/invoices/{token}/pdf", "csv_url": f"{ref.PUBLIC_BASE}/invoices/{token}/csv",
        "metadata": {}, "created_at": created_at, "updated_at": created_at,
        "_sent": False, "_viewed": False, "_voided": False, "_amount_paid": 0.0,
    }


def status(invoice: dict, at: int) -> str:
    """The status the server derives (the part that applies here: no payments pending, plans or bad debt)."""
    if invoice["_voided"]:
        return "voided"
    if invoice["draft"]:
        return "draft"
    if invoice["paid"]:
        return "paid"
    if invoice["due_date"] is not None and invoice["due_date"] < at:
        return "past_due"
    if invoice["_viewed"]:
        return "viewed"
    if invoice["_sent"]:
        return "sent"
    return "not_sent"


def render(invoice: dict, at: int | None = None) -> dict:
    """The invoice as the API shows it."""
    shown = {k: v for k, v in invoice.items() if k[0] != "_"}
    shown["status"] = status(invoice, now() if at is None else at)
    return shown


def value(invoice: dict, field: str, at: int):
    """A field for filtering and sorting, including the derived status and the hidden flags."""
    if field == "status":
        return status(invoice, at)
    if field in invoice:
        return invoice[field]
    return invoice.get("_" + field)


def _rates(store: Store, raw, kind: str, existing: list) -> list:
    """Applied discounts or taxes: ``[{amount, coupon|tax_rate}]`` (rates are not looked up; amounts are)."""
    plural = "taxes" if kind == "tax" else "discounts"
    if f.blank(raw):
        return []
    if not isinstance(raw, list):
        raise bad_request(f"{f.label(plural)} must be an array", plural)
    known = {rate["id"]: rate for rate in existing}
    link = "coupon" if kind == "discount" else "tax_rate"
    rates = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise bad_request(f"Invalid {kind}", plural)
        ident = php_int(entry.get("id"))
        rate = dict(known[ident]) if ident in known else {"id": store.new_id("line_item"), "object": kind,
                                                          "amount": 0.0, link: None}
        if "amount" in entry:
            rate["amount"] = f.number("amount", entry["amount"], 0.0)
        if link in entry:
            rate[link] = entry[link]
        rates.append(rate)
    return rates


def _items(store: Store, raw, existing: list) -> list:
    """The new line-item list: entries with a known ``id`` update that line, others are new, the rest go away."""
    if f.blank(raw):
        return []
    if not isinstance(raw, list):
        raise bad_request("Items must be an array", "items")
    known = {item["id"]: item for item in existing}
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise bad_request("Invalid line item", "items")
        ident = php_int(entry.get("id"))
        if ident in known:
            item = dict(known[ident])
        else:
            item = {"id": store.new_id("line_item"), "object": "line_item", "catalog_item": None, "type": None,
                    "name": None, "description": None, "quantity": 1.0, "unit_cost": 0.0, "amount": 0.0,
                    "discountable": True, "discounts": [], "taxable": True, "taxes": [], "plan": None,
                    "metadata": {}}
        for key in ITEM_TEXT_FIELDS:
            if key in entry:
                item[key] = f.text(key, entry[key])
        if "quantity" in entry:
            item["quantity"] = f.number("quantity", entry["quantity"], 1.0)
        if "unit_cost" in entry:
            item["unit_cost"] = f.number("unit_cost", entry["unit_cost"], 0.0)
        for key in ("discountable", "taxable"):
            if key in entry:
                item[key] = f.boolean(key, entry[key])
        if "discounts" in entry:
            item["discounts"] = _rates(store, entry["discounts"], "discount", item["discounts"])
        if "taxes" in entry:
            item["taxes"] = _rates(store, entry["taxes"], "tax", item["taxes"])
        if "metadata" in entry:
            item["metadata"] = f.metadata(entry["metadata"])[0]
        items.append(item)
    return items


def _due_date(date: int, terms: str | None) -> int | None:
    """``NET 30`` → date + 30 days; ``Due on receipt`` → the date itself; other terms leave no due date."""
    if not terms:
        return None
    match = _NET_TERMS.match(terms)
    if match:
        return date + int(match.group(1)) * 86_400
    if terms.strip().lower() == "due on receipt":
        return date
    return None


def calculate(invoice: dict) -> None:
    """Amounts, subtotal, total and balance; a non-draft invoice with nothing to pay becomes paid and closed."""
    currency = invoice["currency"]
    subtotal = adjustments = 0.0
    for item in invoice["items"]:
        item["amount"] = f.money(item["quantity"] * item["unit_cost"], currency)
        subtotal += item["amount"]
        adjustments += sum(t["amount"] for t in item["taxes"]) - sum(d["amount"] for d in item["discounts"])
    adjustments += sum(t["amount"] for t in invoice["taxes"]) - sum(d["amount"] for d in invoice["discounts"])
    invoice["subtotal"] = f.money(subtotal, currency)
    invoice["total"] = f.money(subtotal + adjustments, currency)
    if invoice["total"] < 0:
        raise bad_request("Total cannot be negative", "total")
    invoice["balance"] = 0.0 if invoice["_voided"] else f.money(invoice["total"] - invoice["_amount_paid"], currency)
    invoice["paid"] = invoice["balance"] <= 0 and not invoice["draft"] and not invoice["_voided"]
    if invoice["paid"]:
        invoice["closed"] = True


def _apply(store: Store, invoice: dict, data: dict, creating: bool) -> dict | None:
    """Validate ``data`` into ``invoice`` (a working copy); return the metadata echo."""
    if "name" in data:
        invoice["name"] = f.text("name", data["name"], max_length=255) or "Invoice"
    if "number" in data and not (creating and f.blank(data["number"])):
        number = f.text("number", data["number"], max_length=32, required=True).strip()
        owner = store.invoice_numbers.get(store.number_key(number))
        if owner is not None and owner != invoice["id"]:
            raise bad_request(f"The given invoice number has already been taken: {number}", "number")
        invoice["number"] = number
    if "currency" in data:
        code = f.currency(data["currency"])
        if code is None and not creating:
            raise bad_request("The currency cannot be unset.", "currency")
        if code is not None:
            invoice["currency"] = code
    if "date" in data:
        invoice["date"] = f.integer("date", data["date"]) or invoice["date"]
    if "payment_terms" in data:
        invoice["payment_terms"] = f.text("payment_terms", data["payment_terms"])
    if "autopay" in data:
        invoice["autopay"] = f.boolean("autopay", data["autopay"])
    if invoice["autopay"]:
        invoice["payment_terms"] = "AutoPay"
    if "due_date" in data:
        invoice["due_date"] = f.integer("due_date", data["due_date"])
    elif creating or "payment_terms" in data or "date" in data:
        invoice["due_date"] = None if invoice["autopay"] else _due_date(invoice["date"], invoice["payment_terms"])
    if "purchase_order" in data:
        invoice["purchase_order"] = f.text("purchase_order", data["purchase_order"], max_length=32)
    if "notes" in data:
        invoice["notes"] = f.text("notes", data["notes"])
    if "draft" in data:
        draft = f.boolean("draft", data["draft"])
        if draft and not creating and not invoice["draft"]:
            raise bad_request("Cannot save as a draft because the document has already been issued.", "draft")
        invoice["draft"] = draft
    if "closed" in data:
        invoice["closed"] = f.boolean("closed", data["closed"])
    if "sent" in data:
        invoice["_sent"] = f.boolean("sent", data["sent"])
    if "ship_to" in data:
        if not (f.blank(data["ship_to"]) or isinstance(data["ship_to"], dict)):
            raise bad_request("Ship to must be an object", "ship_to")
        invoice["ship_to"] = data["ship_to"] or None
    if "items" in data:
        invoice["items"] = _items(store, data["items"], invoice["items"])
    for kind, plural in (("discount", "discounts"), ("tax", "taxes")):
        if plural in data:
            invoice[plural] = _rates(store, data[plural], kind, invoice[plural])
        elif kind in data:
            # The flat form ("tax": 12.5) stands for a single applied rate of that amount.
            invoice[plural] = _rates(store, [{"amount": data[kind]}], kind, [])
    echo = None
    if "metadata" in data:
        invoice["metadata"], echo = f.metadata(data["metadata"])
    calculate(invoice)
    return echo


def _customer_for(store: Store, raw) -> tuple[dict, bool]:
    """The invoice's customer: an id, ``{"id": n}``, or a new customer object (created with the invoice)."""
    if f.blank(raw):
        raise bad_request("Customer missing", "customer")
    if isinstance(raw, dict) and f.blank(raw.get("id")):
        record, _ = customers.build(store, raw)
        return record, True
    ident = php_int(raw.get("id") if isinstance(raw, dict) else raw)
    customer = store.customers.get(ident)
    if customer is None:
        raise bad_request(f"No such customer: {raw.get('id') if isinstance(raw, dict) else raw}", "customer")
    if not customer["active"]:
        raise bad_request("This cannot be created because the customer is inactive", "customer")
    return customer, False


def create(store: Store, data: dict) -> dict:
    """Create an invoice; only ``customer`` is required."""
    f.blocked(data, ref.INVOICE_BLOCKED, "Invoice")
    customer, is_new = _customer_for(store, data.get("customer"))
    invoice = blank(store.new_id("invoice"), customer, now())
    echo = _apply(store, invoice, data, creating=True)
    if is_new:
        customers.insert(store, customer)
    if invoice["number"] is None:
        invoice["number"] = store.next_auto_number("invoice", "INV")
    insert(store, invoice)
    return _shown(invoice, echo)


def insert(store: Store, invoice: dict) -> None:
    """Add a built invoice to the table and its indexes."""
    store.invoices[invoice["id"]] = invoice
    store.invoice_numbers[store.number_key(invoice["number"])] = invoice["id"]
    store.invoices_by_customer[invoice["customer"]] += 1
    store.changed("invoice")


def _check_editable(invoice: dict, data: dict) -> None:
    """Voided documents are frozen; closed ones only thaw if the same request sets ``closed`` to false."""
    if invoice["_voided"]:
        raise bad_request("Your changes cannot be saved because this document is voided.")
    if invoice["closed"] and not ("closed" in data and not f.boolean("closed", data["closed"])):
        raise bad_request("Your changes cannot be saved because this document is closed. "
                          "Please re-open the document to make any changes.")


def update(store: Store, invoice: dict, data: dict) -> dict:
    """Apply a PATCH; ``items`` replaces the whole list and ``customer`` may not change."""
    f.blocked(data, ref.INVOICE_BLOCKED, "Invoice")
    _check_editable(invoice, data)
    if "customer" in data:
        raw = data["customer"]
        ident = php_int(raw.get("id") if isinstance(raw, dict) else raw)
        if ident != invoice["customer"]:
            raise bad_request("Invalid request parameter `customer`. The customer cannot be modified.", "customer")
    working = dict(invoice, items=[dict(item) for item in invoice["items"]])
    echo = _apply(store, working, data, creating=False)
    if working["number"] != invoice["number"]:
        del store.invoice_numbers[store.number_key(invoice["number"])]
        store.invoice_numbers[store.number_key(working["number"])] = invoice["id"]
    invoice.update(working)
    invoice["updated_at"] = now()
    store.changed("invoice")
    return _shown(invoice, echo)


def _check_voidable(invoice: dict, param: str | None = None) -> None:
    """Money already applied blocks voiding and deleting."""
    if invoice["_amount_paid"] > 0:
        raise bad_request("This invoice cannot be voided because it has a payment applied.", param)


def void(store: Store, invoice: dict) -> dict:
    """Void: status ``voided``, balance 0; the second void is an error."""
    if invoice["_voided"]:
        raise bad_request("This document has already been voided.")
    _check_voidable(invoice)
    invoice["_voided"] = True
    invoice["closed"] = True
    calculate(invoice)
    invoice["updated_at"] = now()
    store.changed("invoice")
    return render(invoice)


def delete(store: Store, invoice: dict) -> None:
    """Delete, refused (with ``param: voided``) where voiding would be."""
    _check_voidable(invoice, "voided")
    del store.invoices[invoice["id"]]
    store.invoice_numbers.pop(store.number_key(invoice["number"]), None)
    store.invoices_by_customer[invoice["customer"]] -= 1
    store.changed("invoice")


def _shown(invoice: dict, echo: dict | None) -> dict:
    """The write response, with metadata as sent."""
    shown = render(invoice)
    if echo is not None:
        shown["metadata"] = echo
    return shown
