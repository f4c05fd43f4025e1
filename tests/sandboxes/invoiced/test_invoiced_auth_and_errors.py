"""Authentication, the error body, status codes and the headers every response carries."""
from __future__ import annotations

import requests


def test_a_request_without_credentials_gets_401_with_the_hint(sandboxes):
    response = requests.get(f"{sandboxes.invoiced_url}/customers", timeout=10)
    assert response.status_code == 401
    assert response.json() == {"type": "invalid_request", "message": "Missing API key! HINT: You can pass in your API "
                               "key as the username parameter using HTTP Basic Auth."}


def test_a_wrong_key_gets_401_with_the_key_masked(sandboxes):
    response = requests.get(f"{sandboxes.invoiced_url}/customers", auth=("abcdefghijklmnop", ""), timeout=10)
    assert response.status_code == 401
    assert response.json()["message"] == "We could not authenticate you with the API Key: abc**********nop"


def test_the_account_username_with_the_key_as_password_is_accepted(sandboxes):
    key = sandboxes.settings.invoiced_api_key
    response = requests.get(f"{sandboxes.invoiced_url}/customers", auth=("sandbox", key), timeout=10)
    assert response.status_code == 200


def test_an_unknown_account_username_gets_401(sandboxes):
    key = sandboxes.settings.invoiced_api_key
    response = requests.get(f"{sandboxes.invoiced_url}/customers", auth=("acme", key), timeout=10)
    assert response.status_code == 401
    assert response.json()["message"] == "We did not find an account matching the username: acme"


def test_every_response_carries_the_auth_challenge_and_no_cache_headers(api, sandboxes):
    for response in (api.get("/customers"), api.get("/customers/1"),
                     requests.get(f"{sandboxes.invoiced_url}/customers", timeout=10)):
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Invoiced"'
        assert response.headers["Cache-Control"] == "no-cache, no-store"


def test_an_unknown_route_is_404_request_not_recognized(api):
    response = api.get("/widgets")
    assert response.status_code == 404
    assert response.json() == {"type": "invalid_request", "message": "Request was not recognized: GET /widgets"}


def test_a_missing_record_is_404_with_the_model_name(api):
    assert api.get("/customers/123").json()["message"] == "Customer was not found: 123"
    assert api.get("/invoices/9").json()["message"] == "Invoice was not found: 9"


def test_updates_are_patch_only_and_other_methods_get_405(api, customer):
    for method in ("PUT", "POST"):
        response = api(method, f"/customers/{customer['id']}", json={"name": "X"})
        assert response.status_code == 405
        assert response.json()["message"] == f"Method not allowed: {method} /customers/{customer['id']}"


def test_a_server_error_is_api_error_and_a_client_error_invalid_request(api, sandboxes):
    assert api.post("/customers", json={}).json()["type"] == "invalid_request"
    sandboxes.invoiced.faults(error_rate=1.0, error_status=500)
    response = api.get("/customers")
    assert response.status_code == 500 and response.json()["type"] == "api_error"


def test_delete_answers_204_with_an_empty_body(api, customer):
    response = api.delete(f"/customers/{customer['id']}")
    assert response.status_code == 204 and response.content == b""


def test_a_curl_user_agent_gets_pretty_printed_json(api, customer):
    response = api.get(f"/customers/{customer['id']}", headers={"User-Agent": "curl/8.5.0"})
    assert response.text.startswith("{\n    \"") and response.json()["id"] == customer["id"]
