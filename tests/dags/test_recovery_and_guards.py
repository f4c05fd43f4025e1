"""Crash recovery and the change guard, end to end against the sandboxes and PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, SYSTEMS, load_mapping

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSERT_SCRIPT = """
import sys
sys.path[:0] = [{plugins!r}]
import psycopg
from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.flow_mapping import load_mapping
from pogo_invoiced_sync.operators.sync import _hook
store = LinkStore(lambda: psycopg.connect({dsn!r}), "pogo_invoiced_sync")
steps.upsert(store, load_mapping("customers_company"), {target!r}, _hook({target!r}, None).get_conn(), "crashed-run")
"""


def _plan_run(stack, run_id: str) -> None:
    """Extract, map and reconcile one run of the company flow in this process, as the DAG's tasks would."""
    from pogo_invoiced_sync.operators.sync import _hook

    store = LinkStore(lambda: psycopg.connect(stack.dsn), "pogo_invoiced_sync")
    store.migrate()
    mapping = load_mapping("customers_company")
    for system in SYSTEMS:
        steps.extract(store, mapping, system, _hook(system, None).get_conn(), run_id)
    for system in SYSTEMS:
        steps.map_records(store, mapping, system, run_id)
    steps.reconcile(store, mapping, run_id)
    store.close()


def _posts(admin, path: str) -> int:
    return admin.counters()["routes"].get(f"POST {path}", 0)


@pytest.mark.parametrize("target", [INVOICED, POGO])
def test_a_task_killed_after_the_api_create_but_before_the_link_write_leaves_exactly_one_counterpart(stack, target):
    origin_admin, target_admin = ((stack.sandboxes.pogo, stack.sandboxes.invoiced) if target == INVOICED
                                  else (stack.sandboxes.invoiced, stack.sandboxes.pogo))
    origin_admin.seed(companies=5)
    path = "/customers" if target == INVOICED else "/v2/Customers"
    _plan_run(stack, "crashed-run")
    blocker = psycopg.connect(stack.dsn)
    # Holds back the link write (INSERT) while reads go on: the upsert gets through its API creates, then waits.
    blocker.execute("LOCK TABLE pogo_invoiced_sync.links IN EXCLUSIVE MODE")
    script = UPSERT_SCRIPT.format(plugins=os.path.join(ROOT, "plugins"), dsn=stack.dsn, target=target)
    worker = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while _posts(target_admin, path) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _posts(target_admin, path) == 5, "the upsert did not reach its API creates"
        time.sleep(0.5)
        assert worker.poll() is None, "the upsert finished although its link write was blocked"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert stack.sql("SELECT count(*) FROM {s}.links")[0][0] == 0
    stack.run("customers_company")
    counterparts = target_admin.records("customers")
    assert len(counterparts) == 5
    assert stack.sql("SELECT count(*) FROM {s}.links")[0][0] == 5
    assert stack.sql("SELECT count(*) FROM {s}.pending_creates")[0][0] == 0
    assert _posts(target_admin, path) == 5  # the rerun created nothing more


def test_the_change_guard_stops_a_run_that_would_update_most_linked_records_before_writing(stack):
    stack.sandboxes.pogo.seed(companies=40)
    stack.run("customers_company")
    for customer in stack.records("invoiced", "customers")[:30]:
        stack.invoiced.update(f"/customers/{customer['id']}", {"name": f"{customer['name']} (renamed)"})
    stack.sandboxes.pogo.clear_counters()
    stack.run("customers_company", expect="failed")
    assert stack.writes()["poweroffice_go"] == 0
    reasons = [r for (r,) in stack.sql("SELECT reason FROM {s}.sync_log WHERE operation = 'guard'")]
    assert reasons and "would update 30 of 40 linked records" in reasons[0]
    stack.run("customers_company", allow_mass_changes=True)
    assert sum(c["Name"].endswith("(renamed)") for c in stack.records("poweroffice_go", "customers")) == 30
