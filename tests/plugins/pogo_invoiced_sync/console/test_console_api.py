"""The console's endpoints over HTTP (TestClient) on a real PostgreSQL link store, with Airflow's auth manager."""

from __future__ import annotations

import datetime as dt

import pytest

FLOW = "customers_company"
NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def _mirror(store, system: str, record_id: str, name: str, dirty: bool = False, ref: str | None = None) -> None:
    store.merge_records(
        FLOW,
        system,
        "seed",
        [
            {
                "record_id": record_id,
                "vals": {"name": name},
                "meta": {},
                "routed": True,
                "external_ref": ref,
                "changed_at": NOW,
                "fingerprint": f"{record_id}:{name}",
            }
        ],
    )
    if not dirty:
        with store.transaction() as cur:
            cur.execute(store.q("UPDATE {s}.records SET dirty = false WHERE record_id = %s"), (record_id,))


def _pair(store, pogo_id: str, inv_id: str, name: str) -> None:
    _mirror(store, "poweroffice_go", pogo_id, name)
    _mirror(store, "invoiced", inv_id, name)
    store.complete(FLOW, "seed", links=[{"poweroffice_go_id": pogo_id, "invoiced_id": inv_id, "base": {"name": name}}])


def _conflict(store, run_id: str, pogo_id: str, inv_id: str, losing: str, winning: str) -> int:
    """A conflict as the upsert step logs it: Invoiced won, its value was written to PowerOffice Go."""
    store.log(
        FLOW,
        run_id,
        [
            {
                "operation": "conflict",
                "outcome": "ok",
                "direction": "to_poweroffice_go",
                "poweroffice_go_id": pogo_id,
                "invoiced_id": inv_id,
                "reason": "name: both sides changed since the last sync; invoiced wins",
                "before": {"name": losing},
                "after": {"name": winning},
            }
        ],
    )
    with store.transaction() as cur:
        cur.execute(store.q("SELECT max(id) FROM {s}.sync_log"))
        return cur.fetchone()[0]


@pytest.fixture
def seeded(console):
    """Two linked companies (one with a conflict), a rejected record and a run summary."""
    store = console.store
    _pair(store, "101", "in_1", "Nordlys AS")
    _pair(store, "102", "in_2", "Fjord Consulting AS")
    store.start_run(FLOW, "scheduled__1", {})
    conflict = _conflict(store, "scheduled__1", "101", "in_1", "Nordlys Old AS", "Nordlys AS")
    _mirror(store, "poweroffice_go", "103", "Bad Company", dirty=True)
    store.log(
        FLOW,
        "scheduled__1",
        [
            {
                "operation": "create",
                "outcome": "failed",
                "direction": "to_invoiced",
                "poweroffice_go_id": "103",
                "reason": "name is too long",
            }
        ],
    )
    store.finish_run(
        FLOW,
        "scheduled__1",
        {
            "flow": FLOW,
            "run_id": "scheduled__1",
            "extracted": {},
            "unchanged": {},
            "by_direction": {
                "to_invoiced": {"created": 2, "rejected": 1},
                "to_poweroffice_go": {"updated": 1, "conflicts": 1},
            },
        },
    )
    return {"conflict": conflict}


def test_the_health_api_counts_links_open_conflicts_and_the_last_runs_failures(console, seeded):
    flows = console.login("viewer").client.get("/api/health").json()["flows"]
    company = next(f for f in flows if f["flow"] == FLOW)
    assert (company["linked"], company["open_conflicts"], company["failures"]) == (2, 1, 1)
    assert company["last_run"]["run_id"] == "scheduled__1"
    assert company["last_run"]["outcome"] == "finished with rejected records"
    assert company["chart"][-1] | {"created": 2, "updated": 1, "conflicts": 1, "rejected": 1} == company["chart"][-1]


def test_the_health_page_links_each_number_to_the_records_behind_it(console, seeded):
    page = console.login("viewer").client.get("/").text
    assert f"/list/conflicts?flow={FLOW}" in page
    assert f"/list/failures?flow={FLOW}&amp;run_id=scheduled__1" in page
    failures = console.client.get("/api/list/failures", params={"flow": FLOW, "run_id": "scheduled__1"}).json()
    assert [(r["poweroffice_go_id"], r["reason"]) for r in failures["rows"]] == [("103", "name is too long")]


def test_a_request_without_an_airflow_login_is_refused(console, seeded):
    console.client.cookies.clear()
    response = console.client.get("/api/health")
    assert response.status_code == 401


