"""Declarative flow mappings (``include/mappings/*.yaml``): what is synchronised, how values convert, who may create."""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic import Field as Constraint

from pogo_invoiced_sync import config

SYSTEMS = ("poweroffice_go", "invoiced")
POGO, INVOICED = SYSTEMS
DIRECTIONS = {"to_invoiced": INVOICED, "to_poweroffice_go": POGO}
DIRECTION = {system: name for name, system in DIRECTIONS.items()}  # the direction that writes to a system


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
    def from_dict(cls, data: Any) -> "FlowMapping":
        """Validate and build a mapping; errors name the offending key and what it should be."""
        try:
            spec = MappingSpec.model_validate(data)
        except ValidationError as exc:
            raise MappingError("\n".join(_explain(error, data) for error in exc.errors())) from None
        sides = {
            system: Side(system, side.entity, dict(side.route or {}), side.change_detection,
                         dict(side.create_defaults or {}), dict(side.list_params or {}), side.overlap_seconds)
            for system, side in ((POGO, spec.poweroffice_go), (INVOICED, spec.invoiced))
        }
        fields = []
        for f in spec.fields:
            transform, reference = f.transform, ()
            if isinstance(transform, dict):
                transform, reference = None, tuple(transform["reference"])
            fields.append(Field(f.name, {POGO: f.poweroffice_go, INVOICED: f.invoiced}, transform, reference,
                                tuple(f.immutable_on or ()), tuple(f.only_with or ())))
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise MappingError("field names must be unique")
        for f in fields:
            if set(f.only_with) - set(names) or f.name in f.only_with:
                raise MappingError(f"only_with of field {f.name} must name other mapped fields")
        if set(spec.match_on or ()) - set(names):
            raise MappingError("match_on names fields that are not mapped")
        every = spec.full_reconciliation or FullReconciliationSpec()
        return cls(
            flow=spec.flow, description=spec.description, sides=sides, fields=tuple(fields),
            create_targets=frozenset(DIRECTIONS[d] for d in spec.create or ()),
            conflict=spec.conflict, match_on=tuple(spec.match_on or ()), depends_on=tuple(spec.depends_on or ()),
            guard=Guard(**(spec.guard or GuardSpec()).model_dump()),
            rejections=Rejections(**(spec.rejections or RejectionsSpec()).model_dump()),
            full_reconciliation_hours=every.every_hours,
        )


# -- The file format ------------------------------------------------------------------------------------------------
# Validated before anything is built: strict types (YAML gives real ones; "5" is not a number of seconds) and no
# unknown keys, so a misspelt ``overlap_second:`` fails instead of silently keeping the default.


def _side_field(spec: Any) -> SideField:
    return SideField.parse(spec)


