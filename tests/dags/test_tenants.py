"""Many client pairs (tenants) from ``<include_dir>/tenants.yaml``: their DAGs, connections and separate link stores."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOW_IDS = {"sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"}
TWO_TENANTS = """
tenants:
  acme:
    poweroffice_go_conn_id: poweroffice_go_acme
    invoiced_conn_id: invoiced_acme
  globex:
    poweroffice_go_conn_id: poweroffice_go_globex
    invoiced_conn_id: invoiced_globex
    sync_state_conn_id: sync_state_globex
    state_schema: globex_links
"""


def _tenants_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenants.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _api_conn_ids(dag) -> dict[str, str]:
    return {t.task_id: t.api_conn_id for t in dag.tasks if t.task_id.startswith(("extract_", "upsert_"))}


@pytest.fixture
def include_dir(tmp_path, monkeypatch) -> Path:
    """An include folder of its own (the real mappings, no tenants file yet), set as the package's include_dir."""
    folder = tmp_path / "include"
    shutil.copytree(ROOT / "include" / "mappings", folder / "mappings")
    monkeypatch.setenv("AIRFLOW__POGO_INVOICED_SYNC__INCLUDE_DIR", str(folder))
    return folder


# -- the tenants file


def test_without_a_tenants_file_there_is_one_tenant_default_with_todays_connections_and_schema(tmp_path):
    from pogo_invoiced_sync.tenants import load_tenants

    (tenant,) = load_tenants(tmp_path / "tenants.yaml")
    assert (tenant.name, tenant.poweroffice_go_conn_id, tenant.invoiced_conn_id) == (
        "default",
        "poweroffice_go_default",
        "invoiced_default",
    )
    assert (tenant.sync_state_conn_id, tenant.state_schema) == ("sync_state_default", "pogo_invoiced_sync")


def test_a_tenants_file_with_only_comments_means_the_default_tenant(tmp_path):
    from pogo_invoiced_sync.tenants import DEFAULT, load_tenants

    assert load_tenants(_tenants_file(tmp_path, "# tenants:\n#   acme: ...\n")) == [DEFAULT]


def test_a_tenant_without_a_schema_or_state_connection_gets_its_own_schema_on_the_default_connection(tmp_path):
    from pogo_invoiced_sync.tenants import load_tenants

    acme, globex = load_tenants(_tenants_file(tmp_path, TWO_TENANTS))
    assert (acme.sync_state_conn_id, acme.state_schema) == ("sync_state_default", "pogo_invoiced_sync_acme")
    assert (globex.sync_state_conn_id, globex.state_schema) == ("sync_state_globex", "globex_links")


def test_a_misspelt_key_fails_naming_the_file_the_key_and_the_expected_keys(tmp_path):
    from pogo_invoiced_sync.tenants import TenantsFileError, load_tenants

    path = _tenants_file(
        tmp_path, TWO_TENANTS.replace("invoiced_conn_id: invoiced_acme", "invoiced_conn: invoiced_acme")
    )
    with pytest.raises(TenantsFileError) as error:
        load_tenants(path)
    message = str(error.value)
    assert str(path) in message
    assert "tenants.acme.invoiced_conn: unknown key" in message
    assert "tenants.acme.invoiced_conn_id: missing" in message
    assert "expected one of poweroffice_go_conn_id, invoiced_conn_id" in message


def test_a_tenant_name_that_cannot_be_part_of_a_dag_id_fails_with_the_rule(tmp_path):
    from pogo_invoiced_sync.tenants import TenantsFileError, load_tenants

    with pytest.raises(TenantsFileError, match=r"tenants\.Acme Corp: invalid tenant name; expected lower-case"):
        load_tenants(_tenants_file(tmp_path, TWO_TENANTS.replace("acme:", "Acme Corp:")))


def test_two_tenants_in_one_schema_fail_because_their_records_would_mix(tmp_path):
    from pogo_invoiced_sync.tenants import TenantsFileError, load_tenants

    text = TWO_TENANTS.replace("globex_links", "pogo_invoiced_sync_acme").replace(
        "sync_state_globex", "sync_state_default"
    )
    with pytest.raises(TenantsFileError, match="already the schema of tenant 'acme'"):
        load_tenants(_tenants_file(tmp_path, text))


# -- the DAGs


def test_without_a_tenants_file_the_dags_keep_todays_ids_connections_and_schema(tmp_path):
    from pogo_invoiced_sync.dag_factory import build_all

    dags = build_all(tenants_path=tmp_path / "tenants.yaml")
    assert set(dags) == FLOW_IDS
    dag = dags["sync_customers_company"]
    assert {t.state_schema for t in dag.tasks} == {"pogo_invoiced_sync"}
    assert set(_api_conn_ids(dag).values()) == {"poweroffice_go_default", "invoiced_default"}
    assert not [tag for tag in dag.tags if tag.startswith("tenant:")]


