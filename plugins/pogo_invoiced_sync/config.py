"""Where the package's configuration lives: one setting, ``[pogo_invoiced_sync] include_dir``.

Set it in ``airflow.cfg`` or as ``AIRFLOW__POGO_INVOICED_SYNC__INCLUDE_DIR``. Default: the ``include`` folder beside
the DAGs folder (``<core.dags_folder>/../include``), which is where the checkout, ``make up``, the Docker image and an
Astronomer-style project keep it. It holds ``mappings/*.yaml`` and, optionally, ``tenants.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path

SECTION = "pogo_invoiced_sync"
ENV_VAR = "AIRFLOW__POGO_INVOICED_SYNC__INCLUDE_DIR"


def _airflow_setting(section: str, key: str) -> str | None:
    """A value from Airflow's configuration (file or ``AIRFLOW__SECTION__KEY``); None where Airflow is absent."""
    try:
        from airflow.configuration import conf
    except ImportError:  # the engine also runs without Airflow (benchmarks, the console's tests)
        return os.environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
    return conf.get(section, key, fallback=None)


def include_dir() -> Path:
    """The folder holding ``mappings/`` and ``tenants.yaml``."""
    configured = _airflow_setting(SECTION, "include_dir")
    if configured:
        return Path(configured).expanduser()
    dags_folder = _airflow_setting("core", "dags_folder")
    if not dags_folder:
        raise RuntimeError(f"set {ENV_VAR} (or [{SECTION}] include_dir): the folder holding mappings/ and tenants.yaml")
    return Path(dags_folder).expanduser().parent / "include"


def describe() -> str:
    """Where :func:`include_dir` came from, for error messages: the setting, or the default and its DAGs folder."""
    configured = _airflow_setting(SECTION, "include_dir")
    if configured:
        return f"include_dir {configured!r} is set by [{SECTION}] include_dir ({ENV_VAR} or airflow.cfg)"
    dags_folder = _airflow_setting("core", "dags_folder")
    return (
        f"include_dir is not set, so it defaults to <core.dags_folder>/../include with dags_folder {dags_folder!r}; "
        f"set {ENV_VAR} (or [{SECTION}] include_dir in airflow.cfg) to the folder holding mappings/"
    )


def mappings_dir() -> Path:
    """The folder of the flow mappings (``<include_dir>/mappings``)."""
    return include_dir() / "mappings"


def shared_limits() -> bool:
    """Whether API limits are shared through the link-store database (``[pogo_invoiced_sync] shared_limits``).

    On by default: every task, tenant and worker using one credential then shares its budget. Turn it off only where
    a single process talks to each API (the limits are then kept in that process).
    """
    value = _airflow_setting(SECTION, "shared_limits")
    return value is None or value.strip().lower() not in ("false", "0", "no", "off")
