"""Operator decisions taken in the console, carried out by the DAGs (``dag.test()``) against the sandboxes."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration

FLOW = "customers_company"


@pytest.fixture
def console_on_stack(stack, console_for):
    """The console app over the stack's link store, logged in as the editor."""
    return console_for(stack.dsn, "pogo_invoiced_sync").login("editor")


def _conflict(stack) -> tuple[str, str, int]:
    """One linked company edited on both sides; the run gives Invoiced's later edit the win."""
    stack.sandboxes.pogo.seed(companies=1)
    stack.run(FLOW)
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": "Kept Name AS"})
    time.sleep(1.1)  # Invoiced stamps changes to the second: make its edit clearly the later one
    stack.invoiced.update(f"/customers/{inv_id}", {"name": "Later Name AS"})
    stack.run(FLOW)
    (conflict,) = stack.sql("SELECT id FROM {s}.sync_log WHERE operation = 'conflict'")[0]
    return pogo_id, inv_id, conflict


def test_a_conflict_resolved_for_the_losing_side_is_carried_out_by_the_next_run(stack, console_on_stack):
    pogo_id, inv_id, conflict = _conflict(stack)
    assert stack.pogo.get(f"/Customers/{pogo_id}")["Name"] == "Later Name AS"
    response = console_on_stack.act("resolve", flow=FLOW, conflict_id=conflict, choice="poweroffice_go")
    assert response.status_code == 200, response.text
    stack.run(FLOW)
    assert stack.pogo.get(f"/Customers/{pogo_id}")["Name"] == "Kept Name AS"
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Kept Name AS"
    assert stack.sql("SELECT base->>'name' FROM {s}.links") == [("Kept Name AS",)]


def test_a_resolution_is_closed_by_the_run_that_finds_both_sides_holding_its_value(stack, console_on_stack):
    _pogo_id, inv_id, conflict = _conflict(stack)
    console_on_stack.act("resolve", flow=FLOW, conflict_id=conflict, choice="value", value="Chosen Name AS")
    stack.run(FLOW)
    writes = stack.writes()
    stack.run(FLOW)
    assert stack.writes() == writes  # confirming writes nothing
    assert stack.sql("SELECT status, run_id IS NOT NULL FROM {s}.operator_decisions") == [("done", True)]
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Chosen Name AS"


def test_an_excluded_record_is_not_synchronised_until_it_is_included_again(stack, console_on_stack):
    stack.sandboxes.pogo.seed(companies=1)
    stack.run(FLOW)
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    assert console_on_stack.act("exclude", flow=FLOW, system="poweroffice_go", record_id=pogo_id).status_code == 200
    stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": "Edited While Pinned AS"})
    stack.run(FLOW)
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] != "Edited While Pinned AS"
    assert console_on_stack.act("include", flow=FLOW, system="poweroffice_go", record_id=pogo_id).status_code == 200
    stack.run(FLOW)
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Edited While Pinned AS"


def test_an_unlinked_pair_is_neither_linked_again_nor_given_new_counterparts(stack, console_on_stack):
    stack.sandboxes.pogo.seed(companies=1)
    stack.run(FLOW)
    pogo_id, _ = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    assert console_on_stack.act("unlink", flow=FLOW, poweroffice_go_id=pogo_id).status_code == 200
    stack.run(FLOW, full_refresh=True)
    assert stack.sql("SELECT count(*) FROM {s}.links") == [(0,)]
    assert len(stack.records("invoiced", "customers")) == len(stack.records("poweroffice_go", "customers")) == 1
