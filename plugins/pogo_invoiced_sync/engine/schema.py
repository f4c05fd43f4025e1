"""Versioned, idempotent migrations of the link store's PostgreSQL schema."""

from __future__ import annotations

# Here, not in link_store, so the operators name it without importing psycopg at DAG parse time.
DEFAULT_SCHEMA = "pogo_invoiced_sync"

# Each entry runs once, in order, inside one transaction with its version row. Append; never edit a released one.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "link store, mirror, staging, plan, sync log",
        """
CREATE TABLE {s}.links (
    flow text NOT NULL,
    poweroffice_go_id text NOT NULL,
    invoiced_id text NOT NULL,
    base jsonb NOT NULL DEFAULT '{{}}',          -- last synchronised canonical values: the merge base
    poweroffice_go_changed_at timestamptz,      -- each side's change time when last synchronised
    invoiced_changed_at timestamptz,
    state text NOT NULL DEFAULT 'active',       -- active | deleted_in_poweroffice_go | deleted_in_invoiced
    state_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, poweroffice_go_id),
    UNIQUE (flow, invoiced_id)
);
-- The latest known canonical state of every record seen on either side: what reconcile works from.
CREATE TABLE {s}.records (
    flow text NOT NULL,
    system text NOT NULL,
    record_id text NOT NULL,
    vals jsonb NOT NULL,
    meta jsonb NOT NULL DEFAULT '{{}}',
    routed boolean NOT NULL,                    -- belongs to this flow by the mapping's route
    external_ref text,                          -- the other side's id carried by the record, if any
    changed_at timestamptz,
    fingerprint text NOT NULL,
    dirty boolean NOT NULL DEFAULT true,        -- needs reconciling
    seen_run text,
    PRIMARY KEY (flow, system, record_id)
);
CREATE INDEX records_dirty ON {s}.records (flow) WHERE dirty;
CREATE TABLE {s}.staging (
    flow text NOT NULL,
    run_id text NOT NULL,
    system text NOT NULL,
    record_id text NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (flow, run_id, system, record_id)
);
CREATE TABLE {s}.extracts (
    flow text NOT NULL,
    run_id text NOT NULL,
    system text NOT NULL,
    full_scan boolean NOT NULL,
    since timestamptz,
    max_changed_at timestamptz,
    row_count integer NOT NULL,
    api_calls integer NOT NULL DEFAULT 0,
    changed integer,                            -- set by the map step: rows whose fingerprint changed
    extracted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, run_id, system)
);
CREATE TABLE {s}.cursors (
    flow text NOT NULL,
    system text NOT NULL,
    cursor timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, system)
);
CREATE TABLE {s}.plan (
    flow text NOT NULL,
    run_id text NOT NULL,
    item integer NOT NULL,
    action text NOT NULL,                       -- create | update | link
    target text,                                -- system written to; null for link-store-only items
    poweroffice_go_id text,
    invoiced_id text,
    changes jsonb NOT NULL DEFAULT '{{}}',       -- canonical values to write
    base jsonb,                                 -- merge base after success
    detail jsonb,                               -- conflicts resolved, losing values, reason
    status text NOT NULL DEFAULT 'pending',     -- pending | done | failed | planned
    PRIMARY KEY (flow, run_id, item)
);
-- Written before an API create and removed with the link write, so a crash in between never creates twice.
CREATE TABLE {s}.pending_creates (
    flow text NOT NULL,
    origin_system text NOT NULL,
    origin_id text NOT NULL,
    target_system text NOT NULL,
    idempotency_key text NOT NULL,
    run_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, origin_system, origin_id)
);
CREATE TABLE {s}.sync_log (
    id bigserial PRIMARY KEY,
    logged_at timestamptz NOT NULL DEFAULT now(),
    run_id text NOT NULL,
    flow text NOT NULL,
    direction text,                             -- to_invoiced | to_poweroffice_go | null
    operation text NOT NULL,                    -- create | update | link | conflict | wait | reject | report | drift
    outcome text NOT NULL,                      -- ok | failed | waiting | planned | reported
    reason text,
    poweroffice_go_id text,
    invoiced_id text,
    before jsonb,
    after jsonb
);
CREATE INDEX sync_log_run ON {s}.sync_log (flow, run_id);
CREATE INDEX sync_log_records ON {s}.sync_log (flow, poweroffice_go_id, invoiced_id);
CREATE TABLE {s}.runs (
    flow text NOT NULL,
    run_id text NOT NULL,
    params jsonb NOT NULL DEFAULT '{{}}',
    summary jsonb,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (flow, run_id)
);
""",
    ),
    (
        2,
        "operator views over the sync log",
        """
CREATE VIEW {s}.v_failures AS
    SELECT logged_at, run_id, flow, direction, operation, reason, poweroffice_go_id, invoiced_id, after
    FROM {s}.sync_log WHERE outcome = 'failed';
CREATE VIEW {s}.v_run_changes AS
    SELECT run_id, flow, direction, operation, outcome, poweroffice_go_id, invoiced_id, before, after, reason, logged_at
    FROM {s}.sync_log WHERE outcome IN ('ok', 'planned');
CREATE VIEW {s}.v_open_conflicts AS
    SELECT DISTINCT ON (l.flow, l.poweroffice_go_id) l.flow, l.run_id, l.poweroffice_go_id, l.invoiced_id,
           l.reason, l.before AS losing_values, l.after AS winning_values, l.logged_at
    FROM {s}.sync_log l WHERE l.operation IN ('conflict', 'report')
    ORDER BY l.flow, l.poweroffice_go_id, l.logged_at DESC;
CREATE VIEW {s}.v_waiting AS
    SELECT r.flow, r.system, r.record_id, w.reason, w.logged_at AS since
    FROM {s}.records r
    JOIN LATERAL (SELECT reason, logged_at FROM {s}.sync_log s
                  WHERE s.flow = r.flow AND s.operation = 'wait'
                    AND (CASE WHEN r.system = 'poweroffice_go' THEN s.poweroffice_go_id ELSE s.invoiced_id END)
                        = r.record_id
                  ORDER BY s.id DESC LIMIT 1) w ON true
    WHERE r.dirty;
""",
    ),
    # Link stores created with version 1 as first released (primary key, no seq) and those created while version 1
    # carried this change in place both end here: idempotent on either.
    (
        3,
        "staging keeps a record listed twice (it moved between pages while we paged); the map step keeps the last",
        """
ALTER TABLE {s}.staging DROP CONSTRAINT IF EXISTS staging_pkey;
ALTER TABLE {s}.staging ADD COLUMN IF NOT EXISTS seq bigserial;
CREATE INDEX IF NOT EXISTS staging_run ON {s}.staging (flow, run_id, system, record_id, seq);
""",
    ),
    (
        4,
        "open plan items by record, for settling records in one statement",
        """
CREATE INDEX plan_open_poweroffice_go ON {s}.plan (flow, run_id, poweroffice_go_id) WHERE status <> 'done';
CREATE INDEX plan_open_invoiced ON {s}.plan (flow, run_id, invoiced_id) WHERE status <> 'done';
""",
    ),
    (
        5,
        "listings: the server's time at their start, whether the list moved, scheduled full reconciliation",
        """
ALTER TABLE {s}.extracts ADD COLUMN IF NOT EXISTS listing_started_at timestamptz,
    ADD COLUMN IF NOT EXISTS cursor_at_start timestamptz,
    ADD COLUMN IF NOT EXISTS reconciliation boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS moved text;
-- When a listing of everything (first run, full_refresh, scheduled full reconciliation) last completed unmoved.
ALTER TABLE {s}.cursors ADD COLUMN IF NOT EXISTS full_listed_at timestamptz;
""",
    ),
    (
        7,
        "operator decisions from the console: field resolutions, pins, who did what",
        """
ALTER TABLE {s}.sync_log ADD COLUMN IF NOT EXISTS actor text;      -- who asked (console actions); null: the engine
-- One row per operator decision. A resolution stays pending until a run finds both sides holding its value.
CREATE TABLE {s}.operator_decisions (
    id bigserial PRIMARY KEY,
    flow text NOT NULL,
    kind text NOT NULL,                         -- resolve | dismiss
    poweroffice_go_id text,                     -- null for a report about an Invoiced record only
    invoiced_id text,
    field text,
    value jsonb,                                -- the value both sides get (resolve)
    conflict_id bigint,                         -- the sync-log row decided on
    actor text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'pending',     -- pending | done | cancelled
    run_id text,                                -- the run that carried it out
    done_at timestamptz
);
CREATE UNIQUE INDEX operator_decisions_conflict ON {s}.operator_decisions (flow, conflict_id)
    WHERE status <> 'cancelled';
CREATE INDEX operator_decisions_pair ON {s}.operator_decisions (flow, poweroffice_go_id, conflict_id);
CREATE INDEX operator_decisions_pending ON {s}.operator_decisions (flow) WHERE status = 'pending';
-- Records an operator took out of the sync: not reconciled, not created, not linked, until included again.
CREATE TABLE {s}.exclusions (
    flow text NOT NULL,
    system text NOT NULL,
    record_id text NOT NULL,
    actor text NOT NULL,
    reason text,
    excluded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, system, record_id)
);
-- The console's reads at 100,000 links: conflicts and drift by flow, a record's history, runs by time, name search.
CREATE INDEX sync_log_review ON {s}.sync_log (flow, id) WHERE operation IN ('conflict', 'report');
CREATE INDEX sync_log_operation ON {s}.sync_log (flow, operation, id);
CREATE INDEX sync_log_invoiced ON {s}.sync_log (flow, invoiced_id);
CREATE INDEX runs_started ON {s}.runs (flow, started_at DESC);
CREATE INDEX records_name ON {s}.records (lower(vals->>'name') text_pattern_ops);
CREATE INDEX links_state ON {s}.links (flow, state);
-- Open means no operator decided on it yet (a decision on a pair's conflict also reviews its earlier ones).
CREATE VIEW {s}.v_undecided_conflicts AS
    SELECT l.* FROM {s}.sync_log l WHERE l.operation IN ('conflict', 'report')
      AND NOT EXISTS (SELECT 1 FROM {s}.operator_decisions d WHERE d.flow = l.flow AND d.status <> 'cancelled'
                      AND (d.conflict_id = l.id
                           OR (d.poweroffice_go_id = l.poweroffice_go_id AND d.conflict_id > l.id)));
CREATE OR REPLACE VIEW {s}.v_open_conflicts AS
    SELECT DISTINCT ON (l.flow, l.poweroffice_go_id) l.flow, l.run_id, l.poweroffice_go_id, l.invoiced_id,
           l.reason, l.before AS losing_values, l.after AS winning_values, l.logged_at
    FROM {s}.v_undecided_conflicts l ORDER BY l.flow, l.poweroffice_go_id, l.logged_at DESC;
""",
    ),
    (
        8,
        "each API task's calls by status with its run",
        """
        ALTER TABLE {s}.runs ADD COLUMN IF NOT EXISTS api jsonb NOT NULL DEFAULT '{{}}'::jsonb;
    """,
    ),
    (
        9,
        "a listed record whose payload did not change since it was mapped is staged without it and not mapped again",
        """
-- The digest of the payload (with the flow mapping's fingerprint) that the mirror row was mapped from; null when
-- the row was written by anything else (an upsert's own write): the next listing then maps the record again.
-- seen_run is from now on the last run that read a change of the record (mapped it), not the last that listed it.
ALTER TABLE {s}.records ADD COLUMN IF NOT EXISTS digest bytea;
-- A record listed unchanged is staged with its id only: deletions and the run report still see it listed.
ALTER TABLE {s}.staging ALTER COLUMN payload DROP NOT NULL, ADD COLUMN IF NOT EXISTS digest bytea;
ALTER TABLE {s}.extracts ADD COLUMN IF NOT EXISTS unchanged integer;   -- listed records staged without payload
""",
    ),
]
