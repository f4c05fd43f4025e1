"""Builds a sandbox web app: the service's API routes behind counters, faults and rate limits, plus ``/_sandbox``."""
from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from typing import Protocol

from aiohttp import web

from sandboxes.common.faults import Faults

ADMIN_PREFIX = "/_sandbox"
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


class Service(Protocol):
    """What a sandboxed API provides to the shared app."""

    name: str
    limiter: object
    # The admin field naming whose data an edit touches: "client" (PowerOffice Go client key) or "account"
    # (Invoiced API key); a sandbox serving several keeps each one's records apart.
    owner_field: str

    def add_routes(self, app: web.Application) -> None: ...

    def error(self, status: int, message: str, **extra) -> web.Response: ...

    def rate_limit_key(self, request: web.Request) -> str | None: ...

    def reset(self) -> None: ...

    def seed(self, spec: dict) -> dict: ...

    def inspect(self, entity: str, query: dict) -> list[dict]: ...

    def configure(self, settings: dict) -> dict: ...

    def list_page(self, request: web.Request) -> tuple[str, int] | None: ...

    def request_owner(self, request: web.Request) -> str | None: ...

    def has_owner(self, owner: str) -> bool: ...

    def edit(self, entity: str, record_id, values: dict, append: dict, backdate_seconds: float = 0,
             owner: str | None = None) -> None: ...


def route_key(method: str, path: str) -> str:
    """Name a request by method and path, with ids folded to ``{id}`` so counts group by endpoint."""
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    return f"{method.upper()} {'/'.join(parts)}"


