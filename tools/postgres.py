"""Find a PostgreSQL for the link store: the configured one, a local server, or an embedded one (PyPI ``pgserver``)."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import quote

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _usable(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def ensure_postgres(data_dir: Path, allow_local: bool = True) -> tuple[str, str]:
    """Return (dsn, where): ``SYNC_STATE_DSN`` if set, else 127.0.0.1:5432, else an embedded server in ``data_dir``.

    The embedded server listens on a Unix socket only and keeps running after this process exits
    (``tools/postgres.py stop`` or ``make down`` stops it).
    """
    configured = os.environ.get("SYNC_STATE_DSN")
    if configured:
        return configured, "configured (SYNC_STATE_DSN)"
    if allow_local and _reachable("127.0.0.1", 5432) and _usable(LOCAL_DSN):
        return LOCAL_DSN, "local server on 127.0.0.1:5432"
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    return server.get_uri(), f"embedded PostgreSQL in {data_dir}"


def airflow_connection_json(dsn: str) -> str:
    """An Airflow connection (JSON form) for a DSN, Unix-socket DSNs included."""
    import json

    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    return json.dumps({"conn_type": "postgres", "host": info.get("host", "127.0.0.1"), "port": int(info.get("port", 5432)),
                       "login": info.get("user", "postgres"), "password": info.get("password") or None,
                       "schema": info.get("dbname", "postgres")})


def with_database(dsn: str, dbname: str) -> str:
    """The same server, another database."""
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


def stop_embedded(data_dir: Path) -> bool:
    """Stop an embedded server started in ``data_dir`` (if running)."""
    import subprocess

    if not (data_dir / "postmaster.pid").exists():
        return False
    from pgserver._commands import POSTGRES_BIN_PATH

    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(quote(c, safe="/-_.") for c in cmd)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


if __name__ == "__main__":
    import sys

    folder = Path(sys.argv[2] if len(sys.argv) > 2 else ".run/postgres")
    if len(sys.argv) > 1 and sys.argv[1] == "stop":
        print("stopped" if stop_embedded(folder) else "not running")
    else:
        print(ensure_postgres(folder)[0])
