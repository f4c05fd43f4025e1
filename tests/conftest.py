"""Shared fixtures: Airflow configured for tests, the sandboxes over real HTTP, and a real PostgreSQL.

Airflow reads its configuration at first import, so the environment is set here, before anything imports it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_SPEC = ROOT.parent / "shared" / "spec"

_airflow_home = Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_airflow_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_airflow_home / 'airflow.db'}")
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from sandboxes.process import SandboxProcess  # noqa: E402


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory) -> SandboxProcess:
    """Both sandboxes in a child process on free loopback ports, for the whole test session."""
    process = SandboxProcess(log_path=tmp_path_factory.mktemp("sandbox") / "sandbox.log").start()
    yield process
    process.stop()


@pytest.fixture
def sandboxes(sandbox_process) -> SandboxProcess:
    """The sandboxes, emptied, with faults off, counters at zero and default settings."""
    sandbox_process.reset()
    return sandbox_process


@pytest.fixture(scope="session")
def shared_spec() -> Path:
    """The reference specs beside the checkout; tests that need them skip where they are absent (a user's clone)."""
    if not SHARED_SPEC.is_dir():
        pytest.skip(f"reference specs not found at {SHARED_SPEC}: they exist beside the CI checkout only")
    return SHARED_SPEC


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory) -> str:
    """A database of its own on a real PostgreSQL (SYNC_STATE_DSN, 127.0.0.1:5432 or an embedded server)."""
    import uuid

    import psycopg

    from tools.postgres import ensure_postgres, stop_embedded, with_database

    data_dir = tmp_path_factory.mktemp("postgres")
    server_dsn, _where = ensure_postgres(data_dir)
    name = f"pogo_sync_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(server_dsn, name)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    stop_embedded(data_dir)


@pytest.fixture
def link_store(postgres_dsn):
    """A migrated link store in a schema of its own, dropped afterwards."""
    import uuid

    import psycopg

    from pogo_invoiced_sync.engine.link_store import LinkStore

    store = LinkStore(lambda: psycopg.connect(postgres_dsn), f"test_{uuid.uuid4().hex[:10]}")
    store.migrate()
    yield store
    store.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')


def pogo_connection(process: SandboxProcess, **extra) -> str:
    """The PowerOffice Go connection (JSON form) for a sandbox."""
    import json

    s = process.settings
    return json.dumps({"conn_type": "http", "host": f"{process.pogo_url}/v2", "login": s.pogo_application_key,
                       "password": s.pogo_client_key, "extra": {"subscription_key": s.pogo_subscription_key, **extra}})


def invoiced_connection(process: SandboxProcess, **extra) -> str:
    """The Invoiced connection (JSON form) for a sandbox."""
    import json

    return json.dumps({"conn_type": "http", "host": process.invoiced_url, "login": process.settings.invoiced_api_key,
                       "extra": extra})


@pytest.fixture
def connections(monkeypatch, sandboxes, postgres_dsn):
    """The three Airflow connections of the package, as AIRFLOW_CONN_* variables pointing at the test stack."""
    from tools.postgres import airflow_connection_json

    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection(sandboxes))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection(sandboxes))
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_STATE_DEFAULT", airflow_connection_json(postgres_dsn))
    return sandboxes


# -- the sync DAGs end to end with ``dag.test()`` against the sandboxes and PostgreSQL (tests/dags, tests/resilience)

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
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            return conn.execute(query.replace("{s}", SCHEMA), params).fetchall()

    @property
    def pogo(self):
        from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

        return PowerOfficeGoHook().get_conn()

    @property
    def invoiced(self):
        from pogo_invoiced_sync.hooks.invoiced import InvoicedHook

        return InvoicedHook().get_conn()

    def records(self, system: str, entity: str) -> list[dict]:
        admin = self.sandboxes.pogo if system == "poweroffice_go" else self.sandboxes.invoiced
        return admin.records(entity)

    def writes(self) -> dict[str, int]:
        return {"poweroffice_go": self.sandboxes.pogo.counters()["writes"],
                "invoiced": self.sandboxes.invoiced.counters()["writes"]}


@pytest.fixture
def stack(connections, dagbag, postgres_dsn) -> Stack:
    """A clean stack: empty sandboxes and no sync state."""
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    return Stack(dagbag, connections, postgres_dsn)
