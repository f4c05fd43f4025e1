"""List endpoints: resource parameters (paging, fields, ordering), comma-list filters and the X-Pagination header."""
from __future__ import annotations

import json
import math
import re

from yarl import URL

from sandboxes.poweroffice_go.clock import parse_timestamp
from sandboxes.poweroffice_go.errors import ApiError

DEFAULT_PAGE_SIZE = 5000
MAX_PAGE_SIZE = 20000
_CAST = "Unable to cast object(s)"
_RANGE = re.compile(r"^(\d+)(?:\s*-\s*(\d*))?$")


class Query:
    """Query parameters with case-insensitive names, as ASP.NET binds them."""

    def __init__(self, multidict) -> None:
        self.values: dict[str, str] = {}
        for key, value in multidict.items():
            if key.startswith("$"):
                raise ApiError(400, "Bad Request", f"OData query options are not supported by API v2: '{key}'.")
            self.values.setdefault(key.lower(), value)

    def get(self, name: str) -> str | None:
        """Return the raw value, treating an empty value as absent."""
        value = self.values.get(name.lower())
        return value if value not in (None, "") else None

    def integer(self, name: str, default: int) -> int:
        """Return an int32 parameter, 400 when it is not one."""
        raw = self.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"-?\d{1,10}", raw.strip()):
            raise ApiError(400, "Bad Request", f"The value '{raw}' is not valid for {name}.")
        return int(raw)

    def boolean(self, name: str) -> bool | None:
        """Return a bool parameter or None."""
        raw = self.get(name)
        if raw is None:
            return None
        if raw.lower() not in ("true", "false"):
            raise ApiError(400, "Bad Request", f"The value '{raw}' is not valid for {name}.")
        return raw.lower() == "true"

    def timestamp(self, name: str) -> str | None:
        """Return a DateTimeOffset filter in the stored (sortable) format."""
        raw = self.get(name)
        if raw is None:
            return None
        parsed = parse_timestamp(raw)
        if parsed is None:
            raise ApiError(400, "Bad Request", f"The value '{raw}' is not valid for {name}.")
        return parsed

    def number_ranges(self, name: str) -> tuple | None:
        """Parse ``10000-11000, 12000, 13000-`` into ``((10000, 11000), (12000, 12000), (13000, None))``."""
        raw = self.get(name)
        if raw is None:
            return None
        ranges = []
        for part in raw.split(","):
            match = _RANGE.match(part.strip())
            if not match:
                raise ApiError(400, _CAST, f"{name} contains an invalid number or range: '{part.strip()}'. Use comma "
                                           "separated numbers and ranges, e.g. '10000-11000, 12000, 13000-'.")
            low, dash_high = int(match.group(1)), match.group(2)
            if dash_high is None:
                ranges.append((low, None if "-" in part else low))
            else:
                ranges.append((low, int(dash_high) if dash_high else None))
        return tuple(ranges)

    def id_list(self, name: str) -> frozenset | None:
        """Parse a comma list of single positive numbers; ranges and negatives are refused as in the spec."""
        raw = self.get(name)
        if raw is None:
            return None
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ApiError(400, _CAST, f"{name} contains negative numbers and/or range of numbers. '-' is not allowed, "
                                       "only comma ',' separated single positive numbers are allowed.")
        return frozenset(int(p) for p in parts)

    def strings(self, name: str) -> frozenset | None:
        """Parse a comma list of strings."""
        raw = self.get(name)
        return None if raw is None else frozenset(p.strip() for p in raw.split(",") if p.strip())


def in_ranges(value, ranges) -> bool:
    """Tell whether a number lies in any of the parsed ranges."""
    if value is None:
        return False
    return any(low <= value and (high is None or value <= high) for low, high in ranges)


class Page:
    """Paging, field selection and ordering requested by the resource parameters."""

    def __init__(self, query: Query, properties: list[str], dto: str) -> None:
        self.number = query.integer("PageNumber", 1)
        self.size = query.integer("PageSize", DEFAULT_PAGE_SIZE)
        if self.number < 1:
            raise ApiError(400, "Bad Request", "PageNumber must be 1 or greater.")
        if self.size < 1:
            raise ApiError(400, "Bad Request", "PageSize must be 1 or greater.")
        if self.size > MAX_PAGE_SIZE:
            raise ApiError(400, "Bad Request", f"PageSize can not be larger than MaxPageSize ({MAX_PAGE_SIZE}).")
        lookup = {p.lower(): p for p in properties}
        self.fields = None
        raw_fields = query.get("Fields")
        if raw_fields:
            wanted = set()
            for name in (f.strip() for f in raw_fields.split(",") if f.strip()):
                if name.lower() not in lookup:
                    raise ApiError(400, "Bad Request", f"Field '{name}' does not exist on {dto}.")
                wanted.add(lookup[name.lower()])
            self.fields = [p for p in properties if p in wanted]
        self.order_by: tuple = ()
        raw_order = query.get("OrderBy")
        if raw_order:
            keys = []
            for part in (p.strip() for p in raw_order.split(",") if p.strip()):
                words = part.split()
                if words[0].lower() not in lookup or len(words) > 2 or (
                        len(words) == 2 and words[1].lower() not in ("asc", "desc")):
                    raise ApiError(400, "Bad Request", f"OrderBy '{part}' is not valid for {dto}.")
                keys.append((lookup[words[0].lower()], len(words) == 2 and words[1].lower() == "desc"))
            self.order_by = tuple(keys)

    def project(self, record: dict) -> dict:
        """Keep only the requested fields."""
        if self.fields is None:
            return record
        return {name: record.get(name) for name in self.fields}

    def window(self, total: int) -> tuple[int, int]:
        """Return the slice bounds of this page."""
        start = (self.number - 1) * self.size
        return min(start, total), min(start + self.size, total)

    def header(self, url: URL, total: int) -> str:
        """The ``X-Pagination`` JSON, with absolute links to the neighbouring pages."""
        pages = math.ceil(total / self.size) if total else 0
        link = lambda n: str(url.update_query(PageNumber=str(n)))  # noqa: E731
        return json.dumps({
            "totalCount": total, "pageSize": self.size, "currentPage": self.number, "totalPages": pages,
            "previousPageLink": link(self.number - 1) if 1 < self.number <= pages + 1 else None,
            "nextPageLink": link(self.number + 1) if self.number < pages else None,
        }, separators=(",", ":"))


def sort_ids(ids: list, records: dict, order_by: tuple, render) -> list:
    """Order ids by the requested fields (stable, nulls first), on top of the default id order."""
    if not order_by or (order_by == (("Id", False),) and (not ids or isinstance(ids[0], int))):
        return ids  # numeric ids are stored in id order already
    rows = [(i, render(records[i])) for i in ids]
    for name, descending in reversed(order_by):
        rows.sort(key=lambda row: (row[1].get(name) is not None, _sortable(row[1].get(name))), reverse=descending)
    return [i for i, _row in rows]


def _sortable(value):
    if isinstance(value, str):
        return (1, value.lower())
    if isinstance(value, (dict, list)):
        return (2, json.dumps(value, sort_keys=True))
    return (0, value if value is not None else 0)
