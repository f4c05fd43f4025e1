"""docs/deployment.md is a contract too: each of its commands is run by a named test here, or is listed with why not.

tests/docs runs README.md and docs/operations.md against ``make demo``; deployment.md's commands mostly need Docker,
Kubernetes or a machine fleet, so this file accounts for them one by one (extracted as tests/docs extracts them).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.docs.doc_commands import extract

ROOT = Path(__file__).resolve().parents[2]
DOC = "docs/deployment.md"
STACK_TEST = "run by tests/distributed/test_celery_run.py: tools/celery_stack.py starts it for the Celery run"
NO_DOCKER = "needs Docker, which this machine lacks; docker-compose*.yaml are checked by reading them"

# pattern (re.fullmatch on the command) -> where it runs, or why it does not run here
ACCOUNTED = {
    r"docker build .*": "needs Docker; the Dockerfile's own build step checks that the DAGs import",
    r"docker compose .*": NO_DOCKER + " (tests/distributed/test_compose_celery.py for the Celery variant)",
    r"cp \.env\.example \.env": "part of the Docker recipe: .env feeds docker compose only",
    r"AIRFLOW_CONN_\w+='.*….*'": "real credentials (… placeholders); the test stacks set the same variables",
    r"AIRFLOW__\w+=.*(<\w+>|\.internal).*": "settings of a real deployment (hosts *.internal, <placeholders>); "
    "tools/celery_stack.py sets each of them for the local run",
    r"AIRFLOW__CORE__EXECUTOR=CeleryExecutor": "set by tools/celery_stack.py for the Celery run",
    r"make (up|demo)": "run by tests/docs (the local_stack fixture)",
    r"pip install": "names a way to install (a wheel); tests/dags/test_dag_integrity.py runs an installed copy that "
    "finds its mappings through the setting",
    r"make celery": "the same CeleryStack that tests/distributed/test_celery_run.py drives; "
    "test_make_celery_runs_the_celery_stack checks the target's wiring",
    r"airflow (api-server|scheduler|dag-processor|celery worker)": STACK_TEST,
    r"airflow triggerer": "run by make up (tests/docs); the DAGs defer nothing, so the Celery run does without it",
    r"airflow db migrate": STACK_TEST,
    r'airflow pools set <name> 1 "<description>"': "placeholders; the stacks create the same pools "
    "(pools import, and the REST API for a tenant's own pools)",
    r"uv pip compile": "re-locking is a release step; the Makefile header shows the full command",
}


def _commands() -> list[str]:
    blocks, inline = extract(ROOT / DOC, DOC)
    return [c.text for b in blocks for c in b.commands] + [c.text for c in inline]


def _accounted(text: str) -> str | None:
    return next((reason for pattern, reason in ACCOUNTED.items() if re.fullmatch(pattern, text)), None)


@pytest.mark.parametrize("command", sorted(set(_commands())))
def test_every_command_of_the_deployment_guide_is_run_or_says_why_not(command: str) -> None:
    assert _accounted(command), f"{DOC}: `{command}` is neither run by a test nor listed with a reason"


def test_every_entry_of_the_list_still_matches_a_command_of_the_guide() -> None:
    commands = _commands()
    stale = [p for p in ACCOUNTED if not any(re.fullmatch(p, c) for c in commands)]
    assert not stale, f"no longer in {DOC}, remove from ACCOUNTED: {stale}"


def test_make_celery_runs_the_celery_stack() -> None:
    result = subprocess.run(
        ["make", "-n", "celery", "CELERY_TENANTS=default,acme"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "tools/celery_stack.py run --tenants default,acme" in result.stdout
