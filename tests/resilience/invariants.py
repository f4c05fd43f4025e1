"""The invariant every fault test ends with: after the faults pass, both systems agree and the log explains the rest.

* counts: every record of a flow on either side has exactly one counterpart (or a logged reason why not);
* no duplicates: each origin id is carried at most once (Invoiced ``metadata.poweroffice_go_id``, PowerOffice Go
  ``ExternalImportReference``), and every record that carries one is the linked counterpart of that origin;
* no change lost: each linked pair reads the same through the flow's mapping (codes case-insensitively,
  references through the customer links);
* the sync log explains every record that did not sync;
* no create intent is left open.

The records are read from the sandboxes' admin surface (the stored truth), never through the API under test.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, load_mapping

FLOWS = ("customers_company", "customers_person", "salesorders_invoices")
ENTITY = {(POGO, "customers"): "customers", (POGO, "sales_orders"): "sales_orders",
          (INVOICED, "customers"): "customers", (INVOICED, "invoices"): "invoices"}


def snapshot(stack) -> dict:
    """Every stored record of both sandboxes, by system and mapping entity name."""
    data = {(system, entity): stack.records(system, admin_name) for (system, entity), admin_name in ENTITY.items()}
    # The engine reads an order's customer from its reference contact person's company when CustomerId is empty.
    companies = {str(c["Id"]): c.get("ContactId") for c in stack.records(POGO, "contact_persons")}
    for order in data[(POGO, "sales_orders")]:
        if order.get("CustomerId") is None and order.get("CustomerReferenceContactPersonId"):
            person = str(order["CustomerReferenceContactPersonId"])
            order["CustomerReferenceContactPerson"] = {"Id": person, "ContactId": companies.get(person)}
    return data


def _links(stack, flows) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in stack.sql("SELECT flow, poweroffice_go_id, invoiced_id FROM {s}.links "
                                        "WHERE flow = ANY(%s)", list(flows))]


def check(stack, flows=FLOWS, *, all_synced: bool = True) -> dict:
    """Assert the invariant over ``flows``; with ``all_synced`` every record must be linked (none explained away).

    Returns per-flow counts, for tests that want to say more.
    """
    problems: list[str] = []
    data = snapshot(stack)
    all_links = _links(stack, FLOWS)
    links_by_flow: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for flow, pogo_id, inv_id in all_links:
        links_by_flow[flow].append((pogo_id, inv_id))
    counts = {}

    # -- no duplicates: each origin id carried at most once per entity, and only by the linked counterpart.
    for (system, entity), records in data.items():
        carried = Counter(_carried(system, r) for r in records)
        carried.pop(None, None)
        for origin, n in carried.items():
            if n > 1:
                problems.append(f"duplicate: {n} {system} {entity} carry origin id {origin}")

    for flow in flows:
        mapping = load_mapping(flow)
        sides = {s: mapping.sides[s] for s in (POGO, INVOICED)}
        routed = {s: {_id(s, r): r for r in data[(s, sides[s].entity)] if sides[s].routes(r)} for s in sides}
        pairs = links_by_flow[flow]
        linked = {POGO: {p for p, _ in pairs}, INVOICED: {i for _, i in pairs}}
        counts[flow] = {"links": len(pairs), POGO: len(routed[POGO]), INVOICED: len(routed[INVOICED])}

        # -- every created record is the linked counterpart of the origin it carries.
        by_origin = {POGO: {p: i for p, i in pairs}, INVOICED: {i: p for p, i in pairs}}
        for system, records in routed.items():
            origin_system = INVOICED if system == POGO else POGO
            for rid, raw in records.items():
                origin = _carried(system, raw)
                if origin is not None and by_origin[origin_system].get(origin) != rid:
                    problems.append(f"{flow}: {system} record {rid} carries origin {origin} but is not linked to it "
                                    f"(origin linked to {by_origin[origin_system].get(origin)}): a duplicate")

        # -- every link points at two existing records of the flow.
        for pogo_id, inv_id in pairs:
            if pogo_id not in routed[POGO] or inv_id not in routed[INVOICED]:
                problems.append(f"{flow}: link {pogo_id} <-> {inv_id} points at a missing or foreign record")

        # -- records without a counterpart: not allowed, or explained in the sync log.
        unlinked = {s: sorted(set(routed[s]) - linked[s]) for s in routed}
        for system, ids in unlinked.items():
            if not ids:
                continue
            if all_synced:
                problems.append(f"{flow}: {len(ids)} {system} record(s) without a counterpart: {ids[:5]}")
                continue
            column = f"{system}_id"
            explained = {r[0] for r in stack.sql(
                f"SELECT DISTINCT {column} FROM {{s}}.sync_log WHERE flow = %s AND {column} = ANY(%s) "
                "AND coalesce(reason, '') <> '' AND outcome IN ('failed', 'waiting', 'reported')", flow, ids)}
            for rid in ids:
                if rid not in explained:
                    problems.append(f"{flow}: {system} record {rid} did not sync and the sync log gives no reason")
        if all_synced and len(routed[POGO]) != len(routed[INVOICED]):
            problems.append(f"{flow}: {len(routed[POGO])} PowerOffice Go records but {len(routed[INVOICED])} in Invoiced")

        # -- no change lost: both sides of each pair read the same through the mapping.
        references = {i: p for f, p, i in all_links}
        for pogo_id, inv_id in pairs:
            p, i = routed[POGO].get(pogo_id), routed[INVOICED].get(inv_id)
            if p is None or i is None:
                continue
            pv, iv = mapping.read(POGO, p), mapping.read(INVOICED, i)
            for f in mapping.fields:
                a, b = pv.get(f.name), iv.get(f.name)
                if f.is_reference and b is not None:
                    b = references.get(b, f"unlinked Invoiced {b}")
                if f.transform == "code":
                    a, b = (a or "").casefold() or None, (b or "").casefold() or None
                if a != b:
                    problems.append(f"{flow}: {f.name} differs on pair {pogo_id} <-> {inv_id}: "
                                    f"PowerOffice Go {a!r}, Invoiced {b!r}")

    open_intents = stack.sql("SELECT flow, origin_system, origin_id FROM {s}.pending_creates WHERE flow = ANY(%s)",
                             list(flows))
    if all_synced and open_intents:
        problems.append(f"create intents left open: {open_intents[:5]}")
    assert not problems, "invariant broken:\n  " + "\n  ".join(problems[:40])
    return counts


def _id(system: str, raw: dict) -> str:
    return str(raw["Id"] if system == POGO else raw["id"])


def _carried(system: str, raw: dict) -> str | None:
    """The origin id a record carries: the one our sync wrote when it created the record."""
    if system == INVOICED:
        value = (raw.get("metadata") or {}).get("poweroffice_go_id")
        return None if value in (None, "") else str(value)
    ref = raw.get("ExternalImportReference") or ""
    for prefix in ("invoiced-customer-", "invoiced-invoice-"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return None


def values(stack, system: str, entity: str, record_id: str, flow: str) -> dict:
    """One stored record's canonical values through ``flow``'s mapping."""
    admin = ENTITY[(system, entity)]
    found = [r for r in stack.records(system, admin) if _id(system, r) == str(record_id)]
    assert found, f"{system} {entity} {record_id} is gone"
    return load_mapping(flow).read(system, found[0])
