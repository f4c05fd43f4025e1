"""See the Airflow UI of ``make up`` as a person does: headless Chromium logs in and saves the pictures in docs/img.

    python tools/screenshot.py [--only dags connections console] [--out-dir docs/img] [--no-runs]
    (``make screenshot`` runs ``make up`` first)

Pictures: ``airflow-dags.png`` (the DAG list), ``connection-form-poweroffice-go.png`` and
``connection-form-invoiced.png`` ("Add Connection" with the type chosen and "Extra Fields" open),
``console-in-airflow.png``, ``console-health.png`` and ``console-record.png`` (the operator console: in the UI, its
health page, a record with an open conflict).

Playwright drives Debian's Chromium (``apt-get install chromium``; ``executable_path``, never ``playwright install``)
against Airflow on $AIRFLOW_PORT (8080). Before the pictures every sync DAG gets a successful run (a DAG without one
is triggered through the REST API; then the script waits until nothing is queued or running). When no conflict is
open, the console picture gets one: the same customer renamed in both local sandboxes, then its flow run once.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
DAG_IDS = ("sync_customers_company", "sync_customers_person", "sync_salesorders_invoices")
CONFLICT_FLOW = "customers_company"
USER, PASSWORD = "admin", "admin"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
VIEWPORT: Any = {"width": 1440, "height": 900}
# "Add Connection" for each type: (type name in the form's list, picture).
FORMS = (("PowerOffice Go", "connection-form-poweroffice-go.png"), ("Invoiced", "connection-form-invoiced.png"))
CONSOLE = "/pogo-invoiced-sync"
PICTURES = ("dags", "connections", "console")


def base_url() -> str:
    return f"http://127.0.0.1:{int(os.environ.get('AIRFLOW_PORT', '8080'))}"


# -- REST: make sure there is something green to see ---------------------------------------------------------------


class Airflow:
    """The REST API of the running Airflow, as admin."""

    def __init__(self, url: str) -> None:
        self.url = url
        token = requests.post(f"{url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
        token.raise_for_status()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def runs(self, dag_id: str) -> list[dict]:
        response = self.http.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": "20"}, timeout=30
        )
        response.raise_for_status()
        return response.json()["dag_runs"]

    def trigger(self, dag_id: str) -> str:
        """Queue a run of ``dag_id`` now; its run id."""
        response = self.http.post(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": {"full_refresh": False, "dry_run": False}},
            timeout=30,
        )
        response.raise_for_status()
        print(f"triggered {dag_id}", flush=True)
        return response.json()["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        """The final state of one run."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get(f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=30)
            response.raise_for_status()
            if (state := response.json()["state"]) not in ("queued", "running"):
                return state
            if time.monotonic() > deadline:
                raise SystemExit(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
            time.sleep(2)

    def _queued_asset_events(self, dag_id: str) -> int:
        response = self.http.get(f"{self.url}/api/v2/dags/{dag_id}/assets/queuedEvents", timeout=30)
        return len(response.json().get("queued_events", [])) if response.status_code == 200 else 0

    def wait_until_quiet(self, timeout: float = 300) -> dict[str, list[dict]]:
        """Until no run is queued or running for 10 s (a customer flow queues an asset-triggered invoice run)."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while True:
            latest = {d: self.runs(d) for d in DAG_IDS}
            busy = [d for d, rs in latest.items() if any(r["state"] in ("queued", "running") for r in rs)]
            busy += [d for d in DAG_IDS if self._queued_asset_events(d)]
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 10:
                return latest
            if time.monotonic() > deadline:
                raise SystemExit(f"runs still busy after {timeout:.0f} s: {busy}")
            time.sleep(2)

    def ensure_successful_runs(self) -> None:
        for dag_id in DAG_IDS:
            if not any(r["state"] == "success" for r in self.runs(dag_id)):
                self.trigger(dag_id)
        for dag_id, rs in self.wait_until_quiet().items():
            states = [r["state"] for r in rs]
            print(
                f"{dag_id}: latest run {states[0] if states else 'none'} ({states.count('success')} successful "
                f"of the last {len(states)})",
                flush=True,
            )
            if not states or states[0] != "success":
                raise SystemExit(f"{dag_id}: the latest run did not succeed")


# -- a conflict for the console's record page ----------------------------------------------------------------------


def make_conflict(airflow: Airflow, pogo_id: str, invoiced_id: str) -> None:
    """Rename one linked customer in both local sandboxes (Invoiced last, a second later), then run its flow."""
    from sandboxes.settings import SandboxSettings

    state = json.loads((ROOT / ".run" / "sandboxes.json").read_text())
    keys = SandboxSettings.from_env()
    pogo, invoiced = f"http://127.0.0.1:{state['pogo_port']}", f"http://127.0.0.1:{state['invoiced_port']}"
    subscription = {"Ocp-Apim-Subscription-Key": keys.pogo_subscription_key}
    token = requests.post(
        f"{pogo}/OAuth/Token",
        data={"grant_type": "client_credentials"},
        headers=subscription,
        auth=(keys.pogo_application_key, keys.pogo_client_key),
        timeout=30,
    )
    token.raise_for_status()
    requests.patch(
        f"{pogo}/v2/Customers/{pogo_id}",
        timeout=30,
        headers={
            **subscription,
            "Authorization": f"Bearer {token.json()['access_token']}",
            "Content-Type": "application/json-patch+json",
        },
        data=json.dumps([{"op": "replace", "path": "/Name", "value": "Fjellvind Old AS"}]),
    ).raise_for_status()
    time.sleep(1.1)  # Invoiced stamps changes to the second: its edit is clearly the later one
    requests.patch(
        f"{invoiced}/customers/{invoiced_id}",
        json={"name": "Fjellvind New AS"},
        auth=(keys.invoiced_api_key, ""),
        timeout=30,
    ).raise_for_status()
    dag_id = f"sync_{CONFLICT_FLOW}"
    run_id = airflow.trigger(dag_id)
    # The invoice flow waits for fresh runs of both customer flows: the other one too, so it does not stay queued.
    for other in DAG_IDS:
        if other != dag_id and other != "sync_salesorders_invoices":
            airflow.trigger(other)
    if (state := airflow.wait_for_run(dag_id, run_id)) != "success":
        raise SystemExit(f"{dag_id}: the run that should log the conflict ended {state}")


# -- the browser ---------------------------------------------------------------------------------------------------


@contextmanager
def logged_in_page(url: str, chromium: str) -> Iterator[Any]:
    """A Playwright page of headless Chromium, logged in to Airflow as admin."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(f"{url}/")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda current: "/auth" not in current)
            yield page
        finally:
            browser.close()


def dag_list(page: Any, url: str, out_dir: Path) -> None:
    page.goto(f"{url}/dags")
    for dag_id in DAG_IDS:
        page.get_by_text(dag_id, exact=True).first.wait_for()
    page.wait_for_timeout(3000)  # let the run-state bars and charts render
    save(page, out_dir / "airflow-dags.png")


def open_add_connection(page: Any, url: str, type_name: str) -> Any:
    """Admin -> Connections -> "Add Connection" with ``type_name`` chosen; the dialog ("Standard Fields" unfolded)."""
    page.goto(f"{url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").fill(type_name)
    page.keyboard.press("Enter")
    dialog.locator("input[name=host]").wait_for()
    return dialog


def connection_forms(page: Any, url: str, out_dir: Path) -> None:
    """Per type, the dialog twice side by side: "Standard Fields", then "Extra Fields" (one section opens at a time)."""
    for type_name, picture in FORMS:
        dialog = open_add_connection(page, url, type_name)
        page.wait_for_timeout(500)  # the section's unfolding animation
        standard = dialog.screenshot()
        dialog.get_by_text("Extra Fields", exact=True).click()
        dialog.locator("[name^=element_]").first.wait_for()
        page.wait_for_timeout(500)
        extra = dialog.screenshot()
        images = "".join(
            f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}">' for png in (standard, extra)
        )
        sheet = page.context.new_page()
        sheet.set_content(
            f'<body style="margin:0;padding:16px;background:#e2e8f0;display:flex;gap:16px;'
            f'align-items:flex-start;width:max-content">{images}</body>'
        )
        sheet.wait_for_load_state()
        path = out_dir / picture
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.locator("body").screenshot(path=str(path))
        sheet.close()
        print(f"saved {_shown(path)}", flush=True)


