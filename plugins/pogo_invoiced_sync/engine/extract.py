"""The extract step: list what changed on one system into the run's staging table; confirm records gone."""
from __future__ import annotations

import datetime as dt
import logging

from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.mapping import Mapping
from pogo_invoiced_sync.engine.mirror import _hold, _stamp
from pogo_invoiced_sync.engine.progress import Progress
from pogo_invoiced_sync.engine.systems import entity_for

log = logging.getLogger(__name__)

EMPTY_LISTING_MARGIN = dt.timedelta(minutes=5)
MAX_LOOKUPS = 50  # deletion checks per run and system before a listing counts as partial


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

    # What a change-guard rewind goes back to: for a backfill the normal cursor, never the interval's start.
    rewind_to = since
    if since_override is not None and not full_scan:
        rewind_to = cursor - dt.timedelta(seconds=side.overlap_seconds) if cursor is not None else None
    listed = Progress(log, f"extract {system}", total_of=lambda: getattr(hook, "listing_total", None)).over(pages())
    count = store.write_staging(mapping.flow, run_id, system, listed, full_scan, rewind_to,
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
