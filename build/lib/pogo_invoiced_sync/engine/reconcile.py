"""The reconcile step: three-way merge of dirty records against their links; the plan, the guard, the drift report."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pandas as pd

from pogo_invoiced_sync.engine import decisions
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.flow_mapping import DIRECTION, INVOICED, POGO, SYSTEMS, FlowMapping, other
from pogo_invoiced_sync.engine.merge import merge, winner

UNRESOLVED = "?"  # prefix of a reference that has no link yet


class _Plan:
    """Collects plan items, settled records and log entries while reconciling."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.settled: list[tuple[str, str]] = []
        self.log: list[dict] = []
        self.counts: Counter = Counter()

    def item(self, **item) -> None:
        self.items.append(item)
        self.counts[f"{item['action']}:{item.get('target') or 'link_store'}"] += 1

    def note(self, operation: str, outcome: str, reason: str, pogo_id=None, inv_id=None, direction=None,
             before=None, after=None) -> None:
        self.log.append({"operation": operation, "outcome": outcome, "reason": reason, "poweroffice_go_id": pogo_id,
                         "invoiced_id": inv_id, "direction": direction, "before": before, "after": after})
        self.counts[operation] += 1

    def settle(self, system: str, record_id: str | None) -> None:
        if record_id is not None:
            self.settled.append((system, record_id))


class ChangeGuardTripped(RuntimeError):
    """The run would update more linked records than the flow's guard allows; nothing was written."""


def reconcile(store: LinkStore, mapping: FlowMapping, run_id: str, sibling_flows: tuple[str, ...] = (), *,
              dry_run: bool = False, allow_mass_changes: bool = False, full_refresh: bool = False) -> dict:
    """Compare the dirty records with their links and merge bases; write the plan of creates and updates.

    Link-store-only decisions (recovered links, converged merge bases) are applied here, unless ``dry_run``.
    Raises :class:`ChangeGuardTripped` before writing anything when the plan trips the mapping's guard.
    On ``full_refresh`` it also writes the drift report: records on one side only, and linked pairs that differ.
    """
    with store.flow_lock(mapping.flow):
        rows = list(store.dirty_pairs(mapping.flow))
        plan = _Plan()
        # Operator decisions (console): pinned records sit out; resolved fields are held out of the merge.
        rows = decisions.prepare(store, mapping, run_id, rows, plan, dry_run=dry_run)
        refs = _References(store, mapping, rows)
        for row in rows:
            if row["link"] is not None:
                _reconcile_pair(mapping, row, refs, plan)
        _reconcile_unlinked(store, mapping, [r for r in rows if r["link"] is None], refs, plan, sibling_flows)
        decisions.resolution_items(mapping, rows, plan)
        if not sibling_flows:
            # No other flow takes what this one does not route (a voided invoice): say once why it is not synced.
            for system, rid in store.unexplained_out_of_flow(mapping.flow, run_id):
                plan.note("skip", "reported", f"{system} record {rid} is not synchronised: it does not belong to flow "
                          f"{mapping.flow} (route: {mapping.sides[system].route}) and no other flow takes it",
                          rid if system == POGO else None, rid if system == INVOICED else None)
        # Computed before anything is written: a failing report must not leave the run's records settled.
        drift_log, drift = _drift_report(store, mapping) if full_refresh else ([], None)
        if not allow_mass_changes:
            _check_guard(store, mapping, run_id, plan, dry_run)
        store.replace_plan(mapping.flow, run_id, plan.items, plan.settled, plan.log)
        if drift_log:
            store.log(mapping.flow, run_id, drift_log)
        local = store.plan_items(mapping.flow, run_id, None)
        if dry_run:
            # The creates and updates are logged as planned by each target's upsert; the conflicts they settle here.
            store.log(mapping.flow, run_id, [_planned(it) for it in local] + _planned_conflicts(plan.items))
            store.mark_planned(mapping.flow, run_id, None)
        else:
            _apply_link_store_items(store, mapping, run_id, local, plan.settled)
    return {"dirty": len(rows), **dict(plan.counts), **({"drift": drift} if drift else {})}


