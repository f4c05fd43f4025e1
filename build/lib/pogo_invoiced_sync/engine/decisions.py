"""Operator decisions taken in the console, honoured by the reconcile step: pinned records and field resolutions.

A pinned (excluded) record is left out of the merge, of creates and of linking, and marked clean; including it again
makes it dirty, so the next run merges whatever changed meanwhile. A resolution sets one field of a linked pair to a
chosen value on both sides: until a run finds both sides holding it, every run writes it to the side(s) that differ
and the merge leaves that field alone, so neither side's older value can come back.
"""
from __future__ import annotations

from typing import Any

from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, FlowMapping

_SIDE = ("record_id", "vals", "meta", "routed", "external_ref", "changed_at", "dirty")


def prepare(store: LinkStore, mapping: FlowMapping, run_id: str, rows: list[dict], plan: Any,
            dry_run: bool = False) -> list[dict]:
    """Drop pinned records from ``rows``, add pairs with a pending resolution and hold their resolved fields.

    Resolutions a run finds carried out (both sides and the merge base hold the value) are closed here.
    """
    flow = mapping.flow
    with store.transaction() as cur:
        cur.execute(store.q("SELECT system, record_id FROM {s}.exclusions WHERE flow = %s"), (flow,))
        pinned = set(cur.fetchall())
        cur.execute(store.q("SELECT id, poweroffice_go_id, field, value, actor FROM {s}.operator_decisions "
                            "WHERE flow = %s AND kind = 'resolve' AND status = 'pending' ORDER BY id"), (flow,))
        pending: dict[str, dict[str, tuple]] = {}
        for decision_id, pogo_id, field, value, actor in cur.fetchall():
            pending.setdefault(pogo_id, {})[field] = (decision_id, value, actor)
    kept = []
    for row in rows:
        ids = [(s, row[s]["record_id"]) for s in (POGO, INVOICED) if row[s]]
        if row["link"] is not None:
            ids += [(POGO, row["link"]["poweroffice_go_id"]), (INVOICED, row["link"]["invoiced_id"])]
        if pinned.intersection(ids):
            for system, record_id in ids:
                plan.settle(system, record_id)
        else:
            kept.append(row)
    if not pending:
        return kept
    present = {r["link"]["poweroffice_go_id"] for r in kept if r["link"] is not None}
    kept += _pairs(store, flow, [p for p in pending if p not in present])
    done, log = [], []
    for row in kept:
        link = row["link"]
        if link is None or link["poweroffice_go_id"] not in pending or link["state"] != "active" \
                or row[POGO] is None or row[INVOICED] is None:
            continue
        if {(POGO, link["poweroffice_go_id"]), (INVOICED, link["invoiced_id"])} & pinned:
            continue
        held = {}
        for field, (decision_id, value, actor) in pending[link["poweroffice_go_id"]].items():
            actual = {POGO: row[POGO]["vals"].get(field), INVOICED: row[INVOICED]["vals"].get(field)}
            if actual[POGO] == value and actual[INVOICED] == value and (link["base"] or {}).get(field) == value:
                done.append(decision_id)
                log.append({"operation": "resolve", "outcome": "ok", "poweroffice_go_id": link["poweroffice_go_id"],
                            "invoiced_id": link["invoiced_id"], "after": {field: value},
                            "reason": f"operator decision {decision_id} by {actor} carried out: {field} is "
                                      f"{value!r} on both sides"})
                continue
            # Hide the field from the merge (equal everywhere); resolution_items writes the decided value.
            held[field] = {"decision": decision_id, "value": value, "actual": actual, "actor": actor}
            row[POGO]["vals"] = {**row[POGO]["vals"], field: value}
            row[INVOICED]["vals"] = {**row[INVOICED]["vals"], field: value}
            link["base"] = {**(link["base"] or {}), field: value}
        if held:
            row["resolutions"] = held
    if done and not dry_run:
        with store.transaction() as cur:
            cur.execute(store.q("UPDATE {s}.operator_decisions SET status = 'done', run_id = %s, done_at = now() "
                                "WHERE id = ANY(%s) AND status = 'pending'"), (run_id, done))
            store._log(cur, flow, run_id, log)
    return kept


def resolution_items(mapping: FlowMapping, rows: list[dict], plan: Any) -> None:
    """Add the held resolutions' writes to the plan, inside the pair's update item for that side when it has one."""
    for row in rows:
        held = row.get("resolutions")
        if not held:
            continue
        pogo_id, inv_id = row["link"]["poweroffice_go_id"], row["link"]["invoiced_id"]
        wrote = False
        for target in (POGO, INVOICED):
            changes = {f: h["value"] for f, h in held.items() if h["actual"][target] != h["value"]}
            if not changes:
                continue
            wrote = True
            before = {f: held[f]["actual"][target] for f in changes}
            note = [{"decision": held[f]["decision"], "field": f, "value": held[f]["value"], "actor": held[f]["actor"]}
                    for f in changes]
            item = next((it for it in plan.items if it["action"] == "update" and it.get("target") == target
                         and it.get("poweroffice_go_id") == pogo_id), None)
            if item is None:
                plan.item(action="update", target=target, poweroffice_go_id=pogo_id, invoiced_id=inv_id,
                          changes=dict(changes), base=dict(changes),
                          detail={"before": before, "source": dict(changes), "conflicts": [], "operator": note})
            else:
                item["changes"].update(changes)
                item["base"] = {**(item.get("base") or {}), **changes}
                detail = item.setdefault("detail", {})
                detail.setdefault("before", {}).update(before)
                detail.setdefault("source", {}).update(changes)
                detail["operator"] = detail.get("operator", []) + note
        if not wrote:  # both sides hold the value already: only the merge base is behind
            plan.item(action="rebase", target=None, poweroffice_go_id=pogo_id, invoiced_id=inv_id,
                      base={f: h["value"] for f, h in held.items()})


def _pairs(store: LinkStore, flow: str, pogo_ids: list[str]) -> list[dict]:
    """Linked pairs (as ``dirty_pairs`` rows) of these PowerOffice Go ids, whether dirty or not."""
    if not pogo_ids:
        return []
    with store.transaction() as cur:
        cur.execute(store.q(
            "SELECT l.poweroffice_go_id, l.invoiced_id, l.base, l.state, "
            "p.record_id, p.vals, p.meta, p.routed, p.external_ref, p.changed_at, p.dirty, "
            "i.record_id, i.vals, i.meta, i.routed, i.external_ref, i.changed_at, i.dirty "
            "FROM {s}.links l "
            "LEFT JOIN {s}.records p ON p.flow = l.flow AND p.system = 'poweroffice_go' AND p.record_id = l.poweroffice_go_id "
            "LEFT JOIN {s}.records i ON i.flow = l.flow AND i.system = 'invoiced' AND i.record_id = l.invoiced_id "
            "WHERE l.flow = %s AND l.poweroffice_go_id = ANY(%s)"), (flow, pogo_ids))
        rows = cur.fetchall()
    return [{"link": {"poweroffice_go_id": r[0], "invoiced_id": r[1], "base": r[2], "state": r[3]},
             POGO: None if r[4] is None else dict(zip(_SIDE, r[4:11])),
             INVOICED: None if r[11] is None else dict(zip(_SIDE, r[11:18]))} for r in rows]
