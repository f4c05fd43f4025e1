"""A run that did nothing is not green (issue 9 §3): one reason rejecting (nearly) every record of a direction fails
the task after the rest of it is done, with the reason and some record ids in the task log."""
from __future__ import annotations

import shutil

import pytest

from pogo_invoiced_sync import config

pytestmark = pytest.mark.integration


def _edit_company_mapping(tmp_path, monkeypatch, old: str, new: str) -> None:
    """Use the shipped mappings with one edit to the company flow's file."""
    folder = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), folder)
    path = folder / "customers_company.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path))


@pytest.fixture
def misspelt_mapping(tmp_path, monkeypatch):
    """The company flow's Invoiced name path misspelt (``nmae``)."""
    _edit_company_mapping(tmp_path, monkeypatch, "    invoiced: name\n", "    invoiced: nmae\n")


def test_a_misspelt_field_path_fails_the_map_with_the_reason_and_sample_ids_after_mapping_the_rest(
        stack, misspelt_mapping, capfd):
    stack.sandboxes.pogo.seed(companies=2)
    stack.sandboxes.invoiced.seed(companies=4)
    invoiced_ids = sorted(str(c["id"]) for c in stack.records("invoiced", "customers"))
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()
    dag_run = stack.run("customers_company", expect="failed")
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states["map"] == "failed" and states["reconcile"] == "upstream_failed"
    task_log = capfd.readouterr().out
    assert "map of invoiced: 4 of 4 records rejected for the same reason: lacks mapped field(s) nmae" in task_log
    assert all(record_id in task_log for record_id in invoiced_ids)  # the sample: the first (here all) ids
    # The rest was done: each record has its own reason, and the other system was mapped.
    rejects = stack.sql("SELECT invoiced_id FROM {s}.sync_log WHERE operation = 'reject' ORDER BY invoiced_id")
    assert [r[0] for r in rejects] == invoiced_ids
    assert stack.sql("SELECT count(*) FROM {s}.records WHERE system = 'poweroffice_go'") == [(2,)]
    calls = [*stack.sandboxes.pogo.counters()["routes"], *stack.sandboxes.invoiced.counters()["routes"]]
    assert [c for c in calls if not c.startswith("GET ") and "OAuth/Token" not in c] == []  # nothing written


def test_one_record_rejected_among_several_keeps_the_run_green_with_its_reason(stack):
    stack.sandboxes.invoiced.seed(companies=4)
    blank = stack.invoiced.create("/customers", {"name": "   ", "type": "company"})  # PowerOffice Go refuses it
    stack.run("customers_company")
    failures = stack.sql("SELECT invoiced_id, reason FROM {s}.v_failures")
    assert [f[0] for f in failures] == [str(blank["id"])] and "Name is required" in failures[0][1]


def test_a_create_default_the_target_refuses_for_every_record_fails_the_upsert_after_recording_each(
        stack, tmp_path, monkeypatch, capfd):
    _edit_company_mapping(tmp_path, monkeypatch, "create_defaults: {type: company}", "create_defaults: {type: compnay}")
    stack.sandboxes.pogo.seed(companies=4)
    stack.sandboxes.invoiced.seed(companies=1)
    dag_run = stack.run("customers_company", expect="failed")
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert (states["upsert_invoiced"], states["upsert_poweroffice_go"]) == ("failed", "success")
    assert ("upsert to invoiced: 4 of 4 records rejected for the same reason: HTTP 400: Type must be one of the "
            "allowed values (param: type)") in capfd.readouterr().out
    failures = stack.sql("SELECT direction, reason FROM {s}.v_failures")
    assert len(failures) == 4 and {f[0] for f in failures} == {"to_invoiced"}  # each record has its reason
    assert len(stack.records("poweroffice_go", "customers")) == 5  # the other direction went through


def test_a_red_run_still_stores_and_prints_its_summary_and_announces_nothing(
        stack, tmp_path, monkeypatch, capfd):
    _edit_company_mapping(tmp_path, monkeypatch, "create_defaults: {type: company}", "create_defaults: {type: compnay}")
    stack.sandboxes.pogo.seed(companies=4)
    dag_run = stack.run("customers_company", expect="failed")
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert (states["report"], states["announce_links"]) == ("success", "upstream_failed")
    assert "Sync summary of customers_company" in capfd.readouterr().out
    summary = stack.sql("SELECT summary FROM {s}.runs WHERE run_id = %s", dag_run.run_id)[0][0]
    assert summary["by_direction"]["to_invoiced"]["rejected"] == 4
