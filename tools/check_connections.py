"""Check the two API connections with the hooks' ``test_connection()``: ``python -m tools.check_connections``.

Run it where Airflow is configured (locally: after ``set -a; . .run/airflow.env; set +a``). The connections are
read as Airflow's server side reads them (environment variable, secrets backend, metadata database) and handed to
the hooks as ``AIRFLOW_CONN_*`` of this process only: outside a task, the hooks' lookup sees no metadata database.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))


def _export(conn_id: str) -> None:
    """Make ``conn_id`` visible to the hooks in this process, as the UI's Test button does."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return  # the hook says so in its own words
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn.as_json()


def main() -> int:
    """Print one line per connection; exit 1 if any fails."""
    from pogo_invoiced_sync.hooks.invoiced import InvoicedHook
    from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

    failed = 0
    for hook_class in (PowerOfficeGoHook, InvoicedHook):
        _export(hook_class.default_conn_name)
        hook = hook_class()
        ok, message = hook.test_connection()
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {hook.default_conn_name}: {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
