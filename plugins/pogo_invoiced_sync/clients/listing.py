"""What a client noticed while paging one listing: the server's clock at its start, and whether the list moved."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
from typing import Any

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Listing:
    """Filled in by a client's ``iter_pages``/``iter_changed`` when passed as ``listing``.

    ``started_at`` is the HTTP ``Date`` of the first answer (the server's clock, not ours). ``moved`` lists why
    the list may have shifted under the listing so that a record could have been skipped (a record listed twice,
    a total count that changed between pages, pages that disagree); the caller then must not trust the listing to
    be complete. ``keyset`` says the client paged by change time, where records that move are harmless.
    """

    started_at: dt.datetime | None = None
    pages: int = 0
    keyset: bool = False
    moved: list[str] = dataclasses.field(default_factory=list)
    _ids: set[Any] = dataclasses.field(default_factory=set, repr=False)

    def answered(self, response: Any) -> None:
        """Note one page's answer (the first one's ``Date`` is the listing's start)."""
        self.pages += 1
        if self.started_at is None:
            self.started_at = server_time(response)

    def listed(self, endpoint: str, rows: list[Any], id_key: str) -> None:
        """Note a page's record ids; one listed before means the list moved under the listing."""
        for row in rows:
            key = row.get(id_key) if isinstance(row, dict) else None
            if key is None:
                continue
            if key in self._ids:
                self.move(f"{endpoint}: record {key} listed twice")
            self._ids.add(key)

    def move(self, reason: str) -> None:
        """Note a sign that the list moved while it was paged."""
        if reason not in self.moved:
            log.warning("the list moved while it was paged: %s", reason)
            self.moved.append(reason)


def server_time(response: Any) -> dt.datetime | None:
    """The ``Date`` header of an answer as an aware datetime, or None when absent or unreadable."""
    value = response.headers.get("Date") if response is not None else None
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
