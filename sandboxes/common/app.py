"""Builds a sandbox web app: the service's API routes behind counters, faults and rate limits, plus ``/_sandbox``."""
from __future__ import annotations

import asyncio
import collections
import json
import re
from typing import Protocol

from aiohttp import web

from sandboxes.common.faults import Faults

ADMIN_PREFIX = "/_sandbox"
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


class Service(Protocol):
    """What a sandboxed API provides to the shared app."""

    name: str
    limiter: object

    def add_routes(self, app: web.Application) -> None: ...

    def error(self, status: int, message: str, **extra) -> web.Response: ...

    def rate_limit_key(self, request: web.Request) -> str | None: ...

    def reset(self) -> None: ...

    def seed(self, spec: dict) -> dict: ...

    def inspect(self, entity: str, query: dict) -> list[dict]: ...

    def configure(self, settings: dict) -> dict: ...


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

    def record(self, key: str, status: int | str) -> None:
        """Count one request and its outcome."""
        self.by_route[key] += 1
        self.by_status[key][str(status)] += 1

    def to_dict(self) -> dict:
        """Return counts, plus a total of write calls (POST, PUT, PATCH, DELETE)."""
        writes = sum(n for k, n in self.by_route.items() if k.split(" ")[0] in {"POST", "PUT", "PATCH", "DELETE"})
        return {
            "total": sum(self.by_route.values()),
            "writes": writes,
            "routes": dict(self.by_route),
            "statuses": {k: dict(v) for k, v in self.by_status.items()},
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


def build_app(service: Service) -> web.Application:
    """Wrap ``service`` in the shared middleware and admin surface."""
    state = {"faults": Faults(), "counters": Counters()}

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
                return web.Response(status=200, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            if in_scope and faults.rewrites() and isinstance(response, web.Response) and response.body \
                    and (response.content_type or "").endswith("json"):
                data = faults.rewrite(json.loads(response.body))
                headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
                response = json_body(data, response.status, headers)
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
    app.router.add_get(f"{ADMIN_PREFIX}/counters", get_counters)
    app.router.add_delete(f"{ADMIN_PREFIX}/counters", clear_counters)
    app.router.add_get(f"{ADMIN_PREFIX}/config", configure)
    app.router.add_put(f"{ADMIN_PREFIX}/config", configure)
    service.add_routes(app)
    return app


def json_body(data, status: int = 200, headers: dict | None = None) -> web.Response:
    """Serialise compactly, as the real services do."""
    return web.Response(
        status=status, body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json",
        headers=headers,
    )