def console(page: Any, url: str, out_dir: Path, airflow: Airflow) -> None:
    def api(path: str) -> dict:
        response = page.request.get(f"{url}{CONSOLE}/api/{path}")
        if not response.ok:
            raise SystemExit(f"console {path}: HTTP {response.status}")
        return response.json()

    if not api("health")["flows"]:  # an emptied link store (sandboxes started afresh): runs since then make it
        for dag_id in DAG_IDS:
            airflow.trigger(dag_id)
        airflow.wait_until_quiet()
    # The console as the UI shows it: a page under Browse, the app in a frame.
    page.goto(f"{url}/plugin/sync-console")
    page.frame_locator("iframe").locator(f"section[data-flow={CONFLICT_FLOW}]").wait_for(timeout=60_000)
    save(page, out_dir / "console-in-airflow.png")
    page.goto(f"{url}{CONSOLE}/")
    page.locator(f"section[data-flow={CONFLICT_FLOW}]").wait_for()
    save(page, out_dir / "console-health.png")
    conflicts = api(f"list/conflicts?flow={CONFLICT_FLOW}")["rows"]
    if not conflicts:
        pair = api(f"list/links?flow={CONFLICT_FLOW}")["rows"][0]
        make_conflict(airflow, pair["poweroffice_go_id"], pair["invoiced_id"])
        conflicts = api(f"list/conflicts?flow={CONFLICT_FLOW}")["rows"]
        if not conflicts:
            raise SystemExit(f"no conflict is open in {CONFLICT_FLOW} after renaming a customer on both sides")
    page.goto(
        f"{url}{CONSOLE}/record?flow={CONFLICT_FLOW}&system=poweroffice_go&id={conflicts[0]['poweroffice_go_id']}"
    )
    page.locator("tr[data-conflict]").first.wait_for()
    save(page, out_dir / "console-record.png")


def save(page: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    print(f"saved {_shown(path)}", flush=True)


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=PICTURES, default=list(PICTURES), help="which pictures")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--no-runs", action="store_true", help="do not trigger or wait for runs first")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        raise SystemExit(f"{args.chromium} not found: apt-get install chromium")
    sys.path.insert(0, str(ROOT))  # sandboxes.settings: the sandboxes' keys, for the conflict
    url = base_url()
    airflow = Airflow(url)
    if not args.no_runs:
        airflow.ensure_successful_runs()
    with logged_in_page(url, args.chromium) as page:
        if "dags" in args.only:
            dag_list(page, url, args.out_dir)
        if "connections" in args.only:
            connection_forms(page, url, args.out_dir)
        if "console" in args.only:
            console(page, url, args.out_dir, airflow)
    return 0


if __name__ == "__main__":
    sys.exit(main())
