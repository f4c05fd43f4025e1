"""Token endpoint, gateway checks and the 10 requests/second limit of the PowerOffice Go sandbox."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor


def test_valid_keys_get_a_bearer_token_that_lasts_1200_seconds(anonymous):
    response = anonymous.request_token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1200
    assert body["access_token"].count(".") == 2


def test_token_endpoint_matches_paths_case_insensitively_and_under_demo(anonymous):
    assert anonymous.request_token("/demo/oauth/token").status_code == 200
    assert anonymous.request_token("/Demo/OAuth/Token").status_code == 200
    assert anonymous.request_token("/oauth/TOKEN").status_code == 200


def test_token_call_without_subscription_key_is_refused_by_the_gateway(anonymous):
    response = anonymous.request_token(**{"Ocp-Apim-Subscription-Key": None})
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert response.json()["message"].startswith("Access denied due to missing subscription key")


def test_wrong_client_key_gets_invalid_client(anonymous):
    response = anonymous.request_token(Authorization=anonymous.basic(client_key="not-the-client-key"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert "Client integration not found" in response.json()["error_description"]


def test_other_grant_types_are_refused(anonymous):
    response = anonymous.http.post(f"{anonymous.base}/OAuth/Token", data={"grant_type": "password"},
                                   headers={"Authorization": anonymous.basic(),
                                            "Ocp-Apim-Subscription-Key": anonymous.settings.pogo_subscription_key})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_api_call_without_subscription_key_gets_the_apim_401(anonymous):
    anonymous.login()
    response = anonymous.call("GET", "/Customers", headers={"Ocp-Apim-Subscription-Key": None})
    assert response.status_code == 401
    assert response.json()["message"].startswith("Access denied due to missing subscription key")


def test_api_call_with_a_wrong_subscription_key_gets_401(anonymous):
    anonymous.login()
    response = anonymous.call("GET", "/Customers", headers={"Ocp-Apim-Subscription-Key": "f" * 32})
    assert response.status_code == 401
    assert "invalid subscription key" in response.json()["message"]


def test_api_call_without_a_bearer_token_gets_401(anonymous):
    assert anonymous.get("/Customers").status_code == 401


def test_api_call_with_a_made_up_token_gets_401(anonymous):
    anonymous.token = "eyJhbGciOiJIUzI1NiJ9.e30.forged"
    assert anonymous.get("/Customers").status_code == 401


def test_token_stops_working_once_its_lifetime_is_over(sandboxes, anonymous):
    sandboxes.pogo.configure(token_ttl_seconds=1)
    token = anonymous.request_token().json()
    assert token["expires_in"] == 1
    anonymous.token = token["access_token"]
    assert anonymous.get("/Customers").status_code == 204
    time.sleep(1.2)
    assert anonymous.get("/Customers").status_code == 401


def test_demo_token_is_not_accepted_by_the_production_api(anonymous):
    anonymous.token = anonymous.request_token("/Demo/OAuth/Token").json()["access_token"]
    assert anonymous.call("GET", "/Customers").status_code == 401
    demo_url = anonymous.base + "/Demo/v2/Customers"
    headers = {"Authorization": f"Bearer {anonymous.token}",
               "Ocp-Apim-Subscription-Key": anonymous.settings.pogo_subscription_key}
    response = anonymous.http.get(demo_url, headers=headers)
    assert response.status_code == 204


def test_more_than_ten_requests_a_second_get_429_with_retry_after(anonymous):
    anonymous.login()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: anonymous.get("/Customers"), range(25)))
    throttled = [r for r in responses if r.status_code == 429]
    if time.monotonic() - started < 0.9:  # the whole burst fell inside one window
        assert sum(r.status_code == 204 for r in responses) <= 10
    assert throttled
    assert throttled[0].headers["Retry-After"] == "1"
    assert throttled[0].json() == {"statusCode": "429", "message": "Rate limit is exceeded. Try again in 1 seconds."}


def test_the_limit_window_frees_up_after_a_second(anonymous):
    anonymous.login()
    for _ in range(12):
        anonymous.get("/Customers")
    time.sleep(1.05)
    assert anonymous.get("/Customers").status_code == 204


def test_rate_limit_can_be_configured_off(sandboxes, anonymous):
    anonymous.login()
    sandboxes.pogo.configure(rate_limit_per_second=0)
    statuses = {anonymous.get("/Customers").status_code for _ in range(30)}
    assert statuses == {204}


def test_a_call_that_needs_an_invalid_privilege_is_answered_403_and_client_information_names_it(pogo, sandboxes):
    sandboxes.pogo.configure(invalid_privileges=["Customer_Full"])
    refused = pogo.post("/Customers", {"Name": "Uten Rettighet AS"})
    assert refused.status_code == 403
    assert refused.json()["status"] == 403
    assert pogo.get("/Customers").status_code in (200, 204)  # reading needs only Customer, still valid
    info = pogo.get("/ClientIntegrationInformation").json()
    assert info["InvalidPrivileges"] == ["Customer_Full"]
    assert "Customer_Full" not in info["ValidPrivileges"]
