"""The reconcile step on a real PostgreSQL: merging without a merge base, the change guard, the drift report."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, FlowMapping
from pogo_invoiced_sync.engine.model import Completion, LinkWrite
from pogo_invoiced_sync.engine.reconcile import ChangeGuardTripped, reconcile

FLOW = "customers_company"
EARLY = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
LATE = EARLY + dt.timedelta(hours=1)


def _mapping(**extra) -> FlowMapping:
    return FlowMapping.from_dict(
        {
            "flow": FLOW,
            "poweroffice_go": {"entity": "customers", "route": {"IsPerson": False}},
            "invoiced": {"entity": "customers", "route": {"type": "company"}},
            "create": ["to_invoiced", "to_poweroffice_go"],
            "fields": [
                {"name": "name", "poweroffice_go": "Name", "invoiced": "name"},
                {"name": "phone", "poweroffice_go": "PhoneNumber", "invoiced": "phone"},
            ],
            **extra,
        }
    )


def _row(record_id: str, vals: dict, changed_at=EARLY, routed: bool = True) -> dict:
    return {
        "record_id": record_id,
        "vals": vals,
        "meta": {},
        "routed": routed,
        "external_ref": None,
        "changed_at": changed_at,
        "fingerprint": json.dumps([vals, routed], sort_keys=True),
    }


def _pair(store, n: int, pogo_vals: dict, inv_vals: dict, base: dict, pogo_at=EARLY, inv_at=EARLY) -> tuple[str, str]:
    """A linked pair whose records both changed since the last run (dirty), with ``base`` as its merge base."""
    pogo_id, inv_id = str(1000 + n), str(2000 + n)
    store.merge_records(FLOW, POGO, "setup", [_row(pogo_id, pogo_vals, pogo_at)])
    store.merge_records(FLOW, INVOICED, "setup", [_row(inv_id, inv_vals, inv_at)])
    store.complete(FLOW, "setup", Completion(links=[LinkWrite(pogo_id, inv_id, base)]))
    return pogo_id, inv_id


def _updates(store, run_id: str) -> dict[str, dict]:
    """Planned updates by target: {target: {record id: changes}}."""
    out: dict[str, dict] = {POGO: {}, INVOICED: {}}
    for target in (POGO, INVOICED):
        for item in store.plan_items(FLOW, run_id, target):
            out[target][item.id_of(target)] = item.changes
    return out


def _log(store, run_id: str, operation: str) -> list[tuple]:
    with store.transaction() as cur:
        cur.execute(
            store.q(
                "SELECT poweroffice_go_id, invoiced_id, reason, before, after FROM {s}.sync_log "
                "WHERE run_id = %s AND operation = %s ORDER BY id"
            ),
            (run_id, operation),
        )
        return cur.fetchall()


def test_a_field_new_to_the_mapping_is_copied_to_the_side_where_it_is_empty(link_store):
    base = {"name": "A AS"}  # synchronised before phone was mapped
    _p1, i1 = _pair(
        link_store,
        1,
        {"name": "A AS", "phone": "+47 1"},
        {"name": "A AS", "phone": None},
        base,
        pogo_at=EARLY,
        inv_at=LATE,
    )
    p2, _i2 = _pair(
        link_store,
        2,
        {"name": "A AS", "phone": None},
        {"name": "A AS", "phone": "+47 2"},
        base,
        pogo_at=LATE,
        inv_at=EARLY,
    )
    reconcile(link_store, _mapping(), "run")
    assert _updates(link_store, "run") == {INVOICED: {i1: {"phone": "+47 1"}}, POGO: {p2: {"phone": "+47 2"}}}


def test_equal_values_without_a_merge_base_become_the_base_and_write_nothing(link_store):
    pogo_id, _ = _pair(
        link_store, 1, {"name": "A AS", "phone": "+47 1"}, {"name": "A AS", "phone": "+47 1"}, {"name": "A AS"}
    )
    reconcile(link_store, _mapping(), "run")
    assert _updates(link_store, "run") == {POGO: {}, INVOICED: {}}
    with link_store.transaction() as cur:
        cur.execute(link_store.q("SELECT base FROM {s}.links WHERE poweroffice_go_id = %s"), (pogo_id,))
        assert cur.fetchone()[0] == {"name": "A AS", "phone": "+47 1"}


def test_two_different_values_without_a_merge_base_are_a_conflict_the_later_change_wins(link_store):
    _, inv_id = _pair(
        link_store,
        1,
        {"name": "A AS", "phone": "+47 old"},
        {"name": "A AS", "phone": "+47 new"},
        {"name": "A AS"},
        pogo_at=EARLY,
        inv_at=LATE,
    )
    pogo_id2, _ = _pair(
        link_store,
        2,
        {"name": "B AS", "phone": "+47 new"},
        {"name": "B AS", "phone": "+47 old"},
        {"name": "B AS"},
        pogo_at=LATE,
        inv_at=EARLY,
    )
    reconcile(link_store, _mapping(), "run", dry_run=True)
    assert _updates(link_store, "run") == {
        POGO: {"1001": {"phone": "+47 new"}},
        INVOICED: {"2002": {"phone": "+47 new"}},
    }
    conflicts = {(p, i): (before, after) for p, i, _reason, before, after in _log(link_store, "run", "conflict")}
    assert conflicts == {
        ("1001", inv_id): ({"phone": "+47 old"}, {"phone": "+47 new"}),
        (pogo_id2, "2002"): ({"phone": "+47 old"}, {"phone": "+47 new"}),
    }


def test_a_pair_linked_by_its_match_keys_keeps_the_values_each_side_has(link_store):
    link_store.merge_records(FLOW, POGO, "setup", [_row("1", {"name": "Fjord AS", "phone": "+47 1"})])
    link_store.merge_records(FLOW, INVOICED, "setup", [_row("2", {"name": "fjord as", "phone": None}, LATE)])
    reconcile(link_store, _mapping(match_on=["name"]), "run")
    # The name differs in case only but both hold one: the later change wins; the phone is copied, never blanked.
    assert _updates(link_store, "run") == {POGO: {"1": {"name": "fjord as"}}, INVOICED: {"2": {"phone": "+47 1"}}}


def test_the_guard_counts_changed_links_over_both_targets(link_store):
    base = {"name": "A AS", "phone": "+47 0"}
    for n in range(30):
        # 15 pairs changed in PowerOffice Go, 15 in Invoiced: each target alone stays under the floor of 25.
        changed = {"name": "A AS", "phone": f"+47 {n + 100}"}
        _pair(link_store, n, changed if n % 2 else base, base if n % 2 else changed, base)
    with pytest.raises(ChangeGuardTripped, match="would update 30 of 30 linked records"):
        reconcile(link_store, _mapping(), "run")
    assert _updates(link_store, "run") == {POGO: {}, INVOICED: {}}


def test_a_pair_updated_on_both_sides_counts_once_for_the_guard(link_store):
    base = {"name": "A AS", "phone": "+47 0"}
    for n in range(60):
        # 26 pairs with a name edited in PowerOffice Go and a phone edited in Invoiced: 26 changed links of 60.
        if n < 26:
            _pair(
                link_store,
                n,
                {"name": f"Renamed {n}", "phone": "+47 0"},
                {"name": "A AS", "phone": f"+47 {n + 100}"},
                base,
            )
        else:
            _pair(link_store, n, base, base, base)
    result = reconcile(link_store, _mapping(), "run")
    assert (result["update:invoiced"], result["update:poweroffice_go"]) == (26, 26)


def test_a_full_refresh_reports_drift_with_gaps_on_either_side_as_json_nulls(link_store):
    _pair(link_store, 1, {"name": "A AS", "phone": "+47 1"}, {"name": "A AS", "phone": None}, {"name": "A AS"})
    _pair(link_store, 2, {"name": "B AS", "phone": None}, {"name": "B AS", "phone": "+47 2"}, {"name": "B AS"})
    _pair(link_store, 3, {"name": "C AS"}, {"name": "C AS", "phone": "+47 3"}, {"name": "C AS"})  # mirrored before
    _pair(link_store, 4, {"name": "D AS", "phone": None}, {"name": "D AS", "phone": None}, {"name": "D AS"})
    for dry_run in (True, False):
        result = reconcile(link_store, _mapping(), f"run-{dry_run}", full_refresh=True, dry_run=dry_run)
        assert result["drift"]["pairs_differing"] == 3
        drift = sorted((p, before, after) for p, _i, _r, before, after in _log(link_store, f"run-{dry_run}", "drift"))
        assert drift == [
            ("1001", {"phone": "+47 1"}, {"phone": None}),
            ("1002", {"phone": None}, {"phone": "+47 2"}),
            ("1003", {"phone": None}, {"phone": "+47 3"}),
        ]


def test_an_out_of_flow_record_without_a_link_is_reported_once_as_not_synchronised(link_store):
    voided = {"id": 7, "status": "voided"}
    for run in ("run1", "run2"):
        link_store.write_staging(FLOW, run, INVOICED, [[("7", voided)]], False, None, lambda: None, lambda: 0)
        link_store.merge_records(FLOW, INVOICED, run, [_row("7", {"name": "Void AS", "phone": None}, routed=False)])
        reconcile(link_store, _mapping(), run)
    skips = _log(link_store, "run1", "skip") + _log(link_store, "run2", "skip")
    assert [(p, i) for p, i, *_ in skips] == [(None, "7")]
    assert "not synchronised" in skips[0][2]


def test_an_out_of_flow_record_is_left_to_the_sibling_flow_that_takes_it(link_store):
    link_store.write_staging(FLOW, "run", POGO, [[("8", {"Id": 8})]], False, None, lambda: None, lambda: 0)
    link_store.merge_records(FLOW, POGO, "run", [_row("8", {"name": "Kari", "phone": None}, routed=False)])
    reconcile(link_store, _mapping(), "run", ("customers_person",))
    assert _log(link_store, "run", "skip") == []


def test_a_dry_run_past_the_guards_limit_still_plans_and_says_a_real_run_would_stop(link_store):
    base = {"name": "A AS", "phone": "+47 0"}
    for n in range(30):
        _pair(link_store, n, {"name": "A AS", "phone": f"+47 {n + 100}"}, base, base)
    reconcile(link_store, _mapping(), "run", dry_run=True)
    assert len(_updates(link_store, "run")[INVOICED]) == 30
    [(_p, _i, reason, _b, _a)] = _log(link_store, "run", "guard")
    assert reason.startswith("dry run; a real run would stop here")
    assert "30 of 30" in reason


def test_importing_the_engine_does_not_load_pandas():
    code = "import sys, pogo_invoiced_sync.engine.steps; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
