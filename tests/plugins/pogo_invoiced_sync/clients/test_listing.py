"""How the clients page a listing that moves while they read it, against the sandboxes over real HTTP."""

from __future__ import annotations

import datetime as dt

from pogo_invoiced_sync.clients.listing import Listing

CUSTOMERS = "/v2/Customers"


def _pogo_changed_list(pogo, sandboxes, *, changed: int, total: int = 30) -> tuple[dt.datetime, list[int]]:
    """``total`` customers of which the first ``changed`` (by id) were edited after the returned time."""
    sandboxes.pogo.seed(companies=total)
    ids = sorted(c["Id"] for c in sandboxes.pogo.records("customers"))
    since = max(dt.datetime.fromisoformat(c["LastChangedDateTimeOffset"]) for c in sandboxes.pogo.records("customers"))
    for customer_id in ids[-changed:]:
        pogo.patch(f"Customers/{customer_id}", {"Name": f"Changed {customer_id} AS"})
    return since, ids


def test_poweroffice_go_paging_follows_next_page_link_past_a_short_page(pogo, sandboxes):
    sandboxes.pogo.seed(companies=30)
    # Every answer loses half its records, X-Pagination still links the next page.
    sandboxes.pogo.faults(keep_fraction=0.5, path_pattern="(?i)/v2/customers$")
    pages = list(pogo.iter_pages("Customers", page_size=10))
    assert [len(p) for p in pages] == [5, 5, 5]
    assert sandboxes.pogo.counters()["routes"][f"GET {CUSTOMERS}"] == 3


def test_poweroffice_go_listing_notes_a_total_count_that_changed_between_pages(pogo, sandboxes):
    since, ids = _pogo_changed_list(pogo, sandboxes, changed=20)
    # Between page 1 and 2 an older customer is edited: it joins the list of changes.
    sandboxes.pogo.between_pages(
        {"list": "customers", "after_page": 1, "steps": [{"id": ids[0], "set": {"Name": "Joined AS"}}]}
    )
    listing = Listing()
    rows = [c for page in pogo.iter_changed("Customers", since, page_size=10, listing=listing) for c in page]
    assert len(rows) == 21
    assert any("totalCount went from 20 to 21" in reason for reason in listing.moved)


def test_poweroffice_go_listing_notes_a_record_listed_twice(pogo, sandboxes):
    since, ids = _pogo_changed_list(pogo, sandboxes, changed=20)
    # The joining customer sorts before page 1's records, so page 1's last record comes again on page 2.
    sandboxes.pogo.between_pages(
        {"list": "customers", "after_page": 1, "steps": [{"id": ids[0], "set": {"Name": "Joined AS"}}]}
    )
    listing = Listing()
    list(pogo.iter_changed("Customers", since, page_size=10, listing=listing))
    assert any("listed twice" in reason for reason in listing.moved)


def test_poweroffice_go_listing_that_did_not_move_notes_nothing_and_the_server_start(pogo, sandboxes):
    since, _ids = _pogo_changed_list(pogo, sandboxes, changed=20)
    listing = Listing()
    rows = [c for page in pogo.iter_changed("Customers", since, page_size=10, listing=listing) for c in page]
    assert len(rows) == 20
    assert listing.moved == []
    assert listing.pages == 2
    assert abs(listing.started_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_invoiced_changes_are_paged_by_key_so_an_edit_between_pages_skips_nothing(invoiced, sandboxes):
    sandboxes.invoiced.seed(companies=250)
    sandboxes.invoiced.between_pages(
        {"list": "customers", "after_page": 1, "steps": [{"first": 10, "append": {"name": " again"}}]}
    )
    listing = Listing()
    rows = [c for page in invoiced.iter_changed("customers", None, listing=listing) for c in page]
    assert sandboxes.invoiced.between_pages()["triggers"] == []
    latest = {c["id"]: c["name"] for c in rows}
    assert len(latest) == 250
    assert sum(name.endswith(" again") for name in latest.values()) == 10
    assert listing.moved == []


def test_invoiced_reads_every_change_when_one_second_holds_more_than_a_page(invoiced, sandboxes):
    sandboxes.invoiced.seed(companies=60)
    ids = sorted(c["id"] for c in sandboxes.invoiced.records("customers"))
    since = max(c["updated_at"] for c in sandboxes.invoiced.records("customers"))
    sandboxes.invoiced.edit("customers", *({"id": i, "append": {"name": " x"}} for i in ids[:50]))
    listing = Listing()
    pages = list(invoiced.iter_changed("customers", since, per_page=10, listing=listing))
    read = [c["id"] for page in pages for c in page]
    assert sorted(read) == ids[:50]  # each once
    assert listing.moved == []


def test_invoiced_page_number_listing_notes_a_total_count_that_changed(invoiced, sandboxes):
    sandboxes.invoiced.seed(companies=30)
    ids = sorted(c["id"] for c in sandboxes.invoiced.records("customers"))
    since = max(c["updated_at"] for c in sandboxes.invoiced.records("customers"))
    sandboxes.invoiced.edit("customers", *({"id": i, "append": {"name": " x"}} for i in ids[10:]))
    sandboxes.invoiced.between_pages(
        {"list": "customers", "after_page": 1, "steps": [{"id": ids[0], "append": {"name": " joined"}}]}
    )
    listing = Listing()
    list(invoiced.iter_pages("customers", {"updated_after": since}, per_page=10, listing=listing))
    assert any("X-Total-Count went from 20 to 21" in reason for reason in listing.moved)
