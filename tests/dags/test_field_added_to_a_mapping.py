"""The README's own example: a field added to a mapping is filled in where it is empty and never blanks data."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _readme_field_block() -> str:
    """The YAML block of the README's "Mappings" section, as a user would copy it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Mappings", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert blocks, "the README's Mappings section has no YAML example any more"
    return blocks[0]


def _dags_with_readme_field(tmp_path: Path) -> dict:
    """The DAGs built from a copy of the real mapping files with the README's block added verbatim."""
    from pogo_invoiced_sync.dag_factory import build_all

    folder = tmp_path / "mappings"
    shutil.copytree(ROOT / "include" / "mappings", folder)
    company = folder / "customers_company.yaml"
    text = company.read_text()
    company.write_text(text + ("" if text.endswith("\n") else "\n") + _readme_field_block())
    dags = build_all(folder)
    for dag in dags.values():
        for task in dag.tasks:
            task.retries = 0
    return dags


def _run(dag, expect: str = "success", **conf):
    dag_run = dag.test(run_conf={"full_refresh": False, "dry_run": False, "allow_mass_changes": False, **conf})
    assert dag_run.state == expect, f"{dag.dag_id} ended {dag_run.state}"
    return dag_run


def _phones(stack) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Each linked company pair's phone on each side."""
    pogo = {str(c["Id"]): c.get("PhoneNumber") for c in stack.records("poweroffice_go", "customers")}
    inv = {str(c["id"]): c.get("phone") for c in stack.records("invoiced", "customers")}
    pairs = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links WHERE flow = 'customers_company'")
    return {(p, i): (pogo[p], inv[i]) for p, i in pairs}


def test_the_readmes_phone_example_fills_in_empty_phones_and_blanks_none(stack, tmp_path):
    # Demo-like: companies on both sides, each with a phone; the name-only sync creates counterparts without one.
    stack.sandboxes.pogo.seed(companies=25)
    stack.sandboxes.invoiced.seed(companies=8)
    stack.run("customers_company")
    before = _phones(stack)
    assert len(before) == 33 and all((p is None) != (i is None) for p, i in before.values())
    # One pair with the same phone on both sides, one with two different phones (Invoiced's the later edit).
    (equal_p, equal_i), (clash_p, clash_i) = sorted(k for k, (p, _) in before.items() if p is not None)[:2]
    stack.invoiced.update(f"/customers/{equal_i}", {"phone": before[(equal_p, equal_i)][0]})
    stack.pogo.patch(f"/Customers/{clash_p}", {"PhoneNumber": "+47 11111111"})
    time.sleep(1.1)  # Invoiced stamps changes to the second: make its edit clearly the later one
    stack.invoiced.update(f"/customers/{clash_i}", {"phone": "+47 22222222"})
    before = _phones(stack)
    dag = _dags_with_readme_field(tmp_path)["sync_customers_company"]

    # As the README says: one full refresh. Filling in 32 of 33 pairs at once is a mass change: the guard stops it.
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()
    _run(dag, expect="failed", full_refresh=True)
    assert stack.writes() == {"poweroffice_go": 0, "invoiced": 0}
    assert _phones(stack) == before
    guard = stack.sql("SELECT reason FROM {s}.sync_log WHERE operation = 'guard'")[0][0]
    assert "would update 32 of 33 linked records" in guard and "phone 32" in guard

    _run(dag, full_refresh=True, allow_mass_changes=True)
    after = _phones(stack)
    for pair, (p, i) in before.items():
        expected = "+47 22222222" if pair == (clash_p, clash_i) else p or i
        assert after[pair] == (expected, expected), f"pair {pair}: {before[pair]} became {after[pair]}"
    assert stack.sql("SELECT before, after FROM {s}.sync_log WHERE operation = 'conflict'") == [
        ({"phone": "+47 11111111"}, {"phone": "+47 22222222"})]
    assert stack.sql("SELECT count(*) FROM {s}.sync_log WHERE operation = 'update' AND after->>'phone' IS NULL "
                     "AND after ? 'phone'")[0][0] == 0

    # Settled: the next run writes nothing.
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()
    _run(dag)
    assert stack.writes() == {"poweroffice_go": 0, "invoiced": 0}
