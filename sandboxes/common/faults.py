"""Fault injection that tests switch on through the admin surface."""
from __future__ import annotations

import dataclasses
import random
import re


@dataclasses.dataclass
class Faults:
    """Faults applied to API requests (never to the admin surface).

    Rates are probabilities in [0, 1]; ``path_pattern`` and ``methods`` narrow which requests are hit.
    ``strip_fields`` (dotted paths) are removed from, and ``set_fields`` (dotted path → value) written into, every
    object of a JSON answer in scope (an object, or each object of an array): a server that leaves fields out or
    returns a value the other side refuses. ``keep_fraction`` cuts every JSON array answer in scope to its first
    fraction (0: an empty list): a list endpoint that suddenly answers with only part of the records.
    The request itself is handled normally.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    burst_429: int = 0
    retry_after: float | None = None
    drop_rate: float = 0.0
    drop_after_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    slow_body_ms: float = 0.0
    malformed_rate: float = 0.0
    strip_fields: list[str] | None = None
    set_fields: dict | None = None
    keep_fraction: float | None = None
    path_pattern: str | None = None
    methods: list[str] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.keep_fraction is not None and not 0 <= self.keep_fraction <= 1:
            raise ValueError("keep_fraction must be between 0 and 1")
        self._rng = random.Random(self.seed)
        self._pattern = re.compile(self.path_pattern) if self.path_pattern else None

    @classmethod
    def from_dict(cls, data: dict) -> Faults:
        """Build from an admin request body, refusing unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        """Return the settings as JSON-able data."""
        return dataclasses.asdict(self)

    def applies_to(self, method: str, path: str) -> bool:
        """Tell whether this request is in scope of the faults."""
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        return not self._pattern or bool(self._pattern.search(path))

    def roll(self, rate: float) -> bool:
        """Draw from the seeded generator, so that a fault run is repeatable."""
        return rate > 0 and self._rng.random() < rate

    def rewrites(self) -> bool:
        """Tell whether answers in scope are rewritten (``strip_fields`` / ``set_fields``)."""
        return bool(self.strip_fields or self.set_fields) or self.keep_fraction is not None

    def rewrite(self, data):
        """Apply ``keep_fraction``, ``strip_fields`` and ``set_fields`` to a decoded JSON answer; return it."""
        if self.keep_fraction is not None and isinstance(data, list):
            data = data[:int(len(data) * self.keep_fraction)]
        for record in data if isinstance(data, list) else [data]:
            if not isinstance(record, dict):
                continue
            for path in self.strip_fields or ():
                *parents, leaf = path.split(".")
                node = _walk(record, parents)
                if isinstance(node, dict):
                    node.pop(leaf, None)
            for path, value in (self.set_fields or {}).items():
                *parents, leaf = path.split(".")
                node = _walk(record, parents)
                if isinstance(node, dict):
                    node[leaf] = value
        return data

    def take_429(self) -> bool:
        """Consume one request of a pending 429 burst."""
        if self.burst_429 > 0:
            self.burst_429 -= 1
            return True
        return False


def _walk(record: dict, parents: list[str]):
    node = record
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node
