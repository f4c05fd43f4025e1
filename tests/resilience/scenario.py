"""A small two-way workload for the fault tests: records to create and edits to carry in both directions, per flow.

``prepare`` seeds both sandboxes, syncs once with no faults, then edits linked records on both sides and adds new
records, so that the run under faults has creates and updates to do in every flow and direction. ``recover`` turns
faults off and runs each flow until a run completes; ``verify`` checks the invariant and that every edit arrived.
"""
from __future__ import annotations

import json
import os

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from tests.resilience import invariants

FLOWS = invariants.FLOWS
MAX_RECOVERY_RUNS = 3
CONF = {"full_refresh": False, "dry_run": False, "allow_mass_changes": False}


def run(stack, flow: str, **conf) -> str:
    """One DAG run of ``flow``; returns its state instead of asserting it (faults may fail it)."""
    return str(stack.dagbag.dags[f"sync_{flow}"].test(run_conf={**CONF, **conf}).state)


def cycle(stack, flows=FLOWS, **conf) -> dict[str, str]:
    """One run of each flow, in dependency order; failures are allowed."""
    return {flow: run(stack, flow, **conf) for flow in flows}


def faults_off(stack) -> None:
    stack.sandboxes.pogo.faults()
    stack.sandboxes.invoiced.faults()


def recover(stack, flows=FLOWS) -> dict[str, int]:
    """Faults off; run each flow until a run succeeds (at most MAX_RECOVERY_RUNS). Returns the runs each took."""
    faults_off(stack)
    taken = {}
    for flow in flows:
        for attempt in range(1, MAX_RECOVERY_RUNS + 1):
            if run(stack, flow) == "success":
                taken[flow] = attempt
                break
        else:
            failures = stack.sql("SELECT flow, operation, reason FROM {s}.sync_log WHERE outcome = 'failed' "
                                 "ORDER BY id DESC LIMIT 5")
            raise AssertionError(f"sync_{flow} did not complete in {MAX_RECOVERY_RUNS} runs after the faults; "
                                 f"last failures: {failures}")
    # The invoice flow resolves customers through links the customer flows may only have written now.
    if run(stack, "salesorders_invoices") != "success":
        raise AssertionError("sync_salesorders_invoices failed on a clean run")
    return taken


def set_connection_extra(monkeypatch, variable: str, **extra) -> None:
    """Change an API connection's extras (e.g. a short ``timeout``) for this test."""
    conn = json.loads(os.environ[variable])
    conn["extra"] = {**conn.get("extra", {}), **extra}
    monkeypatch.setenv(variable, json.dumps(conn))


def _linked(stack, flow: str, system: str, record_id: str) -> str:
    pogo, inv = ("poweroffice_go_id", "invoiced_id") if system == POGO else ("invoiced_id", "poweroffice_go_id")
    rows = stack.sql(f"SELECT {inv} FROM {{s}}.links WHERE flow = %s AND {pogo} = %s", flow, str(record_id))
    assert rows, f"{flow}: {system} record {record_id} has no link"
    return rows[0][0]


def _pick(stack, flow: str, system: str, entity: str, origin: str | None, predicate=lambda r: True) -> str:
    """A linked record of ``flow`` on ``system`` whose pair started on ``origin`` (None: either)."""
    carried = "ExternalImportReference" if system == POGO else "metadata"
    for raw in stack.records(system, entity):
        rid = str(raw["Id"] if system == POGO else raw["id"])
        created_by_sync = bool(raw.get(carried))
        if (origin is None or created_by_sync == (origin != system)) and predicate(raw):
            rows = stack.sql("SELECT 1 FROM {s}.links WHERE flow = %s AND "
                             + ("poweroffice_go_id" if system == POGO else "invoiced_id") + " = %s", flow, rid)
            if rows:
                return rid
    raise AssertionError(f"no linked {system} {entity} record of {flow} that started on {origin}")


