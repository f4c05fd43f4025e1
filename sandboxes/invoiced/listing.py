"""List endpoints: filters, sorting, 1-based paging, and the ``Link`` / ``X-Total-Count`` headers."""
from __future__ import annotations

import dataclasses
import json
import math
import time
import urllib.parse

from sandboxes.invoiced import reference as ref
from sandboxes.invoiced.errors import bad_request
from sandboxes.invoiced.params import php_int

BOOL_FIELDS = frozenset("active autopay chase taxable credit_hold primary sms_enabled draft closed paid sent viewed "
                        "voided".split())
INT_FIELDS = frozenset("id customer owner parent_customer created_at updated_at date due_date subscription".split())
NUMBER_FIELDS = frozenset("total balance subtotal credit_limit".split())
ENUMS = {"type": ref.CUSTOMER_TYPES, "status": ref.INVOICE_STATUSES}
_TRUE, _FALSE = {"1", "true"}, {"0", "false"}
_OPERATORS = {"=", "<>", ">=", ">", "<", "<=", "starts_with", "ends_with", "contains", "not_contains", "empty",
              "not_empty"}


@dataclasses.dataclass
class ListQuery:
    """A parsed list request."""

    conditions: list            # (field, operator, wanted) triples, all ANDed
    metadata: list              # (key, value) pairs
    updated_after: int | None
    updated_before: int | None
    sort: list                  # (field, descending) pairs, before the ``id ASC`` tie-breaker
    page: int
    per_page: int
    paginate: bool
    exclude: frozenset
    expand: frozenset

    def signature(self) -> tuple:
        """What the matching ids depend on (not the page), for the list cache."""
        derived = any(c[0] == "status" for c in self.conditions) or any(s[0] == "status" for s in self.sort)
        # A derived status (past_due) moves with the clock, so such lists are cached per second only.
        clock = int(time.time()) if derived else None
        return (tuple(self.conditions), tuple(self.metadata), self.updated_after, self.updated_before,
                tuple(self.sort), clock)


def _wanted(field: str, raw) -> object:
    """Check and convert a filter value for ``field``; the server refuses arrays and bad enum/date values."""
    if isinstance(raw, (dict, list)):
        raise bad_request(f"Invalid value for `{field}` filter parameter")
    text = "" if raw is None else str(raw)
    if field in BOOL_FIELDS:
        if isinstance(raw, bool):
            return raw
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad_request(f"Invalid value for `{field}` filter parameter")
    if field in INT_FIELDS or field in NUMBER_FIELDS:
        try:
            number = float(text)
        except ValueError:
            raise bad_request(f"Invalid value for `{field}` filter parameter") from None
        return number
    if field in ENUMS and text not in ENUMS[field]:
        raise bad_request(f"Invalid value for `{field}` filter parameter")
    return text


def _check_field(entity: str, field: str) -> None:
    """Refuse a field the server does not filter on."""
    if field not in ref.FILTERABLE[entity]:
        raise bad_request(f"Invalid filter parameter: {field}")


def _advanced(entity: str, raw) -> list:
    """The undocumented ``advanced_filter``: a JSON array of ``{field, operator, value}``."""
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise bad_request("Invalid advanced filter", "advanced_filter") from None
    if not isinstance(entries, list):
        raise bad_request("Invalid advanced filter", "advanced_filter")
    conditions = []
    for entry in entries:
        if not isinstance(entry, dict) or "field" not in entry:
            raise bad_request("Invalid advanced filter", "advanced_filter")
        field, operator = str(entry["field"]), str(entry.get("operator", "="))
        _check_field(entity, field)
        if operator not in _OPERATORS:
            raise bad_request(f"Invalid filter operator: {operator}", "advanced_filter")
        wanted = None if operator in ("empty", "not_empty") else entry.get("value")
        if operator in ("=", "<>", ">=", ">", "<", "<="):
            wanted = _wanted(field, wanted)
        else:
            wanted = "" if wanted is None else str(wanted)
        conditions.append((field, operator, wanted))
    return conditions


