"""The scheduled full reconciliation: a change the incremental reads could not see is repaired and logged."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _hide_an_invoiced_edit_behind_the_cursor(stack) -> tuple[str, str]:
    """Link five companies, then edit one in Invoiced with a change time two hours back (behind the cursor)."""
    stack.sandboxes.pogo.seed(companies=5)
    stack.run("customers_company")
    pogo_id, inv_id = sorted(stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links"))[0]
    stack.sandboxes.invoiced.edit("customers", {"id": int(inv_id), "set": {"name": "Hidden edit AS"},
                                                "backdate_seconds": 7200})
    return pogo_id, inv_id


def _last_full_listing_hours_ago(stack, hours: float) -> None:
    stack.sql("UPDATE {s}.cursors SET full_listed_at = now() - make_interval(secs => %s) "
              "WHERE flow = 'customers_company' RETURNING flow", hours * 3600)


def _pogo_name(stack, pogo_id: str) -> str:
    return next(c["Name"] for c in stack.records("poweroffice_go", "customers") if str(c["Id"]) == pogo_id)


def test_a_change_hidden_from_the_incremental_read_is_repaired_and_logged_by_the_due_full_reconciliation(stack):
    pogo_id, inv_id = _hide_an_invoiced_edit_behind_the_cursor(stack)
    stack.run("customers_company")
    assert _pogo_name(stack, pogo_id) != "Hidden edit AS"  # the incremental read did not see it

    _last_full_listing_hours_ago(stack, 25)  # the mapping's default interval is 24 hours
    stack.run("customers_company")

    assert _pogo_name(stack, pogo_id) == "Hidden edit AS"
    repairs = stack.sql("SELECT invoiced_id, direction, outcome FROM {s}.sync_log WHERE operation = 'repair'")
    assert repairs == [(inv_id, "to_poweroffice_go", "reported")]


def test_a_full_reconciliation_is_not_due_before_the_interval_has_passed(stack):
    pogo_id, _inv_id = _hide_an_invoiced_edit_behind_the_cursor(stack)
    _last_full_listing_hours_ago(stack, 23)
    stack.run("customers_company")
    assert _pogo_name(stack, pogo_id) != "Hidden edit AS"
    assert stack.sql("SELECT count(*) FROM {s}.extracts WHERE reconciliation")[0][0] == 0


def test_a_full_reconciliation_records_its_listing_so_the_next_run_reads_incrementally(stack):
    _hide_an_invoiced_edit_behind_the_cursor(stack)
    _last_full_listing_hours_ago(stack, 25)
    stack.run("customers_company")
    stack.run("customers_company")
    runs = stack.sql("SELECT run_id, bool_or(reconciliation) FROM {s}.extracts GROUP BY run_id "
                     "ORDER BY min(extracted_at)")
    assert [due for _run, due in runs] == [False, True, False]