def _transform(spec: Any) -> str | dict[str, list[str]] | None:
    if spec is None or spec == "code":
        return spec
    if isinstance(spec, dict) and set(spec) == {"reference"}:
        flows = spec["reference"]
        if isinstance(flows, list) and flows and all(isinstance(f, str) for f in flows):
            return {"reference": flows}
    raise ValueError(f"unknown transform {spec!r}: expected code or {{reference: [<flow>, ...]}}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SideSpec(_Spec):
    """One system's section (``poweroffice_go:`` / ``invoiced:``)."""

    entity: str
    route: dict[str, Any] | None = None
    change_detection: Literal["incremental", "full_scan"] = "incremental"
    create_defaults: dict[str, Any] | None = None
    list_params: dict[str, Any] | None = None
    overlap_seconds: Annotated[float, Constraint(ge=0)] = 5.0


class FieldSpec(_Spec):
    """One entry of ``fields:``."""

    name: str
    poweroffice_go: Annotated[Any, AfterValidator(_side_field)]
    invoiced: Annotated[Any, AfterValidator(_side_field)]
    transform: Annotated[Any, AfterValidator(_transform)] = None
    immutable_on: list[Literal["poweroffice_go", "invoiced"]] | None = None
    only_with: list[str] | None = None


class GuardSpec(_Spec):
    """``guard:``, the change guard's limits (see :class:`Guard`)."""

    max_updates: Annotated[int, Constraint(ge=0)] = Guard.max_updates
    max_fraction: Annotated[float, Constraint(gt=0)] = Guard.max_fraction
    min_updates: Annotated[int, Constraint(ge=0)] = Guard.min_updates


class RejectionsSpec(_Spec):
    """``rejections:``, when rejections fail a step (see :class:`Rejections`)."""

    max_fraction: Annotated[float, Constraint(gt=0)] = Rejections.max_fraction
    min_records: Annotated[int, Constraint(ge=1)] = Rejections.min_records


class FullReconciliationSpec(_Spec):
    """``full_reconciliation:``, how old the last full listing of an incremental side may get."""

    every_hours: Annotated[float, Constraint(gt=0)] = 24.0


class MappingSpec(_Spec):
    """A mapping file as written: the keys it may have and their types."""

    flow: str
    description: str = ""
    poweroffice_go: SideSpec
    invoiced: SideSpec
    create: list[Literal["to_invoiced", "to_poweroffice_go"]] | None = None
    full_reconciliation: FullReconciliationSpec | None = None
    conflict: Literal["latest", "poweroffice_go", "invoiced"] = "latest"
    match_on: list[str] | None = None
    depends_on: list[str] | None = None
    guard: GuardSpec | None = None
    rejections: RejectionsSpec | None = None
    fields: list[FieldSpec]


def _explain(error: Any, data: Any) -> str:
    """One pydantic error as ``<key path>: <what is wrong and what was expected>``."""
    loc = tuple(error["loc"])
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "the file"
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        allowed = sorted(_spec_at(loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = "unknown key" + (f" (did you mean {close[0]}?)" if close else "") + f"; expected one of: {', '.join(allowed)}"
    elif kind == "missing":
        message = "missing required key"
    elif kind not in ("value_error", "assertion_error"):
        message = f"{message}, got {error['input']!r}"
    if len(loc) > 2 and loc[0] == "fields" and isinstance(loc[1], int):
        name = _item(data, loc[:2], "name")
        message += f" (in field {name})" if isinstance(name, str) else ""
    return f"{where}: {message}"


def _spec_at(loc: tuple) -> type[BaseModel]:
    """The spec model that validates the mapping at ``loc`` (the section holding an unknown key)."""
    model: type[BaseModel] = MappingSpec
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        model = next(m for m in _models_in(annotation))
    return model


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _item(data: Any, loc: tuple, key: str) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data.get(key) if isinstance(data, dict) else None


# -- Where the files are --------------------------------------------------------------------------------------------


def mappings_folder(directory: Path | str | None = None) -> Path:
    """The mappings folder: ``directory`` if given, else ``<include_dir>/mappings`` from the package's setting.

    :raises MappingError: the folder does not exist; the message says which setting led there.
    """
    if directory is not None:
        folder = Path(directory)
        if not folder.is_dir():
            raise MappingError(f"mappings folder {folder} does not exist")
        return folder
    try:
        folder = config.mappings_dir()
    except RuntimeError as exc:
        raise MappingError(str(exc)) from exc
    if not folder.is_dir():
        raise MappingError(f"mappings folder {folder} does not exist: {config.describe()}")
    return folder


def read_mapping_file(path: Path) -> FlowMapping:
    """Read and validate one mapping file; every error names the file."""
    try:
        data = yaml.safe_load(path.read_text())
        return FlowMapping.from_dict(data)
    except (MappingError, yaml.YAMLError, OSError) as exc:
        lines = str(exc).splitlines() or [type(exc).__name__]
        raise MappingError(f"{path}: " + "\n  ".join(lines)) from None


def load_mapping(flow: str, directory: Path | None = None) -> FlowMapping:
    """Read ``<flow>.yaml`` from the mappings folder (default: the ``include_dir`` setting's ``mappings/``)."""
    return read_mapping_file(mappings_folder(directory) / f"{flow}.yaml")


def load_all(directory: Path | None = None) -> dict[str, FlowMapping]:
    """Every mapping in the folder, by flow name (reads files only; no API or DB)."""
    mappings = [read_mapping_file(p) for p in sorted(mappings_folder(directory).glob("*.yaml"))]
    return {m.flow: m for m in mappings}
