"""The sandboxes' answer-rewriting faults (``strip_fields``, ``set_fields``) that the bad-input tests rely on."""
from __future__ import annotations

import requests


def _invoiced(sandboxes, method: str, path: str, **kwargs):
    return requests.request(method, f"{sandboxes.invoiced_url}{path}", auth=(sandboxes.settings.invoiced_api_key, ""),
                            timeout=10, **kwargs)


def test_strip_fields_leaves_fields_out_of_every_object_of_a_list_answer_in_scope(sandboxes):
    sandboxes.invoiced.seed(companies=2)
    sandboxes.invoiced.faults(strip_fields=["id", "name"], path_pattern="^/customers$", methods=["GET"])
    listed = _invoiced(sandboxes, "GET", "/customers")
    assert listed.status_code == 200 and listed.headers["Link"]  # the list's headers survive the rewrite
    assert [sorted({"id", "name"} & set(c)) for c in listed.json()] == [[], []]
    one = _invoiced(sandboxes, "GET", f"/customers/{sandboxes.invoiced.records('customers')[0]['id']}").json()
    assert {"id", "name"} <= set(one)  # out of scope: untouched
    assert all(c["name"] for c in sandboxes.invoiced.records("customers"))  # only the answer changes


def test_set_fields_writes_dotted_paths_into_answers_and_a_reset_clears_it(sandboxes):
    sandboxes.invoiced.seed(persons=1)
    sandboxes.invoiced.faults(set_fields={"country": "ZZ", "metadata.extra": "x"}, path_pattern="^/customers")
    customer = _invoiced(sandboxes, "GET", "/customers").json()[0]
    assert customer["country"] == "ZZ" and customer["metadata"]["extra"] == "x"
    sandboxes.invoiced.faults()
    assert _invoiced(sandboxes, "GET", "/customers").json()[0]["country"] != "ZZ"


def test_unknown_rewrite_settings_are_refused(sandboxes):
    response = requests.put(f"{sandboxes.pogo_url}/_sandbox/faults", json={"strip_field": ["Id"]}, timeout=10)
    assert response.status_code == 400 and "strip_field" in response.json()["error"]
