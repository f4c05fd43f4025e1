"""Configuration failures fail a task at once (no retry ladder), naming the connection, its host and the fix; they
are never logged as bad records (issue 9 §2)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def with_retries(stack, monkeypatch):
    """The DAG's tasks get retries again (the stack turns them off), with no delay: a retried task would show."""
    for dag in stack.dagbag.dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 2)
            monkeypatch.setattr(task, "retry_delay", dt.timedelta(0))
            monkeypatch.setattr(task, "retry_exponential_backoff", False)
    return stack


def _task_states(dag_run) -> dict[str, tuple[str, int]]:
    """Each task's final state and how many times it was tried."""
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}


def test_a_wrong_subscription_key_fails_the_extract_at_once_naming_connection_host_and_field(
        with_retries, monkeypatch, capfd):
    stack = with_retries
    stack.sandboxes.pogo.seed(companies=2)
    s = stack.sandboxes.settings
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", json.dumps(
        {"conn_type": "http", "host": f"{stack.sandboxes.pogo_url}/v2", "login": s.pogo_application_key,
         "password": s.pogo_client_key, "extra": {"subscription_key": "f" * 32}}))
    dag_run = stack.run("customers_company", expect="failed")
    assert _task_states(dag_run)["extract_poweroffice_go"] == ("failed", 1)
    task_log = capfd.readouterr().out
    assert "AirflowFailException" in task_log
    assert f"connection 'poweroffice_go_default' (host {stack.sandboxes.pogo_url}/v2)" in task_log
    assert "check the extra 'subscription_key'" in task_log
    assert stack.sql("SELECT count(*) FROM {s}.sync_log WHERE outcome = 'failed'") == [(0,)]


def test_a_key_refused_on_writes_fails_the_upsert_at_once_and_no_record_is_logged_as_bad(with_retries, capfd):
    stack = with_retries
    stack.sandboxes.pogo.seed(companies=3)
    stack.sandboxes.invoiced.faults(error_rate=1.0, error_status=401, path_pattern="^/customers$", methods=["POST"])
    dag_run = stack.run("customers_company", expect="failed")
    assert _task_states(dag_run)["upsert_invoiced"] == ("failed", 1)
    assert f"connection 'invoiced_default' (host {stack.sandboxes.invoiced_url})" in capfd.readouterr().out
    assert stack.sql("SELECT count(*) FROM {s}.sync_log WHERE outcome = 'failed'") == [(0,)]
    stack.sandboxes.invoiced.faults()
    stack.run("customers_company")  # the key fixed: the records the refused run planned go through, once
    assert len(stack.records("invoiced", "customers")) == 3
    assert stack.sql("SELECT count(*) FROM {s}.links") == [(3,)]