def prepare(stack, *, companies: int = 4, persons: int = 3, orders: int = 4) -> list[tuple]:
    """Seed, sync once cleanly, then edit and add on both sides. Returns the edits expected to arrive.

    Each edit is ``(flow, system edited, entity, record id, field, value)``.
    """
    stack.sandboxes.pogo.seed(companies=companies, persons=persons, sales_orders=orders)
    stack.sandboxes.invoiced.seed(companies=companies - 1, persons=persons - 1, invoices=orders - 1)
    assert cycle(stack) == {f: "success" for f in FLOWS}, "the clean first sync failed"
    edits = []
    pogo, invoiced = stack.pogo, stack.invoiced

    company = _pick(stack, "customers_company", POGO, "customers", POGO, lambda r: not r.get("IsPerson"))
    pogo.patch(f"/Customers/{company}", {"Name": "Endret i PowerOffice AS"})
    edits.append(("customers_company", POGO, "customers", company, "name", "Endret i PowerOffice AS"))
    company = _pick(stack, "customers_company", INVOICED, "customers", INVOICED, lambda r: r["type"] == "company")
    invoiced.update(f"/customers/{company}", {"name": "Endret i Invoiced AS"})
    edits.append(("customers_company", INVOICED, "customers", company, "name", "Endret i Invoiced AS"))

    person = _pick(stack, "customers_person", POGO, "customers", POGO, lambda r: r.get("IsPerson"))
    pogo.patch(f"/Customers/{person}", {"MailAddress.City": "Tromsø"})
    edits.append(("customers_person", POGO, "customers", person, "city", "Tromsø"))
    person = _pick(stack, "customers_person", INVOICED, "customers", INVOICED, lambda r: r["type"] == "person")
    invoiced.update(f"/customers/{person}", {"address1": "Nygata 7"})
    edits.append(("customers_person", INVOICED, "customers", person, "address1", "Nygata 7"))

    # Only drafts can change (a confirmed order is locked, an issued invoice may be closed).
    order = _pick(stack, "salesorders_invoices", POGO, "sales_orders", None,
                  lambda r: r.get("SalesOrderStatus") == "Draft")
    pogo.patch(f"/SalesOrders/{order}", {"CurrencyCode": "SEK"})
    edits.append(("salesorders_invoices", POGO, "sales_orders", order, "currency", "SEK"))
    # Another pair than the order's (the same field edited on both sides of one pair is a conflict, not two edits),
    # and a draft on both sides, so that the edit can be written to the order.
    order_pair = _linked(stack, "salesorders_invoices", POGO, order)
    drafts = {str(o["Id"]) for o in stack.records(POGO, "sales_orders") if o.get("SalesOrderStatus") == "Draft"}
    to_order = {i: p for p, i in stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links "
                                           "WHERE flow = 'salesorders_invoices'")}
    invoice = _pick(stack, "salesorders_invoices", INVOICED, "invoices", None,
                    lambda r: r.get("draft") and str(r["id"]) != order_pair and to_order.get(str(r["id"])) in drafts)
    invoiced.update(f"/invoices/{invoice}", {"currency": "dkk"})
    edits.append(("salesorders_invoices", INVOICED, "invoices", invoice, "currency", "DKK"))

    # New records on both sides. (Invoiced seeding back-dates records, which an incremental sync rightly never
    # sees once past them: new Invoiced records are made through its API, as a user would.)
    stack.sandboxes.pogo.seed(companies=2, persons=1, sales_orders=2, seed=2)
    new_company = invoiced.create("/customers", {"name": "Ny Kunde i Invoiced AS", "type": "company"})
    invoiced.create("/customers", {"name": "Kari Ny", "type": "person", "address1": "Storgata 1", "city": "Oslo",
                                   "postal_code": "0150", "country": "NO"})
    invoiced.create("/invoices", {"customer": new_company["id"], "currency": "nok", "draft": True})
    return edits


def verify(stack, edits: list[tuple], flows=FLOWS) -> dict:
    """The invariant, plus: every edit made before the faults is on the other side now."""
    counts = invariants.check(stack, flows)
    lost = []
    for flow, system, entity, record_id, field, value in edits:
        if flow not in flows:
            continue
        other_system = INVOICED if system == POGO else POGO
        other_entity = {("customers", INVOICED): "customers", ("sales_orders", INVOICED): "invoices",
                        ("invoices", POGO): "sales_orders", ("customers", POGO): "customers"}[(entity, other_system)]
        counterpart = _linked(stack, flow, system, record_id)
        got = invariants.values(stack, other_system, other_entity, counterpart, flow)[field]
        mine = invariants.values(stack, system, entity, record_id, flow)[field]
        if (got or "").casefold() != value.casefold() or (mine or "").casefold() != value.casefold():
            lost.append(f"{flow}: {field}={value!r} edited in {system} {record_id}; now {mine!r} there and {got!r} "
                        f"in {other_system} {counterpart}")
    assert not lost, "changes lost:\n  " + "\n  ".join(lost)
    return counts
