"""The whole sync under CeleryExecutor on 127.0.0.1: what ``make celery`` and tests/distributed run.

    python tools/celery_stack.py run [--tenants default,acme] [--workers 2]  # start, run every flow once, stop
    python tools/celery_stack.py up [--tenants default,acme]                 # start and keep running until Ctrl-C
    python tools/celery_stack.py run --tenants a,b,c --shared-keys           # all tenants on one sandbox pair

What it starts, every listener on 127.0.0.1:

* a fresh Airflow metadata database and a fresh link-store database on the machine's PostgreSQL (127.0.0.1:5432,
  or ``SYNC_STATE_DSN``, or the embedded server of tools/postgres.py where neither exists); the metadata database
  is also Celery's result backend;
* Celery's broker on the machine's Redis, one database of its own (``CELERY_STACK_REDIS_URL``, default
  ``redis://127.0.0.1:6379/11``) and a queue named after this stack, so two stacks never take each other's tasks;
* one pair of seeded sandboxes per tenant, each with credentials of its own (a tenant's connections reach only
  its own accounts); or, with ``--shared-keys``, ONE pair for all tenants, as one integration serves its customers:
  one PowerOffice Go subscription key (and application key) with a client key per tenant, each client with its own
  data, the 10 requests/s shared by all; one Invoiced sandbox with an account (API key) per tenant;
* ``airflow api-server`` (workers report to its execution API), ``scheduler``, ``dag-processor`` and
  ``airflow celery worker`` × N (``--skip-serve-logs``: task logs are files in the stack's folder).

Every process runs in a session of its own and is stopped by process group. Connections are ``AIRFLOW_CONN_*``
variables given to every component, as a secrets backend would give them. Each worker reports its own hostname
(``<host>/<worker name>``, through ``[core] hostname_callable``), so the metadata DB shows which worker ran a task.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from sandboxes.process import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
FLOWS = ("customers_company", "customers_person", "salesorders_invoices")
POOLS = {
    "poweroffice_go_api": "PowerOffice Go API: one task at a time, so the hook's rate limiter sees all traffic",
    "invoiced_api": "Invoiced API: one task at a time, so the hook's rate limiter sees all traffic",
}
SEED = {
    "poweroffice_go": {"companies": 12, "persons": 8, "sales_orders": 12},
    "invoiced": {"companies": 5, "persons": 4, "invoices": 6},
}
ADMIN = ("admin", "admin")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
WORKER_ENV = "SYNC_CELERY_WORKER"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the workers: the machine's name and the worker's, as the task's hostname."""
    name = os.environ.get(WORKER_ENV)
    return f"{socket.getfqdn()}/{name}" if name else socket.getfqdn()


def redis_url() -> str:
    return os.environ.get("CELERY_STACK_REDIS_URL", DEFAULT_REDIS_URL)


def redis_reachable(url: str | None = None) -> str | None:
    """None if Redis answers PING at ``url``, else why not."""
    parsed = urlparse(url or redis_url())
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as error:
        return f"Redis at {parsed.hostname}:{parsed.port or 6379} is not reachable ({error})"
    return None if answer.startswith(b"+PONG") else f"Redis at {parsed.hostname} answered {answer!r} to PING"


def tenant_names(spec: str) -> list[str]:
    """The tenant names of a comma-separated list (empty: the one tenant ``default``)."""
    names = [t.strip() for t in spec.split(",") if t.strip()]
    return names or ["default"]


def dag_id(tenant: str, flow: str) -> str:
    return f"sync_{flow}" if tenant == "default" else f"{tenant}.sync_{flow}"


def link_schema(tenant: str) -> str:
    return "pogo_invoiced_sync" if tenant == "default" else f"pogo_invoiced_sync_{tenant}"


def conn_ids(tenant: str) -> tuple[str, str]:
    return (
        ("poweroffice_go_default", "invoiced_default")
        if tenant == "default"
        else (f"poweroffice_go_{tenant}", f"invoiced_{tenant}")
    )


@dataclass
class Tenant:
    """One tenant of the stack: its sandboxes (``SandboxProcess``) and where its state lives."""

    name: str
    sandboxes: SandboxProcess
    dag_ids: dict[str, str] = field(default_factory=dict)
    # Set with shared keys: the tenant's own client key and Invoiced account in sandboxes serving every tenant.
    client_key: str | None = None
    invoiced_api_key: str | None = None

    @property
    def pogo_client_key(self) -> str:
        return self.client_key or self.sandboxes.settings.pogo_client_key

    @property
    def invoiced_key(self) -> str:
        return self.invoiced_api_key or self.sandboxes.settings.invoiced_api_key

    def records(self, system: str, entity: str) -> list[dict]:
        """The tenant's own stored records of ``entity`` in ``system`` (its client's or account's, if shared)."""
        if system == "poweroffice_go":
            selector = {"client": self.client_key} if self.client_key else {}
            return self.sandboxes.pogo.records(entity, **selector)
        selector = {"account": self.invoiced_api_key} if self.invoiced_api_key else {}
        return self.sandboxes.invoiced.records(entity, **selector)

    @property
    def schema(self) -> str:
        return link_schema(self.name)


