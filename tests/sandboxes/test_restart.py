"""A restarted sandbox keeps its data when it has a state file (``python -m sandboxes --state-file PATH``)."""
from __future__ import annotations

import base64

import pytest
import requests

from sandboxes.process import SandboxProcess


def _pogo_headers(process: SandboxProcess) -> dict:
    s = process.settings
    basic = base64.b64encode(f"{s.pogo_application_key}:{s.pogo_client_key}".encode()).decode()
    token = requests.post(f"{process.pogo_url}/OAuth/Token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": f"Basic {basic}",
                                   "Ocp-Apim-Subscription-Key": s.pogo_subscription_key}, timeout=30)
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['access_token']}", "Ocp-Apim-Subscription-Key": s.pogo_subscription_key}


def _invoiced_create(process: SandboxProcess, name: str, key: str) -> dict:
    response = requests.post(f"{process.invoiced_url}/customers", json={"name": name},
                             auth=(process.settings.invoiced_api_key, ""), headers={"Idempotency-Key": key}, timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def persistent(tmp_path):
    process = SandboxProcess(log_path=tmp_path / "sandbox.log", state_file=tmp_path / "state.pickle").start()
    yield process
    process.stop()


def test_a_restart_with_a_state_file_keeps_records_ids_tokens_settings_and_idempotent_replies(persistent, tmp_path):
    persistent.pogo.seed(companies=2, persons=1, sales_orders=2)
    persistent.invoiced.seed(companies=1, invoices=1)
    headers = _pogo_headers(persistent)
    created = requests.post(f"{persistent.pogo_url}/v2/Customers", json={"Name": "Før Omstart AS", "InvoiceDeliveryType": "Print"}, headers=headers,
                            timeout=30)
    created.raise_for_status()
    first = _invoiced_create(persistent, "Before Restart AS", "restart-key-1")
    persistent.pogo.configure(token_ttl_seconds=600)
    before = {entity: persistent.pogo.records(entity) for entity in ("customers", "sales_orders")}
    before_inv = {entity: persistent.invoiced.records(entity) for entity in ("customers", "invoices")}

    persistent.restart()

    assert (tmp_path / "state.pickle").exists()
    assert {entity: persistent.pogo.records(entity) for entity in ("customers", "sales_orders")} == before
    assert {entity: persistent.invoiced.records(entity) for entity in ("customers", "invoices")} == before_inv
    # A token issued before the restart still works, and new ids continue after the old ones.
    again = requests.post(f"{persistent.pogo_url}/v2/Customers", json={"Name": "Etter Omstart AS", "InvoiceDeliveryType": "Print"}, headers=headers,
                          timeout=30)
    assert again.status_code == 201, again.text
    assert again.json()["Id"] > created.json()["Id"]
    # An Idempotency-Key used before the restart still replays the first answer instead of creating twice.
    assert _invoiced_create(persistent, "Before Restart AS", "restart-key-1")["id"] == first["id"]
    assert _invoiced_create(persistent, "After Restart AS", "restart-key-2")["id"] > first["id"]
    assert len(persistent.invoiced.records("customers")) == len(before_inv["customers"]) + 1
    assert persistent.pogo.configure() == {"token_ttl_seconds": 600, "rate_limit_per_second": 10,
                                           "invalid_privileges": []}


def test_a_restart_without_a_state_file_starts_empty(tmp_path):
    process = SandboxProcess(log_path=tmp_path / "sandbox.log").start()
    try:
        process.pogo.seed(companies=2)
        process.restart()
        assert process.pogo.records("customers") == []
    finally:
        process.stop()


def test_a_stop_with_a_request_still_in_flight_saves_the_state_in_time(persistent):
    import threading
    import time

    persistent.invoiced.seed(companies=2)
    persistent.invoiced.faults(latency_ms=30_000)
    outcome = []

    def slow_call():
        try:
            outcome.append(requests.get(f"{persistent.invoiced_url}/customers", timeout=40,
                                        auth=(persistent.settings.invoiced_api_key, "")).status_code)
        except requests.RequestException as exc:
            outcome.append(type(exc).__name__)

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    persistent.restart()
    caller.join(10)
    assert time.monotonic() - started < 9, "the stop waited for the request instead of cutting it off"
    assert outcome and outcome[0] != 200
    assert len(persistent.invoiced.records("customers")) == 2
