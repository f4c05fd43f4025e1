"""People edit while a run pages through a listing: the sandboxes land edits between pages, nothing is lost."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

POGO_CONN = "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT"


def _pairs(stack) -> dict[str, str]:
    return dict(stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links WHERE flow = 'customers_company'"))


def _names_differing(stack) -> list[tuple[str, str]]:
    pogo = {str(c["Id"]): c["Name"] for c in stack.records("poweroffice_go", "customers")}
    inv = {str(c["id"]): c["name"] for c in stack.records("invoiced", "customers")}
    return [(pogo[p], inv[i]) for p, i in _pairs(stack).items() if pogo[p] != inv[i]]


def _pogo_page_size(monkeypatch, size: int) -> None:
    conn = json.loads(__import__("os").environ[POGO_CONN])
    conn["extra"] = {**conn.get("extra", {}), "page_size": size}
    monkeypatch.setenv(POGO_CONN, json.dumps(conn))


def test_invoiced_records_edited_again_while_the_run_pages_are_all_synchronised(stack):
    """Issue 8: 300 companies edited, the first 10 edited again between page 1 and page 2 of the listing."""
    stack.sandboxes.pogo.seed(companies=300)
    stack.run("customers_company")
    pairs = _pairs(stack)
    assert len(pairs) == 300
    for inv_id in pairs.values():
        stack.invoiced.update(f"/customers/{inv_id}", {"name": f"Edited {inv_id} AS"})
    stack.sandboxes.invoiced.between_pages(
        {"list": "customers", "after_page": 1, "steps": [{"first": 10, "append": {"name": " again"}}]})

    for _ in range(3):  # the run during which the edits land, and two more
        stack.run("customers_company", allow_mass_changes=True)

    assert stack.sandboxes.invoiced.between_pages()["triggers"] == []  # the edits did land during the listing
    assert sum(c["name"].endswith(" again") for c in stack.records("invoiced", "customers")) == 10
    assert _names_differing(stack) == []


def test_a_poweroffice_go_edit_on_a_page_already_read_is_read_by_the_next_run(stack, monkeypatch):
    """Issue 8: a page-1 company edited after page 1 was read, a page-2 company 2.6 s later, before page 2."""
    _pogo_page_size(monkeypatch, 20)
    stack.sandboxes.pogo.seed(companies=30)
    stack.run("customers_company")
    pogo_ids = sorted(int(i) for i in _pairs(stack))
    for pogo_id in pogo_ids:
        stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": f"Edited {pogo_id} AS"})
    first, on_page_two = pogo_ids[0], pogo_ids[25]
    stack.sandboxes.pogo.between_pages({"list": "customers", "after_page": 1, "steps": [
        {"id": first, "set": {"Name": "Edited after page one AS"}},
        {"wait_ms": 2600},
        {"id": on_page_two, "set": {"Name": "Edited before page two AS"}},
    ]})

    for _ in range(3):  # the run during which the edits land, and two more
        stack.run("customers_company", allow_mass_changes=True)

    assert stack.sandboxes.pogo.between_pages()["triggers"] == []
    inv_names = {c["name"] for c in stack.records("invoiced", "customers")}
    assert {"Edited after page one AS", "Edited before page two AS"} <= inv_names
    assert _names_differing(stack) == []


def test_a_listing_that_saw_the_list_move_keeps_the_cursor_and_the_next_run_reads_what_it_missed(stack, monkeypatch):
    _pogo_page_size(monkeypatch, 10)
    stack.sandboxes.pogo.seed(companies=30)
    ids = sorted(c["Id"] for c in stack.records("poweroffice_go", "customers"))
    # Ten companies last changed an hour ago: behind the cursor after the first run.
    stack.sandboxes.pogo.edit("customers", *({"id": i, "set": {"Name": f"Old {i} AS"}, "backdate_seconds": 3600}
                                             for i in ids[:10]))
    stack.run("customers_company")
    stack.sandboxes.pogo.edit("customers", *({"id": i, "append": {"Name": " edited"}} for i in ids[10:]))
    cursor = stack.sql("SELECT cursor FROM {s}.cursors WHERE flow = 'customers_company' AND system = 'poweroffice_go'")
    # While the next run pages through the 20 edited ones, an old one is edited: it joins the list at its head.
    stack.sandboxes.pogo.between_pages({"list": "customers", "after_page": 1,
                                        "steps": [{"id": ids[0], "set": {"Name": "Joined while paging AS"}}]})

    moved_run = stack.run("customers_company")

    assert stack.sql("SELECT cursor FROM {s}.cursors WHERE flow = 'customers_company' "
                     "AND system = 'poweroffice_go'") == cursor
    moved = stack.sql("SELECT moved FROM {s}.extracts WHERE run_id = %s AND system = 'poweroffice_go'",
                      moved_run.run_id)[0][0]
    assert "totalCount went from 20 to 21" in moved
    stack.run("customers_company")
    assert "Joined while paging AS" in {c["name"] for c in stack.records("invoiced", "customers")}
