"""List endpoints: paging headers, clamping, filters, metadata filters, updated_after, sorting and strictness."""
from __future__ import annotations

import re
import time

import pytest


def links(response) -> dict:
    """``Link`` as ``{rel: url}``."""
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="([^"]+)"', response.headers["Link"])}


def names(response) -> list[str]:
    return [c["name"] for c in response.json()]


def wait_for_next_second(since: int) -> None:
    """Timestamps have second resolution: wait until the clock has moved past ``since``."""
    while int(time.time()) <= since:
        time.sleep(0.02)


def test_an_empty_list_still_has_self_first_last_and_a_zero_total(api, sandboxes):
    response = api.get("/invoices")
    assert response.json() == [] and response.headers["X-Total-Count"] == "0"
    assert links(response) == {rel: f"{sandboxes.invoiced_url}/invoices?page=1" for rel in ("self", "first", "last")}


def test_a_middle_page_links_previous_and_next_in_the_documented_order(api, sandboxes):
    sandboxes.invoiced.seed(persons=25)
    response = api.get("/customers", params={"per_page": 10, "page": 2})
    assert [rel for rel in re.findall(r'rel="([^"]+)"', response.headers["Link"])] == \
        ["self", "first", "previous", "next", "last"]
    assert links(response)["next"] == f"{sandboxes.invoiced_url}/customers?page=3&per_page=10"
    assert response.headers["X-Total-Count"] == "25"


def test_link_urls_repeat_the_filters_with_the_page_replaced(api, sandboxes):
    sandboxes.invoiced.seed(companies=150, contacts_per_company=0)
    response = api.get("/customers?filter[type]=company&sort=name asc,id desc")
    next_url = links(response)["next"]
    assert "page=2" in next_url and "filter[type]=company" in next_url and "%2C" in next_url
    assert len(api.session.get(next_url).json()) == 50


def test_per_page_is_clamped_to_100_and_zero_means_the_default(api, sandboxes):
    sandboxes.invoiced.seed(persons=120)
    assert len(api.get("/customers", params={"per_page": 500}).json()) == 100
    assert len(api.get("/customers", params={"per_page": 0}).json()) == 100
    assert len(api.get("/customers", params={"per_page": "abc"}).json()) == 1
    assert names(api.get("/customers", params={"page": -3})) == names(api.get("/customers"))


def test_lists_are_bare_arrays_in_id_order_by_default(api, sandboxes):
    sandboxes.invoiced.seed(persons=5)
    ids = [c["id"] for c in api.get("/customers").json()]
    assert ids == sorted(ids)


def test_filter_is_an_exact_match_with_raw_or_encoded_brackets(api):
    api.create("/customers", {"name": "Ola Hansen", "type": "person"})
    api.create("/customers", {"name": "Fjord Bygg AS"})
    assert names(api.get("/customers?filter[type]=person")) == ["Ola Hansen"]
    assert names(api.get("/customers?filter%5Btype%5D=company")) == ["Fjord Bygg AS"]
    assert names(api.get("/customers?filter[name]=Fjord")) == []


def test_a_boolean_filter_accepts_true_and_1(api):
    api.create("/customers", {"name": "Off", "active": False})
    api.create("/customers", {"name": "On"})
    assert names(api.get("/customers?filter[active]=1")) == ["On"]
    assert names(api.get("/customers?filter[active]=false")) == ["Off"]


def test_filtering_on_a_field_that_is_not_filterable_is_400(api):
    response = api.get("/customers?filter[notes]=x")
    assert response.status_code == 400
    assert response.json() == {"type": "invalid_request", "message": "Invalid filter parameter: notes"}


def test_metadata_filters_match_the_stored_string(api):
    api.create("/customers", {"name": "Linked", "metadata": {"poweroffice_go_id": 123}})
    api.create("/customers", {"name": "Unlinked"})
    assert names(api.get("/customers?metadata[poweroffice_go_id]=123")) == ["Linked"]
    assert names(api.get("/customers?metadata%5Bpoweroffice_go_id%5D=12")) == []


def test_a_metadata_filter_with_an_unsupported_key_is_silently_ignored(api):
    api.create("/customers", {"name": "A", "metadata": {"pogo.id": "1"}})
    api.create("/customers", {"name": "B"})
    assert names(api.get("/customers?metadata[pogo.id]=1")) == ["A", "B"]


def test_updated_after_is_strictly_greater(api):
    first = api.create("/customers", {"name": "First"})
    wait_for_next_second(first["updated_at"])
    second = api.create("/customers", {"name": "Second"})
    assert names(api.get("/customers", params={"updated_after": first["updated_at"]})) == ["Second"]
    assert names(api.get("/customers", params={"updated_after": first["updated_at"] - 1})) == ["First", "Second"]
    assert names(api.get("/customers", params={"updated_before": second["updated_at"]})) == ["First"]


