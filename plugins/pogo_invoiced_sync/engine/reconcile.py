"""The reconcile step: three-way merge of dirty records against their links; the plan, the guard, the drift report."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from pogo_invoiced_sync.engine import decisions
from pogo_invoiced_sync.engine.flow_mapping import DIRECTION, INVOICED, POGO, SYSTEMS, FlowMapping, other
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.merge import merge, winner
from pogo_invoiced_sync.engine.model import (
    BaseUpdate,
    Completion,
    Link,
    LinkWrite,
    LogEntry,
    MirrorRow,
    PairRow,
    Plan,
    PlanItem,
    Values,
)

UNRESOLVED = "?"  # prefix of a reference that has no link yet


class ChangeGuardTripped(RuntimeError):
    """The run would update more linked records than the flow's guard allows; nothing was written."""


def reconcile(
    store: LinkStore,
    mapping: FlowMapping,
    run_id: str,
    sibling_flows: tuple[str, ...] = (),
    *,
    dry_run: bool = False,
    allow_mass_changes: bool = False,
    full_refresh: bool = False,
) -> dict:
    """Compare the dirty records with their links and merge bases; write the plan of creates and updates.

    Link-store-only decisions (recovered links, converged merge bases) are applied here, unless ``dry_run``.
    Raises :class:`ChangeGuardTripped` before writing anything when the plan trips the mapping's guard.
    On ``full_refresh`` it also writes the drift report: records on one side only, and linked pairs that differ.
    """
    with store.flow_lock(mapping.flow):
        rows = list(store.dirty_pairs(mapping.flow))
        plan = Plan()
        # Operator decisions (console): pinned records sit out; resolved fields are held out of the merge.
        rows = decisions.prepare(store, mapping, run_id, rows, plan, dry_run=dry_run)
        refs = _References(
            store,
            mapping,
            [r.poweroffice_go.vals for r in rows if r.poweroffice_go],
            [r.invoiced.vals for r in rows if r.invoiced],
        )
        for row in rows:
            if row.link is not None:
                _reconcile_pair(mapping, row.link, row.poweroffice_go, row.invoiced, refs, plan)
        _reconcile_unlinked(store, mapping, [r for r in rows if r.link is None], refs, plan, sibling_flows)
        decisions.resolution_items(mapping, rows, plan)
        if not sibling_flows:
            # No other flow takes what this one does not route (a voided invoice): say once why it is not synced.
            for system, rid in store.unexplained_out_of_flow(mapping.flow, run_id):
                plan.note(
                    "skip",
                    "reported",
                    f"{system} record {rid} is not synchronised: it does not belong to flow "
                    f"{mapping.flow} (route: {mapping.sides[system].route}) and no other flow takes it",
                    rid if system == POGO else None,
                    rid if system == INVOICED else None,
                )
        # Computed before anything is written: a failing report must not leave the run's records settled.
        drift_log, drift = _drift_report(store, mapping) if full_refresh else ([], {})
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


def _check_guard(store: LinkStore, mapping: FlowMapping, run_id: str, plan: Plan, dry_run: bool = False) -> None:
    """Stop the run when the plan changes too many linked pairs, counted over the whole run (both targets).

    A dry run is not stopped (it writes nothing, and its plan is what a person wants to see): it logs that a real
    run would stop here.
    """
    updates = [it for it in plan.items if it.action == "update"]
    # A pair updated on both sides is one changed link; pairs linked in this run count among the links.
    changed = len({it.poweroffice_go_id for it in updates})
    links = store.count_links(mapping.flow) + sum(it.action == "link" for it in plan.items)
    if not mapping.guard.tripped(changed, links):
        return
    per_target = Counter(it.target for it in updates)
    per_field = Counter(name for it in updates for name in it.changes)
    message = (
        f"change guard: this run would update {changed} of {links} linked records "
        f"({per_target.get(INVOICED, 0)} in {INVOICED}, {per_target.get(POGO, 0)} in {POGO}; fields: "
        f"{', '.join(f'{n} {c}' for n, c in per_field.most_common())}) (limits: {mapping.guard.max_updates} "
        f"records, or {mapping.guard.max_fraction:.0%} of the links above {mapping.guard.min_updates}). "
        "Nothing was written. If an API answered with wrong or partial data, wait for it to recover; if the "
        "changes are real (a mass edit, or a field added to the mapping being filled in), trigger a run with "
        "allow_mass_changes=true."
    )
    if dry_run:
        store.log(
            mapping.flow,
            run_id,
            [LogEntry("guard", "planned", reason=f"dry run; a real run would stop here: {message}")],
        )
        return
    store.log(mapping.flow, run_id, [LogEntry("guard", "failed", reason=message)])
    # What this run read must not stay behind as pending changes: the next run reads it again.
    store.rewind_cursors(mapping.flow, run_id)
    raise ChangeGuardTripped(message)


