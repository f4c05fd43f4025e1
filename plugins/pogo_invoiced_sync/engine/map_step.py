"""The map step: raw API records to canonical mirror rows (values, routing, carried id, change time, fingerprint)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

import msgspec

from pogo_invoiced_sync.engine.entities import entity_for
from pogo_invoiced_sync.engine.flow_mapping import FlowMapping
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.model import LogEntry, MirrorRow


class MissingFields(ValueError):
    """A record lacks mapped field paths (``paths``): the same paths missing on many records point at the mapping."""

    def __init__(self, message: str, paths: list[str]) -> None:
        super().__init__(message)
        self.paths = paths


# Part of every payload digest: bump it when mirror_row maps the same payload differently, so that every record is
# mapped again by the next run instead of keeping a mirror row the new code would not make.
MIRROR_VERSION = 1
_encode = msgspec.json.Encoder().encode


def payload_digester(mapping: FlowMapping, system: str) -> Callable[[dict], tuple[str, bytes]]:
    """A function of a raw ``system`` record to its JSON text and its digest for this flow mapping.

    The digest covers what a mirror row depends on: the payload as listed, the system, the mapping as read and the
    mapping code's version. A listed record whose digest equals the one its mirror row was mapped from needs no
    mapping; any edit to the mapping file changes every digest, so everything is mapped again.
    """
    spec = json.dumps([MIRROR_VERSION, system, dataclasses.asdict(mapping)], sort_keys=True, default=_canonical)
    seed = hashlib.blake2b(spec.encode(), digest_size=16)

    def digest(raw: dict) -> tuple[str, bytes]:
        text = _encode(raw)  # keeps the API's key order: the same answer gives the same text
        h = seed.copy()
        h.update(text)
        return text.decode(), h.digest()

    return digest


def _canonical(value: Any) -> Any:
    """JSON for what json.dumps cannot write: sets in a stable order, anything else as text."""
    return sorted(value, key=str) if isinstance(value, (set, frozenset)) else str(value)


def _fingerprint(vals: dict, routed: bool, external_ref: str | None) -> str:
    raw = json.dumps([vals, routed, external_ref], sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(raw.encode()).hexdigest()


def mirror_row(mapping: FlowMapping, system: str, raw: dict) -> MirrorRow:
    """The mirror row of one raw API record: canonical values, routing, carried id, change time, fingerprint."""
    entity = entity_for(system, mapping.sides[system].entity)
    missing = _missing_paths(mapping, system, raw)
    if missing:
        # An answer that leaves a mapped field out says nothing about its value: reading it as empty would wipe it.
        raise MissingFields(
            f"{system} record {raw.get(entity.id_field)} lacks mapped field(s) {', '.join(missing)}", missing
        )
    vals = mapping.read(system, raw)
    routed = mapping.sides[system].routes(raw)
    external_ref = entity.external_ref(raw)
    paths = [p for f in mapping.fields for p in f.sides[system].paths]
    return MirrorRow(
        system,
        entity.record_id(raw),
        vals,
        routed,
        external_ref,
        entity.changed_at(raw),
        entity.meta(raw, paths),
        _fingerprint(vals, routed, external_ref),
    )


def _missing_paths(mapping: FlowMapping, system: str, raw: dict) -> list[str]:
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


def map_records(store: LinkStore, mapping: FlowMapping, system: str, run_id: str) -> dict:
    """Turn staged payloads into canonical mirror rows; changed ones become dirty; then advance the cursor.

    Records the extract staged without payload (listed unchanged since they were mapped) are skipped: ``unchanged``.
    """
    info = store.extract_info(mapping.flow, run_id, system)
    if info is None:
        raise RuntimeError(f"no extract of {system} for run {run_id}: run the extract task first")
    seen = changed = rejected = 0
    bad: list[LogEntry] = []
    reasons: list[tuple[str, str]] = []
    held: list[dt.datetime] = []
    entity = entity_for(system, mapping.sides[system].entity)
    # A full listing of a side read incrementally shows what the incremental reads missed: changes at or before
    # the cursor that were never read. Each is repaired like any change, and logged as a repair.
    full = (info["full_scan"] or info["cursor_at_start"] is None) and info["max_changed_at"] is not None
    missed_up_to = info["cursor_at_start"] if full and mapping.sides[system].change_detection == "incremental" else None
    with store.flow_lock(mapping.flow):
        for chunk in store.iter_staging(mapping.flow, run_id, system):
            rows: list[MirrorRow] = []
            digests: dict[str, bytes | None] = {}
            for raw, digest in chunk:
                try:
                    row = mirror_row(mapping, system, raw)
                    rows.append(row)
                    digests[row.record_id] = digest  # stored only with the merged row: a rejected one is read again
                except (ValueError, TypeError) as exc:
                    rejected += 1
                    record_id = str(raw.get("Id") or raw.get("id") or "")
                    bad.append(
                        LogEntry.about(
                            system, record_id, "reject", "failed", reason=f"unreadable {system} record: {exc}"
                        )
                    )
                    why = (
                        f"lacks mapped field(s) {', '.join(exc.paths)}" if isinstance(exc, MissingFields) else str(exc)
                    )
                    reasons.append((why, record_id))
                    stamp = _stamp(entity, raw)
                    if stamp:
                        held.append(stamp)
            seen += len(rows)
            changed += store.merge_records(
                mapping.flow, system, run_id, rows, missed_up_to=missed_up_to, digests=digests
            )
        if bad:
            store.log(mapping.flow, run_id, bad)
        store.set_changed(mapping.flow, run_id, system, changed)
        if not info["full_scan"] or info["max_changed_at"] is not None:
            # An unreadable record is read again by the next run (an answer missing fields may be a passing fault).
            store.advance_cursor(
                mapping.flow,
                system,
                _hold(info["max_changed_at"], held),
                full_listed_at=(info["listing_started_at"] or info["max_changed_at"]) if full else None,
            )
    # Done and logged record by record; now say so loudly if one reason rejected most of them (e.g. a path typo).
    unchanged = info["unchanged"] or 0
    # Listed unchanged counts as handled: a few bad records in a quiet hour are not most of the listing.
    mapping.rejections.check(f"map of {system}", seen + rejected + unchanged, reasons)
    return {"system": system, "seen": seen, "changed": changed, "unreadable": rejected, "unchanged": unchanged}
