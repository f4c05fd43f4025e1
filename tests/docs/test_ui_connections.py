"""The connections of ``make up`` in the Airflow UI, as a person uses them: listed, Test button green, edits kept,
and the "Add Connection" form labelled for each system.

Runs headless Debian Chromium through Playwright (never ``playwright install``); skipped where it is absent.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import requests

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_CONNECTIONS = ("poweroffice_go_default", "invoiced_default")
# What a person sees in "Add Connection" after choosing the type: the labels of the standard fields and of the
# form's own fields (under "Extra Fields"), and the URL hints in the host placeholder.
FORMS = {
    "PowerOffice Go": {
        "standard": ("API base URL (incl. /v2)", "Application key", "Client key"),
        "extra": ("Subscription key", "Requests per second"),
        "urls": ("https://goapi.poweroffice.net/v2", "http://127.0.0.1:8701/v2"),
    },
    "Invoiced": {
        "standard": ("API base URL", "API key"),
        "extra": ("Max in flight",),
        "urls": ("https://api.invoiced.com", "http://127.0.0.1:8702"),
    },
}


def _sandbox_key(stack) -> str:
    from sandboxes.settings import SandboxSettings

    return SandboxSettings.from_env(stack.env).invoiced_api_key


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium): the UI checks need a real browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, local_stack):
    """A page logged in to the stack's Airflow as admin / admin, on Admin -> Connections."""
    local_stack.up()
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{local_stack.airflow_url}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth" not in url)
    page.goto(f"{local_stack.airflow_url}/connections")
    yield page
    context.close()


def _api(stack) -> requests.Session:
    token = requests.post(
        f"{stack.airflow_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10
    )
    token.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


def _press_test(page, conn_id: str) -> tuple[int, dict]:
    """Press the row's Test button; (HTTP status, body) of the API's answer to the test the UI sent."""
    row = page.locator("tr", has_text=conn_id)
    row.wait_for()
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    return answer.value.status, answer.value.json()


@pytest.mark.timeout(900)
def test_make_up_lists_the_three_connections_in_admin_connections(page) -> None:
    for conn_id in (*API_CONNECTIONS, "sync_state_default"):
        page.locator("tr", has_text=conn_id).wait_for()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("conn_id", API_CONNECTIONS)
def test_the_test_button_reports_success_for_a_sandbox_connection(page, conn_id: str) -> None:
    http_status, answer = _press_test(page, conn_id)
    assert (http_status, answer["status"]) == (200, True), answer
    page.get_by_text("Test Connection Successful").wait_for()


@pytest.mark.timeout(900)
def test_the_test_button_reports_the_failure_of_a_wrong_key(page, local_stack) -> None:
    api = _api(local_stack)
    url = f"{local_stack.airflow_url}/api/v2/connections/invoiced_default"

    def set_key(key: str) -> None:
        api.patch(
            url,
            params={"update_mask": "password"},
            timeout=10,
            json={"connection_id": "invoiced_default", "conn_type": "invoiced", "password": key},
        ).raise_for_status()

    set_key("wrong-key")
    try:
        page.reload()
        http_status, answer = _press_test(page, "invoiced_default")
        assert (http_status, answer["status"]) == (200, False), answer
        assert "401" in answer["message"] or "auth" in answer["message"].lower(), answer
        page.get_by_text("Test Connection Failed").wait_for()
    finally:
        set_key(_sandbox_key(local_stack))  # the API shows the stored key only as ***


def _edit_description_in_the_form(page, conn_id: str, text: str) -> None:
    """Open the row's edit form, type a description, save: the form's hidden fields go back as they were."""
    page.locator("tr", has_text=conn_id).get_by_role("button", name="Edit Connection").click()
    description = page.get_by_role("dialog").locator("textarea").first
    description.fill(text)
    with page.expect_response(lambda r: f"/api/v2/connections/{conn_id}" in r.url and r.request.method == "PATCH"):
        page.get_by_role("dialog").get_by_role("button", name="Save").click()