def test_two_tenants_give_six_dags_prefixed_by_the_tenant_and_tagged_with_it(tmp_path):
    from pogo_invoiced_sync.dag_factory import build_all

    dags = build_all(tenants_path=_tenants_file(tmp_path, TWO_TENANTS))
    assert set(dags) == {f"{t}.{d}" for t in ("acme", "globex") for d in FLOW_IDS}
    assert {tag for d in dags.values() for tag in d.tags if tag.startswith("tenant:")} == {
        "tenant:acme",
        "tenant:globex",
    }
    assert "tenant:acme" in dags["acme.sync_customers_person"].tags


def test_each_tenants_tasks_use_its_own_connections_schema_and_pools(tmp_path):
    from pogo_invoiced_sync.dag_factory import build_all

    dag = build_all(tenants_path=_tenants_file(tmp_path, TWO_TENANTS))["globex.sync_salesorders_invoices"]
    assert _api_conn_ids(dag) == {
        "extract_poweroffice_go": "poweroffice_go_globex",
        "upsert_poweroffice_go": "poweroffice_go_globex",
        "extract_invoiced": "invoiced_globex",
        "upsert_invoiced": "invoiced_globex",
    }
    assert {(t.sync_state_conn_id, t.state_schema) for t in dag.tasks} == {("sync_state_globex", "globex_links")}
    assert {t.pool for t in dag.tasks if t.task_id.endswith("poweroffice_go")} == {"poweroffice_go_api_globex"}
    assert {t.pool for t in dag.tasks if t.task_id.endswith("_invoiced")} == {"invoiced_api_globex"}


def test_a_tenants_invoice_flow_waits_for_its_own_customer_flows_not_another_tenants(tmp_path):
    from pogo_invoiced_sync.dag_factory import build_all

    dags = build_all(tenants_path=_tenants_file(tmp_path, TWO_TENANTS))
    emitted = {d.dag_id: d.get_task("announce_links").outlets[0].uri for d in dags.values()}
    assert emitted["acme.sync_customers_company"] == "pogo-invoiced-sync://acme/links/customers_company"
    condition = repr(dags["acme.sync_salesorders_invoices"].timetable)
    assert "acme/links/customers_company" in condition
    assert "acme/links/customers_person" in condition
    assert "globex" not in condition


def test_the_dag_folder_exposes_every_tenants_dags_from_the_configured_include_dir(include_dir):
    from airflow.dag_processing.dagbag import DagBag

    _tenants_file(include_dir, TWO_TENANTS)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {f"{t}.{d}" for t in ("acme", "globex") for d in FLOW_IDS}


def test_removing_a_tenant_from_the_file_removes_its_dags_from_the_dag_folder(include_dir):
    from airflow.dag_processing.dagbag import DagBag

    _tenants_file(include_dir, TWO_TENANTS)
    _tenants_file(include_dir, "tenants:\n" + TWO_TENANTS.split("  globex:")[0].split("tenants:\n", 1)[1])
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert set(bag.dags) == {f"acme.{d}" for d in FLOW_IDS}


def test_a_misspelt_key_is_a_dag_folder_import_error_that_names_the_key(include_dir):
    from airflow.dag_processing.dagbag import DagBag

    _tenants_file(include_dir, TWO_TENANTS.replace("state_schema:", "state_shema:"))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    (error,) = bag.import_errors.values()
    assert "tenants.globex.state_shema: unknown key" in error


# -- two tenants end to end: each against its own pair of sandbox accounts, each in its own link-store schema

RUN_CONF = {"full_refresh": False, "dry_run": False, "allow_mass_changes": False}
END_TO_END = """
tenants:
  acme:
    poweroffice_go_conn_id: poweroffice_go_acme
    invoiced_conn_id: invoiced_acme
  globex:
    poweroffice_go_conn_id: poweroffice_go_globex
    invoiced_conn_id: invoiced_globex
  broken:
    poweroffice_go_conn_id: poweroffice_go_broken
    invoiced_conn_id: invoiced_broken
"""


@pytest.fixture(scope="module")
def other_sandboxes(tmp_path_factory):
    """A second pair of sandboxes (other accounts, other data): the second tenant's client pair."""
    from sandboxes.process import SandboxProcess

    process = SandboxProcess(log_path=tmp_path_factory.mktemp("sandbox") / "other.log").start()
    yield process
    process.stop()