def test_a_patch_moves_updated_at_to_now_at_second_resolution(api, customer):
    wait_for_next_second(customer["updated_at"])
    updated = api.patch(f"/customers/{customer['id']}", json={"city": "Oslo"}).json()
    assert updated["updated_at"] > customer["updated_at"] and updated["created_at"] == customer["created_at"]
    assert isinstance(updated["updated_at"], int)


def test_sort_by_updated_at_breaks_ties_by_id(api, sandboxes):
    sandboxes.invoiced.seed(persons=300)
    body = api.get("/customers", params={"sort": "updated_at asc", "per_page": 100}).json()
    keys = [(c["updated_at"], c["id"]) for c in body]
    assert keys == sorted(keys)


def test_several_sort_fields_apply_in_order_and_unknown_ones_are_dropped(api):
    for name, city in (("B", "Oslo"), ("A", "Oslo"), ("C", "Bergen")):
        api.create("/customers", {"name": name, "city": city})
    assert names(api.get("/customers", params={"sort": "city desc,name asc"})) == ["A", "B", "C"]
    assert names(api.get("/customers", params={"sort": "shoe_size desc"})) == ["B", "A", "C"]


def test_customers_reject_an_unknown_query_key(api):
    response = api.get("/customers", params={"search": "x"})
    assert response.status_code == 400 and response.json()["param"] == "query"
    assert response.json()["message"].startswith('The option "search" does not exist. Defined options are: ')


def test_invoices_ignore_an_unknown_query_key(api):
    assert api.get("/invoices", params={"search": "x"}).status_code == 200


def test_invoices_filter_by_customer_and_derived_status(api, customer):
    other = api.create("/customers", {"name": "Other"})
    draft = api.create("/invoices", {"customer": customer["id"], "draft": True})
    api.create("/invoices", {"customer": other["id"], "draft": True})
    assert [i["id"] for i in api.get(f"/invoices?filter[customer]={customer['id']}").json()] == [draft["id"]]
    assert api.get("/invoices?filter[status]=draft").headers["X-Total-Count"] == "2"
    assert api.get("/invoices?filter[status]=bogus").status_code == 400


def test_a_deep_page_out_of_order_is_refused_but_sequential_paging_works(api, sandboxes):
    sandboxes.invoiced.seed(persons=10_250)
    response = api.get("/customers", params={"page": 102})
    assert response.status_code == 400
    assert response.json()["message"] == "You must retrieve all preceding page numbers before retrieving this page."
    assert api.get("/customers", params={"page": 101}).status_code == 400
    url = f"{sandboxes.invoiced_url}/customers?page=100"  # offset 9,900: still allowed without a cursor
    for _ in range(4):
        response = api.session.get(url)
        assert response.status_code == 200
        url = links(response).get("next")
    assert url is None and len(response.json()) == 50


def test_any_page_of_100000_customers_is_full_and_counts_them_all(api, sandboxes):
    # Speed is the benchmark's business (bench/, docs/benchmark.md), not a test's.
    sandboxes.invoiced.seed(persons=100_000)
    for page in (1, 400, 1000):
        response = api.get("/customers", params={"sort": "updated_at desc", "filter[type]": "person", "page": page})
        assert len(response.json()) == 100 and response.headers["X-Total-Count"] == "100000"


@pytest.mark.parametrize("path", ["/customers", "/invoices"])
def test_paginate_none_drops_the_paging_headers(api, path):
    response = api.get(path, params={"paginate": "none"})
    assert response.status_code == 200 and "Link" not in response.headers and "X-Total-Count" not in response.headers


def test_the_advanced_filter_supports_comparison_operators(api):
    for name in ("Alfa AS", "Beta AS", "Alfa Bygg AS"):
        api.create("/customers", {"name": name})
    rule = '[{"field": "name", "operator": "starts_with", "value": "Alfa"}]'
    assert names(api.get("/customers", params={"advanced_filter": rule})) == ["Alfa AS", "Alfa Bygg AS"]


def test_invoices_filter_by_date_range_inclusively(api, customer):
    for day in (1, 2, 3):
        api.create("/invoices", {"customer": customer["id"], "draft": True, "date": 1_750_000_000 + day * 86_400})
    response = api.get("/invoices", params={"start_date": 1_750_000_000 + 2 * 86_400,
                                            "end_date": 1_750_000_000 + 3 * 86_400})
    assert response.headers["X-Total-Count"] == "2"
