"""A sandbox (both APIs) restarted in the middle of a run; with ``--state-file`` it keeps its data like a real
service does, and the in-flight and following calls fail until it is back."""
from __future__ import annotations

import json
import threading
import time

import pytest

from sandboxes.process import SandboxProcess
from tests.resilience import scenario

pytestmark = pytest.mark.integration


@pytest.fixture
def restartable(stack, tmp_path, monkeypatch):
    """The stack, pointed at sandboxes of its own that keep their data over a restart."""
    process = SandboxProcess(log_path=tmp_path / "sandbox.log", state_file=tmp_path / "state.pickle").start()
    s = process.settings
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", json.dumps({
        "conn_type": "http", "host": f"{process.pogo_url}/v2", "login": s.pogo_application_key,
        "password": s.pogo_client_key, "extra": {"subscription_key": s.pogo_subscription_key}}))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", json.dumps({
        "conn_type": "http", "host": process.invoiced_url, "login": s.invoiced_api_key, "extra": {}}))
    stack.sandboxes = process
    yield stack
    process.stop()


def test_a_sandbox_restarted_mid_run(restartable):
    stack = restartable
    edits = scenario.prepare(stack)
    restarts = 0
    for flow in scenario.FLOWS:
        # Slow writes keep the upsert going long enough to restart in its middle.
        stack.sandboxes.pogo.faults(latency_ms=150, methods=["POST", "PATCH"])
        stack.sandboxes.invoiced.faults(latency_ms=150, methods=["POST", "PATCH"])
        done = []

        def restart_once_writing(flow=flow, done=done):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if stack.sandboxes.pogo.counters()["writes"] + stack.sandboxes.invoiced.counters()["writes"]:
                    stack.sandboxes.restart()
                    done.append(flow)
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=restart_once_writing, daemon=True)
        stack.sandboxes.pogo.clear_counters()
        stack.sandboxes.invoiced.clear_counters()
        watcher.start()
        scenario.run(stack, flow)
        watcher.join(60)
        restarts += len(done)
    assert restarts >= 2, "the runs had too little to write to restart the sandboxes in their middle"
    scenario.recover(stack)
    scenario.verify(stack, edits)
