"""The client pairs a deployment syncs (tenants), read from ``<include_dir>/tenants.yaml``.

A file, not Airflow Variables: every DAG file parse reads the tenants, and a Variable would be a metadata-database
call on each parse. Reading the file makes no database or API call. Absent or empty, it means one tenant, ``default``,
with the package's original connection ids and link-store schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pogo_invoiced_sync.engine.link_store import DEFAULT_SCHEMA

DEFAULT_TENANT = "default"
DEFAULT_SYNC_STATE_CONN_ID = "sync_state_default"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
FILE_NAME = "tenants.yaml"


class TenantsFileError(ValueError):
    """The tenants file is not what it should be; the message names the file, the key and what was expected."""


@dataclass(frozen=True)
class Tenant:
    """One client pair: its two API connections, its link-store connection and schema."""

    name: str
    poweroffice_go_conn_id: str
    invoiced_conn_id: str
    sync_state_conn_id: str
    state_schema: str

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_TENANT

    @property
    def pools(self) -> dict[str, str]:
        """The Airflow pools of its API tasks by system: ``poweroffice_go_api``/``invoiced_api``, suffixed by the name.

        Each tenant uses API accounts of its own, rate-limited apart, so its tasks queue apart from other tenants'.
        """
        suffix = "" if self.is_default else f"_{self.name}"
        return {"poweroffice_go": f"poweroffice_go_api{suffix}", "invoiced": f"invoiced_api{suffix}"}

    def dag_id(self, flow: str) -> str:
        """``sync_<flow>`` for the default tenant, ``<tenant>.sync_<flow>`` for the others."""
        return f"sync_{flow}" if self.is_default else f"{self.name}.sync_{flow}"


DEFAULT = Tenant(
    DEFAULT_TENANT, "poweroffice_go_default", "invoiced_default", DEFAULT_SYNC_STATE_CONN_ID, DEFAULT_SCHEMA
)


class _TenantEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    poweroffice_go_conn_id: str = Field(min_length=1)
    invoiced_conn_id: str = Field(min_length=1)
    sync_state_conn_id: str = Field(DEFAULT_SYNC_STATE_CONN_ID, min_length=1)
    # A PostgreSQL identifier the link store quotes; lower case keeps it usable unquoted in psql too.
    state_schema: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class _TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[str, _TenantEntry] | None = None


def default_schema(name: str) -> str:
    """The link-store schema of a tenant that names none: ``pogo_invoiced_sync_<name>`` (``default`` keeps its own)."""
    return DEFAULT_SCHEMA if name == DEFAULT_TENANT else f"{DEFAULT_SCHEMA}_{name}"


def _describe(path: Path, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            what = (
                "unknown key; expected one of poweroffice_go_conn_id, invoiced_conn_id, sync_state_conn_id, "
                "state_schema"
                if len(item["loc"]) == 3
                else "unknown key; expected only 'tenants'"
            )
        elif item["type"] == "missing":
            what = "missing; this key is required"
        else:
            what = item["msg"]
        problems.append(f"  {key}: {what}")
    return f"{path}: invalid tenants file\n" + "\n".join(problems)


def parse(text: str, path: Path) -> list[Tenant]:
    """The tenants a file's ``text`` declares (``path`` only names it in errors)."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TenantsFileError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return [DEFAULT]
    if not isinstance(raw, dict):
        raise TenantsFileError(f"{path}: expected a mapping with the key 'tenants', got {type(raw).__name__}")
    try:
        parsed = _TenantsFile.model_validate(raw)
    except ValidationError as exc:
        raise TenantsFileError(_describe(path, exc)) from exc
    if not parsed.tenants:
        return [DEFAULT]

    tenants: list[Tenant] = []
    schemas: dict[tuple[str, str], str] = {}
    for name, entry in parsed.tenants.items():
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
            raise TenantsFileError(
                f"{path}: tenants.{name}: invalid tenant name; expected lower-case letters, digits "
                f"and '_', starting with a letter, at most 31 characters ({NAME_PATTERN})"
            )
        schema = entry.state_schema or default_schema(name)
        # Two tenants in one schema would share links, cursors and the sync log: their records would mix.
        key = (entry.sync_state_conn_id, schema)
        if key in schemas:
            raise TenantsFileError(
                f"{path}: tenants.{name}.state_schema: {schema!r} is already the schema of tenant "
                f"{schemas[key]!r} on {entry.sync_state_conn_id!r}; expected a schema of its own"
            )
        schemas[key] = name
        tenants.append(
            Tenant(name, entry.poweroffice_go_conn_id, entry.invoiced_conn_id, entry.sync_state_conn_id, schema)
        )
    return tenants


def tenants_file(include: Path | None = None) -> Path:
    """Where the tenants file is (``<include_dir>/tenants.yaml``)."""
    if include is None:
        from pogo_invoiced_sync.config import include_dir

        include = include_dir()
    return include / FILE_NAME


def load_tenants(path: Path | None = None) -> list[Tenant]:
    """The deployment's tenants; without a file (or with no tenants in it) the one tenant ``default``."""
    path = path if path is not None else tenants_file()
    if not path.is_file():
        return [DEFAULT]
    return parse(path.read_text(encoding="utf-8"), path)


def get_tenant(name: str, path: Path | None = None) -> Tenant:
    """One tenant by name; ``KeyError`` names the known ones."""
    tenants = {t.name: t for t in load_tenants(path)}
    if name not in tenants:
        raise KeyError(f"unknown tenant {name!r}; known: {', '.join(sorted(tenants))}")
    return tenants[name]
