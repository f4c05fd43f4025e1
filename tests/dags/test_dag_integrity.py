"""The DAG folder imports cleanly and yields exactly the three sync DAGs, configured as promised."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pogo_invoiced_sync import config

ROOT = Path(__file__).resolve().parents[2]
DAG_IDS = ["sync_customers_company", "sync_customers_person", "sync_salesorders_invoices"]


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
    assert dag.default_args["retries"] >= 1
    assert dag.owner
    assert dag.doc_md
    assert "dry_run" in dag.doc_md
    assert "sync" in dag.tags
    assert set(dag.params) == {"full_refresh", "dry_run", "allow_mass_changes"}


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_each_task_weighs_its_upstream_tasks_so_runs_already_under_way_go_first(dagbag, dag_id):
    # With many tenants' runs queued at once, writes start as soon as one run is through its extracts.
    assert {t.weight_rule for t in dagbag.dags[dag_id].tasks} == {"upstream"}


def test_api_tasks_share_one_pool_per_api(dagbag):
    pools = {
        (t.task_id, t.pool)
        for d in dagbag.dags.values()
        for t in d.tasks
        if t.task_id.startswith(("extract", "upsert"))
    }
    assert {p for t, p in pools if t.endswith("poweroffice_go")} == {"poweroffice_go_api"}
    assert {p for t, p in pools if t.endswith("invoiced")} == {"invoiced_api"}


def test_the_invoice_flow_also_runs_once_both_customer_flows_have_run(dagbag):
    condition = repr(dagbag.dags["sync_salesorders_invoices"].timetable)
    assert "customers_company" in condition
    assert "customers_person" in condition


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


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (nothing imported yet), with the test's environment plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", config.ENV_VAR)} | env
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300, check=False
    )


def test_importing_the_dag_file_loads_neither_pandas_nor_psycopg(tmp_path):
    code = (
        f"import runpy, sys; runpy.run_path({str(ROOT / 'dags' / 'sync_flows.py')!r}); "
        "print(sorted(m for m in ('pandas', 'psycopg', 'psycopg2') if m in sys.modules))"
    )
    done = _python(code, tmp_path, PYTHONPATH=str(ROOT / "plugins"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def installed_copy(tmp_path) -> dict[str, Path]:
    """The package copied into a site folder of its own, with the include folder elsewhere, and an edit in it.

    Nothing in the copy's location leads to the checkout's include/: only the include_dir setting can find the
    mappings, and the edited description shows which files were read.
    """
    site, include, dags, plugins, cwd = (tmp_path / n for n in ("site", "config", "dags", "plugins", "elsewhere"))
    shutil.copytree(
        ROOT / "plugins" / "pogo_invoiced_sync",
        site / "pogo_invoiced_sync",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(ROOT / "include", include)
    company = include / "mappings" / "customers_company.yaml"
    company.write_text(company.read_text().replace("\ndescription: ", "\ndescription: Read from the setting. ", 1))
    for folder in (dags, plugins, cwd):
        folder.mkdir()
    return {"site": site, "include": include, "dags": dags, "plugins": plugins, "cwd": cwd, "home": tmp_path}


def _build_dags_in(where: dict[str, Path], **env: str) -> subprocess.CompletedProcess:
    code = (
        "import json, pogo_invoiced_sync; from pogo_invoiced_sync.dag_factory import build_all; dags = build_all(); "
        "print(json.dumps({'package': pogo_invoiced_sync.__file__, 'dags': sorted(dags), "
        "'description': dags['sync_customers_company'].description}))"
    )
    # PYTHONPATH is the installed copy only; Airflow's dags and plugins folders are empty ones (Airflow puts the
    # plugins folder on sys.path, which must not be the checkout's).
    return _python(
        code,
        where["cwd"],
        PYTHONPATH=str(where["site"]),
        AIRFLOW_HOME=str(where["home"] / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(where["dags"]),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(where["plugins"]),
        **env,
    )


def test_an_installed_package_builds_the_dags_from_the_mappings_in_the_include_dir_setting(installed_copy):
    done = _build_dags_in(installed_copy, **{config.ENV_VAR: str(installed_copy["include"])})
    assert done.returncode == 0, done.stderr
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(built["package"]).is_relative_to(installed_copy["site"])
    assert built["dags"] == DAG_IDS
    assert built["description"].startswith("Read from the setting. ")


def test_an_installed_package_without_the_setting_says_which_folder_it_looked_in_and_what_to_set(installed_copy):
    done = _build_dags_in(installed_copy)
    assert done.returncode != 0
    assert f"mappings folder {installed_copy['home'] / 'include' / 'mappings'} does not exist" in done.stderr
    assert config.ENV_VAR in done.stderr