def _check_guard(store: LinkStore, mapping: FlowMapping, run_id: str, plan: _Plan, dry_run: bool = False) -> None:
    """Stop the run when the plan changes too many linked pairs, counted over the whole run (both targets).

    A dry run is not stopped (it writes nothing, and its plan is what a person wants to see): it logs that a real
    run would stop here.
    """
    updates = [it for it in plan.items if it["action"] == "update"]
    # A pair updated on both sides is one changed link; pairs linked in this run count among the links.
    changed = len({it["poweroffice_go_id"] for it in updates})
    links = store.count_links(mapping.flow) + sum(it["action"] == "link" for it in plan.items)
    if not mapping.guard.tripped(changed, links):
        return
    per_target = Counter(it["target"] for it in updates)
    per_field = Counter(name for it in updates for name in it["changes"])
    message = (f"change guard: this run would update {changed} of {links} linked records "
               f"({per_target.get(INVOICED, 0)} in {INVOICED}, {per_target.get(POGO, 0)} in {POGO}; fields: "
               f"{', '.join(f'{n} {c}' for n, c in per_field.most_common())}) (limits: {mapping.guard.max_updates} "
               f"records, or {mapping.guard.max_fraction:.0%} of the links above {mapping.guard.min_updates}). "
               "Nothing was written. If an API answered with wrong or partial data, wait for it to recover; if the "
               "changes are real (a mass edit, or a field added to the mapping being filled in), trigger a run with "
               "allow_mass_changes=true.")
    if dry_run:
        store.log(mapping.flow, run_id, [{"operation": "guard", "outcome": "planned",
                                          "reason": f"dry run; a real run would stop here: {message}"}])
        return
    store.log(mapping.flow, run_id, [{"operation": "guard", "outcome": "failed", "reason": message}])
    # What this run read must not stay behind as pending changes: the next run reads it again.
    store.rewind_cursors(mapping.flow, run_id)
    raise ChangeGuardTripped(message)


def _drift_report(store: LinkStore, mapping: FlowMapping) -> tuple[list[dict], dict]:
    """Compare every linked pair field by field (pandas) and list the records that exist on one side only.

    Returns the sync-log entries and the counts; writes nothing, so a failure here leaves the run untouched.
    """
    columns = [f.name for f in mapping.fields]
    pairs = list(store.linked_pairs(mapping.flow))
    refs = _References(store, mapping, [{POGO: None, INVOICED: {"vals": i}} for _, _, _, i in pairs])
    # object dtype keeps the values as they are (pandas 3 would infer its str dtype, whose gaps are NaN); a field
    # missing from a record mirrored before it was mapped still reads as a gap.
    pogo = pd.DataFrame([p for _, _, p, _ in pairs], columns=columns, dtype=object)
    inv = pd.DataFrame([refs.canonical(INVOICED, i) for _, _, _, i in pairs], columns=columns, dtype=object)
    gap_p, gap_i = pogo.isna(), inv.isna()
    differs = (pogo.ne(inv) & ~(gap_p & gap_i)) | (gap_p ^ gap_i)
    log = []
    for row in differs.index[differs.any(axis=1)]:
        fields = [c for c in columns if differs.at[row, c]]
        pogo_id, inv_id = pairs[row][0], pairs[row][1]
        log.append({"operation": "drift", "outcome": "reported", "poweroffice_go_id": pogo_id, "invoiced_id": inv_id,
                    "reason": f"fields differ: {', '.join(fields)}",
                    "before": {c: _json_value(pogo.at[row, c]) for c in fields},
                    "after": {c: _json_value(inv.at[row, c]) for c in fields}})
    only = store.unlinked_records(mapping.flow)
    for system, record_id in only:
        log.append({"operation": "drift", "outcome": "reported", f"{system}_id": record_id,
                    "reason": f"only in {system}"})
    return log, {"only_in_poweroffice_go": sum(s == POGO for s, _ in only),
                 "only_in_invoiced": sum(s == INVOICED for s, _ in only),
                 "pairs_differing": int(differs.any(axis=1).sum()), "pairs_compared": len(pairs)}


def _json_value(value: Any) -> Any:
    """A value fit for JSON: pandas' gaps (NaN, NA, None) as None."""
    return None if value is None or (not isinstance(value, (str, dict, list)) and pd.isna(value)) else value


class _References:
    """Translates reference fields (an order's customer) between the two id spaces through other flows' links."""

    def __init__(self, store: LinkStore, mapping: FlowMapping, rows: list[dict]) -> None:
        self.fields = [f for f in mapping.fields if f.is_reference]
        self.to_pogo: dict[str, str] = {}
        self.to_inv: dict[str, str] = {}
        for f in self.fields:
            inv_ids = [r[INVOICED]["vals"].get(f.name) for r in rows if r[INVOICED]]
            pogo_ids = [r[POGO]["vals"].get(f.name) for r in rows if r[POGO]]
            self.to_pogo.update(store.linked_ids(f.reference_flows, INVOICED, inv_ids))
            self.to_inv.update(store.linked_ids(f.reference_flows, POGO, pogo_ids))

    def canonical(self, system: str, vals: dict) -> dict:
        """Values with Invoiced-side references expressed as PowerOffice Go ids (unlinked ones marked)."""
        if system == POGO or not self.fields:
            return dict(vals)
        out = dict(vals)
        for f in self.fields:
            value = vals.get(f.name)
            if value is not None:
                out[f.name] = self.to_pogo.get(value, f"{UNRESOLVED}{value}")
        return out

    def for_target(self, target: str, changes: dict) -> tuple[dict, list[str]]:
        """Changes with references in the target's ids, and the reasons to wait when one is not linked yet."""
        out, waits = dict(changes), []
        for f in self.fields:
            if f.name not in changes or changes[f.name] is None:
                continue
            value = changes[f.name]
            if value.startswith(UNRESOLVED):
                waits.append(f"{f.name}: Invoiced customer {value[1:]} is not linked to PowerOffice Go yet")
            elif target == INVOICED:
                if value in self.to_inv:
                    out[f.name] = self.to_inv[value]
                else:
                    waits.append(f"{f.name}: PowerOffice Go customer {value} is not linked to Invoiced yet")
        return out, waits


