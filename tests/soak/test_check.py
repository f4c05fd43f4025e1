"""The soak's end check notices what it is there to notice."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from tests.resilience import engine_run
from tests.soak import check
from tests.soak.users import Edit

pytestmark = pytest.mark.integration


def synced_companies(stack) -> tuple[str, str]:
    """Two companies in PowerOffice Go, synced once; returns one linked pair."""
    stack.sandboxes.pogo.seed(companies=2)
    engine_run.run_steps(stack, "customers_company", "check__first")
    assert not check.check(stack, []).problems
    return stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links ORDER BY 1")[0]


def test_a_newest_edit_that_is_not_on_either_side_is_lost(stack):
    pogo_id, inv_id = synced_companies(stack)
    newer = Edit("customers_company", INVOICED, inv_id, "name", "Nyeste AS", dt.datetime.now(dt.timezone.utc),
                 time.time(), "rename_company")
    older = Edit("customers_company", POGO, pogo_id, "name", "Eldre AS", newer.at - dt.timedelta(minutes=1),
                 time.time(), "rename_company")
    verdict = check.check(stack, [older, newer])
    assert verdict.lost == 1
    assert "the newest edit (rename_company in invoiced" in verdict.problems[0]


def test_a_second_record_carrying_an_origin_id_and_a_record_without_reason_are_reported(stack):
    pogo_id, _ = synced_companies(stack)
    stack.invoiced.create("/customers", {"name": "Kopi AS", "type": "company",
                                         "metadata": {"poweroffice_go_id": pogo_id}})
    stack.invoiced.create("/customers", {"name": "Uforklart AS", "type": "company"})
    verdict = check.check(stack, [])
    assert verdict.duplicated == 2  # two records carry the id, and the copy is not linked to it
    assert any("has no counterpart and the sync log gives no reason" in p for p in verdict.problems)


def test_a_pair_that_left_its_flow_is_accepted_only_once_the_sync_log_reports_it(stack):
    _, inv_id = synced_companies(stack)
    stack.invoiced.update(f"/customers/{inv_id}", {"type": "person"})
    assert check.check(stack, []).unexplained == 1
    engine_run.run_steps(stack, "customers_person", "check__person")
    verdict = check.check(stack, [])
    assert verdict.counts["explained: left its flow, reported"] == 1 and not verdict.problems