class CeleryStack:
    """Start, use and stop the CeleryExecutor stack (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        tenants: list[str] | None = None,
        workers: int = 2,
        concurrency: int = 2,
        seed: dict | None = None,
        shared_keys: bool = False,
    ) -> None:
        """``shared_keys``: every tenant on one sandbox pair (one subscription key, a client key and an Invoiced
        account per tenant) instead of a pair of its own."""
        self.workdir = workdir
        self.shared_keys = shared_keys
        self.tenant_names = tenants or ["default"]
        self.worker_names = [f"worker{i + 1}" for i in range(workers)]
        self.concurrency = concurrency
        self.seed = seed or SEED
        self.stack_id = uuid.uuid4().hex[:8]
        self.queue = f"pogo_sync_{self.stack_id}"
        self.tenants: dict[str, Tenant] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.server_dsn = self.meta_dsn = self.link_dsn = ""
        self.meta_db, self.link_db = f"celery_stack_{self.stack_id}_airflow", f"celery_stack_{self.stack_id}_links"
        self.port = 0
        self.env: dict[str, str] = {}
        self._token: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 300) -> CeleryStack:
        """Everything up, the DAGs parsed and unpaused; on any failure, what started is stopped again."""
        problem = redis_reachable()
        if problem:
            raise RuntimeError(problem)
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        from sandboxes.process import SandboxProcess, free_port
        from sandboxes.settings import SandboxSettings

        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self._databases()
        if self.shared_keys:
            self._shared_sandboxes()
        for name in [] if self.shared_keys else self.tenant_names:
            # Credentials of its own per tenant: a connection mixed up between tenants fails instead of syncing.
            settings = SandboxSettings(
                pogo_port=free_port(),
                invoiced_port=free_port(),
                pogo_application_key=f"{name}-application-key",
                pogo_client_key=f"{name}-client-key",
                pogo_subscription_key=secrets.token_hex(16),
                invoiced_api_key=f"{name}-invoiced-api-key",
            )
            process = SandboxProcess(settings, log_path=self.workdir / "logs" / f"sandboxes-{name}.log").start()
            self.tenants[name] = Tenant(name, process, {f: dag_id(name, f) for f in FLOWS})
            process.pogo.seed(**self.seed["poweroffice_go"])
            process.invoiced.seed(**self.seed["invoiced"])
        self._include_dir()
        self.port = free_port()
        self.env = self._airflow_env()
        self.airflow("db", "migrate")
        pools = self.workdir / "pools.json"
        pools.write_text(
            json.dumps({n: {"slots": 1, "description": d, "include_deferred": False} for n, d in POOLS.items()})
        )
        self.airflow("pools", "import", str(pools))
        self._spawn("api-server", ["api-server"])
        self._spawn("scheduler", ["scheduler", "--skip-serve-logs"])
        self._spawn("dag-processor", ["dag-processor"])
        for name in self.worker_names:
            self._spawn(
                name,
                [
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{name}@%h",
                    "--queues",
                    self.queue,
                    "--concurrency",
                    str(self.concurrency),
                    "--skip-serve-logs",
                    "--without-gossip",
                    "--without-mingle",
                ],
                {WORKER_ENV: name, "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tools.celery_stack.worker_hostname"},
            )
        self._wait_until_ready(timeout)

    def _shared_sandboxes(self) -> None:
        """One sandbox pair for every tenant: one subscription key, a client key and an Invoiced account each."""
        from sandboxes.process import SandboxProcess, free_port
        from sandboxes.settings import SandboxSettings

        clients = [f"{name}-client-key" for name in self.tenant_names]
        accounts = [f"{name}-invoiced-api-key" for name in self.tenant_names]
        settings = SandboxSettings(
            pogo_port=free_port(),
            invoiced_port=free_port(),
            pogo_application_key="shared-application-key",
            pogo_client_key=clients[0],
            pogo_subscription_key=secrets.token_hex(16),
            invoiced_api_key=accounts[0],
            pogo_extra_client_keys=tuple(clients[1:]),
            invoiced_extra_api_keys=tuple(accounts[1:]),
        )
        process = SandboxProcess(settings, log_path=self.workdir / "logs" / "sandboxes-shared.log").start()
        for name, client, account in zip(self.tenant_names, clients, accounts, strict=True):
            self.tenants[name] = Tenant(name, process, {f: dag_id(name, f) for f in FLOWS}, client, account)
            process.pogo.seed(client=client, **self.seed["poweroffice_go"])
            process.invoiced.seed(account=account, **self.seed["invoiced"])

    def stop(self) -> None:
        """Stop every process group this stack started (SIGTERM, then SIGKILL), then drop its databases."""
        procs = [self.procs.pop(name) for name in reversed(list(self.procs))]
        for proc in procs:  # all at once: each waits for its children (a worker for its running task)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            _stop_group(proc, terminate=False)
        for tenant in self.tenants.values():
            tenant.sandboxes.stop()
        self.tenants.clear()
        if self.server_dsn and not os.environ.get("CELERY_STACK_KEEP"):
            import psycopg

            with psycopg.connect(self.server_dsn, autocommit=True) as conn:
                for name in (self.meta_db, self.link_db):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.server_dsn = ""
        self._purge_broker()

    def __enter__(self) -> CeleryStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- parts -----------------------------------------------------------------------------------------------------

    def _databases(self) -> None:
        import psycopg

        from tools.postgres import ensure_postgres, with_database

        self.server_dsn, self.where = ensure_postgres(self.workdir / "postgres")
        with psycopg.connect(self.server_dsn, autocommit=True) as conn:
            for name in (self.meta_db, self.link_db):
                conn.execute(f'CREATE DATABASE "{name}"')
        self.meta_dsn = with_database(self.server_dsn, self.meta_db)
        self.link_dsn = with_database(self.server_dsn, self.link_db)

    def _include_dir(self) -> None:
        """The stack's include folder: the checkout's mappings and, for named tenants, a ``tenants.yaml``."""
        include = self.workdir / "include"
        shutil.rmtree(include, ignore_errors=True)
        shutil.copytree(ROOT / "include" / "mappings", include / "mappings")
        named = [t for t in self.tenant_names if t != "default"]
        if named or "default" not in self.tenant_names:
            lines = ["tenants:"]
            for name in self.tenant_names:
                pogo, inv = conn_ids(name)
                lines += [f"  {name}:", f"    poweroffice_go_conn_id: {pogo}", f"    invoiced_conn_id: {inv}"]
            (include / "tenants.yaml").write_text("\n".join(lines) + "\n")

    def _airflow_env(self) -> dict[str, str]:
        from tools.demo import sqlalchemy_url
        from tools.postgres import airflow_connection_json

        url = f"http://127.0.0.1:{self.port}"
        meta = sqlalchemy_url(self.meta_dsn)
        home = self.workdir / "airflow"
        home.mkdir(exist_ok=True)
        (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({ADMIN[0]: ADMIN[1]}))
        env = {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__POGO_INVOICED_SYNC__INCLUDE_DIR": str(self.workdir / "include"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Only the runs this stack triggers: no hourly run at unpause, no asset-triggered one (run_cycle does
            # what the asset schedule would), so a run's work is known and the stack's time stays short.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # Celery: the broker in a Redis database of its own, results in the metadata database, one queue
            # per stack (the default queue of every task), so concurrent stacks never take each other's tasks.
            "AIRFLOW__CELERY__BROKER_URL": redis_url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta.replace("+psycopg2", ""),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW_CONN_SYNC_STATE_DEFAULT": airflow_connection_json(self.link_dsn),
        }
        for tenant in self.tenants.values():
            s = tenant.sandboxes.settings
            pogo, inv = conn_ids(tenant.name)
            env[f"AIRFLOW_CONN_{pogo.upper()}"] = json.dumps(
                {
                    "conn_type": "poweroffice_go",
                    "host": f"http://127.0.0.1:{s.pogo_port}/v2",
                    "login": s.pogo_application_key,
                    "password": tenant.pogo_client_key,
                    "extra": {"subscription_key": s.pogo_subscription_key},
                }
            )
            env[f"AIRFLOW_CONN_{inv.upper()}"] = json.dumps(
                {"conn_type": "invoiced", "host": f"http://127.0.0.1:{s.invoiced_port}", "login": tenant.invoiced_key}
            )
        (self.workdir / "airflow.env").write_text("".join(f"{k}={_shell_quote(v)}\n" for k, v in env.items()))
        (self.workdir / "airflow.env").chmod(0o600)
        return env

    def _full_env(self, extra: dict | None = None) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_")) and k != "AIRFLOW_HOME"
        }
        return {**base, **self.env, **(extra or {})}

    def airflow(self, *args: str, timeout: float = 600) -> str:
        """Run ``airflow <args>`` against the stack; its output, or RuntimeError with the tail of it."""
        result = subprocess.run(
            [_airflow_bin(), *args], cwd=ROOT, env=self._full_env(), capture_output=True, text=True, timeout=timeout
        )
        with open(self.workdir / "logs" / "airflow-cli.log", "a") as out:
            out.write(f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result.stdout

    def _spawn(self, name: str, args: list[str], extra_env: dict | None = None) -> None:
        with open(self.workdir / "logs" / f"{name}.log", "ab") as out:
            self.procs[name] = subprocess.Popen(
                [_airflow_bin(), *args],
                cwd=ROOT,
                env=self._full_env(extra_env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_until_ready(self, timeout: float) -> None:
        """Until the API answers, every worker is up, and every tenant's DAGs are parsed and unpaused."""
        import requests

        deadline = time.monotonic() + timeout
        pending = {d for t in self.tenants.values() for d in t.dag_ids.values()}
        workers = set(self.worker_names)
        while pending or workers:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"stack not ready in {timeout:.0f} s: DAGs {sorted(pending)}, workers "
                    f"{sorted(workers)} pending; logs in {self.workdir / 'logs'}"
                )
            try:
                for dag in sorted(pending):
                    response = self.api("GET", f"dags/{dag}", check=False)
                    if response.status_code == 200:
                        self._ensure_pools(dag)
                        if response.json().get("is_paused"):
                            self.api("PATCH", f"dags/{dag}", json={"is_paused": False})
                        pending.discard(dag)
            except requests.RequestException:
                pass  # the api-server is still starting
            for name in sorted(workers):
                if "ready." in (self.workdir / "logs" / f"{name}.log").read_text(errors="replace"):
                    workers.discard(name)
            time.sleep(2)

    def _ensure_pools(self, dag: str) -> None:
        """Create every pool the DAG's tasks name (a tenant's own API pools), 1 slot each, as the init job would."""
        tasks = self.api("GET", f"dags/{dag}/tasks").json()["tasks"]
        for pool in sorted({t["pool"] for t in tasks} - {"default_pool"}):
            if self.api("GET", f"pools/{pool}", check=False).status_code == 404:
                description = POOLS.get(pool) or f"{pool}: one task at a time per API account"
                self.api(
                    "POST",
                    "pools",
                    json={"name": pool, "slots": 1, "description": description, "include_deferred": False},
                )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = self.workdir / "logs" / f"{name}.log"
                raise RuntimeError(
                    f"airflow {name} exited ({proc.returncode}):\n" + log.read_text(errors="replace")[-3000:]
                )

    def _purge_broker(self) -> None:
        """Drop this stack's queue from the broker (nothing else there is ours)."""
        try:
            import redis

            client = redis.Redis.from_url(redis_url(), socket_timeout=2)
            # kombu's Redis transport: the queue, its binding, one list per priority (``<queue>\x06\x16<n>``).
            priority_lists = list(client.scan_iter(f"{self.queue}\x06*"))
            client.delete(self.queue, f"_kombu.binding.{self.queue}", *priority_lists)
            client.close()
        except Exception:  # a broker gone already has nothing of ours left to drop
            pass

    # -- use -------------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, check: bool = True, **kwargs):
        """One call to the REST API (``/api/v2/<path>``) as admin."""
        import requests

        if self._token is None:
            response = requests.post(
                f"{self.url}/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        response = requests.request(
            method,
            f"{self.url}/api/v2/{path}",
            timeout=30,
            headers={"Authorization": f"Bearer {self._token}"},
            **kwargs,
        )
        if check:
            response.raise_for_status()
        return response

    def trigger(self, dag: str, **conf) -> str:
        """Trigger a run of ``dag`` now (REST API); its run id."""
        body = {"logical_date": None, "conf": {"full_refresh": False, "dry_run": False, **conf}}
        return self.api("POST", f"dags/{dag}/dagRuns", json=body).json()["dag_run_id"]

    def run_cycle(self, timeout: float = 600) -> dict[str, list[dict]]:
        """Every flow of every tenant triggered at once, then, as the asset schedule would, a tenant's flows that
        depend on others once more as soon as those have finished (orders whose customers were linked meanwhile),
        while other tenants' runs go on; every run by dag once all are done."""
        from pogo_invoiced_sync.engine.flow_mapping import load_all

        depends = {f: m.depends_on for f, m in load_all(self.workdir / "include" / "mappings").items() if m.depends_on}
        dags = [d for t in self.tenants.values() for d in t.dag_ids.values()]
        for dag in dags:
            self.trigger(dag)
        pending = {(t.name, f) for t in self.tenants.values() for f in depends}
        deadline = time.monotonic() + timeout
        while pending:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs the dependent flows wait for still active after {timeout:.0f} s: {pending}")
            for name, flow in sorted(pending):
                tenant = self.tenants[name]
                if not any(self._active_runs(tenant.dag_ids[d]) for d in depends[flow]):
                    self.trigger(tenant.dag_ids[flow])
                    pending.discard((name, flow))
            if pending:
                time.sleep(3)
        return self.wait_idle(dags, timeout)

    def _active_runs(self, dag: str) -> list[str]:
        """The ids of ``dag``'s runs that are queued or running."""
        runs = self.api("GET", f"dags/{dag}/dagRuns", params={"limit": 100}).json()["dag_runs"]
        return [r["dag_run_id"] for r in runs if r["state"] in ("queued", "running")]

    def wait_idle(self, dags: list[str], timeout: float = 600) -> dict[str, list[dict]]:
        """Until no run of ``dags`` is queued or running (asset-triggered runs included); every run by dag."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            runs = {d: self.api("GET", f"dags/{d}/dagRuns", params={"limit": 100}).json()["dag_runs"] for d in dags}
            active = [
                f"{d} {r['dag_run_id']}" for d, rs in runs.items() for r in rs if r["state"] in ("queued", "running")
            ]
            if not active:
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still active after {timeout:.0f} s: {active}")
            time.sleep(3)

    def task_hosts(self) -> list[tuple[str, str, str, str]]:
        """(dag_id, task_id, state, hostname) of every task instance, from the metadata database."""
        import psycopg

        with psycopg.connect(self.meta_dsn) as conn:
            return conn.execute("SELECT dag_id, task_id, state, hostname FROM task_instance").fetchall()

    def describe(self) -> str:
        lines = [
            f"Airflow (CeleryExecutor) {self.url}  login {ADMIN[0]} / {ADMIN[1]}",
            f"  broker {redis_url()} queue {self.queue}; metadata + results {self.meta_db}; "
            f"link store {self.link_db} ({self.where})",
            f"  workers {', '.join(self.worker_names)} (concurrency {self.concurrency}); logs {self.workdir / 'logs'}",
            f"  settings: set -a; . {self.workdir / 'airflow.env'}; set +a",
        ]
        for t in self.tenants.values():
            s = t.sandboxes.settings
            lines.append(
                f"  tenant {t.name}: DAGs {', '.join(t.dag_ids.values())}; sandboxes PowerOffice Go "
                f":{s.pogo_port}, Invoiced :{s.invoiced_port}; link-store schema {t.schema}"
            )
        return "\n".join(lines)


def _stop_group(proc: subprocess.Popen, timeout: float = 30, terminate: bool = True) -> None:
    """Stop ``proc``'s process group: SIGTERM (unless already sent), then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        try:
            if terminate:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the leader's children too, even when the leader has exited
    proc.wait()


