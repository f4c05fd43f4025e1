"""Fixtures for the Invoiced sandbox tests: raw HTTP and the official ``invoiced`` client, both aimed at the sandbox."""
from __future__ import annotations

import invoiced
import pytest
import requests


class Api:
    """A ``requests`` session with the sandbox's API key as the Basic-auth username, and the base URL."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.auth = (api_key, "")

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.base_url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return self("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self("DELETE", path, **kwargs)

    def create(self, path: str, body: dict) -> dict:
        """POST and insist on 201."""
        response = self.post(path, json=body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def api(sandboxes) -> Api:
    """Raw HTTP against the (reset) Invoiced sandbox."""
    return Api(sandboxes.invoiced_url, sandboxes.settings.invoiced_api_key)


@pytest.fixture
def client(sandboxes) -> invoiced.Client:
    """The official Python client, with its ``api_url`` pointed at the sandbox."""
    official = invoiced.Client(sandboxes.settings.invoiced_api_key)
    official.api_url = sandboxes.invoiced_url
    return official


@pytest.fixture
def customer(api) -> dict:
    """One plain customer."""
    return api.create("/customers", {"name": "Fjord Bygg AS"})
