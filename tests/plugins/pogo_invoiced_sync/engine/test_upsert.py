"""The upsert step's create attempts against the sandboxes and PostgreSQL: idempotency keys and lost answers."""

from __future__ import annotations

import psycopg
import pytest

from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, SYSTEMS, load_mapping
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.upsert import RetryableFailures, attempt_key

pytestmark = pytest.mark.integration


def _store(stack) -> LinkStore:
    store = LinkStore(lambda: psycopg.connect(stack.dsn), "pogo_invoiced_sync")
    store.migrate()
    return store


def _plan(stack, store: LinkStore, run_id: str):
    from pogo_invoiced_sync.operators.sync import _hook

    mapping = load_mapping("customers_company")
    for system in SYSTEMS:
        steps.extract(store, mapping, system, _hook(system, None).get_conn(), run_id)
        steps.map_records(store, mapping, system, run_id)
    steps.reconcile(store, mapping, run_id)
    return mapping


def test_an_attempt_key_names_one_attempt_of_one_body():
    body = {"origin": "1000001", "body": {"name": "Fjord AS"}}
    first, second = attempt_key(body), attempt_key(body)
    assert first != second  # a new attempt never reuses a key, even for the same body
    assert first.split("-")[1] == second.split("-")[1]  # the body's hash part is the same
    assert attempt_key({**body, "body": {"name": "Fjell AS"}}).split("-")[1] != first.split("-")[1]
    assert 6 <= len(first) <= 64  # Invoiced's limits


def test_a_create_whose_answer_was_lost_is_looked_up_by_the_next_attempt_and_never_sent_twice(stack):
    from pogo_invoiced_sync.hooks.invoiced import InvoicedHook

    stack.sandboxes.pogo.seed(companies=1)
    store = _store(stack)
    mapping = _plan(stack, store, "lost-answer")
    # The create reaches Invoiced, but every answer is lost on the way back (so are the hook's own repeats).
    stack.sandboxes.invoiced.faults(drop_after_rate=1.0, path_pattern="^/customers$", methods=["POST"])
    impatient = InvoicedHook(max_attempts=2, backoff_base=0.01, backoff_max=0.02).get_conn()
    with pytest.raises(RetryableFailures):
        steps.upsert(store, mapping, INVOICED, impatient, "lost-answer")
    assert len(stack.records("invoiced", "customers")) == 1  # it was created; we do not know it yet
    assert stack.sql("SELECT count(*) FROM {s}.pending_creates")[0][0] == 1  # the intent stays
    # The next run plans the create again: its Invoiced listing does not show the new customer yet.
    stack.sandboxes.invoiced.faults(keep_fraction=0.0, path_pattern="^/customers$", methods=["GET"])
    _plan(stack, store, "next-run")
    stack.sandboxes.invoiced.faults()
    stack.sandboxes.invoiced.clear_counters()
    result = steps.upsert(store, mapping, INVOICED, InvoicedHook().get_conn(), "next-run")
    store.close()
    routes = stack.sandboxes.invoiced.counters()["routes"]
    assert routes.get("POST /customers", 0) == 0
    assert routes.get("GET /customers", 0) >= 1
    assert result["created"] == 1
    [created] = stack.records("invoiced", "customers")
    assert stack.sql("SELECT invoiced_id FROM {s}.links") == [(str(created["id"]),)]
    assert stack.sql("SELECT count(*) FROM {s}.pending_creates")[0][0] == 0


def test_a_create_refused_then_corrected_by_the_user_is_created_by_the_next_run(stack):
    refused = stack.pogo.create("/Customers", {"Name": "Langt Navn " + "A" * 300 + " AS", "IsPerson": False})
    stack.run("customers_company")
    [(reason,)] = stack.sql("SELECT reason FROM {s}.v_failures")
    assert "Name must be a string of the proper length" in reason
    stack.pogo.patch(f"/Customers/{refused['Id']}", {"Name": "Kort Navn AS"})
    stack.run("customers_company")  # a new attempt with a new key: no replay of the old refusal
    [created] = stack.records("invoiced", "customers")
    assert created["name"] == "Kort Navn AS"
    assert stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links") == [
        (str(refused["Id"]), str(created["id"]))
    ]
    assert len(stack.sql("SELECT reason FROM {s}.v_failures")) == 1  # only the first run's refusal


def test_a_user_edit_shown_in_the_answer_to_our_update_of_another_field_is_synced_by_the_next_run(stack):
    from tests.resilience.engine_run import run_steps

    stack.sandboxes.pogo.seed(persons=1)
    stack.run("customers_person")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"FirstName": "Ingrid"})
    run_steps(stack, "customers_person", "edited-mid-run", until="reconcile")  # plans the name for Invoiced
    # A user edits the city in Invoiced after the run read it and before the run writes the name there:
    # the answer to our write shows the new city, which is not ours.
    stack.invoiced.update(f"/customers/{inv_id}", {"city": "Bodø"})
    from pogo_invoiced_sync.engine.flow_mapping import load_mapping
    from pogo_invoiced_sync.operators.sync import _hook

    store = _store(stack)
    steps.upsert(store, load_mapping("customers_person"), INVOICED, _hook(INVOICED, None).get_conn(), "edited-mid-run")
    store.close()
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"].startswith("Ingrid ")
    stack.run("customers_person")
    assert stack.pogo.get(f"/Customers/{pogo_id}")["MailAddress"]["City"] == "Bodø"