class Counters:
    """Request counts by method and path, and by response status."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget all counts."""
        self.by_route: collections.Counter = collections.Counter()
        self.by_status: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        # Wall-clock times of the first and last call counted: how long a run kept the API busy.
        self.first_at: float | None = None
        self.last_at: float | None = None

    def record(self, key: str, status: int | str) -> None:
        """Count one request and its outcome."""
        self.by_route[key] += 1
        self.by_status[key][str(status)] += 1
        self.last_at = time.time()
        if self.first_at is None:
            self.first_at = self.last_at

    def to_dict(self) -> dict:
        """Return counts, plus a total of write calls (POST, PUT, PATCH, DELETE)."""
        writes = sum(n for k, n in self.by_route.items() if k.split(" ")[0] in {"POST", "PUT", "PATCH", "DELETE"})
        return {
            "total": sum(self.by_route.values()),
            "writes": writes,
            "routes": dict(self.by_route),
            "statuses": {k: dict(v) for k, v in self.by_status.items()},
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the TCP connection without an answer, like a load balancer resetting it."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError()


async def _slow_body(request: web.Request, response: web.Response, total_ms: float) -> web.StreamResponse:
    """Send the body in pieces spread over ``total_ms``, like a slow network."""
    body = response.body or b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    pieces = 10
    step = max(1, len(body) // pieces + 1)
    for start in range(0, max(len(body), 1), step):
        await asyncio.sleep(total_ms / 1000 / pieces)
        await stream.write(body[start : start + step])
    await stream.write_eof()
    return stream


class BetweenPages:
    """Edits landed between the pages of a listing: after page N of entity E is served, apply them once.

    A trigger is ``{"list": "customers", "after_page": 1, "steps": [...]}``; a step is ``{"first": K, "append":
    {"name": " (edited)"}}`` (edit the first K records of the page just served), ``{"id": 7, "set": {...},
    "append": {...}}`` (edit one record) or ``{"wait_ms": 2600}``. Edits go through the service's own update
    path, so change times, caches and validation move as for an edit made by a person. An edit step may add
    ``"backdate_seconds": N``: its change time is then put N seconds back, like a change that a lagging replica or
    node clock shows late (behind a client's cursor).

    With several clients (accounts) on one sandbox, the edits land in the data of the client whose listing was paged,
    and a trigger may name one (``owner_field``: ``"client": "<client key>"`` or ``"account": "<API key>"``): it
    then fires only on that client's listing. Without one, the first client to page that list fires it.
    """

    def __init__(self, triggers: list | None = None, owner_field: str = "client") -> None:
        self.owner_field = owner_field
        self.triggers: list[dict] = []
        for trigger in triggers or []:
            if not isinstance(trigger, dict) or not isinstance(trigger.get("list"), str):
                raise ValueError("each trigger needs a 'list' (entity name)")
            owner = trigger.get(owner_field)
            if owner is not None and not isinstance(owner, str):
                raise ValueError(f"'{owner_field}' must be a key (a string)")
            page = trigger.get("after_page", 1)
            steps = trigger.get("steps", [])
            if not isinstance(page, int) or page < 1 or not isinstance(steps, list):
                raise ValueError("after_page must be a positive integer and steps a list")
            for step in steps:
                if not isinstance(step, dict) or not ({"first", "id", "wait_ms"} & set(step)):
                    raise ValueError(f"a step needs 'first', 'id' or 'wait_ms': {step!r}")
            self.triggers.append({"list": trigger["list"], "after_page": page, "steps": steps, owner_field: owner})

    def owners(self) -> set[str]:
        """The clients (accounts) the triggers name."""
        return {t[self.owner_field] for t in self.triggers if t[self.owner_field] is not None}

    def take(self, entity: str, page: int, owner: str | None = None) -> list[dict] | None:
        """The steps of the first trigger for this page of this list paged by ``owner`` (removed: each fires once)."""
        for index, trigger in enumerate(self.triggers):
            if trigger["list"] == entity and trigger["after_page"] == page \
                    and trigger[self.owner_field] in (None, owner):
                return self.triggers.pop(index)["steps"]
        return None

    def to_dict(self) -> dict:
        return {"triggers": self.triggers}


async def _land_edits(service: Service, entity: str, steps: list[dict], served: list, owner: str | None) -> None:
    """Apply one trigger's steps, in order, to ``owner``'s data (None: the default client's or account's)."""
    for step in steps:
        if "wait_ms" in step:
            await asyncio.sleep(float(step["wait_ms"]) / 1000)
            continue
        if "first" in step:
            ids = [row.get("id", row.get("Id")) for row in served[: int(step["first"])] if isinstance(row, dict)]
        else:
            ids = [step["id"]]
        for record_id in ids:
            service.edit(entity, record_id, dict(step.get("set") or {}), dict(step.get("append") or {}),
                         float(step.get("backdate_seconds") or 0), owner)


def build_app(service: Service) -> web.Application:
    """Wrap ``service`` in the shared middleware and admin surface."""
    def between_pages(triggers: list | None = None) -> BetweenPages:
        pages = BetweenPages(triggers, service.owner_field)
        unknown = sorted(o for o in pages.owners() if not service.has_owner(o))
        if unknown:
            raise ValueError(f"unknown {service.owner_field} key(s) in the triggers: {len(unknown)}")
        return pages

    state = {"faults": Faults(), "counters": Counters(), "between_pages": between_pages()}

    @web.middleware
    async def sandbox_middleware(request: web.Request, handler):
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        key = route_key(request.method, request.path)
        faults: Faults = state["faults"]
        counters: Counters = state["counters"]
        in_scope = faults.applies_to(request.method, request.path)
        limiter_key = service.rate_limit_key(request)
        admitted = False
        try:
            if limiter_key is not None:
                admitted = service.limiter.acquire(limiter_key)
                if not admitted:
                    response = service.error(429, "rate limit")
                    counters.record(key, 429)
                    return response
            if in_scope and faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if in_scope and faults.take_429():
                response = service.error(429, "rate limit")
                if faults.retry_after is not None:
                    response.headers["Retry-After"] = str(faults.retry_after)
                counters.record(key, 429)
                return response
            if in_scope and faults.roll(faults.drop_rate):
                counters.record(key, "dropped")
                _drop(request)
            if in_scope and faults.roll(faults.hang_rate):
                counters.record(key, "hung")
                await asyncio.sleep(faults.hang_seconds)
            if in_scope and faults.roll(faults.error_rate):
                counters.record(key, faults.error_status)
                return service.error(faults.error_status, "injected server error")
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                counters.record(key, exc.status)
                raise
            if in_scope and faults.roll(faults.drop_after_rate):
                counters.record(key, "dropped-after")
                _drop(request)
            counters.record(key, response.status)
            if in_scope and faults.roll(faults.malformed_rate):
                return web.Response(
                    status=200, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            if in_scope and faults.rewrites() and isinstance(response, web.Response) and response.body \
                    and (response.content_type or "").endswith("json"):
                data = faults.rewrite(json.loads(response.body))
                headers = {k: v for k, v in response.headers.items()
                           if k.lower() not in ("content-length", "content-type")}
                response = json_body(data, response.status, headers)
            listed = service.list_page(request) if request.method == "GET" and state["between_pages"].triggers else None
            owner = service.request_owner(request) if listed else None
            steps = state["between_pages"].take(*listed, owner) if listed else None
            if steps is not None and isinstance(response, web.Response):
                # The page is what the server read before the edits, and so is its Date.
                response.headers.setdefault("Date", _http_date())
                served = json.loads(response.body) if response.body else []
                await _land_edits(service, listed[0], steps, served if isinstance(served, list) else [], owner)
            if in_scope and faults.slow_body_ms and isinstance(response, web.Response):
                return await _slow_body(request, response, faults.slow_body_ms)
            return response
        finally:
            if admitted:
                service.limiter.release(limiter_key)

    app = web.Application(middlewares=[sandbox_middleware], client_max_size=64 * 1024 * 1024)
    app["service"] = service
    app["sandbox_state"] = state

    async def health(_request):
        return web.json_response({"service": service.name, "status": "ok"})

    async def reset(_request):
        service.reset()
        state["faults"] = Faults()
        state["counters"].reset()
        state["between_pages"] = between_pages()
        return web.json_response({"reset": True})

    async def seed(request):
        spec = await request.json() if request.can_read_body else {}
        return web.json_response(service.seed(spec))

    async def inspect(request):
        return web.json_response(service.inspect(request.match_info["entity"], dict(request.query)))

    async def get_faults(_request):
        return web.json_response(state["faults"].to_dict())

    async def put_faults(request):
        try:
            state["faults"] = Faults.from_dict(await request.json())
        except (ValueError, TypeError, re.error) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(state["faults"].to_dict())

    async def clear_faults(_request):
        state["faults"] = Faults()
        return web.json_response(state["faults"].to_dict())

    async def get_between_pages(_request):
        return web.json_response(state["between_pages"].to_dict())

    async def put_between_pages(request):
        body = await request.json() if request.can_read_body else []
        try:
            state["between_pages"] = between_pages(body if isinstance(body, list) else [body])
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(state["between_pages"].to_dict())

    async def clear_between_pages(_request):
        state["between_pages"] = between_pages()
        return web.json_response(state["between_pages"].to_dict())

    async def edit_now(request):
        body = await request.json() if request.can_read_body else {}
        steps = body.get("steps") if isinstance(body, dict) else None
        try:
            owner = body.get(service.owner_field)
            between_pages([{"list": body.get("list"), "steps": steps, service.owner_field: owner}])
            await _land_edits(service, body["list"], steps, [], owner)
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"edited": True})

    async def get_counters(_request):
        return web.json_response(state["counters"].to_dict())

    async def clear_counters(_request):
        state["counters"].reset()
        return web.json_response(state["counters"].to_dict())

    async def configure(request):
        try:
            body = await request.json() if request.can_read_body else {}
            return web.json_response(service.configure(body))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    app.router.add_get(f"{ADMIN_PREFIX}/health", health)
    app.router.add_post(f"{ADMIN_PREFIX}/reset", reset)
    app.router.add_post(f"{ADMIN_PREFIX}/seed", seed)
    app.router.add_get(f"{ADMIN_PREFIX}/records/{{entity}}", inspect)
    app.router.add_get(f"{ADMIN_PREFIX}/faults", get_faults)
    app.router.add_put(f"{ADMIN_PREFIX}/faults", put_faults)
    app.router.add_delete(f"{ADMIN_PREFIX}/faults", clear_faults)
    app.router.add_get(f"{ADMIN_PREFIX}/between_pages", get_between_pages)
    app.router.add_put(f"{ADMIN_PREFIX}/between_pages", put_between_pages)
    app.router.add_delete(f"{ADMIN_PREFIX}/between_pages", clear_between_pages)
    app.router.add_post(f"{ADMIN_PREFIX}/edit", edit_now)
    app.router.add_get(f"{ADMIN_PREFIX}/counters", get_counters)
    app.router.add_delete(f"{ADMIN_PREFIX}/counters", clear_counters)
    app.router.add_get(f"{ADMIN_PREFIX}/config", configure)
    app.router.add_put(f"{ADMIN_PREFIX}/config", configure)
    service.add_routes(app)
    return app


def _http_date() -> str:
    """The current time as an HTTP ``Date`` (RFC 9110 IMF-fixdate)."""
    import email.utils

    return email.utils.formatdate(usegmt=True)


def json_body(data, status: int = 200, headers: dict | None = None) -> web.Response:
    """Serialise compactly, as the real services do."""
    return web.Response(
        status=status, body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json",
        headers=headers,
    )
