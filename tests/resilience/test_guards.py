"""Issue 5 §3: an API answering with an empty, partial or damaged list never causes mass changes on the other side."""
from __future__ import annotations

import pytest

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from tests.resilience import invariants, scenario

pytestmark = pytest.mark.integration

POGO_CUSTOMER_LIST = r"(?i)^/v2/customers$"
CUSTOMER_FLOWS = ("customers_company", "customers_person")


def _clear_counters(stack) -> None:
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()


@pytest.mark.parametrize("keep", [0.0, 0.5], ids=["empty", "half"])
@pytest.mark.parametrize("full_refresh", [False, True], ids=["incremental", "full_refresh"])
def test_a_customer_list_that_suddenly_answers_empty_or_half_changes_nothing_on_the_other_side(stack, keep,
                                                                                                full_refresh):
    """Absence is not deletion: records missing from a list are neither deleted nor updated nor re-created."""
    scenario.prepare(stack)
    scenario.recover(stack)  # everything linked and in agreement
    before = invariants.snapshot(stack)
    _clear_counters(stack)
    stack.sandboxes.pogo.faults(keep_fraction=keep, path_pattern=POGO_CUSTOMER_LIST, methods=["GET"])
    for flow in CUSTOMER_FLOWS:
        assert scenario.run(stack, flow, full_refresh=full_refresh) == "success"
    assert stack.writes() == {POGO: 0, INVOICED: 0}
    assert invariants.snapshot(stack) == before
    assert stack.sql("SELECT count(*) FROM {s}.links WHERE state <> 'active'") == [(0,)]
    # The API recovers: nothing to do, nothing was lost.
    scenario.faults_off(stack)
    for flow in CUSTOMER_FLOWS:
        assert scenario.run(stack, flow, full_refresh=full_refresh) == "success"
    assert stack.writes() == {POGO: 0, INVOICED: 0}
    invariants.check(stack)


# Damaged list answers per flow: mapped fields left out, or overwritten with one wrong value, on every record listed.
STRIPPED = {"customers_company": ["Name"], "customers_person": ["MailAddress"], "salesorders_invoices": ["CurrencyCode"]}
WRONG = {"customers_company": {"Name": "Ukjent AS"}, "customers_person": {"MailAddress.City": "Ukjent"},
         "salesorders_invoices": {"CurrencyCode": "ISK"}}  # no seeded order is in ISK


@pytest.fixture
def many_pairs(stack):
    """Enough pairs per flow that updating all of them passes the change guard's floor (min_updates = 25)."""
    stack.sandboxes.pogo.seed(companies=30, persons=30, sales_orders=30)
    assert scenario.cycle(stack) == {f: "success" for f in scenario.FLOWS}
    _clear_counters(stack)
    return stack


def _recovers_writing_nothing(stack, before) -> None:
    assert invariants.snapshot(stack) == before
    scenario.faults_off(stack)
    for flow in scenario.FLOWS:
        assert scenario.run(stack, flow) == "success", f"sync_{flow} still stopped after the API recovered"
    assert stack.writes() == {POGO: 0, INVOICED: 0}, "the damaged values were written after all"
    assert invariants.snapshot(stack) == before
    invariants.check(stack)


def test_list_answers_missing_a_mapped_field_are_rejected_with_reasons_and_write_nothing(many_pairs):
    stack = many_pairs
    before = invariants.snapshot(stack)
    for flow, fields in STRIPPED.items():
        stack.sandboxes.pogo.faults(strip_fields=fields, methods=["GET"], path_pattern=r"(?i)^/v2/")
        scenario.run(stack, flow)
        assert stack.writes() == {POGO: 0, INVOICED: 0}, f"sync_{flow} wrote data it read without {fields}"
        rejected = stack.sql("SELECT count(*) FROM {s}.sync_log WHERE flow = %s AND operation = 'reject' "
                             "AND reason LIKE %s", flow, f"%{fields[0]}%")[0][0]
        assert rejected >= 30, f"sync_{flow}: the damaged records were not rejected with a reason"
    _recovers_writing_nothing(stack, before)


def test_the_change_guard_stops_runs_whose_list_answers_carry_wrong_values_for_every_record(many_pairs):
    stack = many_pairs
    before = invariants.snapshot(stack)
    for flow, values in WRONG.items():
        stack.sandboxes.pogo.faults(set_fields=values, methods=["GET"], path_pattern=r"(?i)^/v2/")
        # A full refresh lists every record (an incremental run would list only those changed lately).
        assert scenario.run(stack, flow, full_refresh=True) == "failed", \
            f"sync_{flow} went through with {values} on every record"
        assert stack.writes() == {POGO: 0, INVOICED: 0}
        reasons = [r for (r,) in stack.sql("SELECT reason FROM {s}.sync_log WHERE flow = %s AND operation = 'guard'",
                                           flow)]
        assert reasons and "change guard" in reasons[-1], f"sync_{flow} failed, but not by the change guard"
    _recovers_writing_nothing(stack, before)


def test_after_the_guard_stopped_a_run_the_damaged_values_are_not_kept_for_later_runs(stack):
    """The guard stops a full refresh that read wrong values; the API recovers. The hourly (incremental) runs after it
    must neither trip the guard again nor, when a person lets the guard pass, write the values the stopped run read."""
    import time

    stack.sandboxes.pogo.seed(companies=30)
    assert scenario.run(stack, "customers_company") == "success"
    time.sleep(5.5)  # past the extract's overlap: later incremental runs list only what changes from now on
    first = sorted(stack.records(POGO, "customers"), key=lambda c: c["Id"])[0]["Id"]
    stack.pogo.patch(f"/Customers/{first}", {"Name": "Nytt Navn AS"})
    assert scenario.run(stack, "customers_company") == "success"
    _clear_counters(stack)
    stack.sandboxes.pogo.faults(set_fields={"Name": "Ukjent AS"}, methods=["GET"], path_pattern=POGO_CUSTOMER_LIST)
    assert scenario.run(stack, "customers_company", full_refresh=True) == "failed"
    assert stack.writes() == {POGO: 0, INVOICED: 0}
    scenario.faults_off(stack)
    assert scenario.run(stack, "customers_company") == "success", "the guard still stops runs after the API recovered"
    assert scenario.run(stack, "customers_company", allow_mass_changes=True) == "success"
    assert not [c for c in stack.records(INVOICED, "customers") if c["name"] == "Ukjent AS"], \
        "values read by the stopped run were written later"
    assert stack.writes() == {POGO: 0, INVOICED: 0}
    invariants.check(stack, ("customers_company",))
