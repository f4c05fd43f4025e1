"""The DAG folder imports cleanly and yields exactly the three sync DAGs, configured as promised."""
import socket

import pytest

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_the_dag_folder_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_the_dag_folder_yields_exactly_the_three_sync_dags(dagbag):
    assert set(dagbag.dags) == {"sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"}


@pytest.mark.parametrize("dag_id", ["sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"])
def test_each_dag_chains_extract_map_reconcile_upsert_report(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.get_task("map").upstream_task_ids == {"extract_poweroffice_go", "extract_invoiced"}
    assert dag.get_task("reconcile").upstream_task_ids == {"map"}
    assert dag.get_task("report").upstream_task_ids == {"upsert_invoiced", "upsert_poweroffice_go"}


@pytest.mark.parametrize("dag_id", ["sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"])
def test_each_dag_runs_hourly_one_run_at_a_time_with_retries_docs_and_tags(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "0 * * * *" in repr(dag.timetable)
    assert dag.max_active_runs == 1
    assert dag.default_args["retries"] >= 1 and dag.owner
    assert dag.doc_md and "dry_run" in dag.doc_md and "sync" in dag.tags
    assert set(dag.params) == {"full_refresh", "dry_run", "allow_mass_changes"}


def test_api_tasks_share_one_pool_per_api(dagbag):
    pools = {(t.task_id, t.pool) for d in dagbag.dags.values() for t in d.tasks if t.task_id.startswith(("extract", "upsert"))}
    assert {p for t, p in pools if t.endswith("poweroffice_go")} == {"poweroffice_go_api"}
    assert {p for t, p in pools if t.endswith("invoiced")} == {"invoiced_api"}


def test_the_invoice_flow_also_runs_once_both_customer_flows_have_run(dagbag):
    condition = repr(dagbag.dags["sync_salesorders_invoices"].timetable)
    assert "customers_company" in condition and "customers_person" in condition


def test_parsing_the_dags_opens_no_network_connection(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise AssertionError("network access at DAG parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert DagBag(dag_folder=str(ROOT / "dags")).import_errors == {}


@pytest.mark.parametrize("dag_id", ["sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"])
def test_only_the_task_after_report_emits_the_flows_asset(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    emitting = {t.task_id: [getattr(o, "uri", None) for o in t.outlets] for t in dag.tasks if t.outlets}
    assert emitting == {"announce_links": [f"pogo-invoiced-sync://links/{dag_id.removeprefix('sync_')}"]}
    assert dag.get_task("announce_links").upstream_task_ids == {"report", "upsert_invoiced", "upsert_poweroffice_go"}


@pytest.mark.parametrize("dag_id", ["sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"])
def test_the_report_runs_whatever_became_of_the_run(dagbag, dag_id):
    assert dagbag.dags[dag_id].get_task("report").trigger_rule == "all_done"
