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


def mappings_dir() -> Path:
    """The folder of the flow mappings (``<include_dir>/mappings``)."""
    return include_dir() / "mappings"