def _drift_report(store: LinkStore, mapping: FlowMapping) -> tuple[list[LogEntry], dict[str, int]]:
    """Compare every linked pair field by field (pandas) and list the records that exist on one side only.

    Returns the sync-log entries and the counts; writes nothing, so a failure here leaves the run untouched.
    """
    import pandas as pd  # only a full refresh compares in bulk: importing the engine does not load pandas

    columns = [f.name for f in mapping.fields]
    pairs = list(store.linked_pairs(mapping.flow))
    refs = _References(store, mapping, [], [p.invoiced_vals for p in pairs])
    # object dtype keeps the values as they are (pandas 3 would infer its str dtype, whose gaps are NaN); a field
    # missing from a record mirrored before it was mapped still reads as a gap.
    pogo = pd.DataFrame([p.poweroffice_go_vals for p in pairs], columns=columns, dtype=object)
    inv = pd.DataFrame([refs.canonical(INVOICED, p.invoiced_vals) for p in pairs], columns=columns, dtype=object)
    gap_p, gap_i = pogo.isna(), inv.isna()
    differs = (pogo.ne(inv) & ~(gap_p & gap_i)) | (gap_p ^ gap_i)
    log = []
    for row in differs.index[differs.any(axis=1)]:
        fields = [c for c in columns if differs.at[row, c]]
        log.append(
            LogEntry(
                "drift",
                "reported",
                poweroffice_go_id=pairs[row].poweroffice_go_id,
                invoiced_id=pairs[row].invoiced_id,
                reason=f"fields differ: {', '.join(fields)}",
                before={c: _json_value(pogo.at[row, c]) for c in fields},
                after={c: _json_value(inv.at[row, c]) for c in fields},
            )
        )
    only = store.unlinked_records(mapping.flow)
    for system, record_id in only:
        log.append(LogEntry.about(system, record_id, "drift", "reported", reason=f"only in {system}"))
    return log, {
        "only_in_poweroffice_go": sum(s == POGO for s, _ in only),
        "only_in_invoiced": sum(s == INVOICED for s, _ in only),
        "pairs_differing": int(differs.any(axis=1).sum()),
        "pairs_compared": len(pairs),
    }


def _json_value(value: Any) -> Any:
    """A value fit for JSON: pandas' gaps (NaN, NA, None) as None."""
    import pandas as pd

    return None if value is None or (not isinstance(value, (str, dict, list)) and pd.isna(value)) else value


class _References:
    """Translates reference fields (an order's customer) between the two id spaces through other flows' links."""

    def __init__(
        self, store: LinkStore, mapping: FlowMapping, pogo_vals: Iterable[Values], inv_vals: Iterable[Values]
    ) -> None:
        self.fields = [f for f in mapping.fields if f.is_reference]
        self.to_pogo: dict[str, str] = {}
        self.to_inv: dict[str, str] = {}
        pogo_vals, inv_vals = list(pogo_vals), list(inv_vals)
        for f in self.fields:
            self.to_pogo.update(store.linked_ids(f.reference_flows, INVOICED, [v.get(f.name) for v in inv_vals]))
            self.to_inv.update(store.linked_ids(f.reference_flows, POGO, [v.get(f.name) for v in pogo_vals]))

    def canonical(self, system: str, vals: Values) -> Values:
        """Values with Invoiced-side references expressed as PowerOffice Go ids (unlinked ones marked)."""
        if system == POGO or not self.fields:
            return dict(vals)
        out = dict(vals)
        for f in self.fields:
            value = vals.get(f.name)
            if value is not None:
                out[f.name] = self.to_pogo.get(value, f"{UNRESOLVED}{value}")
        return out

    def for_target(self, target: str, changes: Values) -> tuple[Values, list[str]]:
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


