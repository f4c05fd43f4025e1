"""The map step skips records listed unchanged since they were mapped (issue 12), against the sandbox and PostgreSQL.

The person flow lists every PowerOffice Go customer each run (``change_detection: full_scan``): the hourly run that
the skipping is for.
"""
from __future__ import annotations

import pytest
import yaml

from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.flow_mapping import POGO, FlowMapping, load_mapping, mappings_folder
from pogo_invoiced_sync.hooks import PowerOfficeGoHook

pytestmark = pytest.mark.integration

FLOW = "customers_person"


def _cycle(store, run_id: str, mapping: FlowMapping | None = None, **extract_options) -> dict:
    """Extract PowerOffice Go's listing (of the person flow by default) into staging and map it; the map result."""
    mapping = mapping or load_mapping(FLOW)
    store.start_run(mapping.flow, run_id, {})
    steps.extract(store, mapping, POGO, PowerOfficeGoHook().get_conn(), run_id, **extract_options)
    return steps.map_records(store, mapping, POGO, run_id)


def _mirror(store, column: str) -> dict[str, object]:
    """One column of the flow's PowerOffice Go mirror rows, by record id."""
    with store.transaction() as cur:
        cur.execute(
            store.q(f"SELECT record_id, {column} FROM {{s}}.records WHERE flow = %s AND system = %s"), (FLOW, POGO)
        )
        return dict(cur.fetchall())


def _person_ids(sandboxes) -> list[int]:
    return sorted(c["Id"] for c in sandboxes.pogo.records("customers"))


def test_records_listed_again_unchanged_are_not_mapped_again(link_store, connections):
    connections.pogo.seed(persons=3)
    assert _cycle(link_store, "run1")["seen"] == 3
    second = _cycle(link_store, "run2")
    assert (second["seen"], second["unchanged"], second["changed"]) == (0, 3, 0)
    assert set(_mirror(link_store, "seen_run").values()) == {"run1"}  # the last run that read a change


def test_records_read_again_by_an_incremental_listings_overlap_are_not_mapped_again(link_store, connections):
    connections.pogo.seed(companies=3)
    company = load_mapping("customers_company")  # listed incrementally, from the cursor minus its margins
    assert _cycle(link_store, "run1", company)["seen"] == 3
    second = _cycle(link_store, "run2", company)
    assert (second["seen"], second["unchanged"]) == (0, 3)


def test_a_record_edited_since_it_was_mapped_is_mapped_again(link_store, connections):
    connections.pogo.seed(persons=3)
    _cycle(link_store, "run1")
    edited = _person_ids(connections)[1]
    PowerOfficeGoHook().get_conn().patch(f"/Customers/{edited}", {"MailAddress.City": "Tromsø"})
    second = _cycle(link_store, "run2")
    assert (second["seen"], second["unchanged"], second["changed"]) == (1, 2, 1)
    assert _mirror(link_store, "vals")[str(edited)]["city"] == "Tromsø"


def test_a_payload_edit_outside_the_mapped_fields_is_read_once_and_then_skipped(link_store, connections):
    connections.pogo.seed(persons=2)
    _cycle(link_store, "run1")
    edited = _person_ids(connections)[0]
    PowerOfficeGoHook().get_conn().patch(f"/Customers/{edited}", {"PhoneNumber": "+47 12345678"})  # not mapped
    assert (_cycle(link_store, "run2")["seen"], _cycle(link_store, "run3")["seen"]) == (1, 0)


def test_an_edited_mapping_maps_every_record_again(link_store, connections):
    connections.pogo.seed(persons=3)
    _cycle(link_store, "run1")
    spec = yaml.safe_load((mappings_folder() / f"{FLOW}.yaml").read_text())
    spec["fields"].append({"name": "phone", "poweroffice_go": "PhoneNumber", "invoiced": "phone"})
    second = _cycle(link_store, "run2", FlowMapping.from_dict(spec))
    assert (second["seen"], second["unchanged"]) == (3, 0)
    assert all("phone" in vals for vals in _mirror(link_store, "vals").values())


def test_a_full_refresh_maps_every_record_again(link_store, connections):
    connections.pogo.seed(persons=3)
    _cycle(link_store, "run1")
    assert _cycle(link_store, "run2", full_refresh=True)["seen"] == 3


def test_a_record_the_map_step_rejected_is_read_and_reported_again_by_the_next_run(link_store, connections):
    connections.pogo.seed(persons=2)
    connections.pogo.faults(strip_fields=["LastName"], path_pattern="Customers", methods=["GET"])
    first, second = _cycle(link_store, "run1"), _cycle(link_store, "run2")
    assert (first["unreadable"], second["unreadable"], second["unchanged"]) == (2, 2, 0)
    with link_store.transaction() as cur:
        cur.execute(link_store.q("SELECT run_id, count(*) FROM {s}.sync_log WHERE operation = 'reject' GROUP BY 1"))
        assert dict(cur.fetchall()) == {"run1": 2, "run2": 2}
    connections.pogo.faults()
    assert _cycle(link_store, "run3")["seen"] == 2


def test_records_listed_unchanged_count_as_handled_when_the_map_step_weighs_its_rejections(link_store, connections):
    connections.pogo.seed(persons=3, persons_without_address=5)
    _cycle(link_store, "run1")
    # The three with an address lose a mapped field; more than half of the listing would stop the step.
    connections.pogo.faults(strip_fields=["MailAddress.City"], path_pattern="Customers", methods=["GET"])
    result = _cycle(link_store, "run2")
    assert (result["unreadable"], result["unchanged"]) == (3, 5)