def test_a_record_is_found_by_either_systems_id_and_by_the_start_of_its_name(console, seeded):
    client = console.login("viewer").client
    by_pogo = client.get("/api/search", params={"q": "101"}).json()["results"]
    by_invoiced = client.get("/api/search", params={"q": "in_2"}).json()["results"]
    by_name = client.get("/api/search", params={"q": "fjord"}).json()["results"]
    assert [(r["system"], r["record_id"]) for r in by_pogo] == [("poweroffice_go", "101")]
    assert [(r["system"], r["record_id"]) for r in by_invoiced] == [("invoiced", "in_2")]
    assert {(r["system"], r["record_id"]) for r in by_name} == {("poweroffice_go", "102"), ("invoiced", "in_2")}


def test_the_record_shows_both_sides_the_merge_base_and_the_history_newest_first(console, seeded):
    console.store.log(
        FLOW,
        "scheduled__2",
        [
            {
                "operation": "update",
                "outcome": "ok",
                "direction": "to_invoiced",
                "poweroffice_go_id": "101",
                "invoiced_id": "in_1",
            }
        ],
    )
    record = console.login("viewer").client.get(f"/api/record/{FLOW}/invoiced/in_1").json()
    assert record["ids"] == {"poweroffice_go": "101", "invoiced": "in_1"}
    assert (
        record["records"]["poweroffice_go"]["vals"] == record["records"]["invoiced"]["vals"] == {"name": "Nordlys AS"}
    )
    assert record["link"]["base"] == {"name": "Nordlys AS"}
    assert [h["operation"] for h in record["history"]] == ["update", "conflict"]
    assert record["open_conflicts"] == [seeded["conflict"]]


def test_unknown_flows_systems_and_ids_get_a_404_that_names_them(console, seeded):
    client = console.login("admin").client
    assert (
        client.get(f"/api/record/{FLOW}/invoiced/in_404").json()["detail"]
        == f"no invoiced record 'in_404' in flow {FLOW}"
    )
    assert client.get(f"/api/record/{FLOW}/sap/1").status_code == 404
    assert client.get("/api/record/nope/invoiced/in_1").status_code == 404
    response = console.act("resolve", flow=FLOW, conflict_id=999999, choice="poweroffice_go")
    assert (response.status_code, response.json()["detail"]) == (404, f"no conflict 999999 in flow {FLOW}")


def test_resolving_a_conflict_records_the_decision_and_who_took_it(console, seeded):
    response = console.login("editor").act(
        "resolve", flow=FLOW, conflict_id=seeded["conflict"], choice="poweroffice_go"
    )
    assert response.status_code == 200, response.text
    assert response.json()["writes"] == ["poweroffice_go", "invoiced"]
    assert console.sql("SELECT kind, field, value, actor, status FROM {s}.operator_decisions") == [
        ("resolve", "name", "Nordlys Old AS", "editor", "pending")
    ]
    assert console.sql("SELECT operation, outcome, actor FROM {s}.sync_log WHERE run_id = 'console'") == [
        ("operator_resolve", "requested", "editor")
    ]
    assert console.client.get("/api/health").json()["flows"][0]["open_conflicts"] == 0


def test_a_conflict_already_decided_is_refused_as_stale_and_nothing_is_added(console, seeded):
    console.login("admin")
    assert console.act("resolve", flow=FLOW, conflict_id=seeded["conflict"], choice="invoiced").status_code == 200
    again = console.act("resolve", flow=FLOW, conflict_id=seeded["conflict"], choice="poweroffice_go")
    assert again.status_code == 409
    assert "already decided" in again.json()["detail"]
    assert console.sql("SELECT count(*) FROM {s}.operator_decisions") == [(1,)]


def test_a_conflict_with_a_newer_one_on_the_same_field_is_refused_as_stale(console, seeded):
    _conflict(console.store, "scheduled__2", "101", "in_1", "Nordlys Other AS", "Nordlys AS")
    response = console.login("admin").act("resolve", flow=FLOW, conflict_id=seeded["conflict"], choice="poweroffice_go")
    assert response.status_code == 409
    assert "stale" in response.json()["detail"]


def test_a_viewer_may_read_but_any_action_is_refused_and_nothing_is_written(console, seeded):
    console.login("viewer")
    for action, body in (
        ("resolve", {"conflict_id": seeded["conflict"], "choice": "invoiced"}),
        ("retry", {"system": "poweroffice_go", "record_id": "103"}),
        ("unlink", {"poweroffice_go_id": "101"}),
        ("exclude", {"system": "poweroffice_go", "record_id": "101"}),
    ):
        response = console.act(action, flow=FLOW, **body)
        assert response.status_code == 403, action
        assert "may not change sync_customers_company" in response.json()["detail"]
    assert console.sql("SELECT count(*) FROM {s}.sync_log WHERE run_id = 'console'") == [(0,)]
    assert console.sql("SELECT count(*) FROM {s}.links") == [(2,)]
    assert console.triggered == []


def test_the_record_page_offers_actions_to_editors_only(console, seeded):
    path = f"/record?flow={FLOW}&system=poweroffice_go&id=101"
    assert 'data-action="unlink"' not in console.login("viewer").client.get(path).text
    assert 'data-action="unlink"' in console.login("editor").client.get(path).text


