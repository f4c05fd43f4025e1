"""Experimental engine variants, patched in by ``bench/sync_phase.py`` when ``BENCH_UPSERT`` names some (comma list).

They exist to put numbers on a recommended engine change before anyone makes it; the engine itself is untouched.

``pipelined``: ``steps.upsert`` with one thread pool for the whole run instead of one per 200-item chunk, and the
next chunk's calls submitted before the previous chunk's results are recorded. The pool never drains at a chunk
boundary and the link-store work of a chunk (intents, results) overlaps the next chunk's API calls. Decisions,
intents, idempotency keys and the recording of outcomes are those of ``steps.upsert`` (same helpers).

``setclean``: ``LinkStore._clean`` as one set-based statement per system (``record_id = ANY(%s)`` and a plain
``p.<system>_id = r.record_id`` in the NOT EXISTS) instead of ``executemany`` of one UPDATE per record whose NOT
EXISTS compares through a CASE. The CASE keeps PostgreSQL from using anything but the (flow, run_id) prefix of
the plan's key, so each settled record scans (or hashes) every plan row of the run: O(settled × plan) per run.
Plus two partial indexes, as a migration would add them: ``plan (flow, run_id, <system>_id) WHERE status <> 'done'``,
and ``ANALYZE`` of plan and records once per run (first clean): without statistics of the freshly written plan the
planner still chose a nested-loop anti join (measured at N=100,000: minutes in one statement). Same rows updated,
same condition.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.mapping import other
from pogo_invoiced_sync.engine.systems import entity_for


def upsert_pipelined(store, mapping, target, hook, run_id, *, dry_run=False, max_workers=4) -> dict:
    from pogo_invoiced_sync.hooks.common import PermanentApiError

    if dry_run:
        return steps.upsert(store, mapping, target, hook, run_id, dry_run=True, max_workers=max_workers)
    flow = mapping.flow
    items = store.plan_items(flow, run_id, target)
    counts: Counter = Counter()
    entity = entity_for(target, mapping.sides[target].entity)
    source = other(target)
    retryable: list[str] = []

    def run(item: dict):
        try:
            assignments = mapping.write(target, item["changes"])
            if item["action"] == "create":
                origin = item[f"{source}_id"]
                intent = item.get("_intent")
                found = entity.find_created(hook, origin, intent) if intent else None
                if found is not None:
                    return item, found, None, False
                key = intent["idempotency_key"] if intent else item["_key"]
                return item, entity.create(hook, assignments, mapping.sides[target].create_defaults, origin, key), None, False
            return item, entity.update(hook, item[f"{target}_id"], assignments, item.get("_meta") or {}), None, False
        except PermanentApiError as exc:
            return item, None, str(exc), False
        except Exception as exc:  # noqa: BLE001
            return item, None, f"{type(exc).__name__}: {exc}", True

    def prepare(chunk: list[dict]) -> list[dict]:
        creates = [it for it in chunk if it["action"] == "create"]
        if creates:
            already = store.existing_links(flow, source, [it[f"{source}_id"] for it in creates])
            intents = [{"origin_system": source, "origin_id": it[f"{source}_id"], "target_system": target,
                        "idempotency_key": steps._uuid(flow, source, it[f"{source}_id"])} for it in creates
                       if it[f"{source}_id"] not in already]
            existing = store.begin_creates(flow, run_id, intents) if intents else {}
            for it in creates:
                it["_key"] = steps._uuid(flow, source, it[f"{source}_id"])
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

    pending = None
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for start in range(0, len(items), steps.CHUNK):
            futures = [pool.submit(run, it) for it in prepare(items[start:start + steps.CHUNK])]
            if pending is not None:
                steps._record_results(store, mapping, target, run_id, [f.result() for f in pending], counts, retryable)
            pending = futures
        if pending is not None:
            steps._record_results(store, mapping, target, run_id, [f.result() for f in pending], counts, retryable)
    if retryable:
        raise steps.RetryableFailures(f"{len(retryable)} call(s) to {target} failed (first: {retryable[0]})")
    return {"target": target, **counts}


_INDEXED: set[str] = set()
_ANALYZED: set[tuple] = set()


def _clean_set_based(self, cur, flow: str, run_id: str, records: list[tuple[str, str]]) -> None:
    if self.schema not in _INDEXED:
        for column in ("poweroffice_go_id", "invoiced_id"):
            cur.execute(self.q(f"CREATE INDEX IF NOT EXISTS plan_open_{column} ON {{s}}.plan (flow, run_id, {column}) "
                               "WHERE status <> 'done'"))
        _INDEXED.add(self.schema)
    if (self.schema, flow, run_id) not in _ANALYZED:
        # The plan was just written (in this transaction, for replace_plan) and the mirror by the map step: without
        # statistics the planner picks a nested-loop anti join over all of the run's plan rows for every record.
        cur.execute(self.q("ANALYZE {s}.plan"))
        cur.execute(self.q("ANALYZE {s}.records"))
        _ANALYZED.add((self.schema, flow, run_id))
    for system, column in (("poweroffice_go", "poweroffice_go_id"), ("invoiced", "invoiced_id")):
        ids = [record_id for s, record_id in records if s == system]
        if ids:
            cur.execute(self.q(
                "UPDATE {s}.records r SET dirty = false WHERE r.flow = %s AND r.system = %s AND r.record_id = ANY(%s) "
                "AND NOT EXISTS (SELECT 1 FROM {s}.plan p WHERE p.flow = r.flow AND p.run_id = %s "
                f"AND p.status <> 'done' AND p.{column} = r.record_id)"), (flow, system, ids, run_id))


def _use_set_clean() -> None:
    from pogo_invoiced_sync.engine.link_store import LinkStore

    LinkStore._clean = _clean_set_based


def _use_pipelined() -> None:
    steps.upsert = upsert_pipelined


VARIANTS = {"pipelined": _use_pipelined, "setclean": _use_set_clean}


def apply(names: str | None) -> None:
    """Apply the named variants, comma-separated (None or empty: the engine as it is)."""
    for name in filter(None, (names or "").split(",")):
        VARIANTS[name.strip()]()
