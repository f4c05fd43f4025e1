"""Secrets stay out of every log and out of the link store (issue 5 §4).

A full sync of all three flows runs against a sandbox whose four keys are distinctive marker strings, with
short-lived PowerOffice Go tokens (so several are issued), a 429 burst (retry warnings) and a refused record
(an API error message in the sync log). Then every place a secret could end up is searched: Python logging at
DEBUG (caplog), stdout/stderr (capfd), the Airflow task logs under ``$AIRFLOW_HOME/logs``, Airflow's metadata
database file, and every table of the link-store schema dumped as text.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.integration

SCHEMA = "pogo_invoiced_sync"


def _link_store_dump(dsn: str) -> dict[str, str]:
    """Every table of the link-store schema, each row as text."""
    with psycopg.connect(dsn) as conn:
        tables = [
            t
            for (t,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (SCHEMA,),
            )
        ]
        return {
            table: "\n".join(
                row
                for (row,) in conn.execute(
                    sql.SQL("SELECT t::text FROM {}.{} t").format(sql.Identifier(SCHEMA), sql.Identifier(table))
                )
            )
            for table in tables
        }


def _airflow_files() -> dict[str, str]:
    """The task logs and the metadata database under $AIRFLOW_HOME, decoded loosely (the DB is binary)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    return {
        str(p): p.read_bytes().decode("utf-8", "replace")
        for p in home.rglob("*")
        if p.is_file() and (p.suffix in (".log", ".db", ".json", ".txt") or "logs" in p.parts)
    }


def test_a_full_sync_of_all_three_flows_leaks_no_key_or_token(stack, secret_env, secrets, caplog, capfd, monkeypatch):
    from pogo_invoiced_sync.clients import PowerOfficeGoClient

    assert os.environ["AIRFLOW_CONN_INVOICED_DEFAULT"].count(secret_env.invoiced_url) == 1
    stack.sandboxes = secret_env
    issued: list[str] = []
    original = PowerOfficeGoClient._request_token

    def recording(self):
        token, renew_at = original(self)
        issued.append(token)
        return token, renew_at

    monkeypatch.setattr(PowerOfficeGoClient, "_request_token", recording)
    caplog.set_level(logging.DEBUG)
    secret_env.pogo.configure(token_ttl_seconds=2)  # renewed after a second: several tokens per run
    secret_env.pogo.seed(companies=3, persons=2, sales_orders=3)
    secret_env.invoiced.seed(companies=2, persons=1, invoices=2)
    refused = stack.invoiced.create("/customers", {"name": " ", "type": "company"})  # PowerOffice Go refuses it
    secret_env.pogo.faults(burst_429=3, path_pattern="^/v2/Customers")
    stack.run_all()
    secret_env.pogo.faults()
    first = min(c["Id"] for c in stack.records("poweroffice_go", "customers"))
    stack.pogo.patch(f"/Customers/{first}", {"Name": "Endret AS"})
    stack.run_all()

    assert len(issued) >= 2, "the test meant to see several tokens"
    assert stack.sql("SELECT count(*) FROM {s}.v_failures WHERE invoiced_id = %s", str(refused["id"]))[0][0] >= 1
    assert stack.sql("SELECT count(*) FROM {s}.links")[0][0] > 10  # the sync really ran
    captured = capfd.readouterr()
    places = {
        "Python logging (formatted)": caplog.text,
        "Python logging (raw records)": "\n".join(
            f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
        ),
        "stdout": captured.out,
        "stderr": captured.err,
        **{f"link store table {t}": text for t, text in _link_store_dump(stack.dsn).items()},
        **{f"Airflow file {p}": text for p, text in _airflow_files().items()},
    }
    logs = "\n".join(text for place, text in places.items() if "table" not in place)
    # The search covered the task logs wherever they went (dag.test() prints them): hook warnings and reports.
    assert "retrying in" in logs
    assert "Sync summary" in logs
    assert caplog.records
    assert "sync_log" in " ".join(places)
    secrets_found = {
        (label, place) for label, value in secrets.all.items() for place, text in places.items() if value in text
    }
    assert not secrets_found, f"secrets leaked: {sorted(secrets_found)}"
    tokens_found = {place for token in issued for place, text in places.items() if token in text}
    assert not tokens_found, f"PowerOffice Go access tokens leaked to: {sorted(tokens_found)}"
