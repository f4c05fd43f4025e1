"""The upsert step: carry out the plan against one system, with create intents, in chunks, several calls in flight."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from pogo_invoiced_sync.engine.entities import entity_for
from pogo_invoiced_sync.engine.flow_mapping import DIRECTION, POGO, FlowMapping, other
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.map_step import mirror_row
from pogo_invoiced_sync.engine.model import BaseUpdate, Completion, LinkWrite, LogEntry, PlanItem, Work
from pogo_invoiced_sync.engine.progress import Progress
from pogo_invoiced_sync.engine.reconcile import _planned

CHUNK = 200
log = logging.getLogger(__name__)


class Outcome(NamedTuple):
    """What one API call of the upsert step came to."""

    work: Work
    response: dict | None  # the record the target answered with (None: no call, or it failed)
    reason: str | None  # why it failed
    retryable: bool


def attempt_key(body: dict) -> str:
    """The idempotency key of one create attempt: a fresh random nonce plus a hash of the body it sends.

    Invoiced replays a key's first answer, errors included, for 24 h: a key reused for a corrected record would
    get the old refusal back. A key therefore names one attempt of one body; a repeat of that very request (the
    client's retry after a lost answer) reuses it, a new attempt never does.
    """
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{uuid.uuid4().hex}-{digest}"  # 49 characters: Invoiced takes 6 to 64


def left_out_fields(mapping: FlowMapping, target: str, left_out: dict) -> list[str]:
    """Canonical names of the fields whose target paths were left out of a write."""
    return [f.name for f in mapping.fields if set(f.sides[target].paths) & set(left_out)]


class RetryableFailures(RuntimeError):
    """Some API calls failed for reasons that may pass (rate limits, outages): the task should be retried."""


def upsert(
    store: LinkStore,
    mapping: FlowMapping,
    target: str,
    client,
    run_id: str,
    *,
    dry_run: bool = False,
    max_workers: int = 4,
) -> dict:
    """Carry out the plan's API items for ``target``; record every outcome."""
    flow = mapping.flow
    items = store.plan_items(flow, run_id, target)
    if dry_run:
        store.log(flow, run_id, [_planned(it) for it in items])
        store.mark_planned(flow, run_id, target)
        return {"target": target, "planned": len(items)}
    # One upsert per flow and target at a time: a concurrent run waits, then finds the links this one wrote.
    with store.flow_lock(f"{flow}/upsert/{target}"):
        return _upsert(store, mapping, target, client, run_id, items, max_workers)


def _upsert(
    store: LinkStore, mapping: FlowMapping, target: str, client, run_id: str, items: list[PlanItem], max_workers: int
) -> dict:
    from pogo_invoiced_sync.clients.errors import PermanentApiError

    flow = mapping.flow
    counts: Counter[str] = Counter()
    entity = entity_for(target, mapping.sides[target].entity)
    source = other(target)
    retryable: list[str] = []
    # (reason, origin id) of the records the target refused
    rejected: list[tuple[Any, str]] = []
    stop = threading.Event()
    causes: dict[int, str] = {}  # plan item -> the API's reason of a refusal, without the request path
    handled = 0

    def run(work: Work) -> Outcome:
        if stop.is_set():
            raise ConfigurationStop()
        item = work.item
        try:
            if work.write_error is not None:
                raise work.write_error
            if item.action == "create":
                origin = item.known_id(source)
                # An earlier attempt may have created it and lost the answer (timeout, crash): look before sending.
                found = entity.find_created(client, origin, work.intent) if work.intent else None
                if found is not None:
                    return Outcome(work, found, None, False)
                return Outcome(
                    work,
                    entity.create(client, work.write, mapping.sides[target].create_defaults, origin, work.key),
                    None,
                    False,
                )
            if not work.write:
                return Outcome(work, None, None, False)  # everything was left out: nothing to send
            return Outcome(work, entity.update(client, item.known_id(target), work.write, work.meta), None, False)
        except Exception as exc:  # network and rate-limit failures: record, retry the task later
            if getattr(exc, "needs_configuration", False):
                stop.set()  # the connection, not the record: stop calling, log nothing against the record
                raise
            if isinstance(exc, PermanentApiError):
                # Grouped by the API's words, not by the record's path in them, to tell one cause behind many.
                causes[item.item] = f"HTTP {exc.status}: {exc.message}"
                return Outcome(work, None, str(exc), False)
            return Outcome(work, None, f"{type(exc).__name__}: {exc}", True)

    def prepare(chunk: list[PlanItem]) -> list[Work]:
        """Re-check links and write create intents for a chunk (before any of its calls); return what to call."""
        works = [Work(it) for it in chunk]
        creates = [w for w in works if w.item.action == "create"]
        if creates:
            defaults = mapping.sides[target].create_defaults
            for w in creates:
                _split(w, None)
                w.key = attempt_key({"origin": w.item.id_of(source), "defaults": defaults, "body": w.write})
            already = store.existing_links(flow, source, [origin for w in creates if (origin := w.item.id_of(source))])
            intents = [
                {
                    "origin_system": source,
                    "origin_id": w.item.id_of(source),
                    "target_system": target,
                    "idempotency_key": w.key,
                }
                for w in creates
                if w.item.id_of(source) not in already
            ]
            existing = store.begin_creates(flow, run_id, intents) if intents else {}
            for w in creates:
                w.intent = existing.get(w.item.id_of(source) or "")
            skipped = [w for w in creates if w.item.id_of(source) in already]
            works = [w for w in works if w not in skipped]
            if skipped:
                store.complete(
                    flow,
                    run_id,
                    Completion(
                        done_items=[w.item.item for w in skipped],
                        settled=[(source, w.item.id_of(source) or "") for w in skipped],
                    ),
                )
                counts["already_linked"] += len(skipped)
        updates = [w for w in works if w.item.action == "update"]
        if updates:
            states = store.record_state(
                flow, target, [target_id for w in updates if (target_id := w.item.id_of(target))]
            )
            for w in updates:
                state = states.get(w.item.id_of(target) or "") or {}
                w.meta = state.get("meta") or {}
                _split(w, state.get("vals") or {})
                # What the target should hold after this write: its last-seen values with our changes applied.
                left = left_out_fields(mapping, target, w.left_out)
                w.expected = {**(state.get("vals") or {}), **{k: v for k, v in w.item.changes.items() if k not in left}}
        return works

    def _split(work: Work, current_vals: dict | None) -> None:
        """What of the item's changes the target can hold (``write``), and what is left out, and why."""
        try:
            current = mapping.write(target, current_vals) if current_vals is not None else None
            work.write, work.left_out, work.left_reason = entity.split_writable(
                mapping.write(target, work.item.changes), current
            )
        except (ValueError, TypeError, AttributeError) as exc:  # a value the mapping cannot write: this item fails
            work.write, work.left_out, work.left_reason = {}, {}, None
            work.write_error = PermanentApiError(target, None, f"cannot write the values: {exc}")

    def record(futures: list[Future[Outcome]]) -> None:
        """Record a chunk's outcomes; a configuration failure is raised after the chunk's other outcomes are kept."""
        nonlocal handled
        results: list[Outcome] = []
        failure: Exception | None = None
        for future in futures:
            try:
                results.append(future.result())
            except ConfigurationStop:
                pass
            except Exception as exc:  # only configuration failures come out of run()
                failure = failure or exc
        handled += len(results)
        rejected.extend(
            (causes.get(r.work.item.item, r.reason), str(r.work.item.id_of(source) or r.work.item.id_of(target)))
            for r in results
            # An item with nothing left to send (every field left out, with its own report) was not refused.
            if r.response is None and not r.retryable and (r.reason is not None or r.work.item.item in causes)
        )
        _record_results(store, mapping, target, run_id, results, counts, retryable)
        progress.add(len(results))
        if failure is not None:
            raise failure  # items not called stay in the plan: the run after the fix carries them out

    # One pool for the whole plan, and chunk k+1 already in flight while chunk k's outcomes are written:
    # the API never waits for the link store.
    # With shared limits a worker keeps its in-flight slot across calls (two statements fewer per call); the
    # scope's end, after the pool's, gives every kept slot back.
    with (
        client.keep_slots(),
        ThreadPoolExecutor(max_workers=max_workers) as pool,
        Progress(log, f"upsert to {target}", unit="items", total=len(items)) as progress,
    ):
        in_flight: list[Future[Outcome]] = []
        for start in range(0, len(items), CHUNK):
            submitted = [pool.submit(run, w) for w in prepare(items[start : start + CHUNK])]
            if in_flight:
                record(in_flight)
            in_flight = submitted
        if in_flight:
            record(in_flight)
    if retryable:
        raise RetryableFailures(
            f"{len(retryable)} call(s) to {target} failed for reasons that may pass "
            f"(first: {retryable[0]}); done items are recorded, a retry picks up the rest"
        )
    mapping.rejections.check(f"upsert to {target}", handled, rejected)
    return {"target": target, **counts}


class ConfigurationStop(Exception):
    """Internal: a call not made because another call of the step hit a configuration failure."""


def _record_results(
    store: LinkStore,
    mapping: FlowMapping,
    target: str,
    run_id: str,
    results: list[Outcome],
    counts: Counter[str],
    retryable: list[str],
) -> None:
    source = other(target)
    batch = Completion()
    log = batch.log
    # A create may answer with an existing record that carries the origin's reference (found after a unique-key
    # refusal, or by an earlier attempt's intent). One linked to another record already, or routed to another flow,
    # was put there by hand: linking it would silently take over a pair or move a record between flows.
    id_field = entity_for(target, mapping.sides[target].entity).id_field
    answered = [
        str(r.response[id_field])
        for r in results
        if r.work.item.action == "create"
        and isinstance(r.response, dict)
        and r.response.get(id_field) not in (None, "")
    ]
    linked_to = store.linked_ids([mapping.flow], target, answered) if answered else {}
    direction = DIRECTION[target]
    for work, response, reason, is_retryable in results:
        item = work.item
        origin = item.id_of(source) or ""
        pogo_id, inv_id = item.poweroffice_go_id, item.invoiced_id
        left = left_out_fields(mapping, target, work.left_out)
        written = {k: v for k, v in item.changes.items() if k not in left}

        def report_left_out(pogo_id: str | None, inv_id: str | None, work: Work = work, left: list[str] = left) -> None:
            if left and work.left_reason:
                counts["left_out"] += 1
                log.append(
                    LogEntry(
                        "report",
                        "reported",
                        direction,
                        pogo_id,
                        inv_id,
                        work.left_reason,
                        after={k: work.item.changes.get(k) for k in left},
                    )
                )

        if response is None and reason is None:
            # Nothing was left to send: the record is settled as it is; the left-out fields keep their base.
            report_left_out(pogo_id, inv_id)
            rebase = {k: v for k, v in (item.base or {}).items() if k not in left}
            if rebase and pogo_id is not None:
                batch.base_updates.append(BaseUpdate(pogo_id, rebase))
            batch.done_items.append(item.item)
            batch.settled.append((source, origin))
            counts["unchanged"] += 1
            continue
        if response is None:
            batch.failed_items.append(item.item)
            counts["failed"] += 1
            if is_retryable:
                retryable.append(reason or "")
            elif item.action == "create":
                batch.intents_done.append((source, origin))  # refused: nothing was created
            log.append(LogEntry(item.action, "failed", direction, pogo_id, inv_id, reason, after=item.changes))
            continue
        try:
            row = mirror_row(mapping, target, response)
        except (ValueError, TypeError) as exc:
            batch.failed_items.append(item.item)
            counts["failed"] += 1
            log.append(
                LogEntry(item.action, "failed", direction, pogo_id, inv_id, f"unreadable answer from {target}: {exc}")
            )
            continue
        new_id = row.record_id
        holder = linked_to.get(new_id)
        if item.action == "create" and ((holder is not None and holder != origin) or not row.routed):
            batch.failed_items.append(item.item)
            counts["failed"] += 1
            why = (
                f"is already linked to {source} record {holder}"
                if holder is not None and holder != origin
                else f"does not belong to flow {mapping.flow} (its type or state)"
            )
            log.append(
                LogEntry(
                    "create",
                    "failed",
                    direction,
                    pogo_id,
                    inv_id,
                    f"{target} already has record {new_id} carrying this record's reference (a unique "
                    f"key), and it {why}; nothing was created or linked: resolve by hand",
                    after=item.changes,
                )
            )
            continue
        if target == POGO:
            pogo_id = new_id
        else:
            inv_id = new_id
        report_left_out(pogo_id, inv_id)
        base = dict(item.base or {})
        if left and item.action == "create":
            # What was left out is whatever the new record holds: a later change on the origin is sent again.
            base.update({k: row.vals.get(k) for k in left})
        elif left:
            base = {k: v for k, v in base.items() if k not in left}  # the link keeps its last synced values
        # Our own write must not come back as a change; anything else the answer shows (a concurrent edit) must,
        # also in a field we did not write: compare the whole answer with what the record should now hold.
        expected = work.expected or base
        target_vals = {k: v for k, v in row.vals.items() if not mapping.field(k).is_reference}
        row.dirty = any(expected.get(k, v) != v for k, v in target_vals.items() if k in expected)
        batch.mirror.append(row)
        batch.done_items.append(item.item)
        pogo_at, inv_at = (row.changed_at, None) if target == POGO else (None, row.changed_at)
        # One id came with the item, the other with the answer.
        assert pogo_id is not None
        assert inv_id is not None
        if item.action == "create":
            batch.links.append(LinkWrite(pogo_id, inv_id, base, pogo_at, inv_at))
            batch.intents_done.append((source, origin))
            batch.settled.append((source, origin))
            counts["created"] += 1
            log.append(LogEntry("create", "ok", direction, pogo_id, inv_id, after=written))
        else:
            batch.base_updates.append(BaseUpdate(pogo_id, base, pogo_at, inv_at))
            batch.settled.append((source, origin))
            counts["updated"] += 1
            detail = item.detail or {}
            log.append(
                LogEntry(
                    "update",
                    "ok",
                    direction,
                    pogo_id,
                    inv_id,
                    before={k: v for k, v in (detail.get("before") or {}).items() if k not in left} or None,
                    after=written,
                )
            )
            for conflict in detail.get("conflicts", []):
                counts["conflicts"] += 1
                log.append(
                    LogEntry(
                        "conflict",
                        "ok",
                        direction,
                        pogo_id,
                        inv_id,
                        f"{conflict['field']}: {conflict['reason']}; {conflict['winner']} wins",
                        before={conflict["field"]: conflict["losing_value"]},
                        after={conflict["field"]: conflict["value"]},
                    )
                )
    store.complete(mapping.flow, run_id, batch)
