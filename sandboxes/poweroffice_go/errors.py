"""Error bodies of PowerOffice Go: ProblemDetails from the API, RFC 6749 errors from the token endpoint, APIM's own."""
from __future__ import annotations

import json

from aiohttp import web

# The RFC 7231 section ASP.NET puts in ``type`` for each status.
_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    405: "https://tools.ietf.org/html/rfc7231#section-6.5.5",
    409: "https://tools.ietf.org/html/rfc7231#section-6.5.8",
    415: "https://tools.ietf.org/html/rfc7231#section-6.5.13",
    500: "https://tools.ietf.org/html/rfc7231#section-6.6.1",
    502: "https://tools.ietf.org/html/rfc7231#section-6.6.3",
    503: "https://tools.ietf.org/html/rfc7231#section-6.6.4",
    504: "https://tools.ietf.org/html/rfc7231#section-6.6.5",
}
_DEFAULT_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Object(s) not found",
                   405: "Method Not Allowed", 409: "Conflict", 415: "Unsupported Media Type",
                   500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}

APIM_MISSING_KEY = ("Access denied due to missing subscription key. Make sure to include subscription key when making "
                    "requests to an API.")
APIM_INVALID_KEY = ("Access denied due to invalid subscription key. Make sure to provide a valid key for an active "
                    "subscription.")


class ApiError(Exception):
    """A failure the API reports as ProblemDetails."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def not_found(detail: str) -> ApiError:
    """404 with the spec's title."""
    return ApiError(404, "Object(s) not found", detail)


def problem(status: int, title: str | None, detail: str, instance: str | None = None) -> web.Response:
    """ProblemDetails with the lowercase member names ASP.NET writes."""
    body = {"type": _TYPES.get(status), "title": title or _DEFAULT_TITLES.get(status, "Error"), "status": status,
            "detail": detail, "instance": instance}
    return web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode(),
                        content_type="application/problem+json", charset="utf-8")


def apim(status: int, message: str, headers: dict | None = None) -> web.Response:
    """An Azure API Management gateway error (missing subscription key, rate limit)."""
    # APIM writes statusCode as a number for 401 and as a string in its rate-limit policy body.
    code = str(status) if status == 429 else status
    return web.Response(status=status, body=json.dumps({"statusCode": code, "message": message}).encode(),
                        content_type="application/json", headers=headers)


def oauth(status: int, error: str, description: str) -> web.Response:
    """RFC 6749 section 5.2 error from the token endpoint."""
    return web.Response(status=status, body=json.dumps({"error": error, "error_description": description}).encode(),
                        content_type="application/json", headers={"Cache-Control": "no-store"})
