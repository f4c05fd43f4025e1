"""The upsert step: carry out the plan against one system, with create intents, in chunks, several calls in flight."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.flow_mapping import DIRECTION, POGO, FlowMapping, other
from pogo_invoiced_sync.engine.map_step import mirror_row
from pogo_invoiced_sync.engine.progress import Progress
from pogo_invoiced_sync.engine.reconcile import _planned
from pogo_invoiced_sync.engine.entities import entity_for

CHUNK = 200
log = logging.getLogger(__name__)


def attempt_key(body: dict) -> str:
    """The idempotency key of one create attempt: a fresh random nonce plus a hash of the body it sends.

    Invoiced replays a key's first answer, errors included, for 24 h: a key reused for a corrected record would
    get the old refusal back. A key therefore names one attempt of one body; a repeat of that very request (the
    hook's retry after a lost answer) reuses it, a new attempt never does.
    """
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{uuid.uuid4().hex}-{digest}"  # 49 characters: Invoiced takes 6 to 64


def left_out_fields(mapping: FlowMapping, target: str, left_out: dict) -> list[str]:
    """Canonical names of the fields whose target paths were left out of a write."""
    return [f.name for f in mapping.fields if set(f.sides[target].paths) & set(left_out)]


class RetryableFailures(RuntimeError):
    """Some API calls failed for reasons that may pass (rate limits, outages): the task should be retried."""


def upsert(store: LinkStore, mapping: FlowMapping, target: str, hook, run_id: str, *, dry_run: bool = False,
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


def _upsert(store: LinkStore, mapping: FlowMapping, target: str, hook, run_id: str, items: list[dict],
            max_workers: int) -> dict:
    from pogo_invoiced_sync.clients.errors import PermanentApiError

    flow = mapping.flow
    counts: Counter = Counter()
    entity = entity_for(target, mapping.sides[target].entity)
    source = other(target)
    retryable: list[str] = []
    rejected: list[tuple[str, str]] = []  # (reason, origin id) of the records the target refused
    stop = threading.Event()
    causes: dict = {}  # plan item -> the API's reason of a refusal, without the request path
    handled = 0

    def run(item: dict) -> tuple[dict, dict | None, str | None, bool]:
        """Returns (item, response record, failure reason, retryable?)."""
        if stop.is_set():
            raise ConfigurationStop()
        try:
            if "_write_error" in item:
                raise item["_write_error"]
            assignments = item["_write"]
            if item["action"] == "create":
                origin = item[f"{source}_id"]
                intent = item.get("_intent")
                # An earlier attempt may have created it and lost the answer (timeout, crash): look before sending.
                found = entity.find_created(hook, origin, intent) if intent else None
                if found is not None:
                    return item, found, None, False
                return item, entity.create(hook, assignments, mapping.sides[target].create_defaults, origin,
                                           item["_key"]), None, False
            if not assignments:
                return item, None, None, False  # everything was left out: nothing to send
            meta = item.get("_meta") or {}
            return item, entity.update(hook, item[f"{target}_id"], assignments, meta), None, False
        except Exception as exc:  # noqa: BLE001 - network and rate-limit failures: record, retry the task later
            if getattr(exc, "needs_configuration", False):
                stop.set()  # the connection, not the record: stop calling, log nothing against the record
                raise
            if isinstance(exc, PermanentApiError):
                # Grouped by the API's words, not by the record's path in them, to tell one cause behind many.
                causes[item["item"]] = f"HTTP {exc.status}: {exc.message}"
                return item, None, str(exc), False
            return item, None, f"{type(exc).__name__}: {exc}", True

    def prepare(chunk: list[dict]) -> list[dict]:
        """Re-check links and write create intents for a chunk (before any of its calls); return what to call."""
        creates = [it for it in chunk if it["action"] == "create"]
        if creates:
            defaults = mapping.sides[target].create_defaults
            for it in creates:
                _split(it, None)
                it["_key"] = attempt_key({"origin": it[f"{source}_id"], "defaults": defaults, "body": it["_write"]})
            already = store.existing_links(flow, source, [it[f"{source}_id"] for it in creates])
            intents = [{"origin_system": source, "origin_id": it[f"{source}_id"], "target_system": target,
                        "idempotency_key": it["_key"]} for it in creates if it[f"{source}_id"] not in already]
            existing = store.begin_creates(flow, run_id, intents) if intents else {}
            for it in creates:
                it["_intent"] = existing.get(it[f"{source}_id"])
            skipped = [it for it in creates if it[f"{source}_id"] in already]
            chunk = [it for it in chunk if it not in skipped]
            if skipped:
                store.complete(flow, run_id, done_items=[it["item"] for it in skipped],
                               settled=[(source, it[f"{source}_id"]) for it in skipped])
                counts["already_linked"] += len(skipped)
        updates = [it for it in chunk if it["action"] == "update"]
        if updates:
            states = store.record_state(flow, target, [it[f"{target}_id"] for it in updates])
            for it in updates:
                state = states.get(it[f"{target}_id"]) or {}
                it["_meta"] = state.get("meta") or {}
                _split(it, state.get("vals") or {})
                # What the target should hold after this write: its last-seen values with our changes applied.
                it["_expected"] = {**(state.get("vals") or {}),
                                   **{k: v for k, v in it["changes"].items()
                                      if k not in left_out_fields(mapping, target, it.get("_left_out") or {})}}
        return chunk

    def _split(item: dict, current_vals: dict | None) -> None:
        """What of the item's changes the target can hold (``_write``), and what is left out, and why."""
        try:
            current = mapping.write(target, current_vals) if current_vals is not None else None
            item["_write"], item["_left_out"], item["_left_reason"] = entity.split_writable(
                mapping.write(target, item["changes"]), current)
        except (ValueError, TypeError, AttributeError) as exc:  # a value the mapping cannot write: this item fails
            item["_write"], item["_left_out"], item["_left_reason"] = {}, {}, None
            item["_write_error"] = PermanentApiError(target, None, f"cannot write the values: {exc}")

    def record(futures: list) -> None:
        """Record a chunk's outcomes; a configuration failure is raised after the chunk's other outcomes are kept."""
        nonlocal handled
        results, failure = [], None
        for future in futures:
            try:
                results.append(future.result())
            except ConfigurationStop:
                pass
            except Exception as exc:  # noqa: BLE001 - only configuration failures come out of run()
                failure = failure or exc
        handled += len(results)
        rejected.extend((causes.get(it["item"], reason), str(it[f"{source}_id"] or it[f"{target}_id"]))
                        for it, response, reason, retry in results if response is None and not retry)
        _record_results(store, mapping, target, run_id, results, counts, retryable)
        progress.add(len(results))
        if failure is not None:
            raise failure  # items not called stay in the plan: the run after the fix carries them out

    # One pool for the whole plan, and chunk k+1 already in flight while chunk k's outcomes are written:
    # the API never waits for the link store.
    with ThreadPoolExecutor(max_workers=max_workers) as pool, \
            Progress(log, f"upsert to {target}", unit="items", total=len(items)) as progress:
        in_flight: list = []
        for start in range(0, len(items), CHUNK):
            submitted = [pool.submit(run, it) for it in prepare(items[start:start + CHUNK])]
            if in_flight:
                record(in_flight)
            in_flight = submitted
        if in_flight:
            record(in_flight)
    if retryable:
        raise RetryableFailures(f"{len(retryable)} call(s) to {target} failed for reasons that may pass "
                                f"(first: {retryable[0]}); done items are recorded, a retry picks up the rest")
    mapping.rejections.check(f"upsert to {target}", handled, rejected)
    return {"target": target, **counts}


class ConfigurationStop(Exception):
    """Internal: a call not made because another call of the step hit a configuration failure."""


def _record_results(store: LinkStore, mapping: FlowMapping, target: str, run_id: str, results: list, counts: Counter,
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
        left = left_out_fields(mapping, target, item.get("_left_out") or {})
        written = {k: v for k, v in item["changes"].items() if k not in left}

        def report_left_out(pogo_id, inv_id, item=item, left=left, direction=direction) -> None:
            if left and item.get("_left_reason"):
                counts["left_out"] += 1
                log.append({"operation": "report", "outcome": "reported", "reason": item["_left_reason"],
                            "direction": direction, "poweroffice_go_id": pogo_id, "invoiced_id": inv_id,
                            "after": {k: item["changes"].get(k) for k in left}})

        if response is None and reason is None:
            # Nothing was left to send: the record is settled as it is; the left-out fields keep their base.
            report_left_out(pogo_id, inv_id)
            rebase = {k: v for k, v in (item["base"] or {}).items() if k not in left}
            if rebase:
                base_updates.append({"poweroffice_go_id": pogo_id, "base": rebase})
            done.append(item["item"])
            settled.append((source, item[f"{source}_id"]))
            counts["unchanged"] += 1
            continue
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
        report_left_out(pogo_id, inv_id)
        base = dict(item["base"] or {})
        if left and item["action"] == "create":
            # What was left out is whatever the new record holds: a later change on the origin is sent again.
            base.update({k: row["vals"].get(k) for k in left})
        elif left:
            base = {k: v for k, v in base.items() if k not in left}  # the link keeps its last synced values
        # Our own write must not come back as a change; anything else the answer shows (a concurrent edit) must,
        # also in a field we did not write: compare the whole answer with what the record should now hold.
        expected = item.get("_expected") or base
        target_vals = {k: v for k, v in row["vals"].items() if not mapping.field(k).is_reference}
        row["dirty"] = any(expected.get(k, v) != v for k, v in target_vals.items() if k in expected)
        mirror.append(row)
        done.append(item["item"])
        stamps = {f"{target}_changed_at": row["changed_at"]}
        if item["action"] == "create":
            links.append({"poweroffice_go_id": pogo_id, "invoiced_id": inv_id, "base": base, **stamps})
            intents_done.append((source, item[f"{source}_id"]))
            settled.append((source, item[f"{source}_id"]))
            counts["created"] += 1
            log.append({"operation": "create", "outcome": "ok", "direction": direction, "poweroffice_go_id": pogo_id,
                        "invoiced_id": inv_id, "after": written})
        else:
            base_updates.append({"poweroffice_go_id": pogo_id, "base": base, **stamps})
            settled.append((source, item[f"{source}_id"]))
            counts["updated"] += 1
            detail = item.get("detail") or {}
            log.append({"operation": "update", "outcome": "ok", "direction": direction, "poweroffice_go_id": pogo_id,
                        "invoiced_id": inv_id, "before": {k: v for k, v in (detail.get("before") or {}).items()
                                                          if k not in left} or None, "after": written})
            for conflict in detail.get("conflicts", []):
                counts["conflicts"] += 1
                log.append({"operation": "conflict", "outcome": "ok", "direction": direction,
                            "poweroffice_go_id": pogo_id, "invoiced_id": inv_id,
                            "reason": f"{conflict['field']}: {conflict['reason']}; {conflict['winner']} wins",
                            "before": {conflict["field"]: conflict["losing_value"]},
                            "after": {conflict["field"]: conflict["value"]}})
    store.complete(mapping.flow, run_id, links=links, base_updates=base_updates, mirror=mirror, done_items=done,
                   failed_items=failed, intents_done=intents_done, settled=settled, log=log)
