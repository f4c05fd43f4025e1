"""Extract, Map, Reconcile, Upsert and Report operators: generic over the flow mappings, thin over the engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import BaseOperator

from pogo_invoiced_sync import config
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, SYSTEMS, FlowMapping, TooManyRejections, load_mapping
from pogo_invoiced_sync.engine.schema import DEFAULT_SCHEMA

# The engine's steps (pandas, psycopg) are imported in run_step: parsing the DAG file only builds operators.
if TYPE_CHECKING:
    import psycopg

    from pogo_invoiced_sync.engine.link_store import LinkStore

API_CONN_IDS = {POGO: "poweroffice_go_default", INVOICED: "invoiced_default"}


def _hook(system: str, conn_id: str | None):
    if system == POGO:
        from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

        return PowerOfficeGoHook(conn_id or API_CONN_IDS[POGO])
    from pogo_invoiced_sync.hooks.invoiced import InvoicedHook

    return InvoicedHook(conn_id or API_CONN_IDS[INVOICED])


class FlowOperator(BaseOperator):
    """Base of the flow operators: the mapping, the link store connection and the run's params.

    :param flow: the flow's mapping name in ``include/mappings`` (e.g. ``customers_person``).
    :param sync_state_conn_id: PostgreSQL connection of the link store.
    :param state_schema: schema holding the link store's tables.
    :param mappings_dir: folder of the mapping files (default: ``mappings/`` in the ``include_dir`` setting).
    """

    template_fields: Sequence[str] = ("flow", "sync_state_conn_id", "state_schema")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        flow: str,
        sync_state_conn_id: str = "sync_state_default",
        state_schema: str = DEFAULT_SCHEMA,
        mappings_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow = flow
        self.sync_state_conn_id = sync_state_conn_id
        self.state_schema = state_schema
        self.mappings_dir = mappings_dir

    @property
    def mapping(self) -> FlowMapping:
        return load_mapping(self.flow, Path(self.mappings_dir) if self.mappings_dir else None)

    def link_store(self) -> LinkStore:
        """A migrated link store over the ``sync_state`` connection (opened here, at run time only)."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from pogo_invoiced_sync.engine.link_store import LinkStore

        hook = PostgresHook(postgres_conn_id=self.sync_state_conn_id)
        # The provider hands out psycopg 3 connections (it prefers psycopg 3 with SQLAlchemy 2), which LinkStore takes.
        store = LinkStore(lambda: cast("psycopg.Connection", hook.get_conn()), self.state_schema)
        store.migrate()
        return store

    @staticmethod
    def param(context: Any, name: str) -> bool:
        return bool((context.get("params") or {}).get(name, False))

    def run_step(self, context: Any) -> dict:
        raise NotImplementedError

    def api_client(self, system: str, conn_id: str | None) -> Any:
        """The API client of ``system``, its limits shared with every worker using the credential (by default)."""
        client = _hook(system, conn_id).get_conn()
        if config.shared_limits():
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            # The slots live in the link store's database: every task of every tenant and worker reaches it.
            client.share_limits(
                PostgresHook(postgres_conn_id=self.sync_state_conn_id).get_conn, self.sync_state_conn_id
            )
        return client

    def keep_api_stats(self, store: LinkStore, context: Any, client: Any) -> None:
        """Store this task's API calls (by status: 429s included) with the run, also when the step failed."""
        try:
            store.record_api(self.flow, context["run_id"], self.task_id, client.stats)
        except Exception as exc:  # statistics must never hide the step's own outcome
            self.log.warning("could not store the API statistics of %s: %s", self.task_id, exc)

    def execute(self, context: Any) -> dict:
        try:
            result = self.run_step(context)
        except TooManyRejections as exc:
            raise AirflowFailException(str(exc)) from exc  # a retry would reject the same records again
        except Exception as exc:
            if getattr(exc, "needs_configuration", False):
                # Wrong keys, a missing connection or privilege: fail now, not after a ladder of identical retries.
                from pogo_invoiced_sync.clients.errors import configuration_message

                raise AirflowFailException(configuration_message(exc)) from exc  # type: ignore[arg-type]
            raise
        self.log.info("%s: %s", self.task_id, json.dumps(result, default=str, sort_keys=True))
        return result


