"""The console with several tenants: each tenant's pages and API read its own link-store schema and act on its DAGs."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]

FLOW = "customers_company"


@pytest.fixture
def acme_store(postgres_dsn):
    """A second link store: tenant acme's schema, beside the default tenant's (the ``link_store`` fixture)."""
    import psycopg

    from pogo_invoiced_sync.engine.link_store import LinkStore

    store = LinkStore(lambda: psycopg.connect(postgres_dsn), f"acme_{uuid.uuid4().hex[:10]}")
    store.migrate()
    yield store
    store.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')


def _linked(store, pairs: dict[str, str]) -> None:
    """Linked companies as a run leaves them, one rejected PowerOffice Go record (``9``) to retry."""
    records = {"poweroffice_go": [*pairs, "9"], "invoiced": list(pairs.values())}
    for system, ids in records.items():
        store.merge_records(
            FLOW,
            system,
            "seed",
            [
                {
                    "record_id": i,
                    "vals": {"name": f"Firma {i}"},
                    "meta": {},
                    "routed": True,
                    "external_ref": None,
                    "changed_at": None,
                    "fingerprint": i,
                }
                for i in ids
            ],
        )
    from pogo_invoiced_sync.engine.model import Completion, LinkWrite

    store.complete(FLOW, "seed", Completion(links=[LinkWrite(p, i, {}) for p, i in pairs.items()]))


@pytest.fixture
def two_tenants(link_store, acme_store, console_for, postgres_dsn):
    """The console over the default tenant (two pairs) and acme (three pairs), each in its own schema."""
    from pogo_invoiced_sync.tenants import Tenant

    _linked(link_store, {"1": "in_1", "2": "in_2"})
    _linked(acme_store, {"1": "acme_1", "2": "acme_2", "3": "acme_3"})
    tenants = [
        Tenant("default", "poweroffice_go_default", "invoiced_default", "sync_state_default", link_store.schema),
        Tenant("acme", "poweroffice_go_acme", "invoiced_acme", "sync_state_default", acme_store.schema),
    ]
    return console_for(postgres_dsn, link_store.schema, tenants=tenants)


def _linked_count(response) -> int:
    return next(f for f in response.json()["flows"] if f["flow"] == FLOW)["linked"]


def test_the_default_tenant_keeps_the_consoles_root_and_its_own_schema(two_tenants):
    response = two_tenants.login("viewer").client.get("/api/health")
    assert response.json()["tenant"] == "default"
    assert _linked_count(response) == 2


def test_another_tenants_console_is_under_its_prefix_and_reads_its_own_schema(two_tenants):
    response = two_tenants.login("viewer").client.get("/t/acme/api/health")
    assert response.json()["tenant"] == "acme"
    assert _linked_count(response) == 3


def test_the_api_also_takes_the_tenant_as_a_query_parameter(two_tenants):
    assert _linked_count(two_tenants.login("viewer").client.get("/api/health", params={"tenant": "acme"})) == 3


def test_a_record_is_looked_up_in_its_own_tenants_schema_only(two_tenants):
    client = two_tenants.login("viewer").client
    assert client.get("/t/acme/api/search", params={"q": "acme_3"}).json()["results"]
    assert client.get("/api/search", params={"q": "acme_3"}).json()["results"] == []


def test_an_unknown_tenant_gets_a_404_that_names_the_tenants(two_tenants):
    response = two_tenants.login("viewer").client.get("/t/globex/api/health")
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown tenant 'globex'; tenants: acme, default"


def test_a_tenants_pages_link_within_that_tenant_and_name_its_dags(two_tenants):
    page = two_tenants.login("viewer").client.get("/t/acme/").text
    links = re.findall(r'href="([^"]+)"', page)
    own = [h for h in links if "/list/" in h or "/record" in h]
    assert own
    assert all(h.startswith("/t/acme/") for h in own)
    assert "acme.sync_customers_company" in page


def test_every_page_offers_a_switch_to_the_other_tenants(two_tenants):
    page = two_tenants.login("viewer").client.get("/t/acme/list/links", params={"flow": FLOW}).text
    switch = re.search(r'<span class="tenants" data-tenant="acme">(.*?)</span>', page).group(1)
    assert '<a href="/">default</a>' in switch
    assert '<strong aria-current="page">acme</strong>' in switch


def test_a_retry_in_a_tenants_console_starts_that_tenants_dag(two_tenants, acme_store):
    response = two_tenants.login("admin").client.post(
        "/t/acme/api/actions/retry", json={"flow": FLOW, "system": "poweroffice_go", "record_id": "9"}
    )
    assert response.status_code == 200
    assert "acme.sync_customers_company" in response.json()["message"]
    assert two_tenants.triggered == [("acme.sync_customers_company", "admin")]


def test_without_a_tenants_file_the_console_shows_no_tenant_switch(console):
    page = console.login("viewer").client.get("/").text
    assert 'class="tenants"' not in page


def test_the_console_reads_the_tenants_file_and_each_tenants_sync_state_connection(
    link_store, acme_store, auth_manager, monkeypatch, tmp_path, postgres_dsn
):
    from fastapi.testclient import TestClient

    from pogo_invoiced_sync.console.app import create_app
    from tools.postgres import airflow_connection_json

    _linked(acme_store, {"1": "acme_1"})
    # One include folder holds both the tenants file and the mappings (the include_dir setting names it).
    shutil.copytree(ROOT / "include" / "mappings", tmp_path / "mappings")
    (tmp_path / "tenants.yaml").write_text(
        "tenants:\n  acme:\n    poweroffice_go_conn_id: p\n    invoiced_conn_id: i\n"
        f"    sync_state_conn_id: sync_state_acme\n    state_schema: {acme_store.schema}\n"
    )
    monkeypatch.setenv("AIRFLOW__POGO_INVOICED_SYNC__INCLUDE_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_STATE_ACME", airflow_connection_json(postgres_dsn))
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    with TestClient(create_app()) as client:
        client.cookies.set("_token", auth_manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer")))
        response = client.get("/api/health")
    assert response.json()["tenant"] == "acme"  # the only tenant is the one shown at the root
    assert _linked_count(response) == 1