def _reconcile_pair(
    mapping: FlowMapping, link: Link, p: MirrorRow | None, i: MirrorRow | None, refs: _References, plan: Plan
) -> None:
    pogo_id, inv_id = link.poweroffice_go_id, link.invoiced_id
    if link.state != "active" or p is None or i is None:
        plan.settle(POGO, p.record_id if p else None)
        plan.settle(INVOICED, i.record_id if i else None)
        return
    for system, rec in ((POGO, p), (INVOICED, i)):
        if not rec.routed:
            # MAPPING.md, decision 1: a record that leaves its flow (type change, voided invoice) is reported.
            plan.note(
                "report",
                "reported",
                f"{system} record {rec.record_id} no longer belongs to flow "
                f"{mapping.flow} (its type or state changed); the pair is left as it is for a person to resolve",
                pogo_id,
                inv_id,
            )
            plan.settle(POGO, pogo_id)
            plan.settle(INVOICED, inv_id)
            return
    pv, iv = p.vals, refs.canonical(INVOICED, i.vals)
    result = merge(
        [f.name for f in mapping.fields], link.base or {}, pv, iv, winner(mapping.conflict, p.changed_at, i.changed_at)
    )
    writes = {target: dict(changes) for target, changes in result.writes.items()}
    new_base: Values = dict(result.agreed)
    conflicts = [c.as_dict() for c in result.conflicts]
    waiting = False
    for target in (INVOICED, POGO):
        changes = writes[target]
        for name in list(changes):
            if target in mapping.field(name).immutable_on:
                plan.note(
                    "report",
                    "reported",
                    f"{name} cannot change in {target} once created (now "
                    f"{changes[name]!r} in {other(target)}); resolve by hand",
                    pogo_id,
                    inv_id,
                    DIRECTION[target],
                    before=None,
                    after={name: changes[name]},
                )
                changes.pop(name)
        if not changes:
            continue
        native, waits = refs.for_target(target, changes)
        if waits:
            plan.note("wait", "waiting", "; ".join(waits), pogo_id, inv_id, DIRECTION[target])
            waiting = True
            continue
        source = pv if target == INVOICED else iv
        plan.add(
            PlanItem(
                "update",
                target,
                pogo_id,
                inv_id,
                changes=native,
                base={**new_base, **changes},
                detail={
                    "before": {k: (iv if target == INVOICED else pv).get(k) for k in changes},
                    "source": {k: source.get(k) for k in changes},
                    "conflicts": [c for c in conflicts if c["field"] in changes],
                },
            )
        )
        new_base = {}
    if new_base:
        plan.add(PlanItem("rebase", None, pogo_id, inv_id, base=new_base))
    if not waiting:
        # Cleared only once every item of this run that involves the pair is done (see LinkStore._clean).
        plan.settle(POGO, pogo_id)
        plan.settle(INVOICED, inv_id)


