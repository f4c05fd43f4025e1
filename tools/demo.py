"""The local stack behind ``make demo``, ``make up`` and ``make down``: everything under ``.run/``, all on 127.0.0.1.

    python tools/demo.py demo   # PostgreSQL, sandboxes (seeded), Airflow home; run each flow once; print a summary
    python tools/demo.py up     # the same stack plus Airflow (api-server, scheduler, dag-processor, triggerer)
    python tools/demo.py down   # stop whatever of the above is running (by the PID files under .run/)

Running ``demo`` or ``up`` again reuses what exists: the PostgreSQL data, the Airflow home, the sandboxes if they
still run. Sandboxes keep their data in memory: when they have to be started afresh they are seeded again and the
demo link store is emptied, since its links would point at records that no longer exist.

The three connections go into Airflow's metadata database (UI: Admin -> Connections), created when absent and kept
once a person changed them; ``AIRFLOW_CONN_<ID>`` set for ``demo``/``up`` replaces the stored one
(``store_connections``).

The link store goes into database ``sync_demo`` and Airflow's metadata into ``airflow_demo``, on the server of
``SYNC_STATE_DSN`` if set, else on an embedded PostgreSQL (PyPI ``pgserver``, Unix socket only) in
``.run/postgres``. The machine's own PostgreSQL on 127.0.0.1:5432 is never used implicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

# pgserver's lock lives in the XDG runtime dir; without XDG_RUNTIME_DIR platformdirs warns and uses /tmp: harmless.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RUN = ROOT / ".run"
PG_DATA = RUN / "postgres"
AIRFLOW_HOME = RUN / "airflow"
LOGS = RUN / "logs"
ENV_FILE = RUN / "airflow.env"
SANDBOX_STATE = RUN / "sandboxes.json"
SANDBOX_PID = RUN / "sandboxes.pid"
SANDBOX_LOG = LOGS / "sandboxes.log"
LAST_RUNS = RUN / "demo-runs.json"

SCHEMA = "pogo_invoiced_sync"
LINK_DB, AIRFLOW_DB = "sync_demo", "airflow_demo"
FLOWS = ("customers_company", "customers_person", "salesorders_invoices")
DAG_IDS = tuple(f"sync_{f}" for f in FLOWS)
POOLS = {
    "poweroffice_go_api": "PowerOffice Go API: one task at a time, so the hook's rate limiter sees all traffic",
    "invoiced_api": "Invoiced API: one task at a time, so the hook's rate limiter sees all traffic",
}
SEED = {
    "poweroffice_go": {"companies": 25, "persons": 15, "sales_orders": 30},
    "invoiced": {"companies": 8, "persons": 5, "invoices": 10},
}
# Standalone's four components, run one by one so every listener binds to 127.0.0.1: standalone always starts the
# scheduler's and triggerer's log servers on all interfaces; here they are skipped (logs are local files anyway).
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
ADMIN = ("admin", "admin")


def say(message: str = "") -> None:
    print(message, flush=True)


def airflow_port() -> int:
    return int(os.environ.get("AIRFLOW_PORT", "8080"))


def airflow_url() -> str:
    return f"http://127.0.0.1:{airflow_port()}"


# -- processes ---------------------------------------------------------------------------------------------------


def _alive(pid_file: Path, marker: str) -> int | None:
    """The PID in ``pid_file`` if that process still runs and its command line contains ``marker``.

    Airflow's components rename themselves (``airflow api_server -- host:...``): their marker is ``airflow``.
    """
    import psutil

    try:
        process = psutil.Process(int(pid_file.read_text().strip()))
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = " ".join(process.cmdline())
    except (OSError, ValueError, psutil.Error):
        return None
    return process.pid if marker in cmdline else None


def _group_members(pgid: int) -> list:
    """The live processes of process group ``pgid`` and the leader's descendants (a child may leave the group)."""
    import psutil

    members = {}
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                members[process.pid] = process
        except (OSError, psutil.Error):
            continue
    with contextlib.suppress(psutil.Error):
        members.update((child.pid, child) for child in psutil.Process(pgid).children(recursive=True))
    return list(members.values())


