"""Declarative flow mappings (``include/mappings/*.yaml``): what is synchronised, how values convert, who may create."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

SYSTEMS = ("poweroffice_go", "invoiced")
POGO, INVOICED = SYSTEMS
DIRECTIONS = {"to_invoiced": INVOICED, "to_poweroffice_go": POGO}
DIRECTION = {system: name for name, system in DIRECTIONS.items()}  # the direction that writes to a system
MAPPINGS_DIR = Path(__file__).resolve().parents[3] / "include" / "mappings"


class MappingError(ValueError):
    """A mapping file that cannot be used."""


def other(system: str) -> str:
    """The system on the other side."""
    return INVOICED if system == POGO else POGO


def get_path(record: dict | None, path: str) -> Any:
    """Read a dotted path (``MailAddress.City``) from a record; missing parents read as None."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def normalise(value: Any) -> str | None:
    """Canonical text: trimmed, empty as None; numbers as their decimal text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


@dataclasses.dataclass(frozen=True)
class SideField:
    """How one side stores a field: a path, a join of several paths, or the first non-empty of several."""

    paths: tuple[str, ...]
    kind: str = "path"  # path | join | first_of

    @classmethod
    def parse(cls, spec: Any) -> "SideField":
        if isinstance(spec, str):
            return cls((spec,))
        if isinstance(spec, dict) and len(spec) == 1:
            kind, paths = next(iter(spec.items()))
            if kind in ("join", "first_of") and isinstance(paths, list) and paths:
                return cls(tuple(paths), kind)
        raise MappingError(f"field side must be a path, {{join: [...]}} or {{first_of: [...]}}: {spec!r}")

    def read(self, record: dict) -> str | None:
        """The side's value in canonical text form (before the field's transform)."""
        if self.kind == "join":
            return normalise(" ".join(p for p in (normalise(get_path(record, x)) for x in self.paths) if p))
        if self.kind == "first_of":
            return next((v for v in (normalise(get_path(record, x)) for x in self.paths) if v is not None), None)
        return normalise(get_path(record, self.paths[0]))

    def write(self, value: str | None) -> dict[str, Any]:
        """The dotted-path assignments that store ``value`` on this side."""
        if self.kind == "join":
            # Person names: everything but the last word is the first name (``Ola Johan Hansen``).
            words = (value or "").split()
            first, last = (" ".join(words[:-1]), words[-1]) if len(words) > 1 else (value, None)
            return {self.paths[0]: first or None, self.paths[1]: last}
        return {self.paths[0]: value}


@dataclasses.dataclass(frozen=True)
class Field:
    """A synchronised field: its canonical name, each side's storage, and its transform."""

    name: str
    sides: dict[str, SideField]
    transform: str | None = None
    reference_flows: tuple[str, ...] = ()
    immutable_on: tuple[str, ...] = ()
    only_with: tuple[str, ...] = ()  # the value counts only when one of these fields has one (else: a default)

    def read(self, system: str, record: dict) -> str | None:
        """Canonical value of this field on ``system``'s ``record``."""
        value = self.sides[system].read(record)
        if value is not None and self.transform == "code":
            # ISO codes compare case-insensitively (MAPPING.md, decision 4); Invoiced stores currency lower case.
            value = value.upper()
        return value

    def write(self, system: str, value: str | None) -> dict[str, Any]:
        """Dotted-path assignments for ``system``; reference values are already the target's ids here."""
        if value is not None and self.reference_flows:
            value = int(value) if value.isdigit() else value
        return self.sides[system].write(value)

    @property
    def is_reference(self) -> bool:
        return bool(self.reference_flows)


@dataclasses.dataclass(frozen=True)
class Side:
    """One system's end of a flow."""

    system: str
    entity: str
    route: dict[str, Any]
    change_detection: str
    create_defaults: dict[str, Any]
    list_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    overlap_seconds: float = 5.0

    def routes(self, record: dict) -> bool:
        """Tell whether ``record`` belongs to this flow (e.g. ``IsPerson`` or ``type``; ``{not: v}`` excludes v)."""
        for path, expected in self.route.items():
            value = get_path(record, path)
            if isinstance(expected, dict) and set(expected) == {"not"}:
                if value == expected["not"]:
                    return False
                continue
            if isinstance(expected, bool):
                value = bool(value)
            if value != expected:
                return False
        return True


@dataclasses.dataclass(frozen=True)
class Guard:
    """Stops a run before writing when it would update too many linked records (an API answering garbage).

    Trips when the updates planned for one system exceed ``max_updates``, or exceed both ``min_updates`` and
    ``max_fraction`` of the flow's links.
    """

    max_updates: int = 5000
    max_fraction: float = 0.5
    min_updates: int = 25

    def tripped(self, updates: int, links: int) -> bool:
        """Tell whether ``updates`` planned against ``links`` existing pairs is too many."""
        if updates > self.max_updates:
            return True
        return updates > self.min_updates and links > 0 and updates / links > self.max_fraction


class TooManyRejections(RuntimeError):
    """One reason rejected most records of a direction: the set-up is wrong (a mapping path, a default), not them."""


