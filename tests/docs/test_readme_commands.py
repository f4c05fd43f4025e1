"""The docs are a contract: every command in README.md and docs/operations.md runs, as written, against a real stack.

Which text counts as a command is in ``doc_commands`` (fenced ``bash``/``sh``/``shell``/``console`` and ``sql``
blocks, and inline code spans starting with a command word). Each fenced shell block runs as one bash script in a
copy of the checkout after ``make demo`` (so ``set -a; . .run/airflow.env; set +a`` carries to
the block's next lines); each inline shell command runs on its own in a shell where ``.run/airflow.env`` is
sourced and ``.venv/bin`` is on ``PATH``, as the docs say; each SQL statement runs against the demo link store.
``make demo`` runs once (stack fixture), ``make up`` once when its inline mention comes up (so blocks run "after make
demo" without a scheduler beside them), ``make down`` when the session ends (the fixture asserts it stopped all). Placeholders
the docs ask the reader to fill in are filled from ``PLACEHOLDERS``; a command that would change the running stack's
schedule runs as ``RUN_AS`` says (``airflow backfill create ... --dry-run``).

A command that must not run here goes on ``NOT_RUN`` with the reason. A command added to the docs is therefore
run by the next test run: if it cannot run here, the test fails until it works or is put on the list. An entry
of ``NOT_RUN`` or ``PLACEHOLDERS`` that no longer matches the docs fails too, so the lists cannot rot.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.conftest import ROOT
from tests.docs.doc_commands import Block, Command, extract

DOCS = ("README.md", "docs/operations.md")
LIFECYCLE = {"make demo": "demo", "make up": "up"}  # run once by the local_stack fixture, checked here

# pattern (re.fullmatch on the command text) -> why it is not run
NOT_RUN = {
    r"make test( .*)?": "the test suite itself: CI runs it (.ci/run), running it here would recurse",
    r"make bench": "the benchmark: minutes of load, measured by hand (docs/benchmark.md)",
    r"make sandbox": "runs in the foreground until stopped; make demo starts the same sandboxes, checked here",
    r"make screenshot": "rewrites the pictures in docs/img/ (DAG list, connection forms, console) after waiting for "
                        "scheduled runs; its browser steps are what tests/docs/test_ui_connections.py and the console "
                        "browser tests do",
    r"make install": "every make target runs it first; the stack fixture's make demo does",
    r"\.venv/bin/pre-commit install": "writes a git hook into the reader's clone (the docs check's copy has no .git); "
                                     "tests/toolchain runs the hooks it installs",
    r"make soak": "ten minutes of load with a random seed; its 30 s fixed-seed run is part of the suite (tests/soak)",
    r"AIRFLOW_CONN_\w+='.*<.*": "real credentials (placeholders in angle brackets); make up storing an "
                                "AIRFLOW_CONN_* is checked by tests/docs/test_ui_connections.py",
    r"airflow connections delete \w+": "would delete a connection the other checks use; make up creating a missing "
                                       "connection is what the stack fixture's first make demo does",
}
# text in a documented command -> what the check puts there (the doc says what to fill in)
PLACEHOLDERS = {"/path/to/checkout": lambda stack: str(stack.checkout)}
# pattern -> how it runs instead: a backfill would queue a run per interval on the running scheduler (minutes of
# runs), so it runs with --dry-run, which checks the DAG id, the dates and every option against the real CLI;
# date placeholders (…, <from>) get a fixed day.
RUN_AS = {
    r"((?:\.venv/bin/)?airflow backfill create .*)": lambda m: re.sub(
        r"(--(?:from|to)-date)(?:[ =])(…|<[^>]*>)",
        lambda d: f"{d.group(1)} " + ("2026-11-01" if "from" in d.group(1) else "2026-11-02"),
        m.group(1)) + " --dry-run",
}


def _all() -> tuple[list[Block], list[Command]]:
    blocks, inline = [], []
    for name in DOCS:
        b, i = extract(ROOT / name, name)
        blocks += b
        inline += i
    return blocks, inline


BLOCKS, INLINE = _all()
_seen: set[str] = set()
INLINE_UNIQUE = [c for c in INLINE if not (c.text in _seen or _seen.add(c.text))]


def not_run_reason(text: str) -> str | None:
    for pattern, reason in NOT_RUN.items():
        if re.fullmatch(pattern, text):
            return reason
    return None


def _filled(stack, text: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value(stack))
    for pattern, rewrite in RUN_AS.items():
        match = re.fullmatch(pattern, text)
        if match:
            return rewrite(match)
    return text


def _run_sql(stack, statements: list[str]) -> None:
    import psycopg

    with psycopg.connect(stack.link_store_dsn) as conn:
        for statement in statements:
            conn.execute(statement).fetchall()  # a doc query that no longer matches the schema raises here
        conn.rollback()


def _check_lifecycle(stack, text: str) -> None:
    stack.ensure(*{"demo": ("demo",), "up": ("demo", "up")}[LIFECYCLE[text]])


@pytest.mark.timeout(900)
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.commands], ids=lambda b: b.source)
def test_a_documented_block_runs_as_written(request, block: Block) -> None:
    if all(not_run_reason(c.text) for c in block.commands):
        pytest.skip("not run: " + "; ".join(sorted({not_run_reason(c.text) for c in block.commands})))
    local_stack = request.getfixturevalue("local_stack")
    to_run = []
    for command in block.commands:
        if not_run_reason(command.text):
            continue
        if command.text in LIFECYCLE:
            _check_lifecycle(local_stack, command.text)
            continue
        assert command.text != "make down", "make down inside a block would stop the stack mid-check"
        to_run.append(_filled(local_stack, command.text))
    if not to_run:
        pytest.skip("every command of this block is on NOT_RUN or run by the stack fixture")
    if block.kind == "sql":
        _run_sql(local_stack, to_run)
        return
    # As the README says for the CLI after make demo: the generated env file points it at the local Airflow home
    # (without it, a block's `airflow` would use ~/airflow of whoever runs the suite).
    result = local_stack.shell("set -a; . .run/airflow.env; set +a\nset -e\n" + "\n".join(to_run))
    assert result.returncode == 0, f"{block.source} failed (exit {result.returncode}):\n{result.stdout[-4000:]}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("command", [c for c in INLINE_UNIQUE if c.text != "make down"], ids=lambda c: c.text)
def test_a_documented_inline_command_runs_as_written(request, command: Command) -> None:
    reason = not_run_reason(command.text)
    if reason:
        pytest.skip(f"not run: {reason}")
    local_stack = request.getfixturevalue("local_stack")
    if command.text in LIFECYCLE:
        _check_lifecycle(local_stack, command.text)
        return
    if command.kind == "sql":
        _run_sql(local_stack, [_filled(local_stack, command.text)])
        return
    result = local_stack.shell("set -a; . .run/airflow.env; set +a\n" + _filled(local_stack, command.text))
    assert result.returncode == 0, f"{command.source}: `{command.text}` failed:\n{result.stdout[-4000:]}"


def test_every_entry_of_the_not_run_list_still_matches_a_documented_command() -> None:
    texts = [c.text for b in BLOCKS for c in b.commands] + [c.text for c in INLINE]
    stale = [p for p in NOT_RUN if not any(re.fullmatch(p, t) for t in texts)]
    stale += [p for p in PLACEHOLDERS if not any(p in t for t in texts)]
    stale += [p for p in RUN_AS if not any(re.fullmatch(p, t) for t in texts)]
    assert not stale, f"no longer in the docs, remove from the lists: {stale}"


def test_the_docs_document_make_down_which_the_stack_fixture_runs_last() -> None:
    assert any(c.text == "make down" for c in INLINE + [c for b in BLOCKS for c in b.commands])
