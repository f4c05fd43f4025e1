"""What a run tells: the dry run's plan in the report, no asset event from a dry run, the summary's counts and reasons."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _asset_events(dag_run) -> list[str]:
    """Asset events Airflow's metadata database recorded for this DAG run."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (session.query(AssetModel.uri).join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id).all())
    return [uri for (uri,) in rows]


def _summary(stack, run_id: str) -> dict:
    return stack.sql("SELECT summary FROM {s}.runs WHERE run_id = %s", run_id)[0][0]


def test_a_dry_run_emits_no_asset_event_and_a_real_run_does(stack):
    stack.sandboxes.pogo.seed(companies=1)
    dry = stack.run("customers_company", dry_run=True)
    assert _asset_events(dry) == []
    real = stack.run("customers_company")
    assert _asset_events(real) == ["pogo-invoiced-sync://links/customers_company"]


def test_a_dry_run_summary_lists_the_planned_records_with_ids_and_values(stack):
    from pogo_invoiced_sync.operators.sync import format_summary

    stack.sandboxes.pogo.seed(companies=2)
    dry = stack.run("customers_company", dry_run=True)
    summary = _summary(stack, dry.run_id)
    assert summary["dry_run"] is True
    names = sorted(c["Name"] for c in stack.records("poweroffice_go", "customers"))
    planned = summary["examples"]["create/planned"]
    assert sorted(p["after"]["name"] for p in planned) == names
    assert all(p["poweroffice_go_id"] and p["direction"] == "to_invoiced" for p in planned)
    text = format_summary(summary)
    assert "DRY RUN" in text and all(name in text for name in names)


def test_the_summary_names_the_first_rejected_records_with_their_reasons(stack):
    from pogo_invoiced_sync.operators.sync import format_summary

    stack.sandboxes.invoiced.seed(companies=1)
    # PowerOffice Go refuses it: an address line holds at most 200 characters there.
    bad = stack.invoiced.create("/customers", {"name": "Kari Nordmann", "type": "person", "city": "Oslo",
                                               "postal_code": "0150", "address1": "Lang gate " + "x" * 200})
    run = stack.run("customers_person")
    summary = _summary(stack, run.run_id)
    rejected = summary["examples"]["create/failed"]
    assert [r["invoiced_id"] for r in rejected] == [str(bad["id"])] and "AddressLine1" in rejected[0]["reason"]
    assert f"invoiced_id={bad['id']}" in format_summary(summary)


def test_unchanged_counts_only_this_flows_records_once_each(stack):
    stack.sandboxes.pogo.seed(companies=3, persons=2)  # the company flow's listing shows the persons too
    stack.run("customers_company")
    stack.run("customers_company")  # reads its own creates back once
    again = stack.run("customers_company", full_refresh=True)
    assert _summary(stack, again.run_id)["unchanged"] == {"poweroffice_go": 3, "invoiced": 3}


def test_an_invoice_voided_before_it_was_synchronised_gets_one_reason_in_the_sync_log(stack):
    stack.sandboxes.invoiced.seed(companies=1)
    stack.run("customers_company")
    customer = stack.records("invoiced", "customers")[0]
    invoice = stack.invoiced.create("/invoices", {"customer": customer["id"], "draft": False,
                                                  "items": [{"name": "Konsulent", "unit_cost": 100}]})
    stack.invoiced.post(f"/invoices/{invoice['id']}/void")
    stack.run("salesorders_invoices")
    stack.run("salesorders_invoices", full_refresh=True)  # listed again, unchanged: no second row
    rows = stack.sql("SELECT invoiced_id, outcome, reason FROM {s}.sync_log WHERE operation = 'skip'")
    assert [(i, o) for i, o, _ in rows] == [(str(invoice["id"]), "reported")]
    assert "not synchronised" in rows[0][2]
    assert stack.records("poweroffice_go", "sales_orders") == []


def test_the_summary_keeps_each_api_tasks_calls_and_429s(stack):
    stack.sandboxes.pogo.seed(companies=3)
    stack.sandboxes.invoiced.faults(burst_429=2, retry_after=0.1)
    run = stack.run("customers_company")
    api = _summary(stack, run.run_id)["api"]
    assert set(api) == {"extract_poweroffice_go", "extract_invoiced", "upsert_invoiced", "upsert_poweroffice_go"}
    assert api["upsert_invoiced"]["calls"]["POST"] >= 3  # three creates, and the 429s they met
    assert sum(int(task["statuses"].get("429", 0)) for task in api.values()) == 2
