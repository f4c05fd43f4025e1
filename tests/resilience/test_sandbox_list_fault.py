"""The sandboxes' ``keep_fraction`` fault: a list endpoint that answers with only part of its records (or none)."""
from __future__ import annotations

import requests


def _invoiced_customers(sandboxes) -> list[dict]:
    response = requests.get(f"{sandboxes.invoiced_url}/customers", auth=(sandboxes.settings.invoiced_api_key, ""),
                            timeout=10)
    response.raise_for_status()
    return response.json()


def test_keep_fraction_cuts_list_answers_in_scope_and_leaves_the_data_alone(sandboxes):
    sandboxes.invoiced.seed(companies=6)
    sandboxes.invoiced.faults(keep_fraction=0.5, path_pattern="^/customers$", methods=["GET"])
    assert len(_invoiced_customers(sandboxes)) == 3
    sandboxes.invoiced.faults(keep_fraction=0, path_pattern="^/customers$")
    assert _invoiced_customers(sandboxes) == []
    assert len(sandboxes.invoiced.records("customers")) == 6  # only the answer changes
    sandboxes.invoiced.faults()
    assert len(_invoiced_customers(sandboxes)) == 6


def test_keep_fraction_outside_zero_to_one_is_refused(sandboxes):
    response = requests.put(f"{sandboxes.pogo_url}/_sandbox/faults", json={"keep_fraction": 1.5}, timeout=10)
    assert response.status_code == 400 and "keep_fraction" in response.json()["error"]
