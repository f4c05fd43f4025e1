"""One local stack for the docs checks: ``make demo`` (then ``make up`` when needed) in a copy of the checkout, ``make down``
at the end of the session (asserted: a failure there is an error of the last test).

The copy (tracked and untracked-but-not-ignored files, ``.venv`` linked) keeps the developer's own ``.run/`` and
running stack out of reach; Airflow and the sandboxes get free loopback ports; PostgreSQL is the embedded one in the
copy's ``.run/postgres`` (``SYNC_STATE_DSN`` is dropped), so parallel runs do not share databases.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_checkout(target: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)  # mtimes kept: make sees .venv as up to date
    (target / ".venv").symlink_to(ROOT / ".venv")


class LocalStack:
    """The copy, its environment, and what ``make demo`` / ``make up`` / ``make down`` answered there."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("AIRFLOW") and k not in ("SYNC_STATE_DSN", "PYTHONPATH")}
        self.env.update(AIRFLOW_PORT=str(_free_port()), POGO_SANDBOX_PORT=str(_free_port()),
                        INVOICED_SANDBOX_PORT=str(_free_port()))
        self.env["PATH"] = f"{checkout / '.venv' / 'bin'}:{self.env.get('PATH', '')}"
        self.results: dict[str, subprocess.CompletedProcess] = {}

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW_PORT']}"

    @property
    def link_store_dsn(self) -> str:
        return f"host={self.checkout / '.run' / 'postgres'} dbname=sync_demo user=postgres"

    def shell(self, script: str, stdin: str | None = "") -> subprocess.CompletedProcess:
        """Run ``script`` with bash in the copy; stdout and stderr together in ``.stdout``."""
        return subprocess.run(["bash", "-c", script], cwd=self.checkout, env=self.env, input=stdin, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT)

    def make(self, target: str, again: bool = False) -> subprocess.CompletedProcess:
        """``make <target>``, run once per session unless ``again``."""
        if again or target not in self.results:
            self.results[target] = self.shell(f"make {target}")
        return self.results[target]

    def ensure(self, *targets: str) -> None:
        """``make <target>`` for each of ``targets`` not run yet; each must succeed."""
        for target in targets:
            result = self.make(target)
            assert result.returncode == 0, f"make {target} failed:\n{result.stdout[-4000:]}"

    def up(self) -> None:
        """``make demo`` then ``make up``: Airflow and its scheduler running, for the UI checks."""
        self.ensure("demo", "up")

    def down(self) -> None:
        """``make down`` as documented; afterwards nothing of the stack runs."""
        result = self.make("down", again=True)
        assert result.returncode == 0, f"make down failed:\n{result.stdout[-3000:]}"
        run = self.checkout / ".run"
        assert not list(run.glob("*.pid")), f"make down left PID files: {list(run.glob('*.pid'))}"
        assert not (run / "postgres" / "postmaster.pid").exists(), "make down left the embedded PostgreSQL running"


@pytest.fixture(scope="session")
def local_stack() -> LocalStack:
    """The local stack of a copy of this checkout, up; ``make down`` when the session ends.

    The copy is not under pytest's base temp: other pytest sessions of the same user prune old base temps, which
    would delete the running PostgreSQL's data directory.
    """
    checkout = Path(tempfile.mkdtemp(prefix="docs-check-")) / "checkout"
    checkout.mkdir()
    _copy_checkout(checkout)
    stack = LocalStack(checkout)
    try:
        # Only make demo: the README runs `airflow dags test` "after make demo", and next to make up's scheduler
        # two writers of the same DAG run can deadlock. Checks that need Airflow running call stack.up().
        stack.ensure("demo")
        yield stack
        stack.down()  # the documented `make down`, checked here, after every other check
    finally:
        if "down" not in stack.results:
            stack.make("down", again=True)
        shutil.rmtree(checkout.parent, ignore_errors=True)