def parse(entity: str, query: dict, with_metadata: bool, with_updated: bool) -> ListQuery:
    """Read paging, ``filter[...]``, ``metadata[...]``, ``updated_after``/``before``, ``sort`` and field options."""
    conditions = []
    filters = query.get("filter")
    if isinstance(filters, dict):
        for field, raw in filters.items():
            _check_field(entity, field)
            conditions.append((field, "=", _wanted(field, raw)))
    if query.get("advanced_filter") not in (None, ""):
        conditions.extend(_advanced(entity, query["advanced_filter"]))
    metadata = []
    if with_metadata and isinstance(query.get("metadata"), dict):
        for key, raw in query["metadata"].items():
            # The server silently skips keys outside [A-Za-z0-9_-] and numeric keys: the filter then matches all.
            if not ref.METADATA_FILTER_KEY.match(key) or key.isdigit() or isinstance(raw, (dict, list)):
                continue
            metadata.append((key, "" if raw is None else str(raw)))
    after = php_int(query["updated_after"]) if with_updated and query.get("updated_after") not in (None, "") else None
    before = (php_int(query["updated_before"])
              if with_updated and query.get("updated_before") not in (None, "") else None)
    sort = []
    raw_sort = query.get("sort")
    if isinstance(raw_sort, str):
        for part in raw_sort.split(","):
            words = part.split()
            if not words:
                continue
            field = words[0]
            direction = words[1].lower() if len(words) > 1 else "asc"
            # Unknown sort fields are dropped without an error; ``id`` is the final tie-breaker anyway.
            if field in ref.FILTERABLE[entity] and field != "id" and direction in ("asc", "desc"):
                sort.append((field, direction == "desc"))
            elif field == "id" and direction == "desc":
                sort.append(("id", True))
    # ``per_page`` of 0 or empty means the default; anything non-numeric casts to 0 and is raised to 1.
    raw_per_page = query.get("per_page")
    per_page = ref.DEFAULT_PER_PAGE if raw_per_page in (None, "", "0", 0) else php_int(raw_per_page)
    per_page = max(1, min(ref.PAGE_LIMIT, per_page))
    page = max(1, php_int(query.get("page", 1)))
    split = lambda key: frozenset(p.strip() for p in str(query.get(key) or "").split(",") if p.strip())  # noqa: E731
    return ListQuery(conditions, metadata, after, before, sort, page, per_page,
                     paginate=str(query.get("paginate", "")).lower() != "none",
                     exclude=split("exclude"), expand=split("expand"))


def _matches(actual, operator: str, wanted) -> bool:
    """One condition against one value; NULL never equals anything, as in SQL."""
    if operator in ("empty", "not_empty"):
        empty = actual is None or actual == ""
        return empty if operator == "empty" else not empty
    if operator in ("starts_with", "ends_with", "contains", "not_contains"):
        text = "" if actual is None else str(actual)
        return {"starts_with": text.startswith, "ends_with": text.endswith,
                "contains": text.__contains__}.get(operator, lambda w: w not in text)(wanted)
    if actual is None:
        return False
    if isinstance(wanted, bool):
        actual = bool(actual)
    elif isinstance(wanted, float):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
    else:
        actual = str(actual)
    if operator == "=":
        return actual == wanted
    if operator == "<>":
        return actual != wanted
    try:
        return {">=": actual >= wanted, ">": actual > wanted, "<": actual < wanted, "<=": actual <= wanted}[operator]
    except TypeError:
        return False


def _sort_key(value):
    """NULLs first, as MySQL sorts them ascending; strings compare case-insensitively like a ``_ci`` collation."""
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, value)


def matching_ids(records, lq: ListQuery, value) -> list[int]:
    """The ids of ``records`` (already in id order) that pass the query, sorted as asked."""
    at = int(time.time())
    conditions = lq.conditions
    metadata = lq.metadata
    after, before = lq.updated_after, lq.updated_before
    if not (conditions or metadata or after is not None or before is not None):
        chosen = list(records)
    else:
        chosen = []
        for record in records:
            if after is not None and not record["updated_at"] > after:
                continue
            if before is not None and not record["updated_at"] < before:
                continue
            if metadata:
                stored = record.get("metadata") or {}
                if any(stored.get(k) != v for k, v in metadata):
                    continue
            if conditions and not all(_matches(value(record, f, at), op, w) for f, op, w in conditions):
                continue
            chosen.append(record)
    # Python's sort is stable and ``chosen`` is in id order, which gives the ``id ASC`` tie-breaker for free.
    for field, descending in reversed(lq.sort):
        chosen.sort(key=lambda r: _sort_key(value(r, field, at)), reverse=descending)
    return [r["id"] for r in chosen]


def page_of(ids: list[int], lq: ListQuery) -> tuple[list[int], int]:
    """The ids of the requested page and the number of the last page."""
    last = max(1, math.ceil(len(ids) / lq.per_page))
    offset = (lq.page - 1) * lq.per_page
    return ids[offset:offset + lq.per_page], last


def link_header(url: str, query_items, lq: ListQuery, last: int) -> str:
    """``<url>; rel="..."`` for self, first, previous, next and last, repeating the query with ``page`` replaced.

    Commas are percent-encoded: the official Python client splits the header on every comma.
    """
    others = [(k, v) for k, v in query_items if k not in ("page", "per_page")]

    def href(page: int) -> str:
        params = [("page", str(page))]
        if lq.per_page != ref.DEFAULT_PER_PAGE:
            params.append(("per_page", str(lq.per_page)))
        params.extend(others)
        return url + "?" + urllib.parse.urlencode(params, safe="[]", quote_via=urllib.parse.quote)

    links = [("self", lq.page), ("first", 1)]
    if lq.page > 1:
        links.append(("previous", lq.page - 1))
    if lq.page < last:
        links.append(("next", lq.page + 1))
    links.append(("last", last))
    return ", ".join(f'<{href(page)}>; rel="{rel}"' for rel, page in links)
