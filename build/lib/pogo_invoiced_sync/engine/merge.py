"""The three-way merge of one linked pair: pure, free of the link store, the APIs and Airflow.

Values are canonical text (``flow_mapping.normalise``) or None; references are already in one id space.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, SYSTEMS

Values = Mapping[str, "str | None"]


@dataclasses.dataclass(frozen=True)
class FieldConflict:
    """Both sides changed one field (or, with no merge base, both hold differing values): who won, what was lost."""

    field: str
    winner: str
    value: str | None
    losing_value: str | None
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        """The form the plan and the sync log keep."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What to write to each side, the fields that already agree, and the conflicts decided on the way."""

    writes: dict[str, dict[str, str | None]]
    agreed: dict[str, str | None]
    conflicts: tuple[FieldConflict, ...] = ()

    @property
    def unchanged(self) -> bool:
        """Nothing to write to either side and no merge base to move."""
        return not self.writes[POGO] and not self.writes[INVOICED] and not self.agreed


def winner(policy: str, pogo_changed_at: dt.datetime | None, invoiced_changed_at: dt.datetime | None) -> str:
    """MAPPING.md, decision 7: the configured system, else the most recent change (PowerOffice Go on a tie)."""
    if policy in SYSTEMS:
        return policy
    if pogo_changed_at is None or invoiced_changed_at is None:
        return POGO if invoiced_changed_at is None else INVOICED
    return INVOICED if invoiced_changed_at > pogo_changed_at else POGO


def merge(fields: Iterable[str], base: Values, pogo: Values, invoiced: Values, conflict_winner: str) -> MergeResult:
    """Merge one pair field by field against its merge base.

    A field changed on one side only is carried to the other; a field both sides changed goes to
    ``conflict_winner`` and the losing value is kept in the conflict. A field absent from ``base`` has no merge
    base (a field new to the mapping, a pair just linked): an empty value never overwrites a real one, and two real
    values that differ are a conflict (MAPPING.md, decision 11). ``agreed`` holds fields equal on both sides whose
    merge base must move to that value (our own echo, or the same edit made on both sides).
    """
    writes: dict[str, dict[str, str | None]] = {POGO: {}, INVOICED: {}}
    agreed: dict[str, str | None] = {}
    conflicts: list[FieldConflict] = []
    for name in fields:
        a, b = pogo.get(name), invoiced.get(name)
        if a == b:
            if name not in base or base[name] != a:
                agreed[name] = a
            continue
        has_base = name in base
        if has_base:
            pogo_changed, invoiced_changed = a != base[name], b != base[name]
        else:
            pogo_changed, invoiced_changed = a is not None, b is not None
        if pogo_changed and not invoiced_changed:
            writes[INVOICED][name] = a
        elif invoiced_changed and not pogo_changed:
            writes[POGO][name] = b
        else:
            value, lost = (a, b) if conflict_winner == POGO else (b, a)
            writes[INVOICED if conflict_winner == POGO else POGO][name] = value
            conflicts.append(
                FieldConflict(
                    name,
                    conflict_winner,
                    value,
                    lost,
                    "both sides changed since the last sync"
                    if has_base
                    else "no merge base yet and both sides hold a value",
                )
            )
    return MergeResult(writes, agreed, tuple(conflicts))
