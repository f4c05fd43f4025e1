"""The console's FastAPI app, mounted in Airflow's api-server by the plugin: pages and a small JSON API.

Who is asking comes from Airflow's own dependency (``get_user``: the UI's session cookie or a bearer token); what
they may do comes from the configured auth manager: reading needs GET on the flow's DAG, acting needs PUT on it, and
a retry (which triggers a run) also POST on its runs. Actions only take JSON bodies, which a cross-site form cannot
send, so the session cookie cannot be used to act from another site.

Tenants: the default tenant's console is at the app's root, as with one client pair; another tenant's pages are the
same pages under ``/t/<tenant>/`` (links within a page stay in its tenant), and the JSON API also takes
``?tenant=<name>``. Each tenant is read through its own ``sync_state`` connection and link-store schema, and
permissions are checked on its own DAGs (``<tenant>.sync_<flow>``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette._utils import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from pogo_invoiced_sync.console import pages
from pogo_invoiced_sync.console.store import ActionError, ConsoleStore, as_json
from pogo_invoiced_sync.engine.schema import DEFAULT_SCHEMA
from pogo_invoiced_sync.tenants import DEFAULT, DEFAULT_TENANT, Tenant, TenantsFileError, load_tenants

ACTIONS = ("resolve", "retry", "unlink", "relink", "exclude", "include")
_TENANT_PATH = re.compile(r"^/t/([a-z][a-z0-9_]{0,30})(/.*)?$")


def _connect_to(conn_id: str) -> Callable[[], Any]:
    def connect() -> Any:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=conn_id).get_conn()

    return connect


class TenantPrefix:
    """Serves ``/t/<tenant>/<page>`` as that tenant's ``<page>``: the prefix joins the root path (links stay in it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = _TENANT_PATH.match(get_route_path(scope))
            if found:
                root = f"{scope.get('root_path', '')}/t/{found.group(1)}"
                path = root + (found.group(2) or "/")
                scope = {**scope, "tenant": found.group(1), "root_path": root, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _default_trigger(dag_id: str, user: str, note: str) -> str | None:
    """Queue a run of ``dag_id`` now, as the Trigger button does; returns its run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    run = trigger_dag(
        dag_id,
        triggered_by=DagRunTriggeredByType.UI,
        triggering_user_name=user,
        conf={"full_refresh": False, "dry_run": False, "allow_mass_changes": False},
        note=note,
    )
    return None if run is None else run.run_id


def create_app(
    connect: Callable[[], Any] | None = None,
    schema: str = DEFAULT_SCHEMA,
    mappings_dir: Path | None = None,
    trigger: Callable[[str, str, str], str | None] | None = None,
    tenants: list[Tenant] | None = None,
):
    """The console app over every tenant's link store.

    :param connect: opens a link-store connection (default: the tenant's ``sync_state`` connection).
    :param schema: the default tenant's schema when neither ``tenants`` nor a tenants file is used (tests).
    :param trigger: starts a DAG run (default: Airflow's, as the Trigger button does).
    :param tenants: the tenants (default: ``tenants.yaml``, read at each request so an edit shows without a restart;
        with ``connect`` given and no tenants, the one default tenant in ``schema``).
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    from pogo_invoiced_sync.engine.flow_mapping import load_all

    trigger = trigger or _default_trigger
    signed_in = Depends(get_user)  # who is asking: Airflow's UI session cookie or a bearer token
    app = FastAPI(title="PowerOffice Go ⇄ Invoiced sync console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TenantPrefix)

    def known_tenants() -> list[Tenant]:
        if tenants is not None:
            return tenants
        if connect is not None:
            return [dataclasses.replace(DEFAULT, state_schema=schema)]
        try:
            return load_tenants()
        except TenantsFileError as exc:
            raise ActionError(500, str(exc)) from exc

    def tenant_of(request: Request) -> Tenant:
        """The tenant a request is about: ``/t/<name>/``, else ``?tenant=``, else the default (or the only) one."""
        known = {t.name: t for t in known_tenants()}
        name = request.scope.get("tenant") or request.query_params.get("tenant")
        if name is None:
            name = DEFAULT_TENANT if DEFAULT_TENANT in known else next(iter(known))
        if name not in known:
            raise ActionError(404, f"unknown tenant {name!r}; tenants: {', '.join(sorted(known))}")
        return known[name]

    @contextlib.contextmanager
    def console(tenant: Tenant) -> Iterator[ConsoleStore]:
        store = ConsoleStore(
            connect or _connect_to(tenant.sync_state_conn_id),
            load_all(mappings_dir),
            tenant.state_schema,
            tenant.dag_id,
        )
        try:
            yield store
        finally:
            store.close()

    def allowed(
        user: Any, tenant: Tenant, flow: str, method: Literal["GET", "PUT", "POST"], entity: Any = None
    ) -> bool:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().is_authorized_dag(
            method=method, access_entity=entity, details=DagDetails(id=tenant.dag_id(flow)), user=user
        )

    def require(
        user: Any, tenant: Tenant, flow: str, method: Literal["GET", "PUT", "POST"], entity: Any = None
    ) -> None:
        if not allowed(user, tenant, flow, method, entity):
            verb = "read" if method == "GET" else "change"
            raise ActionError(
                403,
                f"{user.get_name()} may not {verb} {tenant.dag_id(flow)}: that needs "
                f"{'edit' if method != 'GET' else 'read'} access to the DAG",
            )

    def readable(user: Any, tenant: Tenant, store: ConsoleStore) -> list[str]:
        flows = [f for f in store.mappings if allowed(user, tenant, f, "GET")]
        if not flows:
            raise ActionError(
                403,
                f"{user.get_name()} may read none of the sync DAGs"
                + ("" if tenant.is_default else f" of tenant {tenant.name!r}"),
            )
        return flows

    @contextlib.contextmanager
    def flow_console(
        request: Request, user: Any, flow: str, method: Literal["GET", "PUT", "POST"]
    ) -> Iterator[tuple[Tenant, ConsoleStore]]:
        """The request's tenant and its console store, once ``flow`` is known and ``user`` may ``method`` it."""
        tenant = tenant_of(request)
        with console(tenant) as store:
            store.mapping(flow)
            require(user, tenant, flow, method)
            yield tenant, store

    def console_root(request: Request) -> str:
        """The default tenant's console root: the root path without a ``/t/<tenant>`` prefix."""
        root = request.scope.get("root_path", "")
        return root.removesuffix(f"/t/{request.scope['tenant']}") if request.scope.get("tenant") else root

    def airflow_root(request: Request) -> str:
        """Airflow's own root, as the console is mounted under it (which may be below a path prefix)."""
        from pogo_invoiced_sync.console.plugin import URL_PREFIX

        return console_root(request).removesuffix(URL_PREFIX) + "/"

    def page(request: Request, html: str, status_code: int = 200) -> HTMLResponse:
        """A page with the tenant switch in its navigation (when there is more than the default tenant)."""
        try:
            known = known_tenants()
            current = tenant_of(request).name
        except ActionError:
            known, current = [], ""
        switch = pages.tenant_switch(console_root(request), current, [t.name for t in known])
        return HTMLResponse(html.replace(pages.TENANT_SLOT, switch, 1), status_code=status_code)

    @app.exception_handler(ActionError)
    async def action_error(request: Request, exc: ActionError):
        if "/api/" in request.url.path:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return page(
            request, pages.error(request.scope.get("root_path", ""), exc.status, exc.message), status_code=exc.status
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if "/api/" in request.url.path:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        message = exc.detail
        if exc.status_code in (401, 403) and message in ("Not authenticated", "Token Expired", "Invalid JWT token"):
            message = f"{message}: log in to Airflow first"
        return page(
            request,
            pages.error(request.scope.get("root_path", ""), exc.status_code, str(message), login=airflow_root(request)),
            status_code=exc.status_code,
        )

    def health_of(store: ConsoleStore, tenant: Tenant, flow: str) -> dict:
        return {**store.health(flow), "chart": store.runs_chart(flow)}

    # -- pages --------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def health_page(request: Request, user=signed_in):
        tenant = tenant_of(request)
        with console(tenant) as store:
            if not store.migrated():
                return page(request, pages.not_yet(request.scope.get("root_path", "")))
            flows = readable(user, tenant, store)
            data = [health_of(store, tenant, f) for f in flows]
        return page(request, pages.health(request.scope.get("root_path", ""), user.get_name(), data))

    @app.get("/record", response_class=HTMLResponse)
    def record_page(
        request: Request,
        q: str | None = None,
        flow: str | None = None,
        system: str | None = None,
        id: str | None = None,
        user=signed_in,
    ):
        root = request.scope.get("root_path", "")
        tenant = tenant_of(request)
        with console(tenant) as store:
            flows = readable(user, tenant, store)
            if flow and system and id:
                require(user, tenant, flow, "GET")
                record = {**store.record(flow, system, id), "dag_id": tenant.dag_id(flow)}
                can_act = allowed(user, tenant, flow, "PUT")
                return page(request, pages.record(root, user.get_name(), record, can_act))
            found = [r for r in store.search(q or "") if r["flow"] in flows]
        if len(found) == 1:
            r = found[0]
            query = urlencode({"flow": r["flow"], "system": r["system"], "id": r["record_id"]})
            return HTMLResponse(status_code=303, headers={"Location": f"{root}/record?{query}"})
        return page(request, pages.search(root, user.get_name(), q or "", found))

    @app.get("/list/{kind}", response_class=HTMLResponse)
    def list_page(
        request: Request,
        kind: str,
        flow: str,
        run_id: str | None = None,
        before: int | None = None,
        after: str | None = None,
        user=signed_in,
    ):
        with flow_console(request, user, flow, "GET") as (tenant, store):
            listing = {**store.listing(kind, flow, run_id, before, after), "dag_id": tenant.dag_id(flow)}
        return page(request, pages.listing(request.scope.get("root_path", ""), user.get_name(), listing))

    # -- JSON API -----------------------------------------------------------------------------------------------

    @app.get("/api/health")
    def health_api(request: Request, user=signed_in):
        tenant = tenant_of(request)
        with console(tenant) as store:
            if not store.migrated():
                return {"tenant": tenant.name, "flows": []}
            flows = readable(user, tenant, store)
            return as_json({"tenant": tenant.name, "flows": [health_of(store, tenant, f) for f in flows]})

    @app.get("/api/search")
    def search_api(request: Request, q: str, user=signed_in):
        tenant = tenant_of(request)
        with console(tenant) as store:
            flows = readable(user, tenant, store)
            return as_json({"results": [r for r in store.search(q) if r["flow"] in flows]})

    @app.get("/api/record/{flow}/{system}/{record_id}")
    def record_api(request: Request, flow: str, system: str, record_id: str, user=signed_in):
        with flow_console(request, user, flow, "GET") as (_, store):
            return as_json(store.record(flow, system, record_id))

    @app.get("/api/list/{kind}")
    def list_api(
        request: Request,
        kind: str,
        flow: str,
        run_id: str | None = None,
        before: int | None = None,
        after: str | None = None,
        user=signed_in,
    ):
        with flow_console(request, user, flow, "GET") as (_, store):
            return as_json(store.listing(kind, flow, run_id, before, after))

    @app.post("/api/actions/{action}")
    async def act(action: str, request: Request, user=signed_in):
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise ActionError(415, "actions take a JSON body (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError:
            raise ActionError(422, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ActionError(422, "the body must be a JSON object")
        if action not in ACTIONS:
            raise ActionError(404, f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
        flow = body.get("flow")
        if not isinstance(flow, str):
            raise ActionError(422, "flow is required")
        preview = bool(body.get("preview", False))
        name = user.get_name()
        with flow_console(request, user, flow, "PUT") as (tenant, store):
            if action == "retry":
                require(user, tenant, flow, "POST", DagAccessEntity.RUN)
            result = _run_action(store, action, flow, body, name, preview)
            if action == "retry" and result["applied"]:
                try:
                    result["dag_run_id"] = trigger(tenant.dag_id(flow), name, f"retry from the sync console by {name}")
                except Exception as exc:
                    result["dag_run_id"] = None
                    result["message"] += f"; starting the run failed ({exc}): the next scheduled run retries it"
        return as_json(result)

    return app


def _field(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ActionError(422, f"{name} is required")
    return str(value).strip()


def _run_action(store: ConsoleStore, action: str, flow: str, body: dict, actor: str, preview: bool) -> dict:
    if action == "resolve":
        conflict = body.get("conflict_id")
        if not isinstance(conflict, int):
            raise ActionError(422, "conflict_id (a sync-log id) is required")
        return store.resolve(flow, conflict, _field(body, "choice"), body.get("value"), actor=actor, preview=preview)
    if action == "retry":
        return store.mark_for_retry(
            flow, _field(body, "system"), _field(body, "record_id"), actor=actor, preview=preview
        )
    if action == "unlink":
        return store.unlink(flow, _field(body, "poweroffice_go_id"), actor=actor, preview=preview)
    if action == "relink":
        return store.relink(
            flow, _field(body, "poweroffice_go_id"), _field(body, "invoiced_id"), actor=actor, preview=preview
        )
    if action == "exclude":
        return store.exclude(
            flow, _field(body, "system"), _field(body, "record_id"), body.get("reason"), actor=actor, preview=preview
        )
    return store.include(flow, _field(body, "system"), _field(body, "record_id"), actor=actor, preview=preview)