@pytest.mark.timeout(900)
def test_edits_survive_the_next_make_up_and_an_airflow_conn_variable_replaces_the_stored_connection(
    page, local_stack
) -> None:
    api = _api(local_stack)
    base = f"{local_stack.airflow_url}/api/v2/connections"
    _edit_description_in_the_form(page, "poweroffice_go_default", "edited in the UI")
    extra = json.loads(api.get(f"{base}/poweroffice_go_default", timeout=10).json()["extra"])
    edited = {**extra, "timeout": 42}
    api.patch(
        f"{base}/poweroffice_go_default",
        params={"update_mask": "extra"},
        timeout=10,
        json={"connection_id": "poweroffice_go_default", "conn_type": "poweroffice_go", "extra": json.dumps(edited)},
    ).raise_for_status()
    invoiced = api.get(f"{base}/invoiced_default", timeout=10).json()
    given = {
        "conn_type": "invoiced",
        "host": invoiced["host"],
        "password": _sandbox_key(local_stack),
        "extra": {"max_in_flight": 5},
    }

    again = local_stack.shell(f"AIRFLOW_CONN_INVOICED_DEFAULT={shlex.quote(json.dumps(given))} make up")
    local_stack.results["up"] = again

    assert again.returncode == 0, again.stdout[-3000:]
    assert "poweroffice_go_default kept" in again.stdout
    assert "invoiced_default set from $AIRFLOW_CONN_INVOICED_DEFAULT" in again.stdout
    api = _api(local_stack)
    stored = api.get(f"{base}/poweroffice_go_default", timeout=10).json()
    assert (json.loads(stored["extra"]), stored["description"]) == (edited, "edited in the UI")
    assert json.loads(api.get(f"{base}/invoiced_default", timeout=10).json()["extra"]) == {"max_in_flight": 5}
    page.reload()
    for conn_id in API_CONNECTIONS:
        http_status, answer = _press_test(page, conn_id)
        assert (http_status, answer["status"]) == (200, True), (conn_id, answer)


def _open_add_form(page, hook_name: str):
    """Open "Add Connection" and choose ``hook_name`` as the type; the dialog (its "Standard Fields" unfolded)."""
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").fill(hook_name)
    page.keyboard.press("Enter")
    dialog.locator("input[name=host]").wait_for()
    return dialog


def _unfold_extra_fields(dialog) -> None:
    """Unfold "Extra Fields" (the form's own fields; it folds "Standard Fields": one section is open at a time)."""
    dialog.get_by_text("Extra Fields", exact=True).click()
    dialog.locator("[name^=element_]").first.wait_for()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("hook_name", FORMS)
def test_add_connection_labels_the_standard_fields_for_the_chosen_system(page, hook_name: str) -> None:
    dialog = _open_add_form(page, hook_name)
    for label in FORMS[hook_name]["standard"]:
        dialog.locator("label", has_text=label).first.wait_for()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("hook_name", FORMS)
def test_add_connection_shows_the_systems_own_fields_labelled_under_extra_fields(page, hook_name: str) -> None:
    dialog = _open_add_form(page, hook_name)
    _unfold_extra_fields(dialog)
    for label in FORMS[hook_name]["extra"]:
        dialog.locator("label", has_text=label).first.wait_for()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("hook_name", FORMS)
def test_add_connection_hints_the_real_and_the_sandbox_url_in_the_host_field(page, hook_name: str) -> None:
    dialog = _open_add_form(page, hook_name)
    placeholder = dialog.locator("input[name=host]").get_attribute("placeholder") or ""
    assert all(url in placeholder for url in FORMS[hook_name]["urls"]), placeholder


@pytest.mark.timeout(900)
@pytest.mark.parametrize("hook_name", FORMS)
def test_add_connection_hides_the_port_and_schema_the_url_carries(page, hook_name: str) -> None:
    dialog = _open_add_form(page, hook_name)
    dialog.locator("input[name=host]").wait_for()
    assert dialog.locator("input[name=port], input[name=schema]").count() == 0


@pytest.mark.timeout(900)
def test_the_invoiced_form_takes_the_api_key_in_a_masked_field_and_hides_login(page) -> None:
    dialog = _open_add_form(page, "Invoiced")
    assert dialog.locator("input[name=password]").get_attribute("type") == "password"
    assert dialog.locator("input[name=login]").count() == 0


@pytest.mark.timeout(900)
def test_the_poweroffice_go_subscription_key_is_a_masked_field(page) -> None:
    dialog = _open_add_form(page, "PowerOffice Go")
    _unfold_extra_fields(dialog)
    assert dialog.locator("input[name=element_subscription_key]").get_attribute("type") == "password"


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("conn_id", "field"),
    [
        ("poweroffice_go_default", "requests_per_second"),
        ("poweroffice_go_default", "subscription_key"),
        ("invoiced_default", "max_in_flight"),
    ],
)
def test_the_edit_form_shows_the_stored_connection_filled_in(page, local_stack, conn_id: str, field: str) -> None:
    answer = _api(local_stack).get(f"{local_stack.airflow_url}/api/v2/connections/{conn_id}", timeout=10)
    stored = json.loads(answer.json()["extra"])[field]  # the subscription key as *** (a secret name in make up)
    page.locator("tr", has_text=conn_id).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    _unfold_extra_fields(dialog)
    assert dialog.locator(f"input[name=element_{field}]").input_value() == str(stored)
