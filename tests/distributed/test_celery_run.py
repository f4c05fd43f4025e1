"""A real distributed run: every flow of several tenants at once under CeleryExecutor, on two Celery workers.

The stack (tools/celery_stack.py) is the real thing on 127.0.0.1: Redis as broker, PostgreSQL as metadata database,
result backend and link store, the api-server the workers report to, scheduler, dag-processor, two
``airflow celery worker`` processes, and seeded sandboxes of each tenant. The DAGs are the package's own, unchanged.
All flows of all tenants are triggered at once through the REST API, then the flow that depends on the others once
more (what its asset schedule does in production); the module then checks what the resilience suite checks after
every fault (tests/resilience/invariants.py), per tenant, and where the tasks ran.

Tenants: ``CELERY_TEST_TENANTS`` (comma-separated) or the defaults below.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter

import pytest

from tests.resilience import invariants
from tools.celery_stack import FLOWS, CeleryStack, redis_reachable, tenant_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TENANTS = tenant_names(os.environ.get("CELERY_TEST_TENANTS", "default,acme,globex"))


class TenantView:
    """One tenant of the stack as ``invariants.check`` reads it: its sandboxes and its link-store schema."""

    def __init__(self, stack: CeleryStack, tenant: str) -> None:
        self.stack, self.tenant = stack, stack.tenants[tenant]

    def records(self, system: str, entity: str) -> list[dict]:
        return self.tenant.records(system, entity)

    def sql(self, query: str, *params):
        import psycopg

        with psycopg.connect(self.stack.link_dsn) as conn:
            return conn.execute(query.replace("{s}", self.tenant.schema), params).fetchall()


@pytest.fixture(scope="module")
def celery_run(tmp_path_factory):
    """The stack, with every flow of every tenant triggered at once and run to the end; (stack, runs by dag)."""
    problem = redis_reachable()
    if problem:
        pytest.skip(f"needs Redis as Celery's broker: {problem}")
    stack = CeleryStack(tmp_path_factory.mktemp("celery"), TENANTS, workers=2, concurrency=2)
    started = time.monotonic()
    with stack:
        runs = stack.run_cycle()
        print(
            f"\ncelery run: {len(runs)} DAGs, {sum(len(r) for r in runs.values())} runs in "
            f"{time.monotonic() - started:.0f} s (stack start included)"
        )
        yield stack, runs


def test_every_run_of_every_tenant_succeeds(celery_run) -> None:
    _stack, runs = celery_run
    assert all(runs.values()), f"a DAG without runs: {[d for d, r in runs.items() if not r]}"
    failed = {f"{d} {r['dag_run_id']}": r["state"] for d, rs in runs.items() for r in rs if r["state"] != "success"}
    assert not failed, f"runs that did not succeed: {failed}"


@pytest.mark.parametrize("tenant", TENANTS)
def test_each_tenants_records_synced_without_duplicates_or_losses(celery_run, tenant: str) -> None:
    stack, _runs = celery_run
    counts = invariants.check(TenantView(stack, tenant), FLOWS, all_synced=True)
    assert all(c["links"] > 0 for c in counts.values()), f"{tenant}: a flow linked nothing: {counts}"


def test_tasks_ran_on_both_workers(celery_run) -> None:
    stack, _runs = celery_run
    ran = [(dag, task, host) for dag, task, state, host in stack.task_hosts() if state == "success"]
    by_worker = Counter(host.rsplit("/", 1)[-1] for _dag, _task, host in ran)
    print(f"\ntask instances by worker: {dict(by_worker)}")
    assert set(by_worker) == set(stack.worker_names), f"task instances by worker: {dict(by_worker)}"


def test_runs_of_different_tenants_overlapped(celery_run) -> None:
    stack, runs = celery_run
    if len(stack.tenants) < 2:
        pytest.skip("one tenant: nothing to overlap with")
    tenant_of = {d: t.name for t in stack.tenants.values() for d in t.dag_ids.values()}
    spans = [
        (tenant_of[d], dt.datetime.fromisoformat(r["start_date"]), dt.datetime.fromisoformat(r["end_date"]))
        for d, rs in runs.items()
        for r in rs
    ]
    overlapping = [(a[0], b[0]) for a in spans for b in spans if a[0] < b[0] and a[1] < b[2] and b[1] < a[2]]
    assert overlapping, f"no two tenants' runs ran at the same time: {sorted(spans, key=lambda s: s[1])}"