@pytest.fixture
def tenant_dags(connections, other_sandboxes, postgres_dsn, airflow_db, monkeypatch, include_dir):
    """The DAG folder's DAGs with acme on the session's sandboxes, globex on the other ones; link stores emptied.

    ``dag.test()`` runs the DAG folder's serialised version of a DAG, so the tenants come from the include folder.
    """
    import psycopg
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import invoiced_connection, pogo_connection

    other_sandboxes.reset()
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_ACME", pogo_connection(connections))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_ACME", invoiced_connection(connections))
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_GLOBEX", pogo_connection(other_sandboxes))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_GLOBEX", invoiced_connection(other_sandboxes))
    # broken: its PowerOffice Go connection was never added, its Invoiced one holds a wrong API key.
    wrong = json.loads(invoiced_connection(connections))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_BROKEN", json.dumps({**wrong, "login": "not-the-api-key"}))
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for schema in ("pogo_invoiced_sync_acme", "pogo_invoiced_sync_globex", "pogo_invoiced_sync_broken"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    _tenants_file(include_dir, END_TO_END)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dags = bag.dags
    for dag in dags.values():
        for task in dag.tasks:
            task.retries = 0
    return dags


def _run(dag, expect: str = "success"):
    dag_run = dag.test(run_conf=RUN_CONF)
    assert dag_run.state == expect, f"{dag.dag_id} ended {dag_run.state}"
    return dag_run


def _links(dsn: str, schema: str) -> set[tuple[str, str]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return set(conn.execute(f'SELECT poweroffice_go_id, invoiced_id FROM "{schema}".links').fetchall())


def test_two_tenants_sync_their_own_client_pairs_into_separate_link_store_schemas(
    tenant_dags, connections, other_sandboxes, postgres_dsn
):
    connections.pogo.seed(companies=2)
    other_sandboxes.pogo.seed(companies=3)
    _run(tenant_dags["acme.sync_customers_company"])
    _run(tenant_dags["globex.sync_customers_company"])
    acme, globex = _links(postgres_dsn, "pogo_invoiced_sync_acme"), _links(postgres_dsn, "pogo_invoiced_sync_globex")
    assert {i for _, i in acme} == {str(c["id"]) for c in connections.invoiced.records("customers")}
    assert {i for _, i in globex} == {str(c["id"]) for c in other_sandboxes.invoiced.records("customers")}
    assert (len(acme), len(globex)) == (2, 3)


def test_a_tenant_with_a_missing_connection_fails_naming_it_while_the_other_tenants_runs_succeed(
    tenant_dags, connections, postgres_dsn, capsys
):
    connections.pogo.seed(companies=2)
    capsys.readouterr()
    _run(tenant_dags["broken.sync_customers_company"], expect="failed")
    log = capsys.readouterr().out
    assert (
        "connection 'poweroffice_go_broken' does not exist. Fix the Airflow connection 'poweroffice_go_broken'" in log
    )
    _run(tenant_dags["acme.sync_customers_company"])
    assert len(_links(postgres_dsn, "pogo_invoiced_sync_acme")) == 2


def test_a_tenant_with_a_wrong_api_key_fails_naming_the_connection_while_the_other_tenants_runs_succeed(
    tenant_dags, connections, postgres_dsn, capsys
):
    connections.invoiced.seed(companies=2)
    capsys.readouterr()
    _run(tenant_dags["broken.sync_customers_company"], expect="failed")
    log = capsys.readouterr().out
    assert "Fix the Airflow connection 'invoiced_broken'" in log
    _run(tenant_dags["acme.sync_customers_company"])
    assert len(_links(postgres_dsn, "pogo_invoiced_sync_acme")) == 2


def test_the_operations_guides_tenants_example_gives_the_dags_and_schemas_it_describes(tmp_path):
    from pogo_invoiced_sync.dag_factory import build_all
    from pogo_invoiced_sync.tenants import load_tenants

    section = (ROOT / "docs" / "operations.md").read_text().split("Many client pairs (tenants)", 1)[1]
    example = _tenants_file(tmp_path, section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert [(t.name, t.state_schema) for t in load_tenants(example)] == [
        ("acme", "pogo_invoiced_sync_acme"),
        ("globex", "pogo_invoiced_sync_globex"),
    ]
    dags = build_all(tenants_path=example)
    assert "acme.sync_customers_company" in dags
    assert dags["acme.sync_customers_company"].get_task("extract_poweroffice_go").pool == "poweroffice_go_api_acme"


def test_the_checked_in_tenants_file_is_only_an_example_so_the_checkout_keeps_the_default_tenant():
    from pogo_invoiced_sync.tenants import DEFAULT, load_tenants

    assert load_tenants(ROOT / "include" / "tenants.yaml") == [DEFAULT]
