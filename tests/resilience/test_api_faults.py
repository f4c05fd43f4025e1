"""Each flow under API faults — 429 bursts, 5xx, timeouts, dropped connections, lost answers, token expiry — then
recovery: no duplicate, no lost change, every unsynced record explained (see invariants.py)."""
from __future__ import annotations

import time

import pytest

from tests.resilience import scenario

pytestmark = pytest.mark.integration

WRITES = ["POST", "PATCH"]
# Seeds of the faults' random draws, one per flow and sandbox: each makes 2 of the first 4 requests in scope fail at a
# 20 % rate, so that even a flow with few calls meets the fault (a run makes only some ten calls per sandbox).
SEEDS = {"poweroffice_go": (1, 14, 28), "invoiced": (31, 43, 49)}


def _faulty_cycle(stack, pogo: dict, invoiced: dict) -> dict[str, str]:
    """Run each flow once with the faults (re)armed before it, so each flow meets them; failures are allowed."""
    states = {}
    for i, flow in enumerate(scenario.FLOWS):
        stack.sandboxes.pogo.faults(**{**pogo, "seed": SEEDS["poweroffice_go"][i]})
        stack.sandboxes.invoiced.faults(**{**invoiced, "seed": SEEDS["invoiced"][i]})
        states[flow] = scenario.run(stack, flow)
    scenario.faults_off(stack)
    return states


def _injected(stack, *outcomes: str) -> int:
    """How many requests the sandboxes answered with one of ``outcomes`` (a status or dropped/hung)."""
    total = 0
    for admin in (stack.sandboxes.pogo, stack.sandboxes.invoiced):
        for statuses in admin.counters()["statuses"].values():
            total += sum(n for status, n in statuses.items() if status in outcomes)
    return total


def _clear_counters(stack) -> None:
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()


def test_429_bursts_on_reads_and_writes_are_ridden_out_within_the_run(stack):
    edits = scenario.prepare(stack)
    _clear_counters(stack)
    # Fewer 429s in a row than the hooks' attempts: the runs themselves must succeed.
    states = _faulty_cycle(stack, {"burst_429": 2}, {"burst_429": 4, "retry_after": 0.2})
    # (PowerOffice Go always asks for Retry-After: 1 s, so its bursts are kept short to keep the suite quick.)
    assert _injected(stack, "429") == (2 + 4) * len(scenario.FLOWS)
    assert states == {f: "success" for f in scenario.FLOWS}
    scenario.recover(stack)
    scenario.verify(stack, edits)


def test_20_percent_5xx_on_every_call(stack):
    edits = scenario.prepare(stack)
    _clear_counters(stack)
    states = _faulty_cycle(stack, {"error_rate": 0.2, "error_status": 503},
                           {"error_rate": 0.2, "error_status": 502})
    assert _injected(stack, "503", "502") > 5
    # Six attempts per call: all calls get through (a 0.2^6 chance per call of running out).
    assert states == {f: "success" for f in scenario.FLOWS}
    scenario.recover(stack)
    scenario.verify(stack, edits)


def test_timeouts_hung_requests_that_still_land_later(stack, monkeypatch):
    edits = scenario.prepare(stack)
    # A hung request is handled once the hang ends, after the client gave up: a late write, not a lost one.
    scenario.set_connection_extra(monkeypatch, "AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", timeout=0.5)
    scenario.set_connection_extra(monkeypatch, "AIRFLOW_CONN_INVOICED_DEFAULT", timeout=0.5)
    _clear_counters(stack)
    hang = {"hang_rate": 0.15, "hang_seconds": 1.0}
    _faulty_cycle(stack, {**hang}, {**hang})
    assert _injected(stack, "hung") > 0
    scenario.recover(stack)
    scenario.verify(stack, edits)


def test_dropped_connections_before_the_request_is_handled(stack):
    edits = scenario.prepare(stack)
    _clear_counters(stack)
    _faulty_cycle(stack, {"drop_rate": 0.2}, {"drop_rate": 0.2})
    assert _injected(stack, "dropped") > 0
    scenario.recover(stack)
    scenario.verify(stack, edits)


def test_answers_lost_after_the_write_happened(stack):
    """The worst case for duplicates: the create was stored, the client never heard of it."""
    edits = scenario.prepare(stack)
    _clear_counters(stack)
    lost = {"drop_after_rate": 0.4, "methods": WRITES}
    _faulty_cycle(stack, {**lost}, {**lost})
    assert _injected(stack, "dropped-after") > 3
    scenario.recover(stack)
    scenario.verify(stack, edits)


def test_every_create_answer_lost_at_the_first_attempt(stack):
    """Every POST lands but its answer is lost, on both sides: each create must be recognised, never repeated."""
    edits = scenario.prepare(stack)
    _clear_counters(stack)
    _faulty_cycle(stack, {"drop_after_rate": 1.0, "methods": ["POST"], "path_pattern": "(?i)/v2/"},
                  {"drop_after_rate": 1.0, "methods": ["POST"]})
    assert _injected(stack, "dropped-after") > 3
    scenario.recover(stack)
    scenario.verify(stack, edits)


def test_the_token_expires_mid_run(stack, monkeypatch):
    """The server stops taking a token the client still holds for valid (expired while a worker kept it, revoked, a
    clock skew): the call meets a 401, the token is renewed once and the runs succeed."""
    from pogo_invoiced_sync.clients import PowerOfficeGoClient, clear_shared_state

    edits = scenario.prepare(stack)
    original = PowerOfficeGoClient._request_token
    # The hook would renew a short-lived token early by itself; make it trust the token far too long instead.
    monkeypatch.setattr(PowerOfficeGoClient, "_request_token", lambda self: (original(self)[0], float("inf")))
    # 3 s: a renewed token still outlives its first call on a busy machine.
    stack.sandboxes.pogo.configure(token_ttl_seconds=3)
    clear_shared_state()  # forget the long-lived token of the first sync
    _clear_counters(stack)
    # The token outlives no flow's pause: the next run's first call still presents it, as a long-lived worker would.
    states = {}
    for flow in scenario.FLOWS:
        states[flow] = scenario.run(stack, flow)
        time.sleep(3.5)
    assert _injected(stack, "401") > 0, "no call met an expired token"
    assert stack.sandboxes.pogo.counters()["routes"]["POST /OAuth/Token"] > 1
    assert states == {f: "success" for f in scenario.FLOWS}  # a refused token is renewed once, not a failure
    stack.sandboxes.pogo.configure(token_ttl_seconds=1200)
    scenario.recover(stack)
    scenario.verify(stack, edits)
