"""Records listed again unchanged are staged by id only and not mapped again (issue 12): what the runs still see."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _pogo_extracts(stack, flow: str) -> list[tuple[int, int | None]]:
    """(records listed, of them unchanged) of each PowerOffice Go extract of ``flow``, oldest first."""
    return stack.sql("SELECT row_count, unchanged FROM {s}.extracts WHERE flow = %s AND system = 'poweroffice_go' "
                     "ORDER BY extracted_at", flow)


def test_a_no_change_run_of_the_full_scan_flow_maps_nothing_and_writes_nothing(stack):
    stack.sandboxes.pogo.seed(persons=4)
    stack.run("customers_person")
    stack.run("customers_person")  # reads back what the first run created in Invoiced
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()
    stack.run("customers_person")
    assert _pogo_extracts(stack, "customers_person")[-1] == (4, 4)
    assert stack.writes() == {"poweroffice_go": 0, "invoiced": 0}
    assert stack.sql("SELECT count(*) FROM {s}.records WHERE dirty")[0][0] == 0


def test_a_record_deleted_among_records_listed_unchanged_is_confirmed_by_the_full_listing(stack):
    stack.sandboxes.pogo.seed(persons=3)
    stack.run("customers_person")
    stack.run("customers_person")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links ORDER BY 1")[0]
    stack.pogo.delete(f"/Customers/{pogo_id}")
    stack.run("customers_person")
    assert _pogo_extracts(stack, "customers_person")[-1] == (2, 2)
    assert stack.sql("SELECT poweroffice_go_id, state FROM {s}.links WHERE state <> 'active'") == [
        (pogo_id, "deleted_in_poweroffice_go")]
    assert stack.invoiced.get(f"/customers/{inv_id}") is not None  # recorded, not propagated


def test_an_edit_listed_among_unchanged_records_arrives_on_the_other_side(stack):
    stack.sandboxes.pogo.seed(persons=3)
    stack.run("customers_person")
    stack.run("customers_person")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links ORDER BY 1")[1]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"MailAddress.City": "Bodø"})  # does not move LastChanged
    stack.run("customers_person")
    assert _pogo_extracts(stack, "customers_person")[-1] == (3, 2)
    assert stack.invoiced.get(f"/customers/{inv_id}")["city"] == "Bodø"
