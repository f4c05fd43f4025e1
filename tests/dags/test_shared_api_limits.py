"""The flows hold their API slots in the link-store database, shared with every worker using the credential."""

from __future__ import annotations

import pytest

from pogo_invoiced_sync.clients.limits import credential_fingerprint

pytestmark = pytest.mark.integration


def _slots(stack, kind: str, *parts: str) -> list[tuple]:
    return stack.sql(
        "SELECT slot, holder FROM pogo_invoiced_sync_limits.slots WHERE credential = %s ORDER BY slot",
        credential_fingerprint(kind, *parts),
    )


def test_a_run_takes_its_api_slots_from_the_database_and_gives_every_one_back(stack):
    settings = stack.sandboxes.settings
    stack.sandboxes.pogo.seed(companies=2)

    stack.run("customers_company")

    pogo = _slots(stack, "pogo-rps", f"{stack.sandboxes.pogo_url}/v2", settings.pogo_subscription_key)
    invoiced = _slots(stack, "invoiced-in-flight", stack.sandboxes.invoiced_url, settings.invoiced_api_key)
    assert len(pogo) == 10  # PowerOffice Go's 10 requests/s of the subscription key
    assert invoiced  # Invoiced's in-flight slots of the API key
    assert all(holder is None for _, holder in pogo + invoiced)


def _last_use(stack) -> list[tuple]:
    if stack.sql("SELECT to_regclass('pogo_invoiced_sync_limits.slots') IS NULL") == [(True,)]:
        return []
    return stack.sql("SELECT credential, max(free_at) FROM pogo_invoiced_sync_limits.slots GROUP BY 1 ORDER BY 1")


def test_with_shared_limits_off_a_run_keeps_its_limits_in_the_process(stack, monkeypatch):
    monkeypatch.setenv("AIRFLOW__POGO_INVOICED_SYNC__SHARED_LIMITS", "false")
    stack.sandboxes.pogo.seed(companies=2)
    before = _last_use(stack)

    stack.run("customers_company")

    assert stack.writes()["invoiced"] >= 2  # the run did call the APIs
    assert _last_use(stack) == before