def _reconcile_unlinked(
    store: LinkStore,
    mapping: FlowMapping,
    rows: list[PairRow],
    refs: _References,
    plan: Plan,
    sibling_flows: tuple[str, ...],
) -> None:
    by_side: dict[str, dict[str, MirrorRow]] = {POGO: {}, INVOICED: {}}
    for row in rows:
        rec = row.poweroffice_go or row.invoiced
        if rec is not None:
            by_side[rec.system][rec.record_id] = rec
    taken: set[tuple[str, str]] = set()

    def link(pogo: MirrorRow, inv: MirrorRow, reason: str) -> None:
        taken.update({(POGO, pogo.record_id), (INVOICED, inv.record_id)})
        plan.add(PlanItem("link", None, pogo.record_id, inv.record_id, base={}, detail={"reason": reason}))
        # Merge the new pair at once, without a merge base: differing fields go by the conflict policy.
        _reconcile_pair(mapping, Link(pogo.record_id, inv.record_id, {}), pogo, inv, refs, plan)

    # 1. Records that carry the other side's id: counterparts we created before a crash lost the link.
    for system in SYSTEMS:
        for rec in by_side[system].values():
            ref = rec.external_ref
            partner = by_side[other(system)].get(ref) if ref and rec.routed else None
            if (
                partner
                and partner.routed
                and (system, rec.record_id) not in taken
                and (other(system), ref) not in taken
            ):
                pogo, inv = (rec, partner) if system == POGO else (partner, rec)
                link(pogo, inv, f"{system} record carries the id of its counterpart")
    # 2. Onboarding: equal, unique match keys on both sides.
    if mapping.match_on:
        keyed: dict[str, dict[tuple, list[MirrorRow]]] = {POGO: defaultdict(list), INVOICED: defaultdict(list)}
        for system in SYSTEMS:
            for rec in by_side[system].values():
                if (system, rec.record_id) in taken or not rec.routed:
                    continue
                key = tuple((rec.vals.get(k) or "").casefold() for k in mapping.match_on)
                if all(key):
                    keyed[system][key].append(rec)
        for key, pogos in keyed[POGO].items():
            invs = keyed[INVOICED].get(key, [])
            if len(pogos) == 1 and len(invs) == 1:
                link(pogos[0], invs[0], f"matched on {', '.join(mapping.match_on)}")
    # 3. Everything else gets a counterpart, where the mapping lets its side create.
    siblings_by_system = (
        {s: store.linked_ids(sibling_flows, s, [r for r in by_side[s] if (s, r) not in taken]) for s in SYSTEMS}
        if sibling_flows
        else {POGO: {}, INVOICED: {}}
    )
    for system in SYSTEMS:
        target = other(system)
        for rec in by_side[system].values():
            rid = rec.record_id
            if (system, rid) in taken:
                continue
            pogo_id, inv_id = (rid, None) if system == POGO else (None, rid)
            if not rec.routed:
                plan.settle(system, rid)
                continue
            if rid in siblings_by_system[system]:
                plan.note(
                    "report",
                    "reported",
                    f"{system} record {rid} is linked in another flow; its type changed. "
                    "It is not moved between flows: resolve by hand",
                    pogo_id,
                    inv_id,
                )
                plan.settle(system, rid)
                continue
            if target not in mapping.create_targets:
                plan.settle(system, rid)
                continue
            vals = refs.canonical(system, rec.vals)
            native, waits = refs.for_target(target, vals)
            if waits:
                plan.note("wait", "waiting", "; ".join(waits), pogo_id, inv_id, DIRECTION[target])
                continue
            plan.add(PlanItem("create", target, pogo_id, inv_id, changes=native, base=vals, detail={"origin": system}))


def _planned(item: PlanItem) -> LogEntry:
    return LogEntry(
        item.action,
        "planned",
        DIRECTION.get(item.target) if item.target else None,
        item.poweroffice_go_id,
        item.invoiced_id,
        "dry run",
        (item.detail or {}).get("before"),
        item.changes or item.base,
    )


def _planned_conflicts(items: list[PlanItem]) -> list[LogEntry]:
    """Dry run: the conflicts the plan's updates would settle, with the losing and the winning value."""
    return [
        LogEntry(
            "conflict",
            "planned",
            DIRECTION[it.target],
            it.poweroffice_go_id,
            it.invoiced_id,
            f"{c['field']}: {c['reason']}; {c['winner']} wins",
            {c["field"]: c["losing_value"]},
            {c["field"]: c["value"]},
        )
        for it in items
        if it.action == "update" and it.target
        for c in (it.detail or {}).get("conflicts", [])
    ]


def _apply_link_store_items(
    store: LinkStore, mapping: FlowMapping, run_id: str, items: list[PlanItem], settled: list[tuple[str, str]]
) -> None:
    batch = Completion(done_items=[it.item for it in items], settled=settled)
    for it in items:
        if it.action == "link" and it.poweroffice_go_id and it.invoiced_id:
            batch.links.append(LinkWrite(it.poweroffice_go_id, it.invoiced_id, {}))
            batch.log.append(
                LogEntry(
                    "link",
                    "ok",
                    reason=(it.detail or {})["reason"],
                    poweroffice_go_id=it.poweroffice_go_id,
                    invoiced_id=it.invoiced_id,
                )
            )
        elif it.poweroffice_go_id:
            batch.base_updates.append(BaseUpdate(it.poweroffice_go_id, it.base or {}))
    # A recovered link settles any create intent left by the attempt that created the counterpart.
    batch.intents_done = [
        (s, k.poweroffice_go_id if s == POGO else k.invoiced_id) for k in batch.links for s in SYSTEMS
    ]
    store.complete(mapping.flow, run_id, batch)
