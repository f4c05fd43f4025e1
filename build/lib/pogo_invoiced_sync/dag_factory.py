"""Builds one DAG per flow mapping: extract (both systems) → map → reconcile → upsert (both systems) → report."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Asset, AssetAll, AssetOrTimeSchedule, CronDataIntervalTimetable, Param

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, FlowMapping, load_all
from pogo_invoiced_sync.operators import (
    AnnounceLinksOperator,
    ExtractOperator,
    MapOperator,
    ReconcileOperator,
    ReportOperator,
    UpsertOperator,
)

# Tasks talking to one API share its pool (1 slot each), so the hooks' process-local limiters see all traffic.
POOLS = {POGO: "poweroffice_go_api", INVOICED: "invoiced_api"}
HOURLY = "0 * * * *"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
DOC = """
### {title}

{description}

Every hour this DAG lists what changed on each side since its cursor, maps records to canonical values,
three-way merges them with the last synchronised values (the merge base kept with each link) and writes
creates and updates to the other side. Both systems' ids of a pair are kept in the link store
(connection `sync_state_default`); the created record also carries the other side's id.

| task | does |
|---|---|
| `extract_poweroffice_go`, `extract_invoiced` | list changed records into staging (pools `poweroffice_go_api`, `invoiced_api`) |
| `map` | canonical values into the record mirror; changed records become *dirty* |
| `reconcile` | merge dirty records with their links; writes the plan |
| `upsert_invoiced`, `upsert_poweroffice_go` | carry out the plan; every outcome goes to the sync log |
| `report` | per-direction summary, stored in `runs` and printed in this task's log with the first records of each outcome |
| `announce_links` | emits this flow's asset event for the flows that depend on it; skipped on `dry_run` |

Once its last full listing is older than the mapping's `full_reconciliation` (default 24 h), a run lists a side
it reads incrementally in full and repairs what the incremental reads missed (sync-log operation `repair`).

**Params**: `full_refresh` lists everything on both sides (and reports drift); `dry_run` computes and
logs the plan (outcome `planned`; the `report` log lists it) and writes nothing to either API nor emits the
flow's asset event; `allow_mass_changes` lets one run
past the change guard, which otherwise stops a run that would update too many linked records at once.

**Where to look**: Browse → Sync console (health, records, operator actions); views `v_failures`,
`v_run_changes`, `v_open_conflicts`, `v_waiting` in the link-store schema; the `report` task's log.
{extra}
"""


def flow_asset(flow: str) -> Asset:
    """The asset a flow's run updates: its links, which other flows resolve references through."""
    return Asset(name=f"pogo_invoiced_sync.links.{flow}", uri=f"pogo-invoiced-sync://links/{flow}")


def build_flow_dag(mapping: FlowMapping, all_flows: dict[str, FlowMapping], default_args: dict | None = None,
                   mappings_dir: Path | None = None) -> DAG:
    """One flow's DAG; a flow with ``depends_on`` also runs as soon as the flows it depends on have run."""
    timetable = CronDataIntervalTimetable(HOURLY, timezone="UTC")
    extra = ""
    if mapping.depends_on:
        # An order whose customer was linked in this cycle goes through in this cycle, not the next.
        schedule = AssetOrTimeSchedule(timetable=timetable,
                                       assets=AssetAll(*(flow_asset(f) for f in mapping.depends_on)))
        extra = f"\nAlso runs right after {', '.join(f'`sync_{f}`' for f in mapping.depends_on)} complete."
    else:
        schedule = timetable
    same_records = tuple(f for f, m in all_flows.items() if f != mapping.flow and
                         {s: m.sides[s].entity for s in m.sides} == {s: mapping.sides[s].entity for s in mapping.sides})
    args = {"owner": "data-engineering", "retries": 3, "retry_delay": dt.timedelta(minutes=1),
            "retry_exponential_backoff": True, "max_retry_delay": dt.timedelta(minutes=10), **(default_args or {})}
    with DAG(
        dag_id=f"sync_{mapping.flow}",
        description=mapping.description,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        tags=["sync", "poweroffice-go", "invoiced"],
        params={
            "full_refresh": Param(False, type="boolean", description="List every record on both sides, not only changes."),
            "dry_run": Param(False, type="boolean", description="Compute and log the plan; write nothing to either API."),
            "allow_mass_changes": Param(False, type="boolean",
                                        description="Let this run pass the change guard (many updates at once)."),
        },
        doc_md=DOC.format(title=f"sync_{mapping.flow}", description=mapping.description, extra=extra),
    ) as dag:
        common = {"flow": mapping.flow, "mappings_dir": str(mappings_dir) if mappings_dir else None}
        extracts = [ExtractOperator(task_id=f"extract_{s}", system=s, pool=POOLS[s], **common) for s in (POGO, INVOICED)]
        mapped = MapOperator(task_id="map", **common)
        reconciled = ReconcileOperator(task_id="reconcile", sibling_flows=same_records, **common)
        upserts = [UpsertOperator(task_id=f"upsert_{s}", target=s, pool=POOLS[s], **common) for s in (INVOICED, POGO)]
        # The summary is written whatever became of the run, so that a red run's report log explains it too.
        report = ReportOperator(task_id="report", trigger_rule="all_done", **common)
        # The asset event comes from a task of its own, skipped on a dry run: a run that wrote nothing must not start
        # the flows that depend on this one.
        announce = AnnounceLinksOperator(task_id="announce_links", outlets=[flow_asset(mapping.flow)], **common)
        extracts >> mapped >> reconciled >> upserts >> report >> announce
        upserts >> announce  # only a run whose writes all succeeded announces its links (and colours the run)
    return dag


def build_all(mappings_dir: Path | None = None) -> dict[str, DAG]:
    """Every flow's DAG by dag id. Reads mapping files only: no API or database calls at parse time."""
    flows = load_all(mappings_dir)
    return {dag.dag_id: dag for dag in (build_flow_dag(m, flows, mappings_dir=mappings_dir) for m in flows.values())}
