"""See the Airflow UI as a person does: headless Chromium logs in and saves the DAG list as a PNG.

    python tools/screenshot.py [--out docs/img/airflow-dags.png]      (``make screenshot`` runs ``make up`` first)

Needs Debian's ``chromium`` (``apt-get install chromium``) and Airflow from ``make up`` on $AIRFLOW_PORT (8080).
Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``): no extra Python
package, no driver binary, no debugging port. Before the picture, every sync DAG gets a successful run: a DAG
without one is triggered through the REST API, and the script waits until no run is queued or running.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DAG_IDS = ("sync_customers_company", "sync_customers_person", "sync_salesorders_invoices")
USER, PASSWORD = "admin", "admin"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1440,900", "--remote-debugging-pipe"]


def base_url() -> str:
    return f"http://127.0.0.1:{int(os.environ.get('AIRFLOW_PORT', '8080'))}"


# -- REST: make sure there is something green to see ---------------------------------------------------------------

def ensure_successful_runs(timeout: float = 300) -> None:
    url = base_url()
    token = requests.post(f"{url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=10)
    token.raise_for_status()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def runs(dag_id: str) -> list[dict]:
        response = http.get(f"{url}/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 20},
                            timeout=10)
        response.raise_for_status()
        return response.json()["dag_runs"]

    for dag_id in DAG_IDS:
        if not any(r["state"] == "success" for r in runs(dag_id)):
            http.post(f"{url}/api/v2/dags/{dag_id}/dagRuns",
                      json={"logical_date": None, "conf": {"full_refresh": False, "dry_run": False}},
                      timeout=10).raise_for_status()
            print(f"triggered {dag_id}", flush=True)
    def queued_asset_events(dag_id: str) -> int:
        response = http.get(f"{url}/api/v2/dags/{dag_id}/assets/queuedEvents", timeout=10)
        return len(response.json().get("queued_events", [])) if response.status_code == 200 else 0

    # Quiet for a while: a finished customer flow queues an asset-triggered invoice run a moment later.
    deadline, quiet_since = time.monotonic() + timeout, None
    while True:
        latest = {d: runs(d) for d in DAG_IDS}
        busy = [d for d, rs in latest.items() if any(r["state"] in ("queued", "running") for r in rs)]
        busy += [d for d in DAG_IDS if queued_asset_events(d)]
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 10:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"runs still busy after {timeout:.0f} s: {busy}")
        time.sleep(2)
    for dag_id, rs in latest.items():
        states = [r["state"] for r in rs]
        print(f"{dag_id}: latest run {states[0] if states else 'none'} ({states.count('success')} successful "
              f"of the last {len(states)})", flush=True)
        if not states or states[0] != "success":
            raise SystemExit(f"{dag_id}: the latest run did not succeed")


# -- Chromium over the DevTools pipe ---------------------------------------------------------------------------

def _pipe_fds(read_fd: int, write_fd: int) -> None:
    """In the child: put the pipe ends on fds 3 and 4 (via high copies, so neither clobbers the other)."""
    import fcntl

    high_read, high_write = fcntl.fcntl(read_fd, fcntl.F_DUPFD, 10), fcntl.fcntl(write_fd, fcntl.F_DUPFD, 10)
    os.dup2(high_read, 3)
    os.dup2(high_write, 4)


class Chromium:
    """A headless Chromium; ``call`` sends one DevTools command (on the attached page) and returns its result."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The DevTools pipe is fd 3 (Chromium reads) and fd 4 (Chromium writes) in the child.
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=lambda: _pipe_fds(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.events: list[dict] = []

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, browser: bool = False) -> dict:
        call_id = self._send(method, params, None if browser else self.session)
        while True:
            message = self._receive()
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                self.screenshot(Path(tempfile.gettempdir()) / "airflow-screenshot-timeout.png")
                raise SystemExit(f"timed out waiting for {what or expression} "
                                 f"(page: {self.evaluate('location.href')}; see /tmp/airflow-screenshot-timeout.png)")
            time.sleep(0.25)

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type as a person would (real input events, which React listens to)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", browser=True)
            self.proc.wait(10)
        except Exception:  # noqa: BLE001 - closing anyway
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def capture(out: Path, binary: str) -> None:
    url = base_url()
    browser = Chromium(binary)
    try:
        browser.open_page()
        browser.call("Page.navigate", {"url": f"{url}/"})
        browser.wait_for("!!document.querySelector('input[name=username], input#username')", what="the login form")
        browser.type_into("input[name=username], input#username", USER)
        browser.type_into("input[name=password], input#password, input[type=password]", PASSWORD)
        browser.evaluate("document.querySelector('button[type=submit]').click()")
        browser.wait_for("!location.pathname.startsWith('/auth')", what="the login to finish")
        browser.call("Page.navigate", {"url": f"{url}/dags"})
        names = " && ".join(f"document.body.innerText.includes('{d}')" for d in DAG_IDS)
        browser.wait_for(f"!!document.body && {names}", what="the three DAGs in the list")
        time.sleep(3)  # let the run-state bars and charts render
        browser.screenshot(out)
    finally:
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "airflow-dags.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--no-runs", action="store_true", help="do not trigger or wait for runs first")
    args = parser.parse_args(argv)
    if not args.chromium:
        raise SystemExit("chromium not found: apt-get install chromium")
    if not args.no_runs:
        ensure_successful_runs()
    capture(args.out, args.chromium)
    print(f"saved {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
