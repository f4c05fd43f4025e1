"""The link store in PostgreSQL: links with their merge base, the record mirror, staging, plan, intents and sync log.

Every statement is parameterised; bulk work goes through ``executemany`` (pipelined by psycopg 3) or ``COPY``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pogo_invoiced_sync.engine.model import Completion, Link, LinkedPair, LogEntry, MirrorRow, PairRow, PlanItem
from pogo_invoiced_sync.engine.schema import DEFAULT_SCHEMA, MIGRATIONS


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


class LinkStore:
    """Access to the sync state of all flows in one PostgreSQL schema."""

    def __init__(self, connect: Callable[[], psycopg.Connection], schema: str = DEFAULT_SCHEMA) -> None:
        self._connect = connect
        self.schema = schema
        self._conn: psycopg.Connection | None = None

    # -- connection and schema ---------------------------------------------------------------------------

    @property
    def conn(self) -> psycopg.Connection:
        """A lazily opened connection (no database work happens before the first statement)."""
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
            self._conn.autocommit = False
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def q(self, text: str, **identifiers: str) -> sql.Composed:
        """SQL with ``{s}`` standing for the store's schema, and other ``{name}`` placeholders for identifiers."""
        return sql.SQL(text).format(
            s=sql.Identifier(self.schema), **{k: sql.Identifier(v) for k, v in identifiers.items()}
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor]:
        """One transaction; rolled back on error."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    def migrate(self) -> int:
        """Create or upgrade the schema; safe to run concurrently and repeatedly. Returns the version."""
        with self.transaction() as cur:
            # Serialise concurrent migrations of the same schema.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"migrate:{self.schema}",))
            cur.execute(self.q("CREATE SCHEMA IF NOT EXISTS {s}"))
            cur.execute(
                self.q(
                    "CREATE TABLE IF NOT EXISTS {s}.schema_version "
                    "(version integer PRIMARY KEY, description text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            cur.execute(self.q("SELECT coalesce(max(version), 0) FROM {s}.schema_version"))
            current = _scalar(cur)
            for version, description, ddl in MIGRATIONS:
                if version > current:
                    cur.execute(self.q(ddl))
                    cur.execute(
                        self.q("INSERT INTO {s}.schema_version (version, description) VALUES (%s, %s)"),
                        (version, description),
                    )
                    current = version
        return current

    @contextlib.contextmanager
    def flow_lock(self, flow: str) -> Iterator[None]:
        """Hold the flow's lock for the block: concurrent runs of one flow take turns on the state."""
        key = f"{self.schema}:flow:{flow}"
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        self.conn.commit()
        try:
            yield
        finally:
            if not self.conn.closed:
                self.conn.rollback()
                with self.conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
                self.conn.commit()

    # -- runs ----------------------------------------------------------------------------------------------

    def start_run(self, flow: str, run_id: str, params: dict) -> None:
        """Record a run's start and params (a retried task keeps the first start)."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "INSERT INTO {s}.runs (flow, run_id, params) VALUES (%s, %s, %s) "
                    "ON CONFLICT (flow, run_id) DO NOTHING"
                ),
                (flow, run_id, Jsonb(params)),
            )

    def finish_run(self, flow: str, run_id: str, summary: dict) -> None:
        """Store the run's summary report."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "INSERT INTO {s}.runs (flow, run_id, summary, finished_at) VALUES (%s, %s, %s, now()) "
                    "ON CONFLICT (flow, run_id) DO UPDATE SET summary = EXCLUDED.summary, finished_at = now()"
                ),
                (flow, run_id, Jsonb(summary)),
            )

    def record_api(self, flow: str, run_id: str, task: str, stats: dict) -> None:
        """Keep one task's API statistics (calls by method and status, retries, waits) with the run."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "INSERT INTO {s}.runs AS r (flow, run_id, api) VALUES (%s, %s, %s) "
                    "ON CONFLICT (flow, run_id) DO UPDATE SET api = r.api || EXCLUDED.api"
                ),
                (flow, run_id, Jsonb({task: stats})),
            )

    def run_api(self, flow: str, run_id: str) -> dict:
        """The run's API statistics by task."""
        with self.transaction() as cur:
            cur.execute(self.q("SELECT api FROM {s}.runs WHERE flow = %s AND run_id = %s"), (flow, run_id))
            row = cur.fetchone()
        return (row[0] if row else None) or {}

    # -- extract ------------------------------------------------------------------------------------------

    def cursor(self, flow: str, system: str) -> dt.datetime | None:
        """The change time up to which ``system`` has been read for ``flow``."""
        with self.transaction() as cur:
            cur.execute(self.q("SELECT cursor FROM {s}.cursors WHERE flow = %s AND system = %s"), (flow, system))
            row = cur.fetchone()
        return row[0] if row else None

    def write_staging(
        self,
        flow: str,
        run_id: str,
        system: str,
        pages: Iterable[list[tuple[str, dict | str | None] | tuple[str, dict | str | None, bytes | None]]],
        full_scan: bool,
        since: dt.datetime | None,
        max_changed_at: Callable[[], dt.datetime | None],
        api_calls: Callable[[], int],
        listing: Callable[[], dict] | None = None,
    ) -> int:
        """Replace this run's staged rows of ``system`` with ``pages`` of (record id, payload[, digest]), by COPY.

        A payload is a record or its JSON text; None stages a record listed unchanged by its id only (its digest
        matched the mirror's), so that the map step skips it while deletions and the report still see it listed.
        ``listing`` gives, once the pages are read, what the listing noticed: ``listing_started_at`` (the
        server's time), ``cursor_at_start``, ``reconciliation`` (a scheduled full listing) and ``moved``.
        """
        count = unchanged = 0
        with self.transaction() as cur:
            cur.execute(
                self.q("DELETE FROM {s}.staging WHERE flow = %s AND run_id = %s AND system = %s"),
                (flow, run_id, system),
            )
            with cur.copy(
                self.q("COPY {s}.staging (flow, run_id, system, record_id, payload, digest) FROM STDIN")
            ) as copy:
                for page in pages:
                    for record_id, payload, *digest in page:
                        if payload is None:
                            unchanged += 1
                        elif not isinstance(payload, str):
                            payload = _dumps(payload)
                        copy.write_row((flow, run_id, system, record_id, payload, digest[0] if digest else None))
                        count += 1
            noted = listing() if listing is not None else {}
            cur.execute(
                self.q(
                    "INSERT INTO {s}.extracts (flow, run_id, system, full_scan, since, max_changed_at, row_count, "
                    "api_calls, "
                    "listing_started_at, cursor_at_start, reconciliation, moved, unchanged) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (flow, run_id, system) "
                    "DO UPDATE SET "
                    "full_scan = EXCLUDED.full_scan, since = EXCLUDED.since, max_changed_at = EXCLUDED.max_changed_at, "
                    "row_count = EXCLUDED.row_count, api_calls = EXCLUDED.api_calls, extracted_at = now(), "
                    "listing_started_at = EXCLUDED.listing_started_at, cursor_at_start = EXCLUDED.cursor_at_start, "
                    "reconciliation = EXCLUDED.reconciliation, moved = EXCLUDED.moved, unchanged = EXCLUDED.unchanged"
                ),
                (
                    flow,
                    run_id,
                    system,
                    full_scan,
                    since,
                    max_changed_at(),
                    count,
                    api_calls(),
                    noted.get("listing_started_at"),
                    noted.get("cursor_at_start"),
                    bool(noted.get("reconciliation")),
                    noted.get("moved"),
                    unchanged,
                ),
            )
            cur.execute(self.q("ANALYZE {s}.staging"))  # fresh stats, or NOT EXISTS on staging runs as a nested loop
        return count

    def extract_info(self, flow: str, run_id: str, system: str) -> dict | None:
        """What the extract of ``system`` in this run did."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT full_scan, since, max_changed_at, row_count, api_calls, changed, listing_started_at, "
                    "cursor_at_start, reconciliation, moved, unchanged FROM {s}.extracts "
                    "WHERE flow = %s AND run_id = %s AND system = %s"
                ),
                (flow, run_id, system),
            )
            row = cur.fetchone()
        names = (
            "full_scan",
            "since",
            "max_changed_at",
            "row_count",
            "api_calls",
            "changed",
            "listing_started_at",
            "cursor_at_start",
            "reconciliation",
            "moved",
            "unchanged",
        )
        return None if row is None else dict(zip(names, row, strict=True))

    def iter_staging(
        self, flow: str, run_id: str, system: str, chunk: int = 5000
    ) -> Iterator[list[tuple[dict, bytes | None]]]:
        """Staged (payload, digest) pairs to map, in chunks, read through a server-side cursor to bound memory.

        A record listed twice counts as last listed; one staged without payload (unchanged) is not returned.
        """
        with self.conn.transaction(), self.conn.cursor(name=f"staging_{system}") as cur:
            cur.itersize = chunk
            cur.execute(
                self.q(
                    "SELECT payload, digest FROM (SELECT DISTINCT ON (record_id) payload, digest FROM {s}.staging "
                    "WHERE flow = %s AND run_id = %s AND system = %s ORDER BY record_id, seq DESC) last "
                    "WHERE payload IS NOT NULL"
                ),
                (flow, run_id, system),
            )
            while rows := cur.fetchmany(chunk):
                yield [(r[0], r[1]) for r in rows]

    def record_digests(self, flow: str, system: str, changed_since: dt.datetime | None = None) -> dict[str, bytes]:
        """The payload digest each mirror row of ``system`` was mapped from (rows without one are left out).

        With ``changed_since``, only rows whose change time is not before it: a record listed as changed after that
        time whose row is older changed since it was mapped, and its digest would not match anyway.
        """
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT record_id, digest FROM {s}.records WHERE flow = %s AND system = %s AND digest IS NOT NULL "
                    "AND (%s::timestamptz IS NULL OR changed_at >= %s)"
                ),
                (flow, system, changed_since, changed_since),
            )
            return dict(cur.fetchall())

    # -- map ----------------------------------------------------------------------------------------------

    def merge_records(
        self,
        flow: str,
        system: str,
        run_id: str,
        rows: Sequence[MirrorRow | Mapping[str, Any]],
        missed_up_to: dt.datetime | None = None,
        digests: Mapping[str, bytes | None] | None = None,
    ) -> int:
        """Upsert mirror rows; a row of the flow whose fingerprint changed becomes dirty. Returns how many did.

        With ``missed_up_to`` (the cursor before a full listing), every dirty row whose change time is at or before
        it was a change the incremental reads missed: it gets a ``repair`` row in the sync log.
        ``digests`` (by record id) are those of the payloads the rows were mapped from; a row merged without one
        forgets the digest it had, so its record is mapped again when next listed.
        """
        if not rows:
            return 0
        digests = digests or {}
        with self.transaction() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming_records (record_id text, vals jsonb, meta jsonb, "
                "routed boolean, external_ref text, changed_at timestamptz, fingerprint text, digest bytea) "
                "ON COMMIT DELETE ROWS"
            )
            with cur.copy("COPY incoming_records FROM STDIN") as copy:
                for r in (MirrorRow.of(system, row) for row in rows):
                    copy.write_row(
                        (
                            r.record_id,
                            _dumps(r.vals),
                            _dumps(r.meta),
                            r.routed,
                            r.external_ref,
                            r.changed_at,
                            r.fingerprint,
                            digests.get(r.record_id),
                        )
                    )
            cur.execute(
                self.q(
                    "INSERT INTO {s}.records AS r (flow, system, record_id, vals, meta, routed, external_ref, "
                    "changed_at, "
                    "fingerprint, dirty, seen_run, digest) "
                    "SELECT %(flow)s, %(system)s, i.record_id, i.vals, i.meta, i.routed, i.external_ref, i.changed_at, "
                    "i.fingerprint, i.routed OR EXISTS (SELECT 1 FROM {s}.links l WHERE l.flow = %(flow)s AND "
                    "l.{column} = i.record_id), %(run)s, i.digest FROM incoming_records i "
                    "ON CONFLICT (flow, system, record_id) DO UPDATE SET vals = EXCLUDED.vals, meta = EXCLUDED.meta, "
                    "routed = EXCLUDED.routed, external_ref = EXCLUDED.external_ref, changed_at = EXCLUDED.changed_at, "
                    "fingerprint = EXCLUDED.fingerprint, dirty = EXCLUDED.dirty, seen_run = EXCLUDED.seen_run, "
                    "digest = EXCLUDED.digest "
                    "WHERE r.fingerprint IS DISTINCT FROM EXCLUDED.fingerprint RETURNING r.record_id, r.changed_at, "
                    "r.dirty",
                    column=f"{system}_id",
                ),
                {"flow": flow, "system": system, "run": run_id},
            )
            merged = cur.fetchall()
            # Changed records of this flow (routed or linked): another flow's records listed alongside do not count.
            changed = sum(1 for _id, _at, dirty in merged if dirty)
            if missed_up_to is not None:
                direction = "to_invoiced" if system == "poweroffice_go" else "to_poweroffice_go"
                self._log(
                    cur,
                    flow,
                    run_id,
                    [
                        LogEntry.about(
                            system,
                            record_id,
                            "repair",
                            "reported",
                            direction=direction,
                            reason=f"changed in {system} at {changed_at.isoformat()}, at or before the cursor "
                            f"{missed_up_to.isoformat()}, yet not read by the incremental runs: found "
                            "by the full reconciliation",
                        )
                        for record_id, changed_at, dirty in merged
                        if dirty and changed_at is not None and changed_at <= missed_up_to
                    ],
                )
            # A payload that changed with no change to the mapped values: remember it, so it is not mapped again.
            # seen_run is the last run that read a change of the record (not every run that listed it).
            cur.execute(
                self.q(
                    "UPDATE {s}.records r SET digest = i.digest, seen_run = %s FROM incoming_records i "
                    "WHERE r.flow = %s AND r.system = %s AND r.record_id = i.record_id "
                    "AND r.digest IS DISTINCT FROM i.digest"
                ),
                (run_id, flow, system),
            )
        return changed

    def advance_cursor(
        self, flow: str, system: str, value: dt.datetime | None, full_listed_at: dt.datetime | None = None
    ) -> None:
        """Move the cursor forward to ``value`` (never backwards); ``full_listed_at``: a full listing completed."""
        if value is None:
            return
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "INSERT INTO {s}.cursors AS c (flow, system, cursor, full_listed_at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (flow, system) DO UPDATE SET cursor = greatest(c.cursor, EXCLUDED.cursor), "
                    "full_listed_at = coalesce(greatest(c.full_listed_at, EXCLUDED.full_listed_at), "
                    "c.full_listed_at, EXCLUDED.full_listed_at), updated_at = now()"
                ),
                (flow, system, value, full_listed_at),
            )

    def full_listed_at(self, flow: str, system: str) -> dt.datetime | None:
        """When ``system`` was last listed in full for ``flow`` without the list moving (None: never)."""
        with self.transaction() as cur:
            cur.execute(
                self.q("SELECT full_listed_at FROM {s}.cursors WHERE flow = %s AND system = %s"), (flow, system)
            )
            row = cur.fetchone()
        return row[0] if row else None

    def rewind_cursors(self, flow: str, run_id: str) -> None:
        """Put the flow's cursors back to where this run started reading (none after a full listing).

        The next run then lists again what this run read, and its answer replaces what this run left in the mirror.
        """
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "UPDATE {s}.cursors c SET cursor = e.since, updated_at = now() FROM {s}.extracts e "
                    "WHERE c.flow = %s AND e.flow = c.flow AND e.run_id = %s AND e.system = c.system AND e.since IS "
                    "NOT NULL"
                ),
                (flow, run_id),
            )
            cur.execute(
                self.q(
                    "DELETE FROM {s}.cursors c USING {s}.extracts e "
                    "WHERE c.flow = %s AND e.flow = c.flow AND e.run_id = %s AND e.system = c.system AND e.since IS "
                    "NULL"
                ),
                (flow, run_id),
            )

    def missing_linked(self, flow: str, run_id: str, system: str) -> list[str]:
        """Ids of ``system`` records linked in ``flow`` that this run's full listing did not show."""
        column = "poweroffice_go_id" if system == "poweroffice_go" else "invoiced_id"
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    f"SELECT l.{column} FROM {{s}}.links l WHERE l.flow = %s AND l.state = 'active' AND NOT EXISTS "
                    f"(SELECT 1 FROM {{s}}.staging s WHERE s.flow = %s AND s.run_id = %s AND s.system = %s "
                    f"AND s.record_id = l.{column})"
                ),
                (flow, flow, run_id, system),
            )
            return [r[0] for r in cur.fetchall()]

    def mark_gone(self, flow: str, run_id: str, system: str, ids: list[str], reason: str) -> None:
        """Record on the links that these ``system`` records were confirmed gone (nothing is propagated)."""
        column = "poweroffice_go_id" if system == "poweroffice_go" else "invoiced_id"
        with self.transaction() as cur:
            cur.executemany(
                self.q(
                    f"UPDATE {{s}}.links SET state = %s, state_reason = %s, updated_at = now() "
                    f"WHERE flow = %s AND {column} = %s"
                ),
                [(f"deleted_in_{system}", reason, flow, i) for i in ids],
            )
            self._log(
                cur,
                flow,
                run_id,
                [LogEntry.about(system, i, "delete_detected", "reported", reason=reason) for i in ids],
            )

    def linked_pairs(self, flow: str) -> Iterator[LinkedPair]:
        """Every active link with both sides' values."""
        with self.conn.transaction(), self.conn.cursor(name="linked_pairs") as cur:
            cur.itersize = 5000
            cur.execute(
                self.q(
                    "SELECT l.poweroffice_go_id, l.invoiced_id, p.vals, i.vals FROM {s}.links l "
                    "JOIN {s}.records p ON p.flow = l.flow AND p.system = 'poweroffice_go' AND p.record_id = "
                    "l.poweroffice_go_id "
                    "JOIN {s}.records i ON i.flow = l.flow AND i.system = 'invoiced' AND i.record_id = l.invoiced_id "
                    "WHERE l.flow = %s AND l.state = 'active'"
                ),
                (flow,),
            )
            for pogo_id, inv_id, pogo_vals, inv_vals in cur:
                yield LinkedPair(pogo_id, inv_id, pogo_vals, inv_vals)

    def unlinked_records(self, flow: str) -> list[tuple[str, str]]:
        """(system, id) of routed records of ``flow`` that have no counterpart."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT r.system, r.record_id FROM {s}.records r WHERE r.flow = %s AND r.routed AND NOT EXISTS ("
                    "SELECT 1 FROM {s}.links l WHERE l.flow = r.flow AND CASE WHEN r.system = 'poweroffice_go' "
                    "THEN l.poweroffice_go_id = r.record_id ELSE l.invoiced_id = r.record_id END)"
                ),
                (flow,),
            )
            return cur.fetchall()

    # -- reconcile ----------------------------------------------------------------------------------------

    def dirty_pairs(self, flow: str) -> Iterator[PairRow]:
        """Every record needing attention, with its link and its counterpart's mirror row when linked."""
        # One branch per system keeps every join and NOT EXISTS on a plain indexed column (no OR, no CASE).
        query = self.q("""
            WITH l AS (
                SELECT l.* FROM {s}.links l JOIN {s}.records d ON d.flow = l.flow AND d.dirty
                    AND d.system = 'poweroffice_go' AND d.record_id = l.poweroffice_go_id WHERE l.flow = %(flow)s
                UNION
                SELECT l.* FROM {s}.links l JOIN {s}.records d ON d.flow = l.flow AND d.dirty
                    AND d.system = 'invoiced' AND d.record_id = l.invoiced_id WHERE l.flow = %(flow)s
            )
            SELECT l.poweroffice_go_id, l.invoiced_id, l.base, l.state,
                   p.record_id, p.vals, p.meta, p.routed, p.external_ref, p.changed_at, p.dirty, p.fingerprint,
                   i.record_id, i.vals, i.meta, i.routed, i.external_ref, i.changed_at, i.dirty, i.fingerprint
            FROM l
            LEFT JOIN {s}.records p ON p.flow = %(flow)s AND p.system = 'poweroffice_go'
                AND p.record_id = l.poweroffice_go_id
            LEFT JOIN {s}.records i ON i.flow = %(flow)s AND i.system = 'invoiced' AND i.record_id = l.invoiced_id
            UNION ALL
            SELECT NULL, NULL, NULL, NULL,
                   r.record_id, r.vals, r.meta, r.routed, r.external_ref, r.changed_at, r.dirty, r.fingerprint,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM {s}.records r WHERE r.flow = %(flow)s AND r.system = 'poweroffice_go' AND r.dirty AND NOT EXISTS (
                SELECT 1 FROM {s}.links l WHERE l.flow = %(flow)s AND l.poweroffice_go_id = r.record_id)
            UNION ALL
            SELECT NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   r.record_id, r.vals, r.meta, r.routed, r.external_ref, r.changed_at, r.dirty, r.fingerprint
            FROM {s}.records r WHERE r.flow = %(flow)s AND r.system = 'invoiced' AND r.dirty AND NOT EXISTS (
                SELECT 1 FROM {s}.links l WHERE l.flow = %(flow)s AND l.invoiced_id = r.record_id)
        """)
        with self.conn.transaction(), self.conn.cursor(name="dirty_pairs") as cur:
            cur.itersize = 2000
            cur.execute(query, {"flow": flow})
            for row in cur:
                yield _pair_row(row)

    def pairs(self, flow: str, pogo_ids: list[str]) -> list[PairRow]:
        """Linked pairs (as ``dirty_pairs`` rows) of these PowerOffice Go ids, whether dirty or not."""
        if not pogo_ids:
            return []
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT l.poweroffice_go_id, l.invoiced_id, l.base, l.state, "
                    "p.record_id, p.vals, p.meta, p.routed, p.external_ref, p.changed_at, p.dirty, p.fingerprint, "
                    "i.record_id, i.vals, i.meta, i.routed, i.external_ref, i.changed_at, i.dirty, i.fingerprint "
                    "FROM {s}.links l "
                    "LEFT JOIN {s}.records p ON p.flow = l.flow AND p.system = 'poweroffice_go' "
                    "AND p.record_id = l.poweroffice_go_id "
                    "LEFT JOIN {s}.records i ON i.flow = l.flow AND i.system = 'invoiced' AND i.record_id = "
                    "l.invoiced_id "
                    "WHERE l.flow = %s AND l.poweroffice_go_id = ANY(%s)"
                ),
                (flow, pogo_ids),
            )
            return [_pair_row(r) for r in cur.fetchall()]

    def unexplained_out_of_flow(self, flow: str, run_id: str) -> list[tuple[str, str]]:
        """(system, id) of records listed this run that ``flow`` does not route, unlinked, with no ``skip`` row yet."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT DISTINCT r.system, r.record_id FROM {s}.staging st JOIN {s}.records r ON r.flow = st.flow "
                    "AND r.system = st.system AND r.record_id = st.record_id WHERE st.flow = %(flow)s AND st.run_id = "
                    "%(run)s "
                    "AND NOT r.routed AND NOT EXISTS (SELECT 1 FROM {s}.links l WHERE l.flow = r.flow AND "
                    "(CASE WHEN r.system = 'poweroffice_go' THEN l.poweroffice_go_id ELSE l.invoiced_id END) = "
                    "r.record_id) "
                    "ORDER BY 1, 2"
                ),
                {"flow": flow, "run": run_id},
            )
            candidates = cur.fetchall()
            if not candidates:
                return []
            cur.execute(
                self.q(
                    "SELECT DISTINCT CASE WHEN poweroffice_go_id IS NOT NULL THEN 'poweroffice_go' ELSE 'invoiced' "
                    "END, "
                    "coalesce(poweroffice_go_id, invoiced_id) FROM {s}.sync_log WHERE flow = %s AND operation = 'skip' "
                    "AND coalesce(poweroffice_go_id, invoiced_id) = ANY(%s)"
                ),
                (flow, [c[1] for c in candidates]),
            )
            done = set(cur.fetchall())
        return [c for c in candidates if c not in done]

    def linked_ids(self, flows: Iterable[str], system: str, ids: Iterable[str | None]) -> dict[str, str]:
        """Map ``system`` ids to their counterparts through the links of ``flows`` (reference resolution)."""
        ids = list({i for i in ids if i is not None})
        if not ids:
            return {}
        here, there = (
            ("poweroffice_go_id", "invoiced_id") if system == "poweroffice_go" else ("invoiced_id", "poweroffice_go_id")
        )
        with self.transaction() as cur:
            cur.execute(
                self.q(f"SELECT {here}, {there} FROM {{s}}.links WHERE flow = ANY(%s) AND {here} = ANY(%s)"),
                (list(flows), ids),
            )
            return dict(cur.fetchall())

    def replace_plan(
        self, flow: str, run_id: str, items: list[PlanItem], settled: list[tuple[str, str]], log: list[LogEntry]
    ) -> None:
        """Store this run's plan, mark ``settled`` records clean and write ``log`` entries, in one transaction."""
        with self.transaction() as cur:
            cur.execute(self.q("DELETE FROM {s}.plan WHERE flow = %s AND run_id = %s"), (flow, run_id))
            cur.execute(
                self.q(
                    "DELETE FROM {s}.sync_log WHERE flow = %s AND run_id = %s AND operation IN "
                    "('wait', 'report', 'drift') AND outcome IN ('waiting', 'reported')"
                ),
                (flow, run_id),
            )
            cur.executemany(
                self.q(
                    "INSERT INTO {s}.plan (flow, run_id, item, action, target, poweroffice_go_id, invoiced_id, "
                    "changes, "
                    "base, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                [
                    (
                        flow,
                        run_id,
                        n,
                        it.action,
                        it.target,
                        it.poweroffice_go_id,
                        it.invoiced_id,
                        Jsonb(it.changes or {}),
                        Jsonb(it.base),
                        Jsonb(it.detail),
                    )
                    for n, it in enumerate(items)
                ],
            )
            cur.execute(self.q("ANALYZE {s}.plan"))  # fresh rows: give the planner statistics for _clean's anti-join
            self._clean(cur, flow, run_id, settled)
            self._log(cur, flow, run_id, log)

    def _clean(self, cur: psycopg.Cursor, flow: str, run_id: str, records: list[tuple[str, str]]) -> None:
        """Mark records reconciled unless an item of this run involving them is still open (one statement a side)."""
        for system, column in (("poweroffice_go", "poweroffice_go_id"), ("invoiced", "invoiced_id")):
            ids = list({record_id for s, record_id in records if s == system})
            if ids:
                cur.execute(
                    self.q(
                        "UPDATE {s}.records r SET dirty = false WHERE r.flow = %s AND r.system = %s AND r.dirty "
                        "AND r.record_id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM {s}.plan p WHERE p.flow = r.flow "
                        "AND p.run_id = %s AND p.status <> 'done' AND p.{column} = r.record_id)",
                        column=column,
                    ),
                    (flow, system, ids, run_id),
                )

    def _log(
        self, cur: psycopg.Cursor, flow: str, run_id: str, entries: Iterable[LogEntry | Mapping[str, Any]]
    ) -> None:
        rows = [LogEntry.of(e) for e in entries]
        if rows:
            cur.executemany(
                self.q(
                    "INSERT INTO {s}.sync_log (run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, "
                    "invoiced_id, before, after) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                [
                    (
                        run_id,
                        flow,
                        e.direction,
                        e.operation,
                        e.outcome,
                        e.reason,
                        e.poweroffice_go_id,
                        e.invoiced_id,
                        None if e.before is None else Jsonb(e.before),
                        None if e.after is None else Jsonb(e.after),
                    )
                    for e in rows
                ],
            )

    def log(self, flow: str, run_id: str, entries: Iterable[LogEntry | Mapping[str, Any]]) -> None:
        """Append sync-log entries (mappings with the fields of :class:`LogEntry` are accepted too)."""
        with self.transaction() as cur:
            self._log(cur, flow, run_id, entries)

    # -- upsert -------------------------------------------------------------------------------------------

    def plan_items(self, flow: str, run_id: str, target: str | None) -> list[PlanItem]:
        """Pending plan items writing to ``target`` (None: link-store-only items)."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT item, action, target, poweroffice_go_id, invoiced_id, changes, base, detail "
                    "FROM {s}.plan WHERE flow = %s AND run_id = %s AND status = 'pending' "
                    "AND target IS NOT DISTINCT FROM %s ORDER BY item"
                ),
                (flow, run_id, target),
            )
            return [
                PlanItem(action, target, pogo_id, inv_id, changes, base, detail, item)
                for item, action, target, pogo_id, inv_id, changes, base, detail in cur.fetchall()
            ]

    def begin_creates(self, flow: str, run_id: str, intents: list[dict]) -> dict[str, dict]:
        """Record create intents; return the intents that already existed (an earlier attempt may have created).

        Each intent carries the idempotency key of the attempt about to be made; an existing intent takes the new
        attempt's key (its ``created_at`` stays: it bounds the look-up of what the earlier attempt may have created).
        """
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT origin_id, idempotency_key, run_id, created_at FROM {s}.pending_creates "
                    "WHERE flow = %s AND origin_system = %s AND origin_id = ANY(%s)"
                ),
                (flow, intents[0]["origin_system"], [i["origin_id"] for i in intents]) if intents else (flow, "", []),
            )
            existing = {r[0]: {"idempotency_key": r[1], "run_id": r[2], "created_at": r[3]} for r in cur.fetchall()}
            cur.executemany(
                self.q(
                    "INSERT INTO {s}.pending_creates (flow, origin_system, origin_id, target_system, idempotency_key, "
                    "run_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                [
                    (flow, i["origin_system"], i["origin_id"], i["target_system"], i["idempotency_key"], run_id)
                    for i in intents
                    if i["origin_id"] not in existing
                ],
            )
            cur.executemany(
                self.q(
                    "UPDATE {s}.pending_creates SET idempotency_key = %s, run_id = %s "
                    "WHERE flow = %s AND origin_system = %s AND origin_id = %s"
                ),
                [
                    (i["idempotency_key"], run_id, flow, i["origin_system"], i["origin_id"])
                    for i in intents
                    if i["origin_id"] in existing
                ],
            )
        return existing

    def count_links(self, flow: str) -> int:
        """How many pairs the flow has linked."""
        with self.transaction() as cur:
            cur.execute(self.q("SELECT count(*) FROM {s}.links WHERE flow = %s"), (flow,))
            return _scalar(cur)

    def existing_links(self, flow: str, system: str, ids: list[str]) -> dict[str, str]:
        """Links of ``flow`` that already exist for these ``system`` ids (checked again right before writing)."""
        return self.linked_ids([flow], system, ids)

    def complete(self, flow: str, run_id: str, batch: Completion) -> None:
        """Write the outcome of a batch of plan items in one transaction."""
        with self.transaction() as cur:
            if batch.links:
                cur.executemany(
                    self.q(
                        "INSERT INTO {s}.links (flow, poweroffice_go_id, invoiced_id, base, poweroffice_go_changed_at, "
                        "invoiced_changed_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (flow, poweroffice_go_id) DO "
                        "UPDATE "
                        "SET invoiced_id = EXCLUDED.invoiced_id, base = EXCLUDED.base, updated_at = now(), "
                        "poweroffice_go_changed_at = EXCLUDED.poweroffice_go_changed_at, "
                        "invoiced_changed_at = EXCLUDED.invoiced_changed_at"
                    ),
                    [
                        (
                            flow,
                            k.poweroffice_go_id,
                            k.invoiced_id,
                            Jsonb(k.base),
                            k.poweroffice_go_changed_at,
                            k.invoiced_changed_at,
                        )
                        for k in batch.links
                    ],
                )
            if batch.base_updates:
                cur.executemany(
                    self.q(
                        "UPDATE {s}.links SET base = base || %s, updated_at = now(), "
                        "poweroffice_go_changed_at = coalesce(%s, poweroffice_go_changed_at), "
                        "invoiced_changed_at = coalesce(%s, invoiced_changed_at) "
                        "WHERE flow = %s AND poweroffice_go_id = %s"
                    ),
                    [
                        (Jsonb(b.base), b.poweroffice_go_changed_at, b.invoiced_changed_at, flow, b.poweroffice_go_id)
                        for b in batch.base_updates
                    ],
                )
            if batch.mirror:
                cur.executemany(
                    self.q(
                        "INSERT INTO {s}.records AS r (flow, system, record_id, vals, meta, routed, external_ref, "
                        "changed_at, "
                        "fingerprint, dirty, seen_run) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT (flow, system, record_id) DO UPDATE SET vals = EXCLUDED.vals, meta = "
                        "EXCLUDED.meta, "
                        "routed = EXCLUDED.routed, external_ref = EXCLUDED.external_ref, changed_at = "
                        "EXCLUDED.changed_at, "
                        # What we wrote, not a payload we read: the record is mapped again when next listed.
                        "fingerprint = EXCLUDED.fingerprint, dirty = EXCLUDED.dirty, digest = NULL"
                    ),
                    [
                        (
                            flow,
                            m.system,
                            m.record_id,
                            Jsonb(m.vals),
                            Jsonb(m.meta),
                            m.routed,
                            m.external_ref,
                            m.changed_at,
                            m.fingerprint,
                            m.dirty,
                            run_id,
                        )
                        for m in batch.mirror
                    ],
                )
            if batch.intents_done:
                cur.executemany(
                    self.q("DELETE FROM {s}.pending_creates WHERE flow = %s AND origin_system = %s AND origin_id = %s"),
                    [(flow, s, i) for s, i in batch.intents_done],
                )
            if batch.done_items:
                cur.execute(
                    self.q("UPDATE {s}.plan SET status = 'done' WHERE flow = %s AND run_id = %s AND item = ANY(%s)"),
                    (flow, run_id, list(batch.done_items)),
                )
            if batch.failed_items:
                cur.execute(
                    self.q("UPDATE {s}.plan SET status = 'failed' WHERE flow = %s AND run_id = %s AND item = ANY(%s)"),
                    (flow, run_id, list(batch.failed_items)),
                )
            self._clean(cur, flow, run_id, batch.settled)
            self._log(cur, flow, run_id, batch.log)

    def record_meta(self, flow: str, system: str, ids: list[str]) -> dict[str, dict]:
        """The writer's facts (``meta``) of mirrored records."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT record_id, meta FROM {s}.records WHERE flow = %s AND system = %s AND record_id = ANY(%s)"
                ),
                (flow, system, ids),
            )
            return dict(cur.fetchall())

    def record_state(self, flow: str, system: str, ids: list[str]) -> dict[str, dict]:
        """The writer's facts (``meta``) and the canonical values (``vals``) of mirrored records."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT record_id, meta, vals FROM {s}.records WHERE flow = %s AND system = %s "
                    "AND record_id = ANY(%s)"
                ),
                (flow, system, ids),
            )
            return {r[0]: {"meta": r[1] or {}, "vals": r[2] or {}} for r in cur.fetchall()}

    def set_changed(self, flow: str, run_id: str, system: str, changed: int) -> None:
        """Remember how many extracted rows the map step found changed."""
        with self.transaction() as cur:
            cur.execute(
                self.q("UPDATE {s}.extracts SET changed = %s WHERE flow = %s AND run_id = %s AND system = %s"),
                (changed, flow, run_id, system),
            )

    def mark_planned(self, flow: str, run_id: str, target: str | None) -> int:
        """Dry run: mark the pending items of ``target`` as planned only."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "UPDATE {s}.plan SET status = 'planned' WHERE flow = %s AND run_id = %s "
                    "AND status = 'pending' AND target IS NOT DISTINCT FROM %s"
                ),
                (flow, run_id, target),
            )
            return cur.rowcount

    # -- report -------------------------------------------------------------------------------------------

    def run_counts(self, flow: str, run_id: str) -> list[tuple[str | None, str, str, int]]:
        """(direction, operation, outcome, count) of this run's sync log."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT direction, operation, outcome, count(*) FROM {s}.sync_log "
                    "WHERE flow = %s AND run_id = %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
                ),
                (flow, run_id),
            )
            return cur.fetchall()

    def listed_in_flow(self, flow: str, run_id: str, system: str) -> int:
        """How many distinct records of ``flow`` (routed, or linked) this run's listing of ``system`` showed."""
        column = "poweroffice_go_id" if system == "poweroffice_go" else "invoiced_id"
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT count(DISTINCT st.record_id) FROM {s}.staging st JOIN {s}.records r ON r.flow = st.flow "
                    "AND r.system = st.system AND r.record_id = st.record_id WHERE st.flow = %(flow)s AND st.run_id = "
                    "%(run)s "
                    "AND st.system = %(system)s AND (r.routed OR EXISTS (SELECT 1 FROM {s}.links l WHERE l.flow = "
                    "r.flow "
                    "AND l.{column} = r.record_id))",
                    column=column,
                ),
                {"flow": flow, "run": run_id, "system": system},
            )
            return _scalar(cur)

    def run_examples(self, flow: str, run_id: str, per_outcome: int) -> list[LogEntry]:
        """The first ``per_outcome`` sync-log rows of this run for each operation and outcome, oldest first."""
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT operation, outcome, direction, poweroffice_go_id, invoiced_id, reason, before, after FROM ("
                    "SELECT *, row_number() OVER (PARTITION BY operation, outcome ORDER BY id) AS n FROM {s}.sync_log "
                    "WHERE flow = %s AND run_id = %s) x WHERE n <= %s ORDER BY operation, outcome, id"
                ),
                (flow, run_id, per_outcome),
            )
            return [LogEntry(*row) for row in cur.fetchall()]

    def drop_staging(self, flow: str, run_id: str) -> None:
        """Free the run's staged payloads once the run is done, and those of runs abandoned a day ago or more."""
        with self.transaction() as cur:
            cur.execute(self.q("DELETE FROM {s}.staging WHERE flow = %s AND run_id = %s"), (flow, run_id))
            cur.execute(
                self.q(
                    "DELETE FROM {s}.staging s USING {s}.extracts e WHERE s.flow = %s AND e.flow = s.flow "
                    "AND e.run_id = s.run_id AND e.system = s.system "
                    "AND e.extracted_at < now() - interval '1 day'"
                ),
                (flow,),
            )


def _scalar(cur: psycopg.Cursor) -> Any:
    """The one value of an aggregate query (which always returns a row)."""
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("an aggregate query returned no row")
    return row[0]


def _side(system: str, columns: tuple[Any, ...]) -> MirrorRow | None:
    """A mirror row from ``record_id, vals, meta, routed, external_ref, changed_at, dirty, fingerprint``."""
    record_id, vals, meta, routed, external_ref, changed_at, dirty, fingerprint = columns
    if record_id is None:
        return None
    return MirrorRow(system, record_id, vals, routed, external_ref, changed_at, meta, fingerprint, dirty)


def _pair_row(row: tuple[Any, ...]) -> PairRow:
    """A ``PairRow`` from the link's four columns and each side's eight (see ``_side``)."""
    link = None if row[0] is None else Link(row[0], row[1], row[2], row[3])
    return PairRow(link, _side("poweroffice_go", row[4:12]), _side("invoiced", row[12:20]))
