"""The lint toolchain: CI runs ``make lint`` before the tests, and the pre-commit hooks run the pinned ruff and mypy.

The hooks run in a scratch git repository holding this checkout's ``.pre-commit-config.yaml`` and ``pyproject.toml``
(and a link to its ``.venv``), so a check sees one known file and does not depend on the state of the whole tree.
``.ci/run`` runs from a scratch copy with ``make`` replaced by a recorder: what is checked is the script's order
and exit status, not the Makefile's targets (``make lint`` is run by the docs check, ``make test`` is this suite).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HOOKS = ("ruff-check", "ruff-format", "mypy")

CLEAN = '''"""A module every hook accepts."""

from __future__ import annotations


def double(n: int) -> int:
    """Twice ``n``."""
    return 2 * n
'''
# hook -> a module only that hook objects to (an unused import; a layout ruff formats; a wrong type)
FINDINGS = {
    "ruff-check": CLEAN.replace("annotations\n", "annotations\n\nimport os\n"),
    "ruff-format": CLEAN.replace("return 2 * n", "return 2*n"),
    "mypy": CLEAN.replace("return 2 * n", 'return "2" * n'),
}
# hook -> what its output names
REPORTS = {"ruff-check": "F401", "ruff-format": "files were modified by this hook", "mypy": "[return-value]"}


def _scratch_repo(tmp_path: Path, source: str) -> Path:
    repo = tmp_path / "repo"
    (repo / "dags").mkdir(parents=True)
    (repo / "plugins").mkdir()
    for name in (".pre-commit-config.yaml", "pyproject.toml"):
        shutil.copy2(ROOT / name, repo / name)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (repo / "dags" / "example.py").write_text(source)
    (repo / "plugins" / "helper.py").write_text(CLEAN)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return repo


def _pre_commit(repo: Path, hook: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    return subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", hook, "--all-files", "--color", "never"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_pre_commit_config_is_valid() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("hook", HOOKS)
def test_a_pre_commit_hook_passes_a_clean_module(tmp_path: Path, hook: str) -> None:
    result = _pre_commit(_scratch_repo(tmp_path, CLEAN), hook, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


@pytest.mark.parametrize("hook", HOOKS)
def test_a_pre_commit_hook_fails_on_its_finding(tmp_path: Path, hook: str) -> None:
    result = _pre_commit(_scratch_repo(tmp_path, FINDINGS[hook]), hook, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert REPORTS[hook] in result.stdout


def _ci_copy(tmp_path: Path, failing: str | None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a copy of ``.ci/run`` whose ``make`` records its arguments and fails for the target ``failing``."""
    (tmp_path / ".ci").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "make").write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/make.log"\n[ "$1" != "{failing}" ]\n')
    (fake / "make").chmod(0o755)
    # Where Chromium is missing the script would install it: here that attempt fails at once, as it may in CI.
    (fake / "apt-get").write_text("#!/bin/sh\nexit 1\n")
    (fake / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PYTEST_ARGS": "-k person"}
    result = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=600
    )
    log = tmp_path / "make.log"
    return result, log.read_text().splitlines() if log.exists() else []


def test_ci_runs_make_lint_and_then_make_test(tmp_path: Path) -> None:
    result, calls = _ci_copy(tmp_path, failing=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == ["lint", "test PYTEST_ARGS=-k person"]


def test_ci_fails_without_running_the_tests_when_the_lint_finds_something(tmp_path: Path) -> None:
    result, calls = _ci_copy(tmp_path, failing="lint")
    assert result.returncode != 0
    assert calls == ["lint"]


def test_ci_fails_when_the_tests_fail(tmp_path: Path) -> None:
    result, calls = _ci_copy(tmp_path, failing="test")
    assert result.returncode != 0
    assert calls == ["lint", "test PYTEST_ARGS=-k person"]
