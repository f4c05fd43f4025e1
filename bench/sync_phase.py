"""One sync cycle (all three flows) in a process of its own, run the way the DAG tasks run it.

Each flow's tasks are the package's operators, called through ``execute(context)`` in DAG order with a minimal
context (``run_id`` and ``params``), with the DAG's parallelism: both extracts together → map → reconcile → both
upserts together → report; flows in the order customers_company, customers_person, salesorders_invoices (the
invoice flow depends on both customer flows). No scheduler, no task runner: what is measured is the engine, the
hooks and the link store.
The connections come from AIRFLOW_CONN_* variables set by ``bench/run.py``.

Usage (by bench/run.py): ``python bench/sync_phase.py OUT.json LABEL``; prints nothing, writes OUT.json.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

FLOWS = (("customers_company", ("customers_person",)), ("customers_person", ("customers_company",)),
         ("salesorders_invoices", ()))


def main(out_path: str, label: str) -> int:
    from bench.timing import RssSampler, StoreTimes, TimedStore, maxrss_mib, rss_mib

    sampler = RssSampler().start()
    logging.basicConfig(level=logging.WARNING)
    import_started = time.perf_counter()
    from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

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
    stamp = time.strftime("%Y%m%dT%H%M%S")
    started = time.perf_counter()
    failure = None
    for flow, siblings in FLOWS:
        run_id = f"bench__{label}__{stamp}__{flow}"
        context = {"run_id": run_id, "params": params}
        # The DAG's stages: tasks of one stage run at the same time (each API's tasks in their own pool).
        stages = [[sync.ExtractOperator(task_id=f"extract_{POGO}", flow=flow, system=POGO),
                   sync.ExtractOperator(task_id=f"extract_{INVOICED}", flow=flow, system=INVOICED)],
                  [sync.MapOperator(task_id="map", flow=flow)],
                  [sync.ReconcileOperator(task_id="reconcile", flow=flow, sibling_flows=siblings)],
                  [sync.UpsertOperator(task_id=f"upsert_{INVOICED}", flow=flow, target=INVOICED),
                   sync.UpsertOperator(task_id=f"upsert_{POGO}", flow=flow, target=POGO)],
                  [sync.ReportOperator(task_id="report", flow=flow)]]
        for stage in stages:
            store_before = times.total()
            sampler.mark()
            stage_started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=len(stage)) as pool:
                outcomes = list(pool.map(_run, stage, itertools.repeat(context)))
            for op, (seconds, result, error) in zip(stage, outcomes, strict=True):
                failure = failure or (f"{flow}.{op.task_id}: {error}" if error else None)
                # Link-store time and peak memory are per stage: tasks of a stage share them.
                tasks.append({"flow": flow, "task": op.task_id, "seconds": seconds,
                              "stage_seconds": round(time.perf_counter() - stage_started, 3),
                              "store_seconds": round(times.total() - store_before, 3),
                              "peak_rss_mib": round(sampler.peak_since_mark(), 1),
                              "result": _compact(result)})
            if failure:
                break
        if failure:
            break
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


def _run(op, context) -> tuple[float, object, str | None]:
    """Execute one operator: (seconds, result, error)."""
    started = time.perf_counter()
    try:
        result = op.execute(context)
    except Exception as exc:  # recorded in the results, the run stops after this stage
        return round(time.perf_counter() - started, 3), None, f"{type(exc).__name__}: {exc}"
    return round(time.perf_counter() - started, 3), result, None


def _compact(result):
    """The operator's result without bulky parts."""
    if not isinstance(result, dict):
        return result
    return {k: v for k, v in result.items() if k not in ("run_id",)}


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.exit(main(sys.argv[1], sys.argv[2]))
