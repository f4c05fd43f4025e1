"""Fixtures that run the sync DAGs end to end with ``dag.test()`` against the sandboxes and PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "pogo_invoiced_sync"
FLOWS = ("customers_company", "customers_person", "salesorders_invoices")


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite, one per test session), migrated once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=os.environ.copy(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0  # a failing task fails the test now, instead of waiting for its retry delay
    return bag


class Stack:
    """The system under test: DAGs, sandboxes, the link store database, and API clients for edits."""

    def __init__(self, dagbag, sandboxes, dsn: str) -> None:
        self.dagbag, self.sandboxes, self.dsn = dagbag, sandboxes, dsn

    def run(self, flow: str, expect: str = "success", **conf):
        """Run one flow's DAG once (a new run) and return the DAG run."""
        # Always pass every param: dag.test() keeps a previous run's conf on the DAG object.
        dag_run = self.dagbag.dags[f"sync_{flow}"].test(run_conf={"full_refresh": False, "dry_run": False,
                                                                            "allow_mass_changes": False, **conf})
        assert dag_run.state == expect, f"sync_{flow} ended {dag_run.state}"
        return dag_run

    def run_all(self, **conf) -> None:
        """One cycle: both customer flows, then the invoice flow."""
        for flow in FLOWS:
            self.run(flow, **conf)

    def sql(self, query: str, *params):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(query.replace("{s}", SCHEMA), params).fetchall()

    @property
    def pogo(self):
        from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

        return PowerOfficeGoHook()

    @property
    def invoiced(self):
        from pogo_invoiced_sync.hooks.invoiced import InvoicedHook

        return InvoicedHook()

    def records(self, system: str, entity: str) -> list[dict]:
        admin = self.sandboxes.pogo if system == "poweroffice_go" else self.sandboxes.invoiced
        return admin.records(entity)

    def writes(self) -> dict[str, int]:
        return {"poweroffice_go": self.sandboxes.pogo.counters()["writes"],
                "invoiced": self.sandboxes.invoiced.counters()["writes"]}


@pytest.fixture
def stack(connections, dagbag, postgres_dsn) -> Stack:
    """A clean stack: empty sandboxes and no sync state."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    return Stack(dagbag, connections, postgres_dsn)
