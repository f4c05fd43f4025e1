"""A run killed at each step boundary (and mid-upsert), abandoned; the next full DAG run completes the work."""
from __future__ import annotations

import pytest

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from pogo_invoiced_sync.operators.sync import _hook
from tests.resilience import engine_run, scenario

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("until", ["extract", "map", "reconcile", "upsert_invoiced", "upsert_poweroffice_go"])
def test_a_run_abandoned_after_a_step_is_completed_by_the_next_run(stack, until):
    edits = scenario.prepare(stack)
    for flow in scenario.FLOWS:
        engine_run.run_steps(stack, flow, f"abandoned-{flow}", until=until)
    scenario.recover(stack)
    scenario.verify(stack, edits)


@pytest.mark.parametrize("target", [INVOICED, POGO])
def test_a_run_killed_mid_upsert_right_after_a_write_reached_the_api(stack, target):
    edits = scenario.prepare(stack)
    killed = 0
    for flow in scenario.FLOWS:
        dying = engine_run.DyingHook(_hook(target, None).get_conn(), writes_before_death=2)
        try:
            engine_run.run_steps(stack, flow, f"killed-{flow}", hooks={target: dying})
        except engine_run.Killed:
            killed += 1
    assert killed >= 2, "the kill did not happen: too few writes to make"
    scenario.recover(stack)
    scenario.verify(stack, edits)