class ExtractOperator(FlowOperator):
    """List one system's records changed since the flow's cursor (all of them on ``full_refresh``) into staging.

    A backfill run reads from its data interval's start, so it re-syncs the changes of that interval.

    :param system: ``poweroffice_go`` or ``invoiced``.
    :param api_conn_id: the system's connection (default ``poweroffice_go_default`` / ``invoiced_default``).
    """

    template_fields = (*FlowOperator.template_fields, "api_conn_id")

    def __init__(self, *, system: str, api_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if system not in SYSTEMS:
            raise ValueError(f"system must be one of {SYSTEMS}: {system!r}")
        self.system = system
        self.api_conn_id = api_conn_id

    def run_step(self, context: Any) -> dict:
        from pogo_invoiced_sync.engine import steps

        store = self.link_store()
        try:
            store.start_run(self.flow, context["run_id"], dict(context.get("params") or {}))
            since = context.get("data_interval_start") if is_backfill(context) else None
            client = self.api_client(self.system, self.api_conn_id)
            try:
                result = steps.extract(
                    store,
                    self.mapping,
                    self.system,
                    client,
                    context["run_id"],
                    full_refresh=self.param(context, "full_refresh"),
                    since_override=since,
                )
            finally:
                self.keep_api_stats(store, context, client)
            result["api"] = client.stats
            return result
        finally:
            store.close()


def is_backfill(context: Any) -> bool:
    """Tell whether the task runs in a backfill's DAG run (``airflow backfill create``)."""
    from airflow.utils.types import DagRunType

    # The task context's run_type is the Task SDK's own enum, whose str() is "DagRunType.BACKFILL": compare values.
    return getattr(context.get("dag_run"), "run_type", None) == DagRunType.BACKFILL_JOB


class MapOperator(FlowOperator):
    """Map both systems' staged records to canonical values in the record mirror, marking changed ones."""

    def run_step(self, context: Any) -> dict:
        from pogo_invoiced_sync.engine import steps

        store = self.link_store()
        result, refused = {}, []
        try:
            for system in SYSTEMS:
                try:
                    result[system] = steps.map_records(store, self.mapping, system, context["run_id"])
                except TooManyRejections as exc:  # the other system is still mapped before the task fails
                    refused.append(str(exc))
        finally:
            store.close()
        if refused:
            raise TooManyRejections(" ".join(refused))
        return result


class ReconcileOperator(FlowOperator):
    """Three-way merge of the changed records against their links; writes the plan (also on ``dry_run``).

    :param sibling_flows: flows over the same records (the other customer flow), to report type changes.
    """

    def __init__(self, *, sibling_flows: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sibling_flows = tuple(sibling_flows)

    def run_step(self, context: Any) -> dict:
        from pogo_invoiced_sync.engine import steps

        store = self.link_store()
        try:
            return steps.reconcile(
                store,
                self.mapping,
                context["run_id"],
                self.sibling_flows,
                dry_run=self.param(context, "dry_run"),
                allow_mass_changes=self.param(context, "allow_mass_changes"),
                full_refresh=self.param(context, "full_refresh"),
            )
        finally:
            store.close()


class UpsertOperator(FlowOperator):
    """Write the plan's creates and updates to one system; on ``dry_run`` only log them as planned.

    :param target: the system written to.
    :param api_conn_id: that system's connection.
    """

    template_fields = (*FlowOperator.template_fields, "api_conn_id")

    def __init__(self, *, target: str, api_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if target not in SYSTEMS:
            raise ValueError(f"target must be one of {SYSTEMS}: {target!r}")
        self.target = target
        self.api_conn_id = api_conn_id

    def run_step(self, context: Any) -> dict:
        from pogo_invoiced_sync.engine import steps

        store = self.link_store()
        try:
            client = self.api_client(self.target, self.api_conn_id)  # loads the connection: max_workers is an extra
            dry_run = self.param(context, "dry_run")
            try:
                workers = 1 if dry_run else max(1, int(getattr(client, "max_workers", 4) or 4))
                result = steps.upsert(
                    store, self.mapping, self.target, client, context["run_id"], dry_run=dry_run, max_workers=workers
                )
            finally:
                self.keep_api_stats(store, context, client)
            result["api"] = client.stats
            return result
        finally:
            store.close()


class ReportOperator(FlowOperator):
    """Summarise the run per direction, store the summary as the run's report and print it."""

    def run_step(self, context: Any) -> dict:
        from pogo_invoiced_sync.engine import steps

        store = self.link_store()
        try:
            summary = steps.summarise(store, self.mapping, context["run_id"], dry_run=self.param(context, "dry_run"))
        finally:
            store.close()
        self.log.info("Sync summary of %s, run %s:\n%s", self.flow, context["run_id"], format_summary(summary))
        return summary

    def execute(self, context: Any) -> dict:
        # The summary above is the log; the result (XCom) without the examples stays small.
        result = self.run_step(context)
        return {k: v for k, v in result.items() if k != "examples"}


class AnnounceLinksOperator(FlowOperator):
    """Mark the end of a run that may have changed the flow's links, emitting the flow's asset (its ``outlets``).

    Skipped on ``dry_run``: a run that wrote nothing must not start the flows that depend on this one.
    """

    ui_color = "#f0f0f0"

    def run_step(self, context: Any) -> dict:
        if self.param(context, "dry_run"):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("dry run: nothing was written, so no asset event for dependent flows")
        return {"flow": self.flow, "announced": [str(getattr(o, "name", o)) for o in self.outlets]}


def format_summary(summary: dict) -> str:
    """A small text table of a run summary, then the first records of each outcome with ids, values and reasons."""
    from pogo_invoiced_sync.engine.report import EXAMPLES

    lines = []
    if summary.get("dry_run"):
        lines.append("  DRY RUN: nothing was written to either API; planned_* is what a real run would do")
    lines.append(f"  extracted: {summary['extracted']}  unchanged: {summary['unchanged']}")
    for direction, counts in sorted(summary["by_direction"].items()):
        lines.append(f"  {direction:<18} " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if not summary["by_direction"]:
        lines.append("  nothing to do")
    for kind, rows in sorted((summary.get("examples") or {}).items()):
        lines.append(f"  {kind} ({'first ' if len(rows) >= EXAMPLES else ''}{len(rows)}):")
        for row in rows:
            ids = " ".join(f"{k}={row[k]}" for k in ("poweroffice_go_id", "invoiced_id") if row.get(k))
            parts = [row.get("direction") or "", ids]
            if row.get("before") is not None:
                parts.append(f"before={json.dumps(row['before'], ensure_ascii=False, sort_keys=True)}")
            if row.get("after") is not None:
                parts.append(f"after={json.dumps(row['after'], ensure_ascii=False, sort_keys=True)}")
            if row.get("reason"):
                parts.append(f"reason: {row['reason']}")
            lines.append("    " + "  ".join(p for p in parts if p))
    return "\n".join(lines)
