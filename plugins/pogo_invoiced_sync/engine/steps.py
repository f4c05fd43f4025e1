"""The four steps of a flow run — extract, map, reconcile, upsert — plus the run report. Free of Airflow.

State passes between steps through the link store (staging, mirror, plan); each step can be rerun on its own.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.mapping import INVOICED, POGO, SYSTEMS, Mapping, other
from pogo_invoiced_sync.engine.systems import entity_for

log = logging.getLogger(__name__)

UNRESOLVED = "?"  # prefix of a reference that has no link yet
DIRECTION = {INVOICED: "to_invoiced", POGO: "to_poweroffice_go"}
CHUNK = 200
EMPTY_LISTING_MARGIN = dt.timedelta(minutes=5)
MAX_LOOKUPS = 50  # deletion checks per run and system before a listing counts as partial


def _fingerprint(vals: dict, routed: bool, external_ref: str | None) -> str:
    raw = json.dumps([vals, routed, external_ref], sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(raw.encode()).hexdigest()


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "pogo-invoiced-sync:" + ":".join(parts)))


def mirror_row(mapping: Mapping, system: str, raw: dict) -> dict:
    """The mirror row of one raw API record: canonical values, routing, carried id, change time, fingerprint."""
    entity = entity_for(system, mapping.sides[system].entity)
    missing = _missing_paths(mapping, system, raw)
    if missing:
        # An answer that leaves a mapped field out says nothing about its value: reading it as empty would wipe it.
        raise ValueError(f"{system} record {raw.get(entity.id_field)} lacks mapped field(s) {', '.join(missing)}")
    vals = mapping.read(system, raw)
    routed = mapping.sides[system].routes(raw)
    external_ref = entity.external_ref(raw)
    paths = [p for f in mapping.fields for p in f.sides[system].paths]
    return {"system": system, "record_id": entity.record_id(raw), "vals": vals, "routed": routed,
            "external_ref": external_ref, "changed_at": entity.changed_at(raw), "meta": entity.meta(raw, paths),
            "fingerprint": _fingerprint(vals, routed, external_ref)}


def _missing_paths(mapping: Mapping, system: str, raw: dict) -> list[str]:
    """Mapped paths absent from ``raw`` (a null parent object counts as present: all its fields are empty).

    Of a ``first_of`` field only the first path must be present; the others are fallbacks. Routing keys are not
    checked: an absent one reads as false by design (Invoiced shows no ``voided`` key on invoices).
    """
    wanted: list[str] = []
    for f in mapping.fields:
        side = f.sides[system]
        wanted += side.paths[:1] if side.kind == "first_of" else side.paths
    missing = []
    for path in wanted:
        node: Any = raw
        for part in path.split("."):
            if node is None:
                break
            if not isinstance(node, dict) or part not in node:
                missing.append(path)
                break
            node = node[part]
    return missing


def _stamp(entity, raw: dict) -> dt.datetime | None:
    """The filter time of a record that may be malformed (None when unreadable)."""
    try:
        return entity.filter_time(raw)
    except (ValueError, TypeError, OverflowError):
        return None


def _hold(cursor: dt.datetime | None, bad: list[dt.datetime]) -> dt.datetime | None:
    """The cursor kept just before the earliest unreadable record, so that the next run lists it again."""
    if cursor is None or not bad:
        return cursor
    return min(cursor, min(bad) - dt.timedelta(microseconds=1))


# -- extract --------------------------------------------------------------------------------------------------

def extract(store: LinkStore, mapping: Mapping, system: str, hook, run_id: str, *, full_refresh: bool = False,
            since_override: dt.datetime | None = None) -> dict:
    """List ``system``'s records changed since the cursor (or all of them) into the run's staging table."""
    side = mapping.sides[system]
    entity = entity_for(system, side.entity)
    full_scan = full_refresh or side.change_detection == "full_scan"
    since = None
    if not full_scan:
        cursor = store.cursor(mapping.flow, system)
        since = since_override if since_override is not None else cursor
        if since is not None:
            since = since - dt.timedelta(seconds=side.overlap_seconds)
    newest: list[dt.datetime] = []
    calls_before = _calls(hook)
    # An empty first listing still moves the cursor, so the next run does not list everything again (our own
    # creates included); the margin covers clock skew between this machine and the API.
    empty_start = dt.datetime.now(dt.timezone.utc) - EMPTY_LISTING_MARGIN if since is None else None
    unreadable: list[dict] = []
    held: list[dt.datetime] = []

    def pages():
        for page in entity.list(hook, since, side.list_params):
            rows = []
            for raw in page:
                try:
                    rows.append((entity.record_id(raw), raw))
                except ValueError as exc:
                    # Not silently skipped: the sync log says so, and the cursor stays before it for the next run.
                    log.warning("skipping malformed %s record: %s", system, exc)
                    unreadable.append({"operation": "reject", "outcome": "failed",
                                       "reason": f"unreadable {system} record{_describe(raw)}: {exc}"})
                    stamp = _stamp(entity, raw)
                    if stamp:
                        held.append(stamp)
                    continue
                stamp = entity.filter_time(raw)
                if stamp and (not newest or stamp > newest[0]):
                    newest[:] = [stamp]
            yield rows

    count = store.write_staging(mapping.flow, run_id, system, pages(), full_scan, since,
                                lambda: _hold(newest[0] if newest else None if held else empty_start, held),
                                lambda: _calls(hook) - calls_before)
    if unreadable:
        store.log(mapping.flow, run_id, unreadable)
    result = {"system": system, "records": count, "full_scan": full_scan, "since": since.isoformat() if since else None}
    if full_scan:
        result["confirmed_gone"] = _confirm_missing(store, mapping, system, entity, hook, run_id)
    return result


def _confirm_missing(store: LinkStore, mapping: Mapping, system: str, entity, hook, run_id: str) -> int:
    """MAPPING.md, decision 8: absence from a list is not a deletion; a lookup confirms it, the link records it.

    A listing that misses many linked records at once is more likely a partial answer than mass deletion:
    then nothing is looked up or recorded, and the run says so.
    """
    missing = store.missing_linked(mapping.flow, run_id, system)
    if not missing:
        return 0
    links = store.count_links(mapping.flow)
    if len(missing) > max(MAX_LOOKUPS, links * 0.2):
        store.log(mapping.flow, run_id, [{"operation": "report", "outcome": "reported",
                                          "reason": f"{len(missing)} of {links} linked {system} records are missing from "
                                                    "a full listing; treated as a partial answer, nothing marked deleted"}])
        return 0
    gone = [record_id for record_id in missing if entity.get(hook, record_id) is None]
    if gone:
        reason = (f"no longer found in {system} (deleted, or for a sales order: invoiced); "
                  "recorded on the link, not propagated")
        store.mark_gone(mapping.flow, run_id, system, gone, reason)
    return len(gone)


def _describe(raw: dict) -> str:
    """A hint to find a record that has no id: its name or number, if it has one."""
    for key in ("name", "Name", "number", "Number", "ExternalImportReference"):
        if raw.get(key) not in (None, ""):
            return f" ({key} {raw[key]!r})"
    return ""


def _calls(hook) -> int:
    return int(hook.stats.get("calls_total", 0))


# -- map ------------------------------------------------------------------------------------------------------

def map_records(store: LinkStore, mapping: Mapping, system: str, run_id: str) -> dict:
    """Turn staged payloads into canonical mirror rows; changed ones become dirty; then advance the cursor."""
    info = store.extract_info(mapping.flow, run_id, system)
    if info is None:
        raise RuntimeError(f"no extract of {system} for run {run_id}: run the extract task first")
    seen = changed = rejected = 0
    bad: list[dict] = []
    held: list[dt.datetime] = []
    entity = entity_for(system, mapping.sides[system].entity)
    with store.flow_lock(mapping.flow):
        for chunk in store.iter_staging(mapping.flow, run_id, system):
            rows = []
            for raw in chunk:
                try:
                    rows.append(mirror_row(mapping, system, raw))
                except (ValueError, TypeError) as exc:
                    rejected += 1
                    bad.append({"operation": "reject", "outcome": "failed", "reason": f"unreadable {system} record: {exc}",
                                f"{system}_id": str(raw.get("Id") or raw.get("id") or "")})
                    stamp = _stamp(entity, raw)
                    if stamp:
                        held.append(stamp)
            seen += len(rows)
            changed += store.merge_records(mapping.flow, system, run_id, rows)
        if bad:
            store.log(mapping.flow, run_id, bad)
        store.set_changed(mapping.flow, run_id, system, changed)
        if not info["full_scan"] or info["max_changed_at"] is not None:
            # An unreadable record is read again by the next run (an answer missing fields may be a passing fault).
            store.advance_cursor(mapping.flow, system, _hold(info["max_changed_at"], held))
    return {"system": system, "seen": seen, "changed": changed, "unreadable": rejected}


# -- reconcile ------------------------------------------------------------------------------------------------

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


def reconcile(store: LinkStore, mapping: Mapping, run_id: str, sibling_flows: tuple[str, ...] = (), *,
              dry_run: bool = False, allow_mass_changes: bool = False, full_refresh: bool = False) -> dict:
    """Compare the dirty records with their links and merge bases; write the plan of creates and updates.

    Link-store-only decisions (recovered links, converged merge bases) are applied here, unless ``dry_run``.
    Raises :class:`ChangeGuardTripped` before writing anything when the plan trips the mapping's guard.
    On ``full_refresh`` it also writes the drift report: records on one side only, and linked pairs that differ.
    """
    with store.flow_lock(mapping.flow):
        rows = list(store.dirty_pairs(mapping.flow))
        plan = _Plan()
        refs = _References(store, mapping, rows)
        for row in rows:
            if row["link"] is not None:
                _reconcile_pair(mapping, row, refs, plan)
        _reconcile_unlinked(store, mapping, [r for r in rows if r["link"] is None], refs, plan, sibling_flows)
        if not allow_mass_changes:
            _check_guard(store, mapping, run_id, plan)
        store.replace_plan(mapping.flow, run_id, plan.items, plan.settled, plan.log)
        drift = _drift_report(store, mapping, run_id) if full_refresh else None
        local = store.plan_items(mapping.flow, run_id, None)
        if dry_run:
            store.log(mapping.flow, run_id, [_planned(it) for it in local])
            store.mark_planned(mapping.flow, run_id, None)
        else:
            _apply_link_store_items(store, mapping, run_id, local, plan.settled)
    return {"dirty": len(rows), **dict(plan.counts), **({"drift": drift} if drift else {})}


def _check_guard(store: LinkStore, mapping: Mapping, run_id: str, plan: _Plan) -> None:
    links = store.count_links(mapping.flow)
    for target in SYSTEMS:
        updates = plan.counts.get(f"update:{target}", 0)
        if mapping.guard.tripped(updates, links):
            message = (f"change guard: this run would update {updates} of {links} linked records in {target} "
                       f"(limits: {mapping.guard.max_updates} records, or {mapping.guard.max_fraction:.0%} of the links "
                       f"above {mapping.guard.min_updates}). Nothing was written. If an API answered with wrong or "
                       "partial data, wait for it to recover; if the changes are real, trigger a run with "
                       "allow_mass_changes=true.")
            store.log(mapping.flow, run_id, [{"operation": "guard", "outcome": "failed", "reason": message,
                                              "direction": DIRECTION[target]}])
            # What this run read must not stay behind as pending changes: the next run reads it again.
            store.rewind_cursors(mapping.flow, run_id)
            raise ChangeGuardTripped(message)


def _drift_report(store: LinkStore, mapping: Mapping, run_id: str) -> dict:
    """Compare every linked pair field by field (pandas) and list the records that exist on one side only."""
    columns = [f.name for f in mapping.fields]
    pairs = list(store.linked_pairs(mapping.flow))
    refs = _References(store, mapping, [{POGO: None, INVOICED: {"vals": i}} for _, _, _, i in pairs])
    pogo = pd.DataFrame([p for _, _, p, _ in pairs], columns=columns)
    inv = pd.DataFrame([refs.canonical(INVOICED, i) for _, _, _, i in pairs], columns=columns)
    differs = pogo.ne(inv) & ~(pogo.isna() & inv.isna())
    log = []
    for row in differs.index[differs.any(axis=1)]:
        fields = [c for c in columns if differs.at[row, c]]
        pogo_id, inv_id = pairs[row][0], pairs[row][1]
        log.append({"operation": "drift", "outcome": "reported", "poweroffice_go_id": pogo_id, "invoiced_id": inv_id,
                    "reason": f"fields differ: {', '.join(fields)}",
                    "before": {c: pogo.at[row, c] for c in fields}, "after": {c: inv.at[row, c] for c in fields}})
    only = store.unlinked_records(mapping.flow)
    for system, record_id in only:
        log.append({"operation": "drift", "outcome": "reported", f"{system}_id": record_id,
                    "reason": f"only in {system}"})
    store.log(mapping.flow, run_id, log)
    return {"only_in_poweroffice_go": sum(s == POGO for s, _ in only),
            "only_in_invoiced": sum(s == INVOICED for s, _ in only),
            "pairs_differing": int(differs.any(axis=1).sum()), "pairs_compared": len(pairs)}


class _References:
    """Translates reference fields (an order's customer) between the two id spaces through other flows' links."""

    def __init__(self, store: LinkStore, mapping: Mapping, rows: list[dict]) -> None:
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


def _reconcile_pair(mapping: Mapping, row: dict, refs: _References, plan: _Plan) -> None:
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
    base = link["base"] or {}
    pv, iv = p["vals"], refs.canonical(INVOICED, i["vals"])
    writes: dict[str, dict] = {POGO: {}, INVOICED: {}}
    new_base: dict[str, Any] = {}
    conflicts = []
    for f in mapping.fields:
        name = f.name
        a, b = pv.get(name), iv.get(name)
        if a == b:
            if base.get(name, object()) != a:
                new_base[name] = a
            continue
        has_base = name in base
        p_changed, i_changed = (not has_base or a != base[name]), (not has_base or b != base[name])
        if p_changed and not i_changed:
            writes[INVOICED][name] = a
        elif i_changed and not p_changed:
            writes[POGO][name] = b
        else:
            winner = _winner(mapping, p, i)
            value, lost = (a, b) if winner == POGO else (b, a)
            writes[other(winner)][name] = value
            conflicts.append({"field": name, "winner": winner, "value": value, "losing_value": lost,
                              "reason": "both sides changed since the last sync" if has_base else "no merge base yet"})
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


def _winner(mapping: Mapping, p: dict, i: dict) -> str:
    """MAPPING.md, decision 7: the configured system, else the most recent change (PowerOffice Go on a tie)."""
    if mapping.conflict in SYSTEMS:
        return mapping.conflict
    tp, ti = p["changed_at"], i["changed_at"]
    if tp is None or ti is None:
        return POGO if ti is None else INVOICED
    return INVOICED if ti > tp else POGO


def _reconcile_unlinked(store: LinkStore, mapping: Mapping, rows: list[dict], refs: _References, plan: _Plan,
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


# -- upsert ---------------------------------------------------------------------------------------------------

class RetryableFailures(RuntimeError):
    """Some API calls failed for reasons that may pass (rate limits, outages): the task should be retried."""


def upsert(store: LinkStore, mapping: Mapping, target: str, hook, run_id: str, *, dry_run: bool = False,
           max_workers: int = 4) -> dict:
    """Carry out the plan's API items for ``target``; record every outcome."""
    flow = mapping.flow
    items = store.plan_items(flow, run_id, target)
    if dry_run:
        store.log(flow, run_id, [_planned(it) for it in items])
        store.mark_planned(flow, run_id, target)
        return {"target": target, "planned": len(items)}
    # One upsert per flow and target at a time: a concurrent run waits, then finds the links this one wrote.
    with store.flow_lock(f"{flow}/upsert/{target}"):
        return _upsert(store, mapping, target, hook, run_id, items, max_workers)


def _upsert(store: LinkStore, mapping: Mapping, target: str, hook, run_id: str, items: list[dict],
            max_workers: int) -> dict:
    from pogo_invoiced_sync.hooks.common import PermanentApiError

    flow = mapping.flow
    counts: Counter = Counter()
    entity = entity_for(target, mapping.sides[target].entity)
    source = other(target)
    retryable: list[str] = []

    def run(item: dict) -> tuple[dict, dict | None, str | None, bool]:
        """Returns (item, response record, failure reason, retryable?)."""
        try:
            assignments = mapping.write(target, item["changes"])
            if item["action"] == "create":
                origin = item[f"{source}_id"]
                intent = item.get("_intent")
                found = entity.find_created(hook, origin, intent) if intent else None
                if found is not None:
                    return item, found, None, False
                # An earlier attempt's key may be bound to a stored failure (Invoiced replays a key's first answer
                # for 24 h): after the lookup found nothing, a new attempt gets a new key.
                key = str(uuid.uuid4()) if intent else item["_key"]
                return item, entity.create(hook, assignments, mapping.sides[target].create_defaults, origin, key), None, False
            meta = item.get("_meta") or {}
            return item, entity.update(hook, item[f"{target}_id"], assignments, meta), None, False
        except PermanentApiError as exc:
            return item, None, str(exc), False
        except Exception as exc:  # noqa: BLE001 - network and rate-limit failures: record, retry the task later
            return item, None, f"{type(exc).__name__}: {exc}", True

    def prepare(chunk: list[dict]) -> list[dict]:
        """Re-check links and write create intents for a chunk (before any of its calls); return what to call."""
        creates = [it for it in chunk if it["action"] == "create"]
        if creates:
            already = store.existing_links(flow, source, [it[f"{source}_id"] for it in creates])
            intents = [{"origin_system": source, "origin_id": it[f"{source}_id"], "target_system": target,
                        "idempotency_key": _uuid(flow, source, it[f"{source}_id"])} for it in creates
                       if it[f"{source}_id"] not in already]
            existing = store.begin_creates(flow, run_id, intents) if intents else {}
            for it in creates:
                it["_key"] = _uuid(flow, source, it[f"{source}_id"])
                it["_intent"] = existing.get(it[f"{source}_id"])
            skipped = [it for it in creates if it[f"{source}_id"] in already]
            chunk = [it for it in chunk if it not in skipped]
            if skipped:
                store.complete(flow, run_id, done_items=[it["item"] for it in skipped],
                               settled=[(source, it[f"{source}_id"]) for it in skipped])
                counts["already_linked"] += len(skipped)
        updates = [it for it in chunk if it["action"] == "update"]
        if updates:
            metas = store.record_meta(flow, target, [it[f"{target}_id"] for it in updates])
            for it in updates:
                it["_meta"] = metas.get(it[f"{target}_id"], {})
        return chunk

    # One pool for the whole plan, and chunk k+1 already in flight while chunk k's outcomes are written:
    # the API never waits for the link store.
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        in_flight: list = []
        for start in range(0, len(items), CHUNK):
            submitted = [pool.submit(run, it) for it in prepare(items[start:start + CHUNK])]
            if in_flight:
                _record_results(store, mapping, target, run_id, [f.result() for f in in_flight], counts, retryable)
            in_flight = submitted
        if in_flight:
            _record_results(store, mapping, target, run_id, [f.result() for f in in_flight], counts, retryable)
    if retryable:
        raise RetryableFailures(f"{len(retryable)} call(s) to {target} failed for reasons that may pass "
                                f"(first: {retryable[0]}); done items are recorded, a retry picks up the rest")
    return {"target": target, **counts}


def _planned(item: dict) -> dict:
    return {"operation": item["action"], "outcome": "planned", "direction": DIRECTION.get(item["target"]),
            "poweroffice_go_id": item["poweroffice_go_id"], "invoiced_id": item["invoiced_id"],
            "reason": "dry run", "before": (item.get("detail") or {}).get("before"), "after": item["changes"] or item["base"]}


def _apply_link_store_items(store: LinkStore, mapping: Mapping, run_id: str, items: list[dict],
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


def _record_results(store: LinkStore, mapping: Mapping, target: str, run_id: str, results: list, counts: Counter,
                    retryable: list[str]) -> None:
    source = other(target)
    links, base_updates, mirror, done, failed, intents_done, settled, log = [], [], [], [], [], [], [], []
    # A create may answer with an existing record that carries the origin's reference (found after a unique-key
    # refusal, or by an earlier attempt's intent). One linked to another record already, or routed to another flow,
    # was put there by hand: linking it would silently take over a pair or move a record between flows.
    id_field = entity_for(target, mapping.sides[target].entity).id_field
    answered = [str(r[id_field]) for it, r, _reason, _retry in results
                if it["action"] == "create" and isinstance(r, dict) and r.get(id_field) not in (None, "")]
    linked_to = store.linked_ids([mapping.flow], target, answered) if answered else {}
    for item, response, reason, is_retryable in results:
        direction = DIRECTION[target]
        pogo_id, inv_id = item["poweroffice_go_id"], item["invoiced_id"]
        if response is None:
            failed.append(item["item"])
            counts["failed"] += 1
            if is_retryable:
                retryable.append(reason)
            elif item["action"] == "create":
                intents_done.append((source, item[f"{source}_id"]))  # refused: nothing was created
            log.append({"operation": item["action"], "outcome": "failed", "reason": reason, "direction": direction,
                        "poweroffice_go_id": pogo_id, "invoiced_id": inv_id, "after": item["changes"]})
            continue
        try:
            row = mirror_row(mapping, target, response)
        except (ValueError, TypeError) as exc:
            failed.append(item["item"])
            counts["failed"] += 1
            log.append({"operation": item["action"], "outcome": "failed", "direction": direction,
                        "reason": f"unreadable answer from {target}: {exc}", "poweroffice_go_id": pogo_id,
                        "invoiced_id": inv_id})
            continue
        new_id = row["record_id"]
        holder = linked_to.get(new_id)
        if item["action"] == "create" and ((holder is not None and holder != item[f"{source}_id"]) or not row["routed"]):
            failed.append(item["item"])
            counts["failed"] += 1
            why = (f"is already linked to {source} record {holder}" if holder is not None and holder != item[f"{source}_id"]
                   else f"does not belong to flow {mapping.flow} (its type or state)")
            log.append({"operation": "create", "outcome": "failed", "direction": direction,
                        "poweroffice_go_id": pogo_id, "invoiced_id": inv_id, "after": item["changes"],
                        "reason": f"{target} already has record {new_id} carrying this record's reference (a unique "
                                  f"key), and it {why}; nothing was created or linked: resolve by hand"})
            continue
        if target == POGO:
            pogo_id = new_id
        else:
            inv_id = new_id
        base = item["base"] or {}
        # Our own write must not come back as a change; anything else the answer shows (a concurrent edit) must.
        target_vals = {k: v for k, v in row["vals"].items() if not mapping.field(k).is_reference}
        row["dirty"] = any(base.get(k, v) != v for k, v in target_vals.items() if k in base)
        mirror.append(row)
        done.append(item["item"])
        stamps = {f"{target}_changed_at": row["changed_at"]}
        if item["action"] == "create":
            links.append({"poweroffice_go_id": pogo_id, "invoiced_id": inv_id, "base": base, **stamps})
            intents_done.append((source, item[f"{source}_id"]))
            settled.append((source, item[f"{source}_id"]))
            counts["created"] += 1
            log.append({"operation": "create", "outcome": "ok", "direction": direction, "poweroffice_go_id": pogo_id,
                        "invoiced_id": inv_id, "after": item["changes"]})
        else:
            base_updates.append({"poweroffice_go_id": pogo_id, "base": base, **stamps})
            settled.append((source, item[f"{source}_id"]))
            counts["updated"] += 1
            detail = item.get("detail") or {}
            log.append({"operation": "update", "outcome": "ok", "direction": direction, "poweroffice_go_id": pogo_id,
                        "invoiced_id": inv_id, "before": detail.get("before"), "after": item["changes"]})
            for conflict in detail.get("conflicts", []):
                counts["conflicts"] += 1
                log.append({"operation": "conflict", "outcome": "ok", "direction": direction,
                            "poweroffice_go_id": pogo_id, "invoiced_id": inv_id,
                            "reason": f"{conflict['field']}: {conflict['reason']}; {conflict['winner']} wins",
                            "before": {conflict["field"]: conflict["losing_value"]},
                            "after": {conflict["field"]: conflict["value"]}})
    store.complete(mapping.flow, run_id, links=links, base_updates=base_updates, mirror=mirror, done_items=done,
                   failed_items=failed, intents_done=intents_done, settled=settled, log=log)


# -- report ---------------------------------------------------------------------------------------------------

def summarise(store: LinkStore, mapping: Mapping, run_id: str) -> dict:
    """Per-direction counts of the run — created, updated, conflicts, rejected, waiting — stored as its report."""
    summary: dict[str, dict[str, int]] = {}
    labels = {("create", "ok"): "created", ("update", "ok"): "updated", ("conflict", "ok"): "conflicts",
              ("wait", "waiting"): "waiting", ("report", "reported"): "reported", ("link", "ok"): "linked",
              ("drift", "reported"): "drift", ("delete_detected", "reported"): "confirmed_gone",
              ("guard", "failed"): "guard_tripped"}
    for direction, operation, outcome, count in store.run_counts(mapping.flow, run_id):
        label = labels.get((operation, outcome))
        if outcome == "failed" and operation != "guard":
            label = "rejected"
        elif outcome == "planned":
            label = f"planned_{operation}"
        if label:
            bucket = summary.setdefault(direction or "both", {})
            bucket[label] = bucket.get(label, 0) + int(count)
    extracts = {s: store.extract_info(mapping.flow, run_id, s) for s in SYSTEMS}
    result = {"flow": mapping.flow, "run_id": run_id, "by_direction": summary,
              "extracted": {s: (e or {}).get("row_count", 0) for s, e in extracts.items()},
              "unchanged": {s: max(0, (e or {}).get("row_count", 0) - ((e or {}).get("changed") or 0))
                            for s, e in extracts.items()}}
    store.finish_run(mapping.flow, run_id, result)
    store.drop_staging(mapping.flow, run_id)
    return result
