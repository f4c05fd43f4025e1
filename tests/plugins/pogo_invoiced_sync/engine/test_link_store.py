"""The link store on a real PostgreSQL: migrations, mirror, cursors, intents and settling."""

import datetime as dt

import psycopg

from pogo_invoiced_sync.engine.model import Completion, LinkWrite, MirrorRow, PlanItem


def _row(record_id, name, fingerprint):
    return {
        "record_id": record_id,
        "vals": {"name": name},
        "meta": {},
        "routed": True,
        "external_ref": None,
        "changed_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "fingerprint": fingerprint,
    }


def test_migrating_twice_keeps_the_schema_at_the_latest_version(link_store):
    first = link_store.migrate()
    assert link_store.migrate() == first >= 2


def test_migrations_record_each_version_once(link_store):
    with link_store.transaction() as cur:
        cur.execute(
            link_store.q("SELECT version, count(*) FROM {s}.schema_version GROUP BY version HAVING count(*) > 1")
        )
        assert cur.fetchall() == []


def test_an_unchanged_record_is_not_marked_dirty_again(link_store):
    link_store.merge_records("f", "invoiced", "run1", [_row("1", "A", "x")])
    link_store.complete("f", "run1", Completion(settled=[("invoiced", "1")]))
    assert link_store.merge_records("f", "invoiced", "run2", [_row("1", "A", "x")]) == 0
    assert list(link_store.dirty_pairs("f")) == []


def test_a_changed_record_becomes_dirty(link_store):
    link_store.merge_records("f", "invoiced", "run1", [_row("1", "A", "x")])
    link_store.complete("f", "run1", Completion(settled=[("invoiced", "1")]))
    assert link_store.merge_records("f", "invoiced", "run2", [_row("1", "B", "y")]) == 1
    assert [p.invoiced.vals for p in link_store.dirty_pairs("f")] == [{"name": "B"}]


def test_a_merged_row_keeps_the_digest_of_the_payload_it_was_mapped_from(link_store):
    link_store.merge_records("f", "invoiced", "run1", [_row("1", "A", "x"), _row("2", "B", "y")], digests={"1": b"d1"})
    assert link_store.record_digests("f", "invoiced") == {"1": b"d1"}


def test_a_mirror_row_written_by_an_upsert_forgets_its_digest_so_its_record_is_mapped_again(link_store):
    link_store.merge_records("f", "invoiced", "run1", [_row("1", "A", "x")], digests={"1": b"d1"})
    written = MirrorRow("invoiced", "1", {"name": "B"}, True, None, None, {}, "y")
    link_store.complete("f", "run2", Completion(mirror=[written]))
    assert link_store.record_digests("f", "invoiced") == {}


def test_the_cursor_never_moves_backwards(link_store):
    later, earlier = dt.datetime(2026, 5, 1, tzinfo=dt.UTC), dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    link_store.advance_cursor("f", "invoiced", later)
    link_store.advance_cursor("f", "invoiced", earlier)
    assert link_store.cursor("f", "invoiced") == later


def test_a_second_create_intent_for_the_same_record_returns_the_first(link_store):
    intent = {
        "origin_system": "poweroffice_go",
        "origin_id": "7",
        "target_system": "invoiced",
        "idempotency_key": "k-1",
    }
    assert link_store.begin_creates("f", "run1", [intent]) == {}
    existing = link_store.begin_creates("f", "run2", [{**intent, "idempotency_key": "k-2"}])
    assert existing["7"]["idempotency_key"] == "k-1"


def test_a_record_stays_dirty_while_an_item_of_its_pair_is_open(link_store):
    link_store.merge_records("f", "poweroffice_go", "run1", [_row("1", "A", "x")])
    item = PlanItem("create", "invoiced", "1", None, changes={"name": "A"})
    link_store.replace_plan("f", "run1", [item], [("poweroffice_go", "1")], [])
    assert len(list(link_store.dirty_pairs("f"))) == 1


def test_linked_ids_translate_between_the_two_id_spaces(link_store):
    link_store.complete("c", "run1", Completion(links=[LinkWrite("10", "20", {})]))
    assert link_store.linked_ids(["c"], "invoiced", ["20", "99"]) == {"20": "10"}
    assert link_store.linked_ids(["c"], "poweroffice_go", ["10"]) == {"10": "20"}


def test_one_link_per_pair_is_enforced_by_the_database(link_store):
    link_store.complete("c", "run1", Completion(links=[LinkWrite("10", "20", {})]))
    try:
        link_store.complete("c", "run1", Completion(links=[LinkWrite("11", "20", {})]))
    except psycopg.errors.UniqueViolation:
        return
    raise AssertionError("a second PowerOffice Go record was linked to the same Invoiced record")


def test_sync_log_entries_keep_before_and_after_values(link_store):
    link_store.log(
        "f",
        "run1",
        [
            {
                "operation": "conflict",
                "outcome": "ok",
                "reason": "name: both changed",
                "poweroffice_go_id": "1",
                "invoiced_id": "2",
                "before": {"name": "lost"},
                "after": {"name": "kept"},
            }
        ],
    )
    with link_store.transaction() as cur:
        cur.execute(link_store.q("SELECT losing_values, winning_values FROM {s}.v_open_conflicts"))
        assert cur.fetchall() == [({"name": "lost"}, {"name": "kept"})]


def test_a_finished_run_also_frees_the_staging_of_runs_abandoned_a_day_ago(link_store):
    for run in ("old", "new"):
        link_store.write_staging("f", run, "invoiced", [[("1", {"id": 1})]], False, None, lambda: None, lambda: 0)
    with link_store.transaction() as cur:
        cur.execute(
            link_store.q("UPDATE {s}.extracts SET extracted_at = now() - interval '2 days' WHERE run_id = 'old'")
        )
    link_store.write_staging("f", "current", "invoiced", [[("1", {"id": 1})]], False, None, lambda: None, lambda: 0)
    link_store.drop_staging("f", "current")
    with link_store.transaction() as cur:
        cur.execute(link_store.q("SELECT DISTINCT run_id FROM {s}.staging"))
        assert cur.fetchall() == [("new",)]
