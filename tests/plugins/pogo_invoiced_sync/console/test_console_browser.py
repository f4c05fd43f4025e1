"""The console in a real browser: Debian's Chromium (Playwright) logs in to a real ``airflow api-server``.

The api-server is started by the fixture on a free 127.0.0.1 port with SimpleAuthManager users ``admin`` (Admin)
and ``viewer`` (Viewer); it loads the console through the package's ``airflow.plugins`` entry point and reads the
stack's link store through the ``sync_state_default`` connection. The DAG runs happen in the test (``dag.test()``).
Set ``CONSOLE_SCREENSHOTS=<dir>`` to keep a picture of each page (docs/img holds the ones in the docs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
FLOW = "customers_company"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORDS = {"admin": "admin", "viewer": "viewer"}

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def api_server(stack, tmp_path):
    """``airflow api-server`` on a free loopback port, its own Airflow home and metadata DB, the stack's link store."""
    from sandboxes.process import free_port
    from tools.postgres import airflow_connection_json

    home = tmp_path / "airflow"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(PASSWORDS))
    port = free_port()
    root = Path(__file__).resolve().parents[4]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": "console-browser-test-secret-" + "x" * 40,
            "AIRFLOW__API__SECRET_KEY": "console-browser-test-key",
            "AIRFLOW_CONN_SYNC_STATE_DEFAULT": airflow_connection_json(stack.dsn),
        }
    )
    for command in (["db", "migrate"], ["dags", "reserialize"]):  # the DAGs in the metadata DB: Retry triggers runs
        subprocess.run(
            [sys.executable, "-m", "airflow", *command],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    log = open(tmp_path / "api-server.log", "wb")  # noqa: SIM115 - the server writes to it until the fixture ends
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"api-server did not start: {(tmp_path / 'api-server.log').read_text()[-3000:]}")
        time.sleep(1)
    yield url
    os.killpg(proc.pid, 15)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    log.close()


def _login(browser, url: str, user: str):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{url}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/auth" not in u, timeout=60_000)
    return page


def _shot(page, name: str) -> None:
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=False)


def _conflict(stack) -> tuple[str, str]:
    stack.sandboxes.pogo.seed(companies=4, persons=2)
    stack.sandboxes.invoiced.seed(companies=2)
    stack.run(FLOW)
    stack.run("customers_person")
    pogo_id, inv_id = stack.sql(
        "SELECT poweroffice_go_id, invoiced_id FROM {s}.links WHERE flow = %s ORDER BY poweroffice_go_id LIMIT 1", FLOW
    )[0]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": "Fjellvind Old AS"})
    time.sleep(1.1)  # Invoiced stamps changes to the second: make its edit clearly the later one
    stack.invoiced.update(f"/customers/{inv_id}", {"name": "Fjellvind New AS"})
    stack.run(FLOW)
    return pogo_id, inv_id


def test_an_admin_finds_a_conflict_resolves_it_in_the_browser_and_the_next_run_carries_it_out(
    stack, api_server, chromium
):
    pogo_id, inv_id = _conflict(stack)
    page = _login(chromium, api_server, "admin")
    # The console as the UI shows it: a page under Browse, the app in a frame.
    page.goto(f"{api_server}/plugin/sync-console")
    frame = page.frame_locator("iframe")
    frame.locator(f"section[data-flow={FLOW}]").wait_for(timeout=60_000)
    assert frame.locator(f"section[data-flow={FLOW}] td[data-count=conflicts]").inner_text() == "1"
    _shot(page, "console-in-airflow.png")
    # The console's own pages, full size.
    page.goto(f"{api_server}/pogo-invoiced-sync/")
    _shot(page, "console-health.png")
    page.fill("#search", inv_id)
    with page.expect_navigation():
        page.click("nav button[type=submit]")
    if page.locator("tr[data-system]").count():  # the id is also an id of other records (flows, systems): choose
        with page.expect_navigation():
            page.click(f"tr[data-flow={FLOW}][data-system=invoiced] a")
    try:
        page.wait_for_selector("tr[data-conflict]")
    except Exception:
        page.screenshot(path="/tmp/console-browser-failure.png")
        raise
    assert page.locator("td[data-id=poweroffice_go]").inner_text() == pogo_id
    _shot(page, "console-record.png")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[data-action=resolve]:has-text('Keep PowerOffice Go')")
    page.wait_for_selector("tr[data-decision] td.status:has-text('pending')")
    stack.run(FLOW)
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Fjellvind Old AS"
    page.reload()
    history = page.locator("tr[data-log-id]").all_inner_texts()
    assert any("update" in row and "Fjellvind Old AS" in row for row in history)
    assert "admin" in next(row for row in history if "operator_resolve" in row)


def test_a_viewer_sees_the_health_page_but_no_actions_and_is_refused_when_acting(stack, api_server, chromium):
    pogo_id, inv_id = _conflict(stack)
    page = _login(chromium, api_server, "viewer")
    page.goto(f"{api_server}/pogo-invoiced-sync/record?flow={FLOW}&system=invoiced&id={inv_id}")
    page.wait_for_selector("tr[data-conflict]")
    assert page.locator("button[data-action]").count() == 0
    status = page.evaluate(
        """async (body) => (await fetch('/pogo-invoiced-sync/api/actions/unlink', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})).status""",
        {"flow": FLOW, "poweroffice_go_id": pogo_id},
    )
    assert status == 403
    assert stack.sql("SELECT count(*) FROM {s}.links WHERE flow = %s AND poweroffice_go_id = %s", FLOW, pogo_id) == [
        (1,)
    ]


def test_retry_now_in_the_browser_marks_the_record_and_queues_a_run_of_the_flows_dag(stack, api_server, chromium):
    stack.sandboxes.pogo.seed(companies=1)
    stack.run(FLOW)
    (pogo_id,) = stack.sql("SELECT poweroffice_go_id FROM {s}.links WHERE flow = %s", FLOW)[0]
    page = _login(chromium, api_server, "admin")
    page.goto(f"{api_server}/pogo-invoiced-sync/record?flow={FLOW}&system=poweroffice_go&id={pogo_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("td:has(button[data-action=retry]) >> nth=0 >> button[data-action=retry]")
    page.wait_for_selector("#message.shown")
    assert "run manual__" in page.inner_text("#message"), page.inner_text("#message")
    assert stack.sql("SELECT dirty FROM {s}.records WHERE flow = %s AND record_id = %s", FLOW, pogo_id) == [(True,)]
    token = requests.post(f"{api_server}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10)
    runs = requests.get(
        f"{api_server}/api/v2/dags/sync_{FLOW}/dagRuns",
        timeout=10,
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    ).json()["dag_runs"]
    assert [(r["run_type"], r["triggering_user_name"]) for r in runs] == [("manual", "admin")]
