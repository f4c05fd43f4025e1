"""Operator decisions taken in the console, honoured by the reconcile step: pinned records and field resolutions.

A pinned (excluded) record is left out of the merge, of creates and of linking, and marked clean; including it again
makes it dirty, so the next run merges whatever changed meanwhile. A resolution sets one field of a linked pair to a
chosen value on both sides: until a run finds both sides holding it, every run writes it to the side(s) that differ
and the merge leaves that field alone, so neither side's older value can come back.
"""

from __future__ import annotations

from typing import Any

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, FlowMapping
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.model import HeldResolution, LogEntry, PairRow, Plan, PlanItem


def prepare(
    store: LinkStore, mapping: FlowMapping, run_id: str, rows: list[PairRow], plan: Plan, dry_run: bool = False
) -> list[PairRow]:
    """Drop pinned records from ``rows``, add pairs with a pending resolution and hold their resolved fields.

    Resolutions a run finds carried out (both sides and the merge base hold the value) are closed here.
    """
    flow = mapping.flow
    with store.transaction() as cur:
        cur.execute(store.q("SELECT system, record_id FROM {s}.exclusions WHERE flow = %s"), (flow,))
        pinned = set(cur.fetchall())
        cur.execute(
            store.q(
                "SELECT id, poweroffice_go_id, field, value, actor FROM {s}.operator_decisions "
                "WHERE flow = %s AND kind = 'resolve' AND status = 'pending' ORDER BY id"
            ),
            (flow,),
        )
        pending: dict[str, dict[str, tuple[int, Any, str]]] = {}
        for decision_id, pogo_id, field, value, actor in cur.fetchall():
            pending.setdefault(pogo_id, {})[field] = (decision_id, value, actor)
    kept = []
    for row in rows:
        ids = [(rec.system, rec.record_id) for rec in (row.poweroffice_go, row.invoiced) if rec]
        if row.link is not None:
            ids += [(POGO, row.link.poweroffice_go_id), (INVOICED, row.link.invoiced_id)]
        if pinned.intersection(ids):
            for system, record_id in ids:
                plan.settle(system, record_id)
        else:
            kept.append(row)
    if not pending:
        return kept
    present = {r.link.poweroffice_go_id for r in kept if r.link is not None}
    kept += store.pairs(flow, [p for p in pending if p not in present])
    done, log = [], []
    for row in kept:
        link, p, i = row.link, row.poweroffice_go, row.invoiced
        if link is None or link.poweroffice_go_id not in pending or link.state != "active" or p is None or i is None:
            continue
        if {(POGO, link.poweroffice_go_id), (INVOICED, link.invoiced_id)} & pinned:
            continue
        held = {}
        for field, (decision_id, value, actor) in pending[link.poweroffice_go_id].items():
            actual = {POGO: p.vals.get(field), INVOICED: i.vals.get(field)}
            if actual[POGO] == value and actual[INVOICED] == value and (link.base or {}).get(field) == value:
                done.append(decision_id)
                log.append(
                    LogEntry(
                        "resolve",
                        "ok",
                        poweroffice_go_id=link.poweroffice_go_id,
                        invoiced_id=link.invoiced_id,
                        after={field: value},
                        reason=f"operator decision {decision_id} by {actor} carried out: {field} is "
                        f"{value!r} on both sides",
                    )
                )
                continue
            # Hide the field from the merge (equal everywhere); resolution_items writes the decided value.
            held[field] = HeldResolution(decision_id, value, actual, actor)
            p.vals = {**p.vals, field: value}
            i.vals = {**i.vals, field: value}
            link.base = {**(link.base or {}), field: value}
        if held:
            row.resolutions = held
    if done and not dry_run:
        with store.transaction() as cur:
            cur.execute(
                store.q(
                    "UPDATE {s}.operator_decisions SET status = 'done', run_id = %s, done_at = now() "
                    "WHERE id = ANY(%s) AND status = 'pending'"
                ),
                (run_id, done),
            )
            store._log(cur, flow, run_id, log)
    return kept


def resolution_items(mapping: FlowMapping, rows: list[PairRow], plan: Plan) -> None:
    """Add the held resolutions' writes to the plan, inside the pair's update item for that side when it has one."""
    for row in rows:
        held = row.resolutions
        if not held or row.link is None:
            continue
        pogo_id, inv_id = row.link.poweroffice_go_id, row.link.invoiced_id
        wrote = False
        for target in (POGO, INVOICED):
            changes = {f: h.value for f, h in held.items() if h.actual[target] != h.value}
            if not changes:
                continue
            wrote = True
            before = {f: held[f].actual[target] for f in changes}
            note = [
                {"decision": held[f].decision, "field": f, "value": held[f].value, "actor": held[f].actor}
                for f in changes
            ]
            item = next(
                (
                    it
                    for it in plan.items
                    if it.action == "update" and it.target == target and it.poweroffice_go_id == pogo_id
                ),
                None,
            )
            if item is None:
                plan.add(
                    PlanItem(
                        "update",
                        target,
                        pogo_id,
                        inv_id,
                        changes=dict(changes),
                        base=dict(changes),
                        detail={"before": before, "source": dict(changes), "conflicts": [], "operator": note},
                    )
                )
            else:
                item.changes.update(changes)
                item.base = {**(item.base or {}), **changes}
                if item.detail is None:
                    item.detail = {}
                detail = item.detail
                detail.setdefault("before", {}).update(before)
                detail.setdefault("source", {}).update(changes)
                detail["operator"] = detail.get("operator", []) + note
        if not wrote:  # both sides hold the value already: only the merge base is behind
            plan.add(PlanItem("rebase", None, pogo_id, inv_id, base={f: h.value for f, h in held.items()}))