def _reconcile_pair(mapping: FlowMapping, row: dict, refs: _References, plan: _Plan) -> None:
    link, p, i = row["link"], row[POGO], row[INVOICED]
    pogo_id, inv_id = link["poweroffice_go_id"], link["invoiced_id"]
    if link["state"] != "active" or p is None or i is None:
        plan.settle(POGO, p and p["record_id"])
        plan.settle(INVOICED, i and i["record_id"])
        return
    for system, rec in ((POGO, p), (INVOICED, i)):
        if not rec["routed"]:
            # MAPPING.md, decision 1: a record that leaves its flow (type change, voided invoice) is reported.
            plan.note("report", "reported", f"{system} record {rec['record_id']} no longer belongs to flow "
                      f"{mapping.flow} (its type or state changed); the pair is left as it is for a person to resolve",
                      pogo_id, inv_id)
            plan.settle(POGO, pogo_id)
            plan.settle(INVOICED, inv_id)
            return
    pv, iv = p["vals"], refs.canonical(INVOICED, i["vals"])
    result = merge([f.name for f in mapping.fields], link["base"] or {}, pv, iv,
                   winner(mapping.conflict, p["changed_at"], i["changed_at"]))
    writes = {target: dict(changes) for target, changes in result.writes.items()}
    new_base: dict[str, Any] = dict(result.agreed)
    conflicts = [c.as_dict() for c in result.conflicts]
    waiting = False
    for target in (INVOICED, POGO):
        changes = writes[target]
        for name in list(changes):
            if target in mapping.field(name).immutable_on:
                plan.note("report", "reported", f"{name} cannot change in {target} once created (now "
                          f"{changes[name]!r} in {other(target)}); resolve by hand", pogo_id, inv_id, DIRECTION[target],
                          before=None, after={name: changes[name]})
                changes.pop(name)
        if not changes:
            continue
        native, waits = refs.for_target(target, changes)
        if waits:
            plan.note("wait", "waiting", "; ".join(waits), pogo_id, inv_id, DIRECTION[target])
            waiting = True
            continue
        source = pv if target == INVOICED else iv
        plan.item(action="update", target=target, poweroffice_go_id=pogo_id, invoiced_id=inv_id, changes=native,
                  base={**new_base, **changes},
                  detail={"before": {k: (iv if target == INVOICED else pv).get(k) for k in changes},
                          "source": {k: source.get(k) for k in changes},
                          "conflicts": [c for c in conflicts if c["field"] in changes]})
        new_base = {}
    if new_base:
        plan.item(action="rebase", target=None, poweroffice_go_id=pogo_id, invoiced_id=inv_id, base=new_base)
    if not waiting:
        # Cleared only once every item of this run that involves the pair is done (see LinkStore._clean).
        plan.settle(POGO, pogo_id)
        plan.settle(INVOICED, inv_id)