@dataclasses.dataclass(frozen=True)
class Rejections:
    """When a step's rejections stop being bad records and become a run that did nothing (mapping ``rejections``).

    A step fails, after finishing everything else, when one reason rejects at least ``min_records`` records and
    more than ``max_fraction`` of the records the step handled for one direction.
    """

    max_fraction: float = 0.5
    min_records: int = 3

    def check(self, step: str, handled: int, rejected: list[tuple[str, str]]) -> None:
        """Raise :class:`TooManyRejections` if one reason among ``rejected`` (reason, record id) is too common."""
        if not rejected or handled <= 0:
            return
        by_reason: dict[str, list[str]] = {}
        for reason, record_id in rejected:
            by_reason.setdefault(reason, []).append(record_id)
        reason, ids = max(by_reason.items(), key=lambda kv: len(kv[1]))
        if len(ids) >= self.min_records and len(ids) / handled > self.max_fraction:
            sample = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise TooManyRejections(
                f"{step}: {len(ids)} of {handled} records rejected for the same reason: {reason} (records {sample}). "
                "Every one is in the sync log (v_failures); one reason for so many usually means the set-up, "
                "such as a field path in the mapping, is wrong. The rest of the step was done.")


@dataclasses.dataclass(frozen=True)
class FlowMapping:
    """A whole flow, as read from its YAML file."""

    flow: str
    description: str
    sides: dict[str, Side]
    fields: tuple[Field, ...]
    create_targets: frozenset[str]
    conflict: str
    match_on: tuple[str, ...]
    depends_on: tuple[str, ...]
    guard: "Guard" = None  # type: ignore[assignment]
    rejections: Rejections = Rejections()
    full_reconciliation_hours: float = 24.0  # a run lists incremental sides in full when the last full listing is older

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def read(self, system: str, record: dict) -> dict[str, str | None]:
        """All canonical values of ``record`` on ``system``.

        A field with ``only_with`` reads as None when none of those fields has a value: a country filled in by the
        system's default with no other address part is not an address.
        """
        vals = {f.name: f.read(system, record) for f in self.fields}
        for f in self.fields:
            if f.only_with and all(vals[n] is None for n in f.only_with):
                vals[f.name] = None
        return vals

    def write(self, system: str, values: dict[str, str | None]) -> dict[str, Any]:
        """Dotted-path assignments for the given canonical values on ``system``."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            out.update(self.field(name).write(system, value))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "FlowMapping":
        """Validate and build a mapping; errors name the offending key."""
        try:
            sides = {
                system: Side(system, data[system]["entity"], dict(data[system].get("route") or {}),
                             data[system].get("change_detection", "incremental"),
                             dict(data[system].get("create_defaults") or {}),
                             dict(data[system].get("list_params") or {}),
                             float(data[system].get("overlap_seconds", 5.0)))
                for system in SYSTEMS
            }
            fields = []
            for spec in data["fields"]:
                transform = spec.get("transform")
                reference: tuple[str, ...] = ()
                if isinstance(transform, dict) and "reference" in transform:
                    reference, transform = tuple(transform["reference"]), None
                if transform not in (None, "code"):
                    raise MappingError(f"unknown transform {transform!r} on field {spec['name']}")
                fields.append(Field(spec["name"], {s: SideField.parse(spec[s]) for s in SYSTEMS}, transform,
                                    reference, tuple(spec.get("immutable_on") or ()),
                                    tuple(spec.get("only_with") or ())))
            unknown = set(data.get("create") or ()) - set(DIRECTIONS)
            if unknown:
                raise MappingError(f"unknown create directions: {sorted(unknown)}")
            if data.get("conflict", "latest") not in ("latest", *SYSTEMS):
                raise MappingError(f"conflict must be latest, poweroffice_go or invoiced: {data.get('conflict')!r}")
            for side in sides.values():
                if side.change_detection not in ("incremental", "full_scan"):
                    raise MappingError(f"change_detection must be incremental or full_scan: {side.change_detection!r}")
            names = [f.name for f in fields]
            if len(set(names)) != len(names):
                raise MappingError("field names must be unique")
            for f in fields:
                if set(f.only_with) - set(names) or f.name in f.only_with:
                    raise MappingError(f"only_with of field {f.name} must name other mapped fields")
            if set(data.get("match_on") or ()) - set(names):
                raise MappingError("match_on names fields that are not mapped")
            return cls(
                flow=data["flow"], description=data.get("description", ""), sides=sides, fields=tuple(fields),
                create_targets=frozenset(DIRECTIONS[d] for d in data.get("create") or ()),
                conflict=data.get("conflict", "latest"), match_on=tuple(data.get("match_on") or ()),
                depends_on=tuple(data.get("depends_on") or ()),
                guard=Guard(**(data.get("guard") or {})),
                rejections=Rejections(**(data.get("rejections") or {})),
                full_reconciliation_hours=_every_hours(data.get("full_reconciliation")),
            )
        except KeyError as exc:
            raise MappingError(f"missing key {exc} in mapping {data.get('flow', '?')}") from exc
        except TypeError as exc:
            raise MappingError(f"invalid setting in mapping {data.get('flow', '?')}: {exc}") from exc


def _every_hours(spec: Any) -> float:
    """``full_reconciliation: {every_hours: N}`` (default 24): how old the last full listing may get."""
    hours = (spec or {}).get("every_hours", 24) if isinstance(spec, dict) or spec is None else None
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
        raise MappingError(f"full_reconciliation must be {{every_hours: <hours above 0>}}: {spec!r}")
    return float(hours)


def load_mapping(flow: str, directory: Path | None = None) -> FlowMapping:
    """Read ``<flow>.yaml`` from the mappings folder."""
    path = (directory or MAPPINGS_DIR) / f"{flow}.yaml"
    return FlowMapping.from_dict(yaml.safe_load(path.read_text()))


def load_all(directory: Path | None = None) -> dict[str, FlowMapping]:
    """Every mapping in the folder, by flow name (reads files only; no API or DB)."""
    folder = directory or MAPPINGS_DIR
    mappings = [FlowMapping.from_dict(yaml.safe_load(p.read_text())) for p in sorted(folder.glob("*.yaml"))]
    return {m.flow: m for m in mappings}
