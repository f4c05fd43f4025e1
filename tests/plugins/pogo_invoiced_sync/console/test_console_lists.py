"""The console's long lists page through every row, and its links work where Airflow is served under a path."""

from __future__ import annotations

import re

FLOW = "customers_company"


def _excluded(console, count: int) -> None:
    """``count`` excluded records, several excluded in the same second (the keyset must still order them)."""
    console.sql(
        "INSERT INTO {s}.exclusions (flow, system, record_id, actor, reason, excluded_at) "
        "SELECT %s, 'poweroffice_go', n::text, 'admin', 'pinned', "
        "timestamptz '2026-11-01 12:00' + (n / 7) * interval '1 second' FROM generate_series(1, %s) n",
        FLOW,
        count,
    )


def _waiting(console, count: int) -> None:
    """``count`` records waiting for their customer, all logged in the same run."""
    console.store.merge_records(
        FLOW,
        "invoiced",
        "seed",
        [
            {
                "record_id": f"in_{n}",
                "vals": {"name": f"Firma {n}"},
                "meta": {},
                "routed": True,
                "external_ref": None,
                "changed_at": None,
                "fingerprint": str(n),
            }
            for n in range(count)
        ],
    )
    console.store.log(
        FLOW,
        "scheduled__1",
        [
            {
                "operation": "wait",
                "outcome": "skipped",
                "direction": "to_poweroffice_go",
                "invoiced_id": f"in_{n}",
                "reason": "customer not linked yet",
            }
            for n in range(count)
        ],
    )


def _all_pages(client, kind: str) -> tuple[list[str], int]:
    seen, pages, after = [], 0, None
    while True:
        data = client.get(f"/api/list/{kind}", params={"flow": FLOW, **({"after": after} if after else {})}).json()
        seen += [r["record_id"] for r in data["rows"]]
        pages += 1
        after = data["next"]
        if after is None:
            return seen, pages


def test_more_than_500_excluded_records_are_all_listed_page_by_page_once_each(console):
    _excluded(console, 530)
    seen, pages = _all_pages(console.login("viewer").client, "excluded")
    assert sorted(seen, key=int) == [str(n) for n in range(1, 531)]
    assert pages == 11


def test_waiting_records_are_listed_page_by_page_newest_first(console):
    _waiting(console, 120)
    seen, pages = _all_pages(console.login("viewer").client, "waiting")
    assert sorted(seen) == sorted(f"in_{n}" for n in range(120))
    assert pages == 3


def test_the_excluded_list_page_links_to_the_next_page(console):
    _excluded(console, 60)
    client = console.login("viewer").client
    page = client.get("/list/excluded", params={"flow": FLOW}).text
    (href,) = re.findall(r'<a href="([^"]*/list/excluded\?[^"]*after=[^"]*)">older', page)
    second = client.get(href.replace("&amp;", "&")).text
    assert len(re.findall(r"<tr><td>PowerOffice Go</td>", second)) == 10


def test_a_cursor_the_list_did_not_return_is_refused_clearly(console):
    response = console.login("viewer").client.get("/api/list/waiting", params={"flow": FLOW, "after": "yesterday"})
    assert response.status_code == 422
    assert "after must be a cursor this list returned" in response.json()["detail"]


def test_the_ui_navigation_entry_is_relative_so_it_works_under_airflows_base_path():
    from pogo_invoiced_sync.console.plugin import SyncConsolePlugin

    (view,) = SyncConsolePlugin.external_views
    assert view["href"] == "pogo-invoiced-sync/"


def test_the_login_link_of_an_error_page_goes_to_airflows_root_under_a_base_path(link_store, auth_manager):
    import psycopg
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pogo_invoiced_sync.console.app import create_app

    airflow = FastAPI()
    airflow.mount("/airflow/pogo-invoiced-sync", create_app(connect=lambda: psycopg.connect(link_store.conn.info.dsn)))
    with TestClient(airflow) as client:
        page = client.get("/airflow/pogo-invoiced-sync/t/acme/")
    assert page.status_code == 401
    assert '<a href="/airflow/" target="_top">Log in to Airflow</a>' in page.text
