"""Shared fixtures: Airflow configured for tests, the sandboxes over real HTTP, and a real PostgreSQL.

Airflow reads its configuration at first import, so the environment is set here, before anything imports it.
"""
from __future__ import annotations

import os
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
