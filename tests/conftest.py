"""Shared fixtures: Airflow configured for tests, the sandboxes over real HTTP, and a real PostgreSQL.

Airflow reads its configuration at first import, so the environment is set here, before anything imports it.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_SPEC = ROOT.parent / "shared" / "spec"

_airflow_home = Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_airflow_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_airflow_home / 'airflow.db'}")
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from sandboxes.process import SandboxProcess  # noqa: E402


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory) -> SandboxProcess:
    """Both sandboxes in a child process on free loopback ports, for the whole test session."""
    process = SandboxProcess(log_path=tmp_path_factory.mktemp("sandbox") / "sandbox.log").start()
    yield process
    process.stop()


@pytest.fixture
def sandboxes(sandbox_process) -> SandboxProcess:
    """The sandboxes, emptied, with faults off, counters at zero and default settings."""
    sandbox_process.reset()
    return sandbox_process


@pytest.fixture(scope="session")
def shared_spec() -> Path:
    """The reference specs beside the checkout; tests that need them skip where they are absent (a user's clone)."""
    if not SHARED_SPEC.is_dir():
        pytest.skip(f"reference specs not found at {SHARED_SPEC}: they exist beside the CI checkout only")
    return SHARED_SPEC
