"""A small PowerOffice Go client over ``requests`` for the sandbox tests."""
from __future__ import annotations

import base64
import json

import pytest
import requests

PATCH_TYPE = {"Content-Type": "application/json-patch+json"}


class Pogo:
    """Calls the sandbox the way an integration does: Basic token call, then Bearer plus the subscription key."""

    def __init__(self, process, prefix: str = "") -> None:
        self.settings = process.settings
        self.base = process.pogo_url + prefix
        self.admin = process.pogo
        self.http = requests.Session()
        self.token: str | None = None

    def basic(self, application_key: str | None = None, client_key: str | None = None) -> str:
        """The token call's Authorization header."""
        pair = f"{application_key or self.settings.pogo_application_key}:{client_key or self.settings.pogo_client_key}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def request_token(self, path: str = "/OAuth/Token", **headers) -> requests.Response:
        """POST the client-credentials form; keyword headers override the correct defaults (None drops one)."""
        sent = {"Authorization": self.basic(), "Ocp-Apim-Subscription-Key": self.settings.pogo_subscription_key,
                **headers}
        return self.http.post(self.base + path, data={"grant_type": "client_credentials"},
                              headers={k: v for k, v in sent.items() if v is not None}, timeout=30)

    def login(self) -> "Pogo":
        """Fetch a token for later calls."""
        response = self.request_token()
        response.raise_for_status()
        self.token = response.json()["access_token"]
        return self

    def call(self, method: str, path: str, headers: dict | None = None, **kwargs) -> requests.Response:
        """Call ``/v2{path}`` with the token and the subscription key."""
        sent = {"Ocp-Apim-Subscription-Key": self.settings.pogo_subscription_key}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        return self.http.request(method, f"{self.base}/v2{path}", headers={k: v for k, v in sent.items() if v},
                                 timeout=60, **kwargs)

    def get(self, path: str, **params) -> requests.Response:
        return self.call("GET", path, params=params)

    def post(self, path: str, body) -> requests.Response:
        return self.call("POST", path, json=body)

    def patch(self, path: str, operations) -> requests.Response:
        """PATCH with a JSON Patch document."""
        return self.call("PATCH", path, headers=PATCH_TYPE, data=json.dumps(operations))

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)

    def create_customer(self, **fields) -> dict:
        """POST a company customer (Print delivery unless an e-mail is given) and return the DTO."""
        body = {"Name": "Fjord Regnskap AS", "InvoiceDeliveryType": "Print", **fields}
        response = self.post("/Customers", body)
        assert response.status_code == 201, response.text
        return response.json()

    def create_order(self, customer_id: int, lines: list | None = None, **fields) -> dict:
        """POST /SalesOrders/Complete and return the SalesOrderCompleteDto."""
        body = {"CustomerId": customer_id, "SalesOrderLines": lines if lines is not None else
                [{"Description": "Konsulenttime", "Quantity": 2, "ProductUnitPrice": 1250.0}], **fields}
        response = self.post("/SalesOrders/Complete", body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def pogo(sandboxes) -> Pogo:
    """A logged-in client, with the 10 rps limit switched off so that setup calls never trip it."""
    sandboxes.pogo.configure(rate_limit_per_second=0)
    return Pogo(sandboxes).login()


@pytest.fixture
def anonymous(sandboxes) -> Pogo:
    """A client without a token, against the default settings (10 rps, 1200 s tokens)."""
    return Pogo(sandboxes)
