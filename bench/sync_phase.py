"""One sync cycle (all three flows) in a process of its own, run the way the DAG tasks run it.

Each flow's tasks are the package's operators, called through ``execute(context)`` in DAG order with a minimal
context (``run_id`` and ``params``), with the DAG's parallelism: both extracts together → map → reconcile → both
upserts together → report. The two customer flows run at the same time, as their DAGs do (same schedule); the
invoice flow runs after both (its DAG is scheduled on their assets). A task that calls an API holds that system's
pool slot while it runs, as the default tenant's one-slot pools ``poweroffice_go_api`` and ``invoiced_api`` make
it in Airflow, so no two API tasks of one system overlap. No scheduler, no task runner: what is measured is the
engine, the hooks and the link store.
The connections come from AIRFLOW_CONN_* variables set by ``bench/run.py``.

``BENCH_FLOWS_IN_SEQUENCE=1`` runs the flows one after the other instead (the bench before 2026-12-08), for A/B runs.

Usage (by bench/run.py): ``python bench/sync_phase.py OUT.json LABEL``; prints nothing, writes OUT.json.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Flows of one group run at the same time; groups run one after the other.
GROUPS = ((("customers_company", ("customers_person",)), ("customers_person", ("customers_company",))),
          (("salesorders_invoices", ()),))


def main(out_path: str, label: str) -> int:
    from bench.timing import RssSampler, StoreTimes, TimedStore, maxrss_mib, rss_mib

    sampler = RssSampler().start()
    logging.basicConfig(level=logging.WARNING)
    import_started = time.perf_counter()
    from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

    # The engine's modules the operators import when they run, imported once here: tasks of two flows now start
    # at the same time.
    import pogo_invoiced_sync.engine.extract
    import pogo_invoiced_sync.engine.map_step
    import pogo_invoiced_sync.engine.reconcile
    import pogo_invoiced_sync.engine.report
    import pogo_invoiced_sync.engine.steps
    import pogo_invoiced_sync.engine.upsert

    # Imported here, not in two threads of a stage at once (a concurrent first import can see a half-made module).
    import pogo_invoiced_sync.hooks.invoiced
    import pogo_invoiced_sync.hooks.poweroffice_go  # noqa: F401
    from pogo_invoiced_sync.engine import link_store
    from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
    from pogo_invoiced_sync.operators import sync

    times = StoreTimes()
    # Every LinkStore the operators open goes through the timing proxy (migrate() and connecting included). The
    # operators import LinkStore when a task runs, from the engine's module: replace it there.
    original = link_store.LinkStore
    link_store.LinkStore = lambda connect, schema: TimedStore(original(connect, schema), times)
    import_seconds = time.perf_counter() - import_started
    baseline_rss = rss_mib()

    params = {"full_refresh": False, "dry_run": False}
    tasks: list[dict] = []
    failures: list[str] = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    # The default tenant's Airflow pools: one slot per system for the tasks that call its API.
    pools = {POGO: threading.Lock(), INVOICED: threading.Lock()}

    def run_flow(flow: str, siblings: tuple[str, ...]) -> None:
        context = {"run_id": f"bench__{label}__{stamp}__{flow}", "params": params}
        # The DAG's stages: tasks of one stage run at the same time (each API's tasks in their own pool).
        stages = [[(sync.ExtractOperator(task_id=f"extract_{POGO}", flow=flow, system=POGO), POGO),
                   (sync.ExtractOperator(task_id=f"extract_{INVOICED}", flow=flow, system=INVOICED), INVOICED)],
                  [(sync.MapOperator(task_id="map", flow=flow), None)],
                  [(sync.ReconcileOperator(task_id="reconcile", flow=flow, sibling_flows=siblings), None)],
                  [(sync.UpsertOperator(task_id=f"upsert_{INVOICED}", flow=flow, target=INVOICED), INVOICED),
                   (sync.UpsertOperator(task_id=f"upsert_{POGO}", flow=flow, target=POGO), POGO)],
                  [(sync.ReportOperator(task_id="report", flow=flow), None)]]
        for stage in stages:
            sampler.mark()
            with ThreadPoolExecutor(max_workers=len(stage)) as pool:
                outcomes = list(pool.map(lambda task: _run(task[0], context, pools.get(task[1]), times), stage))
            for (op, _), (seconds, store_seconds, result, error) in zip(stage, outcomes, strict=True):
                if error:
                    failures.append(f"{flow}.{op.task_id}: {error}")
                # Peak memory is per stage and process-wide (flows running at the same time share it).
                tasks.append({"flow": flow, "task": op.task_id, "seconds": seconds,
                              "store_seconds": round(store_seconds, 3),
                              "peak_rss_mib": round(sampler.peak_since_mark(), 1),
                              "result": _compact(result)})
            if failures:
                return

    groups = [[flow] for group in GROUPS for flow in group] if os.environ.get("BENCH_FLOWS_IN_SEQUENCE") else GROUPS
    started = time.perf_counter()
    for group in groups:
        with ThreadPoolExecutor(max_workers=len(group)) as flows:
            list(flows.map(lambda flow: run_flow(*flow), group))
        if failures:
            break
    failure = "; ".join(failures) or None
    wall = time.perf_counter() - started
    sampler.stop()
    Path(out_path).write_text(json.dumps({
        "label": label, "wall_seconds": round(wall, 3), "failure": failure,
        "import_seconds": round(import_seconds, 2), "baseline_rss_mib": round(baseline_rss, 1),
        "peak_rss_mib": round(maxrss_mib(), 1),
        "store_seconds": round(times.total(), 3),
        "store_by_method": {k: {"seconds": round(v, 3), "calls": times.calls[k]}
                            for k, v in times.seconds.most_common()},
        "tasks": tasks}, indent=1, default=str))
    return 0 if failure is None else 1


def _run(op, context, pool, times) -> tuple[float, float, object, str | None]:
    """Execute one operator, holding its pool slot if it has one: (seconds, link-store seconds, result, error).

    The seconds are the task's own, from when it holds its pool slot (as Airflow starts a pooled task then).
    """
    with pool if pool is not None else contextlib.nullcontext():
        started = time.perf_counter()
        store_before = times.thread_total()
        try:
            result = op.execute(context)
        except Exception as exc:  # recorded in the results, the run stops after this stage
            seconds = round(time.perf_counter() - started, 3)
            return seconds, times.thread_total() - store_before, None, f"{type(exc).__name__}: {exc}"
        return round(time.perf_counter() - started, 3), times.thread_total() - store_before, result, None


def _compact(result):
    """The operator's result without bulky parts."""
    if not isinstance(result, dict):
        return result
    return {k: v for k, v in result.items() if k not in ("run_id",)}


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.exit(main(sys.argv[1], sys.argv[2]))
