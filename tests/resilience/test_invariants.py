"""The invariant check itself notices what it is there to notice."""
from __future__ import annotations

import pytest

from pogo_invoiced_sync.engine.flow_mapping import INVOICED
from tests.resilience import invariants, scenario

pytestmark = pytest.mark.integration


def test_the_invariant_check_notices_a_duplicate_a_lost_change_and_an_unexplained_record(stack):
    stack.sandboxes.pogo.seed(companies=2)
    assert scenario.run(stack, "customers_company") == "success"
    invariants.check(stack, ("customers_company",))
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    stack.invoiced.update(f"/customers/{inv_id}", {"name": "Bare i Invoiced AS"})
    stack.invoiced.create("/customers", {"name": "Kopi AS", "type": "company", "metadata": {"poweroffice_go_id": pogo_id}})
    stack.invoiced.create("/customers", {"name": "Uforklart AS", "type": "company"})
    with pytest.raises(AssertionError) as caught:
        invariants.check(stack, ("customers_company",))
    message = str(caught.value)
    assert f"duplicate: 2 {INVOICED} customers carry origin id {pogo_id}" in message
    assert "name differs on pair" in message and "Bare i Invoiced AS" in message
    assert "without a counterpart" in message
    with pytest.raises(AssertionError) as caught:
        invariants.check(stack, ("customers_company",), all_synced=False)
    assert "did not sync and the sync log gives no reason" in str(caught.value)
