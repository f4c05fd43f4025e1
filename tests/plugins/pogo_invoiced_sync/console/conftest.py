"""The console's app over a real PostgreSQL link store, with Airflow's SimpleAuthManager deciding who may do what."""

from __future__ import annotations

import pytest

USERS = "admin:admin,editor:user,viewer:viewer"


@pytest.fixture
def auth_manager(monkeypatch, airflow_db):
    """Airflow's SimpleAuthManager with an admin, an editor (User role: may edit DAGs) and a viewer."""
    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER", "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
    # A key of 64 bytes, as a real deployment needs: shorter ones make every token warn (InsecureKeyLengthWarning).
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "console-test-secret-" + "x" * 44)
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


class Console:
    """A TestClient over the console app, acting as one user at a time (Airflow's own JWT in the session cookie)."""

    def __init__(self, client, auth_manager, store, triggered: list) -> None:
        self.client, self.auth_manager, self.store, self.triggered = client, auth_manager, store, triggered

    def login(self, username: str) -> Console:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        role = dict(u.split(":") for u in USERS.split(","))[username]
        token = self.auth_manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))
        self.client.cookies.clear()
        self.client.cookies.set("_token", token)
        return self

    def act(self, action: str, **body):
        return self.client.post(f"/api/actions/{action}", json=body)

    def sql(self, query: str, *params):
        with self.store.transaction() as cur:
            cur.execute(self.store.q(query), params)
            return cur.fetchall() if cur.description else None


@pytest.fixture
def console_for(auth_manager):
    """Builds the console app over a link store (DSN, schema); runs it would trigger are recorded, not started."""
    import contextlib

    import psycopg
    from fastapi.testclient import TestClient

    from pogo_invoiced_sync.console.app import create_app

    with contextlib.ExitStack() as stack:

        def build(dsn: str, schema: str, store=None, tenants=None) -> Console:
            triggered: list[tuple[str, str]] = []

            def trigger(dag_id: str, user: str, note: str) -> str:
                triggered.append((dag_id, user))
                return f"manual__console_{len(triggered)}"

            app = create_app(connect=lambda: psycopg.connect(dsn), schema=schema, trigger=trigger, tenants=tenants)
            client = stack.enter_context(TestClient(app))
            return Console(client, auth_manager, store, triggered)

        yield build


@pytest.fixture
def console(link_store, console_for):
    """The console app on the test link store."""
    return console_for(link_store.conn.info.dsn, link_store.schema, link_store)
