"""The extract step's handling of a backfill's start time (issue 9 §1)."""
from __future__ import annotations

import datetime as dt

import pytest

from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, load_mapping
from pogo_invoiced_sync.hooks import InvoicedHook

pytestmark = pytest.mark.integration


def test_a_backfill_lists_from_its_start_but_a_guard_rewind_goes_back_only_to_the_normal_cursor(link_store, connections):
    mapping = load_mapping("customers_company")
    cursor = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(minutes=1)
    link_store.advance_cursor(mapping.flow, INVOICED, cursor)
    for name in ("Nord AS", "Sør AS"):  # changed just now: after the backfill's start, not after the cursor
        InvoicedHook().create("/customers", {"name": name, "type": "company"})
    start = cursor - dt.timedelta(days=2)
    link_store.start_run(mapping.flow, "backfill__x", {})
    result = steps.extract(link_store, mapping, INVOICED, InvoicedHook(), "backfill__x", since_override=start)
    assert result["records"] == 2 and result["since"] == (start - dt.timedelta(seconds=1)).isoformat()
    link_store.rewind_cursors(mapping.flow, "backfill__x")  # what the change guard does when it stops a run
    assert link_store.cursor(mapping.flow, INVOICED) == cursor - dt.timedelta(seconds=1)
