"""The engine's data: plan items, mirror rows, pairs, sync-log entries and the batch an upsert chunk completes with.

Plain dataclasses, free of the database: ``link_store`` turns them into rows and back.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pogo_invoiced_sync.engine.flow_mapping import POGO

Values = dict[str, Any]  # canonical field values by field name (text or None; JSON as stored)


@dataclass(slots=True)
class LogEntry:
    """One sync-log row: what was done (or not) to a record or pair, and why."""

    operation: str
    outcome: str
    direction: str | None = None
    poweroffice_go_id: str | None = None
    invoiced_id: str | None = None
    reason: str | None = None
    before: Values | None = None
    after: Values | None = None

    @classmethod
    def about(cls, system: str, record_id: str | None, operation: str, outcome: str, **rest: Any) -> LogEntry:
        """An entry about one record of ``system``."""
        entry = cls(operation, outcome, **rest)
        if system == POGO:
            entry.poweroffice_go_id = record_id
        else:
            entry.invoiced_id = record_id
        return entry

    @classmethod
    def of(cls, entry: LogEntry | Mapping[str, Any]) -> LogEntry:
        """An entry from itself or from a mapping with the same keys (as tests and seeding scripts write them)."""
        return entry if isinstance(entry, LogEntry) else cls(**entry)


@dataclass(slots=True)
class MirrorRow:
    """A record as the mirror keeps it: canonical values, routing, carried id, change time, writer's facts."""

    system: str
    record_id: str
    vals: Values
    routed: bool
    external_ref: str | None
    changed_at: dt.datetime | None
    meta: dict[str, Any]
    fingerprint: str
    dirty: bool = False

    @classmethod
    def of(cls, system: str, row: MirrorRow | Mapping[str, Any]) -> MirrorRow:
        """A row from itself or from a mapping with the same keys (``system`` is taken from the call)."""
        if isinstance(row, MirrorRow):
            return row
        return cls(
            system,
            row["record_id"],
            row["vals"],
            row["routed"],
            row["external_ref"],
            row["changed_at"],
            row["meta"],
            row["fingerprint"],
            row.get("dirty", False),
        )


@dataclass(slots=True)
class Link:
    """A link as reconcile reads it: the pair's ids, its merge base and its state (``active`` or why not)."""

    poweroffice_go_id: str
    invoiced_id: str
    base: Values | None
    state: str = "active"


@dataclass(slots=True)
class HeldResolution:
    """An operator's pending decision on one field of a pair, held out of the merge until both sides hold it."""

    decision: int
    value: Any
    actual: dict[str, Any]  # system -> the value that side holds now
    actor: str


@dataclass(slots=True)
class PairRow:
    """A record needing attention, with its link and its counterpart's mirror row when linked."""

    link: Link | None
    poweroffice_go: MirrorRow | None
    invoiced: MirrorRow | None
    resolutions: dict[str, HeldResolution] = field(default_factory=dict)

    def side(self, system: str) -> MirrorRow | None:
        """The mirror row of ``system``."""
        return self.poweroffice_go if system == POGO else self.invoiced


@dataclass(slots=True)
class LinkedPair:
    """An active link with both sides' values, as the drift report compares them."""

    poweroffice_go_id: str
    invoiced_id: str
    poweroffice_go_vals: Values
    invoiced_vals: Values


@dataclass(slots=True)
class PlanItem:
    """One step of a run's plan: ``create``/``update`` in ``target``, or ``link``/``rebase`` in the link store."""

    action: str
    target: str | None
    poweroffice_go_id: str | None
    invoiced_id: str | None
    changes: Values = field(default_factory=dict)
    base: Values | None = None
    detail: dict[str, Any] | None = None
    item: int = -1  # its number in the stored plan (-1 until stored)

    def id_of(self, system: str) -> str | None:
        """The id of the pair's record in ``system`` (None before a create)."""
        return self.poweroffice_go_id if system == POGO else self.invoiced_id

    def known_id(self, system: str) -> str:
        """The id of the pair's record in ``system``, which the caller needs to exist."""
        record_id = self.id_of(system)
        if record_id is None:
            raise ValueError(f"{self.action} item has no {system} id")
        return record_id


@dataclass(slots=True)
class Work:
    """One plan item on its way through the upsert step: what to send, what is left out, what to expect back."""

    item: PlanItem
    write: dict[str, Any] = field(default_factory=dict)  # the target's paths and values to send
    left_out: dict[str, Any] = field(default_factory=dict)  # target paths it cannot hold
    left_reason: str | None = None
    write_error: Exception | None = None  # the values could not be written: the item fails without a call
    key: str = ""  # a create's idempotency key
    intent: dict[str, Any] | None = None  # an earlier attempt's create intent
    meta: dict[str, Any] = field(default_factory=dict)  # the target record's writer's facts (an update's)
    expected: Values | None = None  # what the target should hold after an update


@dataclass(slots=True)
class LinkWrite:
    """A new (or replaced) link with its merge base."""

    poweroffice_go_id: str
    invoiced_id: str
    base: Values
    poweroffice_go_changed_at: dt.datetime | None = None
    invoiced_changed_at: dt.datetime | None = None


@dataclass(slots=True)
class BaseUpdate:
    """Fields merged into a link's merge base, and the change times just written."""

    poweroffice_go_id: str
    base: Values
    poweroffice_go_changed_at: dt.datetime | None = None
    invoiced_changed_at: dt.datetime | None = None


@dataclass(slots=True)
class Completion:
    """What a batch of plan items came to, written by ``LinkStore.complete`` in one transaction."""

    links: list[LinkWrite] = field(default_factory=list)
    base_updates: list[BaseUpdate] = field(default_factory=list)
    mirror: list[MirrorRow] = field(default_factory=list)
    done_items: list[int] = field(default_factory=list)
    failed_items: list[int] = field(default_factory=list)
    intents_done: list[tuple[str, str]] = field(default_factory=list)  # (origin system, origin id)
    settled: list[tuple[str, str]] = field(default_factory=list)  # (system, record id) to mark clean
    log: list[LogEntry] = field(default_factory=list)


class Plan:
    """Collects plan items, settled records and log entries while reconciling, and counts them."""

    def __init__(self) -> None:
        self.items: list[PlanItem] = []
        self.settled: list[tuple[str, str]] = []
        self.log: list[LogEntry] = []
        self.counts: Counter[str] = Counter()

    def add(self, item: PlanItem) -> None:
        """Add an item to the plan."""
        self.items.append(item)
        self.counts[f"{item.action}:{item.target or 'link_store'}"] += 1

    def note(
        self,
        operation: str,
        outcome: str,
        reason: str,
        pogo_id: str | None = None,
        inv_id: str | None = None,
        direction: str | None = None,
        before: Values | None = None,
        after: Values | None = None,
    ) -> None:
        """Add a sync-log entry."""
        self.log.append(LogEntry(operation, outcome, direction, pogo_id, inv_id, reason, before, after))
        self.counts[operation] += 1

    def settle(self, system: str, record_id: str | None) -> None:
        """Mark a record clean once the run's items that involve it are done."""
        if record_id is not None:
            self.settled.append((system, record_id))
