"""Request decoding the way the PHP server sees it: bracket keys, form or JSON bodies, PHP-style integer casts."""
from __future__ import annotations

import json
import re
import urllib.parse

from aiohttp import web

from sandboxes.invoiced.errors import bad_request

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_LEADING_INT = re.compile(r"^\s*[+-]?\d+")


def split_key(key: str) -> list[str]:
    """Split ``a[b][]`` into ``["a", "b", ""]``; a key with stray brackets stays whole, as in PHP."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    tail = "[" + rest
    parts = _BRACKETS.findall(tail)
    if "".join(f"[{p}]" for p in parts) != tail:
        return [key]
    return [head, *parts]


def nest(pairs) -> dict:
    """Fold ``(key, value)`` pairs into nested dicts and lists, with PHP's bracket rules (``[]`` appends)."""
    root: dict = {}
    for key, value in pairs:
        parts = split_key(key)
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part == "":
                part = sum(1 for k in node if isinstance(k, int))
            elif part.lstrip("-").isdigit():
                part = int(part)
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return _listify(root)


def _listify(node):
    """Turn dicts whose keys are all integers into lists, keeping insertion order like a PHP array."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(isinstance(k, int) for k in converted):
        return list(converted.values())
    return {str(k): v for k, v in converted.items()}


def query(request: web.Request) -> dict:
    """The query string as nested data; aiohttp has already decoded percent-encoded brackets."""
    return nest(request.query.items())


async def body(request: web.Request) -> dict:
    """The request body as a dict, from JSON or a form (``a[b]=c``); an empty body is ``{}``."""
    raw = await request.read()
    if not raw.strip():
        return {}
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or (not content_type and raw.lstrip()[:1] in (b"{", b"[")):
        try:
            data = json.loads(raw)
        except ValueError:
            raise bad_request("Request body contains invalid JSON.") from None
        if isinstance(data, list) and not data:
            return {}
        if not isinstance(data, dict):
            raise bad_request("Request body must be a JSON object.")
        return data
    text = raw.decode("utf-8", errors="replace")
    return nest(urllib.parse.parse_qsl(text, keep_blank_values=True))


def php_int(value) -> int:
    """Cast like PHP's ``(int)``: leading digits count, anything else is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        return 0
    match = _LEADING_INT.match(value)
    return int(match.group()) if match else 0