def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


# -- command line (make celery) ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "command",
        choices=["up", "run"],
        help="up: start and keep running until Ctrl-C; run: start, run every flow of every tenant "
        "once, print where each task ran, stop",
    )
    parser.add_argument("--tenants", default="default", help="comma-separated tenant names (default: default)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--shared-keys",
        action="store_true",
        help="all tenants on one sandbox pair: one PowerOffice Go subscription key with a client key per tenant, "
        "an Invoiced account per tenant",
    )
    args = parser.parse_args(argv)
    problem = redis_reachable()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    stack = CeleryStack(
        ROOT / ".run" / "celery",
        tenant_names(args.tenants),
        args.workers,
        args.concurrency,
        shared_keys=args.shared_keys,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    with stack:
        print(stack.describe(), flush=True)
        print(f"ready in {time.monotonic() - started:.0f} s", flush=True)
        if args.command == "up":
            print("Ctrl-C stops everything", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        runs = stack.run_cycle()
        failed = [f"{d} {r['dag_run_id']}" for d, rs in runs.items() for r in rs if r["state"] != "success"]
        by_host: dict[str, int] = {}
        for _dag, _task, _state, host in stack.task_hosts():
            by_host[host or "(none)"] = by_host.get(host or "(none)", 0) + 1
        print(
            f"{sum(len(rs) for rs in runs.values())} runs in {time.monotonic() - started:.0f} s; task instances "
            "by worker: " + ", ".join(f"{h}: {n}" for h, n in sorted(by_host.items())),
            flush=True,
        )
        if failed:
            print("not successful: " + ", ".join(failed), flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