def _signal(processes: list, sig: int) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def _stop_group(pid_file: Path, marker: str, name: str, timeout: float = 20.0) -> None:
    """Stop the process group led by the PID in ``pid_file`` (SIGTERM, then SIGKILL) and remove the file."""
    import psutil

    pid = _alive(pid_file, marker)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    members = _group_members(pid)
    _signal(members, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    if alive:
        say(f"  {name} did not stop in {timeout:.0f} s: killing it")
        _signal(alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
    pid_file.unlink(missing_ok=True)
    say(f"  stopped {name} (pid {pid})")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _spawn(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """A background process in a session (and process group) of its own, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# -- PostgreSQL --------------------------------------------------------------------------------------------------


def ensure_databases() -> tuple[str, str, str]:
    """(link store DSN, Airflow metadata DSN, where): both databases exist afterwards."""
    import psycopg

    from tools.postgres import ensure_postgres, with_database

    RUN.mkdir(exist_ok=True)
    server_dsn, where = ensure_postgres(PG_DATA, allow_local=False)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        existing = {name for (name,) in conn.execute("SELECT datname FROM pg_database")}
        for name in (LINK_DB, AIRFLOW_DB):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_dsn, LINK_DB), with_database(server_dsn, AIRFLOW_DB), where


def sqlalchemy_url(dsn: str) -> str:
    """Airflow's SQL_ALCHEMY_CONN (psycopg2 driver) for a libpq DSN, Unix-socket DSNs included."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    auth = quote(str(info.get("user") or "postgres"), safe="")
    if info.get("password"):
        auth += ":" + quote(str(info["password"]), safe="")
    host, port = str(info.get("host") or "127.0.0.1"), info.get("port") or "5432"
    db = quote(str(info.get("dbname") or "postgres"))
    if host.startswith("/"):
        return f"postgresql+psycopg2://{auth}@/{db}?host={quote(host, safe='/')}&port={port}"
    return f"postgresql+psycopg2://{auth}@{host}:{port}/{db}"


def psql_command(dsn: str) -> str:
    """How a person opens psql on the link store (the embedded server's own psql if that is the one)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    psql = "psql"
    if (
        str(info.get("host", "")).startswith(str(PG_DATA.resolve()))
        or "pgserver" in str(info.get("host", ""))
        or not os.environ.get("SYNC_STATE_DSN")
    ):
        try:
            from pgserver._commands import POSTGRES_BIN_PATH

            psql = str(POSTGRES_BIN_PATH / "psql")
        except ImportError:
            pass
    safe = {k: v for k, v in info.items() if k != "password"}
    return f"{psql} {shlex.quote(' '.join(f'{k}={v}' for k, v in safe.items()))}"


def reset_link_store(link_dsn: str) -> None:
    import psycopg

    with psycopg.connect(link_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


# -- sandboxes ---------------------------------------------------------------------------------------------------


def _sandbox_settings(pogo_port: int, invoiced_port: int):
    from sandboxes.settings import SandboxSettings

    return SandboxSettings.from_env(
        {**os.environ, "POGO_SANDBOX_PORT": str(pogo_port), "INVOICED_SANDBOX_PORT": str(invoiced_port)}
    )


def _sandboxes_answer(state: dict) -> bool:
    import requests

    try:
        for port in (state["pogo_port"], state["invoiced_port"]):
            requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=2).raise_for_status()
    except (requests.RequestException, KeyError):
        return False
    return True


def ensure_sandboxes():
    """(settings, fresh): reuse running sandboxes of ours, else start them in the background and seed them."""
    from sandboxes.process import Admin, free_port
    from sandboxes.settings import SandboxSettings

    if _alive(SANDBOX_PID, "-m sandboxes") and SANDBOX_STATE.exists():
        state = json.loads(SANDBOX_STATE.read_text())
        if _sandboxes_answer(state):
            return _sandbox_settings(state["pogo_port"], state["invoiced_port"]), False
        _stop_group(SANDBOX_PID, "-m sandboxes", "unresponsive sandboxes")
    defaults = SandboxSettings.from_env()
    ports = [p if _port_free(p) else free_port() for p in (defaults.pogo_port, defaults.invoiced_port)]
    settings = _sandbox_settings(*ports)
    ready = RUN / "sandboxes.ready"
    ready.unlink(missing_ok=True)
    env = {**os.environ, "POGO_SANDBOX_PORT": str(ports[0]), "INVOICED_SANDBOX_PORT": str(ports[1])}
    proc = _spawn([sys.executable, "-m", "sandboxes", "--ready-file", str(ready)], SANDBOX_LOG, env)
    deadline = time.monotonic() + 30
    while not (ready.exists() and ready.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the sandboxes did not start: see {SANDBOX_LOG}")
        time.sleep(0.05)
    SANDBOX_PID.write_text(f"{proc.pid}\n")
    SANDBOX_STATE.write_text(json.dumps({"pid": proc.pid, "pogo_port": ports[0], "invoiced_port": ports[1]}))
    Admin(f"http://127.0.0.1:{ports[0]}").seed(**SEED["poweroffice_go"])
    Admin(f"http://127.0.0.1:{ports[1]}").seed(**SEED["invoiced"])
    return settings, True


# -- Airflow -----------------------------------------------------------------------------------------------------


def _previous_env() -> dict[str, str]:
    if not ENV_FILE.exists():
        return {}
    out = {}
    for line in ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = (shlex.split(value) or [""])[0]
    return out


def airflow_env(meta_dsn: str) -> dict[str, str]:
    """Every setting of the local Airflow, written to ``.run/airflow.env`` (sourceable: ``set -a; . .run/airflow.env``).

    The connections are not in it: they live in the metadata database (see ``store_connections``), where the UI
    shows them and an edit is not shadowed by an environment variable.
    """
    previous = _previous_env()

    def kept(key: str, make) -> str:
        return previous.get(key) or make()

    def fernet() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    env = {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # The form's secret field: masked in the REST API's and UI's view of the extra, like a password.
        "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "subscription_key",
        # The connection form's Test button runs our hooks' test_connection().
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
        "AIRFLOW__CORE__FERNET_KEY": kept("AIRFLOW__CORE__FERNET_KEY", fernet),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url()}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(airflow_port()),
        "AIRFLOW__API__BASE_URL": airflow_url(),
        "AIRFLOW__API__SECRET_KEY": kept("AIRFLOW__API__SECRET_KEY", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__API_AUTH__JWT_SECRET": kept("AIRFLOW__API_AUTH__JWT_SECRET", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(meta_dsn),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(AIRFLOW_HOME / "logs"),
    }
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated by tools/demo.py for the local stack; regenerated on every `make demo` / `make up`.",
        "# Use from a shell: set -a; . .run/airflow.env; set +a; .venv/bin/airflow dags list",
        "# The connections are in Airflow's metadata database (UI: Admin -> Connections), not here.",
    ]
    lines += [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)
    # SimpleAuthManager keeps generated passwords here; written before the first start, the login is admin/admin.
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    if not passwords.exists() or json.loads(passwords.read_text() or "{}").get(ADMIN[0]) != ADMIN[1]:
        passwords.write_text(json.dumps({ADMIN[0]: ADMIN[1]}))
    return env


def airflow_cmd(env: dict, *args: str, log: Path | None = None) -> None:
    """Run ``airflow <args>`` with the local stack's environment; output to ``log`` (or shown on failure)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        cwd=ROOT,
        env={**_without_connection_vars(os.environ), **env},
        capture_output=True,
        text=True,
    )
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            out.write(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed (exit {result.returncode})")


def prepare_airflow(env: dict) -> None:
    """Migrate the metadata database and create the pools (both idempotent)."""
    airflow_cmd(env, "db", "migrate", log=LOGS / "airflow-db-migrate.log")
    pools = AIRFLOW_HOME / "pools.json"
    pools.write_text(
        json.dumps(
            {
                name: {"slots": 1, "description": description, "include_deferred": False}
                for name, description in POOLS.items()
            },
            indent=2,
        )
    )
    airflow_cmd(env, "pools", "import", str(pools), log=LOGS / "airflow-pools.log")


def sandbox_connections(settings, link_dsn: str) -> dict[str, dict]:
    """The three connections of the local stack (JSON form), pointing at the sandboxes and the link store.

    The API connections carry their port in the URL and ``port`` 0, which the hooks ignore: Airflow 3.3's Test
    button sends a connection's port as a number (0 for none) and refuses the test when that differs from the
    stored port, so a stored empty port makes the button answer "Bad Request". They have the shape the UI's form
    writes (``pogo_invoiced_sync.provider``): the Invoiced API key in ``password``, the form's own fields as bare
    keys of the extra, so the form opens them filled in.
    """
    from tools.postgres import airflow_connection_json

    return {
        "poweroffice_go_default": {
            "conn_type": "poweroffice_go",
            "host": f"http://127.0.0.1:{settings.pogo_port}/v2",
            "port": 0,
            "login": settings.pogo_application_key,
            "password": settings.pogo_client_key,
            "extra": {"subscription_key": settings.pogo_subscription_key, "requests_per_second": 10},
        },
        "invoiced_default": {
            "conn_type": "invoiced",
            "host": f"http://127.0.0.1:{settings.invoiced_port}",
            "port": 0,
            "password": settings.invoiced_api_key,
            "extra": {"max_in_flight": 10},
        },
        "sync_state_default": json.loads(airflow_connection_json(link_dsn)),
    }


def connection_env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def store_connections(env: dict, wanted: dict[str, dict]) -> dict[str, str]:
    """Put the connections into the metadata database; {conn_id: what happened}.

    A connection is created when absent. One that still holds exactly what this script stored last time (recorded
    as a digest in ``.run/connections.json``) follows the stack (a sandbox on a new port); one a person edited
    (UI, ``airflow connections``) is kept as it is. ``AIRFLOW_CONN_<ID>`` in the caller's environment (JSON or URI)
    replaces the stored connection: the way to script real credentials into ``make up``.
    """
    given = {
        conn_id: os.environ[connection_env_var(conn_id)]
        for conn_id in wanted
        if os.environ.get(connection_env_var(conn_id))
    }
    state_file = RUN / "connections.json"
    request = {
        "wanted": wanted,
        "given": given,
        "stored": json.loads(state_file.read_text()) if state_file.exists() else {},
    }
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_connections"],
        cwd=ROOT,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={**_without_connection_vars(os.environ), **env},
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"storing the connections failed (exit {result.returncode})")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    state_file.write_text(json.dumps(answer["stored"], indent=2))
    state_file.chmod(0o600)
    return answer["actions"]


def _without_connection_vars(environ) -> dict[str, str]:
    """The environment minus our three ``AIRFLOW_CONN_*``: once stored, the database is the only source."""
    ours = {connection_env_var(c) for c in ("poweroffice_go_default", "invoiced_default", "sync_state_default")}
    return {k: v for k, v in environ.items() if k not in ours}


def _connection_digest(conn) -> str:
    import hashlib

    fields = [
        conn.conn_type,
        conn.host,
        conn.login,
        conn.password,
        conn.port,
        conn.schema,
        json.dumps(conn.extra_dejson, sort_keys=True),
    ]
    return hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()


def _connections() -> int:
    """Child (Airflow configured by the environment): the work of ``store_connections``; request on stdin."""
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    request = json.load(sys.stdin)
    actions, stored = {}, {}
    with create_session() as session:
        for conn_id, spec in request["wanted"].items():
            given = request["given"].get(conn_id)
            if given and not given.lstrip().startswith("{"):
                new = Connection(conn_id=conn_id, uri=given)
            else:
                spec = json.loads(given) if given else spec
                extra = spec.get("extra")
                new = Connection(
                    conn_id=conn_id,
                    conn_type=spec.get("conn_type"),
                    host=spec.get("host"),
                    login=spec.get("login"),
                    password=spec.get("password"),
                    schema=spec.get("schema"),
                    port=spec.get("port"),
                    extra=json.dumps(extra) if isinstance(extra, dict) else extra,
                )
            if new.port is None and new.conn_type in ("poweroffice_go", "invoiced", "http"):
                new.port = 0  # see sandbox_connections: what the Test button needs
            current = session.scalar(select(Connection).filter_by(conn_id=conn_id))
            # The digest of what this script stored; none for a person's values, so they are never replaced.
            ours = None if given else _connection_digest(new)
            if current is None:
                session.add(new)
                actions[conn_id] = f"set from ${connection_env_var(conn_id)}" if given else "created"
            elif given or _connection_digest(current) == request["stored"].get(conn_id):
                if _connection_digest(current) == _connection_digest(new):
                    actions[conn_id] = "unchanged"
                else:
                    for field in ("conn_type", "host", "login", "password", "port", "schema", "extra"):
                        setattr(current, field, getattr(new, field))
                    actions[conn_id] = f"set from ${connection_env_var(conn_id)}" if given else "updated"
            else:
                actions[conn_id] = "kept (edited since make demo/up stored it)"
                ours = request["stored"].get(conn_id)
            stored[conn_id] = ours
    print(json.dumps({"actions": actions, "stored": stored}), flush=True)
    return 0


def run_flows_in_child(env: dict) -> dict:
    """Run each flow's DAG once with ``dag.test()`` in a child process (its task logs go to a file)."""
    log = LOGS / "demo-flows.log"
    LAST_RUNS.unlink(missing_ok=True)
    with open(log, "ab") as out:
        code = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "_flows", str(LAST_RUNS)],
            cwd=ROOT,
            env={**_without_connection_vars(os.environ), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    if not LAST_RUNS.exists():
        raise SystemExit(f"running the flows failed (exit {code}); see {log}")
    return json.loads(LAST_RUNS.read_text())


def _flows(out_path: str) -> int:
    """Child: run the three DAGs in order (both customer flows, then invoices) and record run ids and states."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        print(bag.import_errors, flush=True)
        return 1
    results = {}
    for flow, dag_id in zip(FLOWS, DAG_IDS, strict=True):
        dag = bag.dags[dag_id]
        for task in dag.tasks:
            task.retries = 0  # a failure shows now, not after the retry delays
        started = time.monotonic()
        dag_run = dag.test(run_conf={"full_refresh": False, "dry_run": False})
        results[flow] = {
            "run_id": dag_run.run_id,
            "state": str(dag_run.state),
            "seconds": round(time.monotonic() - started, 1),
        }
        Path(out_path).write_text(json.dumps(results))
    return 0


# -- reporting ---------------------------------------------------------------------------------------------------

COLUMNS = ("created", "updated", "unchanged", "conflicts", "rejected", "waiting")
DIRECTIONS = {
    "to_invoiced": ("poweroffice_go", "PowerOffice Go -> Invoiced"),
    "to_poweroffice_go": ("invoiced", "Invoiced -> PowerOffice Go"),
}


def print_summary(link_dsn: str, runs: dict) -> bool:
    """The per-flow, per-direction summary of these runs from the ``runs`` table; True if every run succeeded."""
    import psycopg

    with psycopg.connect(link_dsn) as conn:
        run_ids = [r["run_id"] for r in runs.values()]
        query = f"SELECT flow, summary FROM {SCHEMA}.runs WHERE run_id = ANY(%s)"
        stored: dict[str, Any] = dict(conn.execute(query, (run_ids,)))
        links: dict[str, int] = dict(conn.execute(f"SELECT flow, count(*) FROM {SCHEMA}.links GROUP BY flow"))
        totals = {
            view: (conn.execute(f"SELECT count(*) FROM {SCHEMA}.{view}").fetchone() or (0,))[0]
            for view in ("v_failures", "v_open_conflicts", "v_waiting")
        }
    ok = True
    say("")
    say(f"{'flow / direction':<44}" + "".join(f"{c:>10}" for c in COLUMNS))
    for flow in FLOWS:
        run = runs.get(flow)
        state = run["state"] if run else "not run"
        ok &= state == "success"
        head = f"sync_{flow}: {state}" + (f" in {run['seconds']} s" if run else "")
        say(f"{head}  (linked pairs: {links.get(flow, 0)})")
        summary = stored.get(flow)
        if not summary:
            say("    no summary stored for this run")
            continue
        for direction, (source, label) in DIRECTIONS.items():
            counts = dict(summary["by_direction"].get(direction, {}))
            counts["unchanged"] = summary.get("unchanged", {}).get(source, 0)
            say(f"    {label:<40}" + "".join(f"{counts.get(c, 0):>10}" for c in COLUMNS))
        other = {d: c for d, c in summary["by_direction"].items() if d not in DIRECTIONS}
        for direction, counts in other.items():
            say(f"    {direction:<40}" + "  " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        if run:  # a stored summary belongs to a run of these
            say(f"    run_id {run['run_id']}")
    say("")
    say(
        f"Link store now: {totals['v_failures']} failure(s) logged, {totals['v_open_conflicts']} conflict(s) "
        f"resolved and logged, {totals['v_waiting']} record(s) waiting for a dependency."
    )
    return ok


def print_next_steps(link_dsn: str, settings, running: bool) -> None:
    say("")
    say("Where to look next")
    if running:
        say(f"  Airflow UI     {airflow_url()}  (login admin / admin)")
    else:
        say(f"  Airflow UI     `make up`, then {airflow_url()}  (login admin / admin)")
    say("  Connections    Admin -> Connections in the UI (edit, Test); kept by the next make up once you change them")
    say("  Run summaries  each run's `report` task log, and the runs table")
    say(f"  Link store     {psql_command(link_dsn)}")
    say(f"                 SELECT flow, run_id, summary FROM {SCHEMA}.runs ORDER BY started_at DESC LIMIT 3;")
    say(f"                 SELECT * FROM {SCHEMA}.v_failures;        -- what failed and why")
    say(f"                 SELECT * FROM {SCHEMA}.v_run_changes WHERE run_id = '<run_id>';  -- what a run changed")
    say(f"                 SELECT * FROM {SCHEMA}.v_open_conflicts;  -- conflicts and the losing values")
    say(f"                 SELECT * FROM {SCHEMA}.v_waiting;         -- records waiting for a dependency")
    say(
        f"  Sandboxes      PowerOffice Go http://127.0.0.1:{settings.pogo_port}   "
        f"Invoiced http://127.0.0.1:{settings.invoiced_port}   (log: {SANDBOX_LOG.relative_to(ROOT)})"
    )
    say("  Docs           docs/operations.md (the operator's view), docs/deployment.md")
    say("  Stop           make down")


def print_edit_examples(settings) -> None:
    pogo, inv = f"http://127.0.0.1:{settings.pogo_port}", f"http://127.0.0.1:{settings.invoiced_port}"
    say("")
    say("Edit a record in the sandboxes (then trigger a DAG in the UI, or wait for the hourly run):")
    say(
        "  # PowerOffice Go: token, then a JSON Patch of customer <id> (ids: curl -s "
        f"{pogo}/_sandbox/records/customers)"
    )
    say(
        f"  TOKEN=$(curl -s -u {settings.pogo_application_key}:{settings.pogo_client_key} "
        f"-H 'Ocp-Apim-Subscription-Key: {settings.pogo_subscription_key}' \\"
    )
    say(
        f"      -d grant_type=client_credentials {pogo}/OAuth/Token | python3 -c 'import json,sys; "
        'print(json.load(sys.stdin)["access_token"])\')'
    )
    say(f'  curl -s -X PATCH {pogo}/v2/Customers/<id> -H "Authorization: Bearer $TOKEN" \\')
    say(
        f"      -H 'Ocp-Apim-Subscription-Key: {settings.pogo_subscription_key}' "
        "-H 'Content-Type: application/json-patch+json' \\"
    )
    say('      -d \'[{"op": "replace", "path": "/Name", "value": "Renamed in PowerOffice AS"}]\'')
    say(f"  # Invoiced: update customer <id> (ids: curl -s {inv}/_sandbox/records/customers)")
    say(
        f"  curl -s -u {settings.invoiced_api_key}: -X PATCH {inv}/customers/<id> "
        "-H 'Content-Type: application/json' -d '{\"name\": \"Renamed in Invoiced AS\"}'"
    )


# -- Airflow components (make up) --------------------------------------------------------------------------------


def _component_pid(name: str) -> Path:
    return RUN / f"airflow-{name}.pid"


def start_airflow(env: dict) -> None:
    full_env = {**_without_connection_vars(os.environ), **env}
    binary = str(Path(sys.executable).parent / "airflow")
    if not _alive(_component_pid("api-server"), "airflow") and not _port_free(airflow_port()):
        raise SystemExit(f"port {airflow_port()} is taken by another program: set AIRFLOW_PORT=<free port>")
    for name, args in COMPONENTS.items():
        pid_file = _component_pid(name)
        if _alive(pid_file, "airflow"):
            say(f"  airflow {name} already running (pid {pid_file.read_text().strip()})")
            continue
        proc = _spawn([binary, *args], LOGS / f"airflow-{name}.log", full_env)
        pid_file.write_text(f"{proc.pid}\n")
        say(f"  started airflow {name} (pid {proc.pid}, log .run/logs/airflow-{name}.log)")


def _api_token() -> str:
    import requests

    response = requests.post(
        f"{airflow_url()}/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
    )
    response.raise_for_status()
    return response.json()["access_token"]


def wait_for_airflow(timeout: float = 180) -> None:
    """Until the API answers, the three DAGs are parsed, and they are unpaused."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(f"{airflow_url()}/api/v2/monitor/health", timeout=3).raise_for_status()
            break
        except requests.RequestException as error:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"Airflow did not answer on {airflow_url()}: see .run/logs/airflow-api-server.log"
                ) from error
            time.sleep(1)
    headers = {"Authorization": f"Bearer {_api_token()}"}
    pending = set(DAG_IDS)
    while pending:
        for dag_id in sorted(pending):
            response = requests.get(f"{airflow_url()}/api/v2/dags/{dag_id}", headers=headers, timeout=10)
            if response.status_code == 200:
                if response.json().get("is_paused"):
                    requests.patch(
                        f"{airflow_url()}/api/v2/dags/{dag_id}", json={"is_paused": False}, headers=headers, timeout=10
                    ).raise_for_status()
                pending.discard(dag_id)
        if pending:
            if time.monotonic() > deadline:
                raise SystemExit(f"DAGs not parsed in time: {sorted(pending)}; see .run/logs/airflow-dag-processor.log")
            time.sleep(1)


# -- commands ----------------------------------------------------------------------------------------------------


def prepare() -> tuple:
    started = time.monotonic()
    link_dsn, meta_dsn, where = ensure_databases()
    say(f"PostgreSQL: {where}; link store database {LINK_DB}, Airflow metadata database {AIRFLOW_DB}")
    settings, fresh = ensure_sandboxes()
    if fresh:
        reset_link_store(link_dsn)
        say(
            f"Sandboxes started and seeded (PowerOffice Go :{settings.pogo_port}, Invoiced :{settings.invoiced_port}): "
            + "; ".join(
                f"{system} " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in spec.items())
                for system, spec in SEED.items()
            )
        )
        say("  (new sandbox data: the demo link store was emptied)")
    else:
        say(
            f"Sandboxes already running (PowerOffice Go :{settings.pogo_port}, Invoiced :{settings.invoiced_port}):"
            " reused with their data"
        )
    env = airflow_env(meta_dsn)
    prepare_airflow(env)
    actions = store_connections(env, sandbox_connections(settings, link_dsn))
    say(
        f"Airflow home {AIRFLOW_HOME.relative_to(ROOT)} ready: metadata DB migrated, pools "
        f"{', '.join(POOLS)} (1 slot each), settings in {ENV_FILE.relative_to(ROOT)} "
        f"({time.monotonic() - started:.1f} s)"
    )
    say(
        "Connections in the metadata DB (UI: Admin -> Connections): "
        + "; ".join(f"{conn_id} {what}" for conn_id, what in actions.items())
    )
    return link_dsn, settings, env


