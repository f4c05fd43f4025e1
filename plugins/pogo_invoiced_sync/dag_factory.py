"""Builds one DAG per flow mapping: extract (both systems) → map → reconcile → upsert (both systems) → report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

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
from pogo_invoiced_sync.tenants import DEFAULT, Tenant, load_tenants

# The default tenant's API tasks keep their one-slot pools; API budgets themselves are held in the link-store
# database (clients/shared_limits.py), shared by every tenant and worker, so other tenants need no pool (Tenant.pools).
POOLS = DEFAULT.pools
HOURLY = "0 * * * *"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
DOC = """
### {title}

{description}

Every hour this DAG lists what changed on each side since its cursor, maps records to canonical values,
three-way merges them with the last synchronised values (the merge base kept with each link) and writes
creates and updates to the other side. Both systems' ids of a pair are kept in the link store
(connection `{sync_state_conn_id}`, schema `{state_schema}`); the created record also carries the other side's id.
{tenant}
| task | does |
|---|---|
| `extract_poweroffice_go`, `extract_invoiced` | list changed records into staging (pools `{pogo_pool}`, \
`{invoiced_pool}`) |
| `map` | canonical values into the record mirror; changed records become *dirty* |
| `reconcile` | merge dirty records with their links; writes the plan |
| `upsert_invoiced`, `upsert_poweroffice_go` | carry out the plan; every outcome goes to the sync log |
| `report` | per-direction summary, stored in `runs` and printed in this task's log with each outcome's first records |
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


def flow_asset(flow: str, tenant: Tenant = DEFAULT) -> Asset:
    """The asset a flow's run updates: its links, which other flows of the same tenant resolve references through."""
    if tenant.is_default:
        return Asset(name=f"pogo_invoiced_sync.links.{flow}", uri=f"pogo-invoiced-sync://links/{flow}")
    return Asset(
        name=f"pogo_invoiced_sync.{tenant.name}.links.{flow}", uri=f"pogo-invoiced-sync://{tenant.name}/links/{flow}"
    )


def build_flow_dag(
    mapping: FlowMapping,
    all_flows: dict[str, FlowMapping],
    default_args: dict | None = None,
    mappings_dir: Path | None = None,
    tenant: Tenant = DEFAULT,
) -> DAG:
    """One flow's DAG for a tenant; a flow with ``depends_on`` also runs as soon as the flows it depends on have run."""
    timetable = CronDataIntervalTimetable(HOURLY, timezone="UTC")
    extra = ""
    schedule: AssetOrTimeSchedule | CronDataIntervalTimetable
    if mapping.depends_on:
        # An order whose customer was linked in this cycle goes through in this cycle, not the next.
        schedule = AssetOrTimeSchedule(
            timetable=timetable, assets=AssetAll(*(flow_asset(f, tenant) for f in mapping.depends_on))
        )
        extra = f"\nAlso runs right after {', '.join(f'`{tenant.dag_id(f)}`' for f in mapping.depends_on)} complete."
    else:
        schedule = timetable
    same_records = tuple(
        f
        for f, m in all_flows.items()
        if f != mapping.flow
        and {s: m.sides[s].entity for s in m.sides} == {s: mapping.sides[s].entity for s in mapping.sides}
    )
    args = {
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
        # Depth first: a run's later tasks outrank other runs' earlier ones, so with many runs queued (tenants) the
        # first writes start once one run is through its extracts, not once every run is.
        "weight_rule": "upstream",
        **(default_args or {}),
    }
    pools = tenant.pools
    tags = ["sync", "poweroffice-go", "invoiced"] + ([] if tenant.is_default else [f"tenant:{tenant.name}"])
    about = ""
    if not tenant.is_default:
        conns = f"`{tenant.poweroffice_go_conn_id}`, `{tenant.invoiced_conn_id}`"
        about = f"\n**Tenant** `{tenant.name}`: API connections {conns}.\n"
    with DAG(
        dag_id=tenant.dag_id(mapping.flow),
        description=mapping.description,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        tags=tags,
        params={
            "full_refresh": Param(
                False, type="boolean", description="List every record on both sides, not only changes."
            ),
            "dry_run": Param(
                False, type="boolean", description="Compute and log the plan; write nothing to either API."
            ),
            "allow_mass_changes": Param(
                False, type="boolean", description="Let this run pass the change guard (many updates at once)."
            ),
        },
        doc_md=DOC.format(
            title=tenant.dag_id(mapping.flow),
            description=mapping.description,
            extra=extra,
            tenant=about,
            sync_state_conn_id=tenant.sync_state_conn_id,
            state_schema=tenant.state_schema,
            pogo_pool=pools[POGO],
            invoiced_pool=pools[INVOICED],
        ),
    ) as dag:
        common: dict[str, Any] = {
            "flow": mapping.flow,
            "mappings_dir": str(mappings_dir) if mappings_dir else None,
            "sync_state_conn_id": tenant.sync_state_conn_id,
            "state_schema": tenant.state_schema,
        }
        api = {POGO: tenant.poweroffice_go_conn_id, INVOICED: tenant.invoiced_conn_id}
        extracts = [
            ExtractOperator(task_id=f"extract_{s}", system=s, api_conn_id=api[s], pool=pools[s], **common)
            for s in (POGO, INVOICED)
        ]
        mapped = MapOperator(task_id="map", **common)
        reconciled = ReconcileOperator(task_id="reconcile", sibling_flows=same_records, **common)
        upserts = [
            UpsertOperator(task_id=f"upsert_{s}", target=s, api_conn_id=api[s], pool=pools[s], **common)
            for s in (INVOICED, POGO)
        ]
        # The summary is written whatever became of the run, so that a red run's report log explains it too.
        report = ReportOperator(task_id="report", trigger_rule="all_done", **common)
        # The asset event comes from a task of its own, skipped on a dry run: a run that wrote nothing must not start
        # the flows that depend on this one.
        announce = AnnounceLinksOperator(task_id="announce_links", outlets=[flow_asset(mapping.flow, tenant)], **common)
        extracts >> mapped >> reconciled >> upserts >> report >> announce
        upserts >> announce  # only a run whose writes all succeeded announces its links (and colours the run)
    return dag


def build_all(mappings_dir: Path | None = None, tenants_path: Path | None = None) -> dict[str, DAG]:
    """Every tenant's flow DAGs by dag id. Reads the mapping and tenants files only: no API or DB calls at parse time.

    A tenant removed from the tenants file loses its DAGs here; its link-store schema and rows are left as they are.
    """
    flows = load_all(mappings_dir)
    dags = (
        build_flow_dag(m, flows, mappings_dir=mappings_dir, tenant=t)
        for t in load_tenants(tenants_path)
        for m in flows.values()
    )
    return {dag.dag_id: dag for dag in dags}
