"""The extract step: list what changed on one system into the run's staging table; confirm records gone."""

from __future__ import annotations

import datetime as dt
import logging

from pogo_invoiced_sync.clients.listing import Listing
from pogo_invoiced_sync.engine.entities import ApiClientLike, Entity, entity_for
from pogo_invoiced_sync.engine.flow_mapping import FlowMapping
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.map_step import _hold, _stamp, payload_digester
from pogo_invoiced_sync.engine.progress import Progress

log = logging.getLogger(__name__)

# The cursor never passes the listing's start by the server's clock minus this margin: it covers the Date header's
# whole seconds, a read replica that lags behind writes, and API nodes whose clocks differ by a little.
LISTING_MARGIN = dt.timedelta(seconds=30)
# Without a Date header the start is our own clock, with room for skew between this machine and the API.
LOCAL_CLOCK_MARGIN = dt.timedelta(minutes=5)
MAX_LOOKUPS = 50  # deletion checks per run and system before a listing counts as partial


def extract(
    store: LinkStore,
    mapping: FlowMapping,
    system: str,
    client: ApiClientLike,
    run_id: str,
    *,
    full_refresh: bool = False,
    since_override: dt.datetime | None = None,
) -> dict:
    """List ``system``'s records changed since the cursor (or all of them) into the run's staging table.

    An incremental side is listed in full when its last full listing is older than the mapping's
    ``full_reconciliation.every_hours``: the scheduled full reconciliation.
    """
    side = mapping.sides[system]
    entity = entity_for(system, side.entity)
    cursor = store.cursor(mapping.flow, system)
    reconciliation = _reconciliation_due(store, mapping, system, cursor) and not full_refresh and since_override is None
    full_scan = full_refresh or reconciliation or side.change_detection == "full_scan"
    since = None
    if not full_scan:
        since = since_override if since_override is not None else cursor
        if since is not None:
            since = since - dt.timedelta(seconds=side.overlap_seconds)
    listing = Listing()
    calls_before = _calls(client)
    local_start = dt.datetime.now(dt.UTC)
    unreadable: list[dict] = []
    held: list[dt.datetime] = []
    # What each mirror row was mapped from: a record listed with the same payload is staged without it, and the map
    # step skips it. A full refresh maps everything again; an incremental listing needs only rows as recent as it.
    known = {} if full_refresh else store.record_digests(mapping.flow, system, since)
    digest = payload_digester(mapping, system)
    unchanged = 0

    def pages():
        nonlocal unchanged
        for page in entity.list(client, since, side.list_params, listing=listing):
            rows = []
            for raw in page:
                try:
                    record_id = entity.record_id(raw)
                except ValueError as exc:
                    # Not silently skipped: the sync log says so, and the cursor stays before it for the next run.
                    log.warning("skipping malformed %s record: %s", system, exc)
                    unreadable.append(
                        {
                            "operation": "reject",
                            "outcome": "failed",
                            "reason": f"unreadable {system} record{_describe(raw)}: {exc}",
                        }
                    )
                    stamp = _stamp(entity, raw)
                    if stamp:
                        held.append(stamp)
                    continue
                text, payload_digest = digest(raw)
                same = known.get(record_id) == payload_digest
                unchanged += same
                rows.append((record_id, None if same else text, payload_digest))
            yield rows  # a record listed twice is the client's to notice (Listing.listed): the list moved

    def cursor_after() -> dt.datetime | None:
        """How far this listing has certainly read: its start by the server's clock minus the margin.

        None (the cursor stays where it was) when the list moved under the listing: a record may have been skipped.
        """
        if listing.moved:
            return None
        start = listing.started_at - LISTING_MARGIN if listing.started_at else local_start - LOCAL_CLOCK_MARGIN
        return _hold(start, held)

    # What a change-guard rewind goes back to: for a backfill the normal cursor, never the interval's start.
    rewind_to = since
    if since_override is not None and not full_scan:
        rewind_to = cursor - dt.timedelta(seconds=side.overlap_seconds) if cursor is not None else None
    listed = Progress(log, f"extract {system}", total_of=lambda: getattr(client, "listing_total", None)).over(pages())
    count = store.write_staging(
        mapping.flow,
        run_id,
        system,
        listed,
        full_scan,
        rewind_to,
        cursor_after,
        lambda: _calls(client) - calls_before,
        lambda: {
            "listing_started_at": listing.started_at,
            "cursor_at_start": cursor,
            "reconciliation": reconciliation,
            "moved": "; ".join(listing.moved) or None,
        },
    )
    if unreadable:
        store.log(mapping.flow, run_id, unreadable)
    result = {
        "system": system,
        "records": count,
        "unchanged": unchanged,
        "full_scan": full_scan,
        "since": since.isoformat() if since else None,
    }
    if reconciliation:
        result["full_reconciliation"] = True
    if listing.moved:
        result["list_moved"] = listing.moved
        log.warning(
            "%s listing of %s moved while it was paged (%s); the cursor stays where it was, so the next run "
            "reads it again",
            system,
            mapping.flow,
            "; ".join(listing.moved),
        )
    if full_scan and not listing.moved:
        # A record that moved out of reach while paging would look deleted: check only after an unmoved listing.
        result["confirmed_gone"] = _confirm_missing(store, mapping, system, entity, client, run_id)
    return result


def _reconciliation_due(store: LinkStore, mapping: FlowMapping, system: str, cursor: dt.datetime | None) -> bool:
    """An incremental side is due for a full listing when its last one is older than the mapping's interval."""
    if mapping.sides[system].change_detection != "incremental" or cursor is None:
        return False  # full scans list everything anyway; without a cursor the listing is full already
    last = store.full_listed_at(mapping.flow, system)
    interval = dt.timedelta(hours=mapping.full_reconciliation_hours)
    return last is None or last < dt.datetime.now(dt.UTC) - interval


def _confirm_missing(
    store: LinkStore, mapping: FlowMapping, system: str, entity: Entity, client: ApiClientLike, run_id: str
) -> int:
    """MAPPING.md, decision 8: absence from a list is not a deletion; a lookup confirms it, the link records it.

    A listing that misses many linked records at once is more likely a partial answer than mass deletion:
    then nothing is looked up or recorded, and the run says so.
    """
    missing = store.missing_linked(mapping.flow, run_id, system)
    if not missing:
        return 0
    links = store.count_links(mapping.flow)
    if len(missing) > max(MAX_LOOKUPS, links * 0.2):
        store.log(
            mapping.flow,
            run_id,
            [
                {
                    "operation": "report",
                    "outcome": "reported",
                    "reason": f"{len(missing)} of {links} linked {system} records are missing from "
                    "a full listing; treated as a partial answer, nothing marked deleted",
                }
            ],
        )
        return 0
    gone = [record_id for record_id in missing if entity.get(client, record_id) is None]
    if gone:
        reason = (
            f"no longer found in {system} (deleted, or for a sales order: invoiced); "
            "recorded on the link, not propagated"
        )
        store.mark_gone(mapping.flow, run_id, system, gone, reason)
    return len(gone)


def _describe(raw: dict) -> str:
    """A hint to find a record that has no id: its name or number, if it has one."""
    for key in ("name", "Name", "number", "Number", "ExternalImportReference"):
        if raw.get(key) not in (None, ""):
            return f" ({key} {raw[key]!r})"
    return ""


def _calls(client: ApiClientLike) -> int:
    return int(client.stats.get("calls_total", 0))
