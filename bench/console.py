"""How fast the console's reads are on a link store with 100,000 links in one flow.

    .venv/bin/python bench/console.py [--links 100000] [--dsn "host=127.0.0.1 user=postgres dbname=postgres"]

Seeds a schema of its own (dropped afterwards) with set-based SQL: N linked pairs (2N mirror rows), a create row per
pair in the sync log, one conflict per 100 pairs, one rejected record per 1,000, waiting records, 500 runs with
summaries, and a full-refresh run with drift rows, then vacuums (autovacuum's steady state). Then times every query
the pages make (median of 7, after a warm-up) through the same ``ConsoleStore`` the plugin uses.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import psycopg  # noqa: E402

from pogo_invoiced_sync.console.store import ConsoleStore  # noqa: E402
from pogo_invoiced_sync.engine.flow_mapping import load_all  # noqa: E402
from pogo_invoiced_sync.engine.link_store import LinkStore  # noqa: E402

FLOW = "customers_company"

SEED = """
INSERT INTO {s}.records (flow, system, record_id, vals, routed, fingerprint, dirty, changed_at)
SELECT %(flow)s, sys, CASE WHEN sys = 'poweroffice_go' THEN (1000000 + n)::text ELSE 'in_' || n END,
       jsonb_build_object('name', 'Company ' || lpad(n::text, 6, '0') || ' AS'), true, md5(n::text),
       n %% 997 = 0, now() - (n || ' seconds')::interval
FROM generate_series(1, %(n)s) n, unnest(ARRAY['poweroffice_go', 'invoiced']) sys;
INSERT INTO {s}.links (flow, poweroffice_go_id, invoiced_id, base)
SELECT %(flow)s, (1000000 + n)::text, 'in_' || n,
       jsonb_build_object('name', 'Company ' || lpad(n::text, 6, '0') || ' AS')
FROM generate_series(1, %(n)s) n;
INSERT INTO {s}.runs (flow, run_id, params, summary, started_at, finished_at)
SELECT %(flow)s, 'scheduled__' || r, CASE WHEN r = 480 THEN '{{"full_refresh": true}}'::jsonb ELSE '{{}}' END,
       jsonb_build_object('by_direction', jsonb_build_object('to_invoiced', jsonb_build_object('created', r %% 7,
       'updated', r %% 11, 'conflicts', r %% 3, 'rejected', r %% 2))),
       now() - ((500 - r) || ' hours')::interval, now() - ((500 - r) || ' hours')::interval + interval '1 minute'
FROM generate_series(1, 500) r;
INSERT INTO {s}.sync_log (run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, invoiced_id, after)
SELECT 'scheduled__' || (1 + n %% 500), %(flow)s, 'to_invoiced', 'create', 'ok', NULL, (1000000 + n)::text, 'in_' || n,
       jsonb_build_object('name', 'Company ' || n)
FROM generate_series(1, %(n)s) n;
INSERT INTO {s}.sync_log (run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, invoiced_id,
                          before, after)
SELECT 'scheduled__' || (1 + n %% 500), %(flow)s, 'to_poweroffice_go', 'conflict', 'ok',
       'name: both sides changed since the last sync; invoiced wins', (1000000 + n)::text, 'in_' || n,
       jsonb_build_object('name', 'Old ' || n), jsonb_build_object('name', 'Company ' || lpad(n::text, 6, '0') || ' AS')
FROM generate_series(100, %(n)s, 100) n;
INSERT INTO {s}.sync_log (run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, invoiced_id)
SELECT 'scheduled__500', %(flow)s, 'to_invoiced', 'update', 'failed', 'name is too long', (1000000 + n)::text,
       'in_' || n
FROM generate_series(1000, %(n)s, 1000) n;
INSERT INTO {s}.sync_log (run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, invoiced_id)
SELECT 'scheduled__' || (1 + n %% 500), %(flow)s, 'to_invoiced', 'wait', 'waiting', 'customer not linked yet',
       (1000000 + n)::text, 'in_' || n FROM generate_series(997, %(n)s, 997) n;
INSERT INTO {s}.sync_log (run_id, flow, operation, outcome, reason, poweroffice_go_id, invoiced_id, before, after)
SELECT 'scheduled__480', %(flow)s, 'drift', 'reported', 'fields differ: name', (1000000 + n)::text, 'in_' || n,
       '{{"name": "a"}}', '{{"name": "b"}}' FROM generate_series(50, %(n)s, 500) n;
ANALYZE {s}.records;
ANALYZE {s}.links;
ANALYZE {s}.sync_log;
ANALYZE {s}.runs
"""


def timed(fn, repeats: int = 7) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=postgres")
    args = parser.parse_args(argv)
    schema = f"console_bench_{uuid.uuid4().hex[:8]}"
    store = LinkStore(lambda: psycopg.connect(args.dsn), schema)
    store.migrate()
    try:
        start = time.perf_counter()
        with store.transaction() as cur:
            for statement in SEED.split(";\n"):
                if statement.strip():
                    cur.execute(store.q(statement), {"flow": FLOW, "n": args.links})
        print(f"seeded {args.links:,} links in {time.perf_counter() - start:.1f} s", flush=True)
        # Autovacuum's steady state: the visibility map lets counts over the links be index-only scans.
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            for table in ("links", "records", "sync_log", "runs"):
                conn.execute(f'VACUUM ANALYZE "{schema}".{table}')
        console = ConsoleStore(lambda: psycopg.connect(args.dsn), load_all(ROOT / "include" / "mappings"), schema)
        with console.store.transaction() as cur:
            cur.execute(console.q("SELECT count(*) FROM {s}.sync_log"))
            log_rows = cur.fetchone()[0]
        mid = args.links // 2
        cases = {
            "health (one flow: last run, links, open conflicts, failures, waiting, drift)": (
                lambda: console.health(FLOW)),
            "chart (runs of the last 14 days)": lambda: console.runs_chart(FLOW),
            "list open conflicts (first page)": lambda: console.listing("conflicts", FLOW),
            "list failures of the last run": lambda: console.listing("failures", FLOW, "scheduled__500"),
            "list drift of the last full run": lambda: console.listing("drift", FLOW, "scheduled__480"),
            "list waiting records": lambda: console.listing("waiting", FLOW),
            "list linked pairs (a middle page)": lambda: console.listing("links", FLOW, after=str(1000000 + mid)),
            "search by PowerOffice Go id": lambda: console.search(str(1000000 + mid)),
            "search by Invoiced id": lambda: console.search(f"in_{mid}"),
            "search by name prefix": lambda: console.search(f"company {mid:06d}"[:12]),
            "record page (pair, mirror, decisions, history)": lambda: console.record(FLOW, "invoiced", f"in_{mid}"),
            "resolve preview (checks, no write)": lambda: console.resolve(
                FLOW, _conflict_id(console, mid), "poweroffice_go", actor="bench", preview=True),
        }
        print(f"| query ({args.links:,} links, {log_rows:,} sync-log rows) | median ms |")
        print("|---|---|")
        for name, fn in cases.items():
            print(f"| {name} | {timed(fn):.1f} |", flush=True)
        console.close()
    finally:
        store.close()
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


def _conflict_id(console: ConsoleStore, n: int) -> int:
    with console.store.transaction() as cur:
        cur.execute(console.q("SELECT max(id) FROM {s}.sync_log WHERE flow = %s AND operation = 'conflict' "
                              "AND poweroffice_go_id = %s"), (FLOW, str(1000000 + n - n % 100)))
        return cur.fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