def test_a_preview_says_what_would_happen_and_changes_nothing(console, seeded):
    response = console.login("admin").act("unlink", flow=FLOW, poweroffice_go_id="101", preview=True)
    assert response.json()["applied"] is False
    assert response.json()["message"].startswith("unlink poweroffice_go 101 from invoiced in_1")
    assert console.sql("SELECT count(*) FROM {s}.links") == [(2,)]


def test_unlinking_removes_the_link_and_excludes_both_records(console, seeded):
    assert console.login("admin").act("unlink", flow=FLOW, poweroffice_go_id="101").status_code == 200
    assert console.sql("SELECT poweroffice_go_id FROM {s}.links") == [("102",)]
    assert console.sql("SELECT system, record_id, actor FROM {s}.exclusions ORDER BY system") == [
        ("invoiced", "in_1", "admin"),
        ("poweroffice_go", "101", "admin"),
    ]
    assert console.sql("SELECT before FROM {s}.sync_log WHERE operation = 'operator_unlink'") == [
        ({"name": "Nordlys AS"},)
    ]


def test_relinking_a_record_that_is_linked_elsewhere_is_refused(console, seeded):
    console.login("admin").act("unlink", flow=FLOW, poweroffice_go_id="101")
    response = console.act("relink", flow=FLOW, poweroffice_go_id="101", invoiced_id="in_2")
    assert response.status_code == 409
    assert "invoiced record in_2 is already linked" in response.json()["detail"]
    assert console.sql("SELECT count(*) FROM {s}.links") == [(1,)]


def test_relinking_two_unlinked_records_links_them_includes_them_and_marks_them_for_the_next_run(console, seeded):
    console.login("admin").act("unlink", flow=FLOW, poweroffice_go_id="101")
    assert console.act("relink", flow=FLOW, poweroffice_go_id="101", invoiced_id="in_1").status_code == 200
    assert console.sql("SELECT base FROM {s}.links WHERE poweroffice_go_id = '101'") == [({},)]
    assert console.sql("SELECT count(*) FROM {s}.exclusions") == [(0,)]
    assert console.sql("SELECT count(*) FROM {s}.records WHERE record_id IN ('101', 'in_1') AND dirty") == [(2,)]


def test_excluding_and_including_a_record_is_logged_with_who_did_it(console, seeded):
    console.login("editor")
    assert console.act("exclude", flow=FLOW, system="invoiced", record_id="in_2", reason="disputed").status_code == 200
    assert console.act("exclude", flow=FLOW, system="invoiced", record_id="in_2").status_code == 409
    assert console.act("include", flow=FLOW, system="invoiced", record_id="in_2").status_code == 200
    assert console.act("include", flow=FLOW, system="invoiced", record_id="in_2").status_code == 409
    assert console.sql("SELECT operation, actor FROM {s}.sync_log WHERE run_id = 'console' ORDER BY id") == [
        ("operator_exclude", "editor"),
        ("operator_include", "editor"),
    ]
    assert console.sql("SELECT count(*) FROM {s}.records WHERE record_id IN ('102', 'in_2') AND dirty") == [(2,)]


def test_retrying_a_rejected_record_marks_it_and_starts_the_flows_dag(console, seeded):
    response = console.login("admin").act("retry", flow=FLOW, system="poweroffice_go", record_id="103")
    assert response.status_code == 200
    assert response.json()["dag_run_id"] == "manual__console_1"
    assert console.triggered == [("sync_customers_company", "admin")]
    assert console.sql("SELECT dirty FROM {s}.records WHERE record_id = '103'") == [(True,)]


def test_an_action_must_be_sent_as_json(console, seeded):
    response = console.login("admin").client.post(
        "/api/actions/unlink", data={"flow": FLOW, "poweroffice_go_id": "101"}
    )
    assert response.status_code == 415
    assert console.sql("SELECT count(*) FROM {s}.links") == [(2,)]


def test_a_request_missing_a_field_is_refused_with_its_name(console, seeded):
    response = console.login("admin").act("relink", flow=FLOW, poweroffice_go_id="101")
    assert (response.status_code, response.json()["detail"]) == (422, "invoiced_id is required")


def test_a_search_with_one_match_opens_that_record(console, seeded):
    response = console.login("viewer").client.get("/record", params={"q": "in_2"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/record?flow={FLOW}&system=invoiced&id=in_2"


def test_a_decided_conflict_leaves_the_open_conflicts_view(console, seeded):
    assert len(console.sql("SELECT * FROM {s}.v_open_conflicts")) == 1
    console.login("admin").act("resolve", flow=FLOW, conflict_id=seeded["conflict"], choice="invoiced")
    assert console.sql("SELECT * FROM {s}.v_open_conflicts") == []