def _reconcile_unlinked(store: LinkStore, mapping: FlowMapping, rows: list[dict], refs: _References, plan: _Plan,
                        sibling_flows: tuple[str, ...]) -> None:
    by_side: dict[str, dict[str, dict]] = {POGO: {}, INVOICED: {}}
    for row in rows:
        system = POGO if row[POGO] else INVOICED
        by_side[system][row[system]["record_id"]] = row[system]
    taken: set[tuple[str, str]] = set()

    def link(pogo: dict, inv: dict, reason: str) -> None:
        taken.update({(POGO, pogo["record_id"]), (INVOICED, inv["record_id"])})
        plan.item(action="link", target=None, poweroffice_go_id=pogo["record_id"], invoiced_id=inv["record_id"],
                  base={}, detail={"reason": reason})
        # Merge the new pair at once, without a merge base: differing fields go by the conflict policy.
        _reconcile_pair(mapping, {"link": {"poweroffice_go_id": pogo["record_id"], "invoiced_id": inv["record_id"],
                                           "base": {}, "state": "active"}, POGO: pogo, INVOICED: inv}, refs, plan)

    # 1. Records that carry the other side's id: counterparts we created before a crash lost the link.
    for system in SYSTEMS:
        for rec in by_side[system].values():
            ref = rec["external_ref"]
            partner = by_side[other(system)].get(ref) if ref and rec["routed"] else None
            if partner and partner["routed"] and (system, rec["record_id"]) not in taken and (other(system), ref) not in taken:
                pogo, inv = (rec, partner) if system == POGO else (partner, rec)
                link(pogo, inv, f"{system} record carries the id of its counterpart")
    # 2. Onboarding: equal, unique match keys on both sides.
    if mapping.match_on:
        keyed: dict[str, dict[tuple, list[dict]]] = {POGO: defaultdict(list), INVOICED: defaultdict(list)}
        for system in SYSTEMS:
            for rec in by_side[system].values():
                if (system, rec["record_id"]) in taken or not rec["routed"]:
                    continue
                key = tuple((rec["vals"].get(k) or "").casefold() for k in mapping.match_on)
                if all(key):
                    keyed[system][key].append(rec)
        for key, pogos in keyed[POGO].items():
            invs = keyed[INVOICED].get(key, [])
            if len(pogos) == 1 and len(invs) == 1:
                link(pogos[0], invs[0], f"matched on {', '.join(mapping.match_on)}")
    # 3. Everything else gets a counterpart, where the mapping lets its side create.
    siblings_by_system = {s: store.linked_ids(sibling_flows, s, [r for r in by_side[s] if (s, r) not in taken])
                          for s in SYSTEMS} if sibling_flows else {POGO: {}, INVOICED: {}}
    for system in SYSTEMS:
        target = other(system)
        for rec in by_side[system].values():
            rid = rec["record_id"]
            if (system, rid) in taken:
                continue
            pogo_id, inv_id = (rid, None) if system == POGO else (None, rid)
            if not rec["routed"]:
                plan.settle(system, rid)
                continue
            if rid in siblings_by_system[system]:
                plan.note("report", "reported", f"{system} record {rid} is linked in another flow; its type changed. "
                          "It is not moved between flows: resolve by hand", pogo_id, inv_id)
                plan.settle(system, rid)
                continue
            if target not in mapping.create_targets:
                plan.settle(system, rid)
                continue
            vals = refs.canonical(system, rec["vals"])
            native, waits = refs.for_target(target, vals)
            if waits:
                plan.note("wait", "waiting", "; ".join(waits), pogo_id, inv_id, DIRECTION[target])
                continue
            plan.item(action="create", target=target, poweroffice_go_id=pogo_id, invoiced_id=inv_id, changes=native,
                      base=vals, detail={"origin": system})


def _planned(item: dict) -> dict:
    return {"operation": item["action"], "outcome": "planned", "direction": DIRECTION.get(item["target"]),
            "poweroffice_go_id": item["poweroffice_go_id"], "invoiced_id": item["invoiced_id"],
            "reason": "dry run", "before": (item.get("detail") or {}).get("before"), "after": item["changes"] or item["base"]}


def _planned_conflicts(items: list[dict]) -> list[dict]:
    """Dry run: the conflicts the plan's updates would settle, with the losing and the winning value."""
    return [{"operation": "conflict", "outcome": "planned", "direction": DIRECTION[it["target"]],
             "poweroffice_go_id": it["poweroffice_go_id"], "invoiced_id": it["invoiced_id"],
             "reason": f"{c['field']}: {c['reason']}; {c['winner']} wins",
             "before": {c["field"]: c["losing_value"]}, "after": {c["field"]: c["value"]}}
            for it in items if it["action"] == "update" for c in (it.get("detail") or {}).get("conflicts", [])]


def _apply_link_store_items(store: LinkStore, mapping: FlowMapping, run_id: str, items: list[dict],
                            settled: list[tuple[str, str]]) -> None:
    links, rebases, log = [], [], []
    for it in items:
        if it["action"] == "link":
            links.append({"poweroffice_go_id": it["poweroffice_go_id"], "invoiced_id": it["invoiced_id"], "base": {}})
            log.append({"operation": "link", "outcome": "ok", "reason": it["detail"]["reason"],
                        "poweroffice_go_id": it["poweroffice_go_id"], "invoiced_id": it["invoiced_id"]})
        else:
            rebases.append({"poweroffice_go_id": it["poweroffice_go_id"], "base": it["base"]})
    # A recovered link settles any create intent left by the attempt that created the counterpart.
    intents = [(s, k[f"{s}_id"]) for k in links for s in SYSTEMS]
    store.complete(mapping.flow, run_id, links=links, base_updates=rebases, done_items=[it["item"] for it in items],
                   intents_done=intents, settled=settled, log=log)