def cmd_demo() -> int:
    link_dsn, settings, env = prepare()
    say(
        "Running sync_customers_company, sync_customers_person, sync_salesorders_invoices once each "
        f"(task logs: {(LOGS / 'demo-flows.log').relative_to(ROOT)}) ..."
    )
    runs = run_flows_in_child(env)
    ok = print_summary(link_dsn, runs)
    print_next_steps(link_dsn, settings, running=bool(_alive(_component_pid("api-server"), "airflow")))
    if not ok:
        say(f"\nA flow did not succeed: see {(LOGS / 'demo-flows.log').relative_to(ROOT)}")
    return 0 if ok else 1


def cmd_up() -> int:
    link_dsn, settings, env = prepare()
    start_airflow(env)
    started = time.monotonic()
    wait_for_airflow()
    say(
        f"Airflow answers on {airflow_url()} ({time.monotonic() - started:.1f} s); the three DAGs are unpaused "
        "and run hourly."
    )
    say("")
    say(f"  UI     {airflow_url()}   login admin / admin")
    say("  Trigger a DAG with params: open it, 'Trigger', set full_refresh / dry_run.")
    print_edit_examples(settings)
    print_next_steps(link_dsn, settings, running=True)
    return 0


def cmd_down() -> int:
    say("Stopping the local stack")
    for name in reversed(COMPONENTS):
        _stop_group(_component_pid(name), "airflow", f"airflow {name}")
    _stop_group(SANDBOX_PID, "-m sandboxes", "sandboxes")
    SANDBOX_STATE.unlink(missing_ok=True)
    from tools.postgres import stop_embedded

    if (PG_DATA / "postmaster.pid").exists():
        say("  stopped embedded PostgreSQL" if stop_embedded(PG_DATA) else "  embedded PostgreSQL: could not stop")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "up", "down", "_flows", "_connections"])
    parser.add_argument("out", nargs="?")
    args = parser.parse_args(argv)
    if args.command == "_flows":
        return _flows(args.out)
    if args.command == "_connections":
        return _connections()
    RUN.mkdir(exist_ok=True)
    return {"demo": cmd_demo, "up": cmd_up, "down": cmd_down}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
