"""Long steps say how far they are (issue 9 §4): done / total where known, rate and time left, on a timer."""

from __future__ import annotations

import logging
import re

import pytest

from pogo_invoiced_sync.engine import progress as progress_module
from pogo_invoiced_sync.engine.progress import Progress


def test_a_progress_line_shows_done_of_total_the_rate_and_the_time_left():
    step = Progress(logging.getLogger("test"), "upsert to invoiced", unit="items", total=400)
    step.add(100)
    line = step.line()
    assert line.startswith("upsert to invoiced: 100 / 400 items (25%), ")
    assert re.search(r"[\d,]+ items/s, \d+ s elapsed, about .+ left$", line)


def test_without_a_total_the_line_counts_what_is_done_so_far():
    step = Progress(logging.getLogger("test"), "extract poweroffice_go")
    step.add(5000)
    assert step.line().startswith("extract poweroffice_go: 5,000 records so far, ")


def test_a_step_shorter_than_the_interval_logs_no_progress(caplog):
    caplog.set_level(logging.INFO)
    with Progress(logging.getLogger("quick"), "extract invoiced", interval=3600) as step:
        step.add(3)
    assert "extract invoiced" not in caplog.text


@pytest.mark.integration
def test_a_long_extract_and_upsert_log_progress_with_the_totals_they_know(stack, monkeypatch):
    monkeypatch.setattr(progress_module, "INTERVAL", 0.05)  # the steps below take far longer than that
    stack.sandboxes.invoiced.seed(companies=150)
    stack.sandboxes.invoiced.faults(latency_ms=150)
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    engine_log = logging.getLogger("pogo_invoiced_sync.engine")
    engine_log.addHandler(handler)
    try:
        stack.run("customers_company")
    finally:
        engine_log.removeHandler(handler)
    task_log = "\n".join(lines)
    # Invoiced sends the listing's total (X-Total-Count); the upsert knows its plan.
    assert re.search(r"extract invoiced: [\d,]+ / 150 records \(\d+%\), [\d,]+ records/s", task_log)
    assert re.search(r"upsert to poweroffice_go: [\d,]+ / 150 items \(\d+%\), [\d,]+ items/s", task_log)
