"""The three-way merge of one linked pair (engine/merge.py), field by field: MAPPING.md, decisions 7 and 11."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from pogo_invoiced_sync.engine.merge import FieldConflict, MergeResult, merge, winner

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(seconds=1)


def test_a_field_changed_in_poweroffice_go_only_is_written_to_invoiced():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme AS"}, {"name": "Acme"}, POGO)
    assert result.writes == {INVOICED: {"name": "Acme AS"}, POGO: {}}


def test_a_field_changed_in_invoiced_only_is_written_to_poweroffice_go():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme"}, {"name": "Acme Inc"}, POGO)
    assert result.writes == {INVOICED: {}, POGO: {"name": "Acme Inc"}}


def test_a_one_sided_change_is_not_a_conflict():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme"}, {"name": "Acme Inc"}, POGO)
    assert result.conflicts == ()


def test_a_field_cleared_on_one_side_since_the_last_sync_is_carried_over_as_a_clear():
    result = merge(["city"], {"city": "Bergen"}, {"city": None}, {"city": "Bergen"}, INVOICED)
    assert result.writes == {INVOICED: {"city": None}, POGO: {}}


def test_a_field_synced_as_empty_and_then_filled_on_one_side_is_carried_over():
    result = merge(["city"], {"city": None}, {"city": None}, {"city": "Oslo"}, POGO)
    assert result.writes == {INVOICED: {}, POGO: {"city": "Oslo"}}


def test_equal_values_are_not_written():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme"}, {"name": "Acme"}, POGO)
    assert result.writes == {INVOICED: {}, POGO: {}}


def test_equal_values_that_match_the_merge_base_leave_the_result_unchanged():
    assert merge(["name"], {"name": "Acme"}, {"name": "Acme"}, {"name": "Acme"}, POGO).unchanged


def test_the_same_edit_made_on_both_sides_moves_the_merge_base_without_a_write():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme AS"}, {"name": "Acme AS"}, POGO)
    assert (result.writes, result.agreed) == ({INVOICED: {}, POGO: {}}, {"name": "Acme AS"})


def test_our_own_echo_moves_the_merge_base_to_the_value_we_wrote():
    # Last run wrote "Oslo" to Invoiced but the base still says "Bergen": both sides now agree on "Oslo".
    result = merge(["city"], {"city": "Bergen"}, {"city": "Oslo"}, {"city": "Oslo"}, POGO)
    assert result.agreed == {"city": "Oslo"}


def test_a_result_that_only_moves_the_merge_base_is_not_unchanged():
    assert not merge(["name"], {"name": "Acme"}, {"name": "Acme AS"}, {"name": "Acme AS"}, POGO).unchanged


def test_edits_to_different_fields_of_the_same_pair_both_survive():
    base = {"name": "Acme", "city": "Bergen"}
    result = merge(
        ["name", "city"], base, {"name": "Acme AS", "city": "Bergen"}, {"name": "Acme", "city": "Oslo"}, POGO
    )
    assert result.writes == {INVOICED: {"name": "Acme AS"}, POGO: {"city": "Oslo"}}


@pytest.mark.parametrize(("conflict_winner", "expected"), [(POGO, "Acme AS"), (INVOICED, "Acme Inc")])
def test_a_field_both_sides_changed_gets_the_configured_winners_value_on_both_sides(conflict_winner, expected):
    pogo, invoiced = {"name": "Acme AS"}, {"name": "Acme Inc"}
    result = merge(["name"], {"name": "Acme"}, pogo, invoiced, conflict_winner)
    after = ({**pogo, **result.writes[POGO]}, {**invoiced, **result.writes[INVOICED]})
    assert after == ({"name": expected}, {"name": expected})


def test_a_conflict_is_written_only_to_the_losing_side():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme AS"}, {"name": "Acme Inc"}, INVOICED)
    assert result.writes == {INVOICED: {}, POGO: {"name": "Acme Inc"}}


def test_a_conflict_keeps_the_losing_value_and_says_why():
    result = merge(["name"], {"name": "Acme"}, {"name": "Acme AS"}, {"name": "Acme Inc"}, POGO)
    assert result.conflicts == (
        FieldConflict("name", POGO, "Acme AS", "Acme Inc", "both sides changed since the last sync"),
    )


def test_a_clear_on_one_side_against_an_edit_on_the_other_is_a_conflict_when_there_is_a_merge_base():
    result = merge(["city"], {"city": "Bergen"}, {"city": None}, {"city": "Oslo"}, POGO)
    assert (result.writes[INVOICED], [c.losing_value for c in result.conflicts]) == ({"city": None}, ["Oslo"])


def test_without_a_merge_base_an_empty_value_in_invoiced_never_overwrites_a_real_one():
    result = merge(["city"], {}, {"city": "Bergen"}, {"city": None}, INVOICED)
    assert result.writes == {INVOICED: {"city": "Bergen"}, POGO: {}}


def test_without_a_merge_base_an_empty_value_in_poweroffice_go_never_overwrites_a_real_one():
    result = merge(["city"], {}, {"city": None}, {"city": "Bergen"}, POGO)
    assert result.writes == {INVOICED: {}, POGO: {"city": "Bergen"}}


def test_without_a_merge_base_a_value_missing_from_one_side_counts_as_empty():
    result = merge(["city"], {}, {}, {"city": "Bergen"}, POGO)
    assert (result.writes, result.conflicts) == ({INVOICED: {}, POGO: {"city": "Bergen"}}, ())


def test_without_a_merge_base_equal_values_become_the_merge_base():
    result = merge(["city"], {}, {"city": "Bergen"}, {"city": "Bergen"}, POGO)
    assert (result.writes, result.agreed) == ({INVOICED: {}, POGO: {}}, {"city": "Bergen"})


def test_without_a_merge_base_a_field_empty_on_both_sides_becomes_an_empty_merge_base():
    result = merge(["city"], {}, {"city": None}, {}, POGO)
    assert (result.writes, result.agreed) == ({INVOICED: {}, POGO: {}}, {"city": None})


def test_without_a_merge_base_two_differing_real_values_are_a_conflict_that_says_so():
    result = merge(["city"], {}, {"city": "Bergen"}, {"city": "Oslo"}, INVOICED)
    assert result.conflicts == (
        FieldConflict("city", INVOICED, "Oslo", "Bergen", "no merge base yet and both sides hold a value"),
    )


def test_a_field_with_a_merge_base_is_merged_against_it_while_a_new_field_is_not():
    # "name" has been synchronised before; "city" was just added to the mapping (MAPPING.md, decision 11).
    result = merge(["name", "city"], {"name": "Acme"}, {"name": None, "city": "Bergen"}, {"name": "Acme"}, POGO)
    assert result.writes == {INVOICED: {"name": None, "city": "Bergen"}, POGO: {}}


def test_fields_outside_the_list_are_ignored():
    result = merge(
        ["name"], {"name": "Acme"}, {"name": "Acme", "city": "Bergen"}, {"name": "Acme", "city": "Oslo"}, POGO
    )
    assert result.unchanged
    assert result.conflicts == ()


def test_conflicts_are_listed_in_the_order_of_the_fields():
    base = {"name": "Acme", "city": "Bergen"}
    result = merge(["city", "name"], base, {"name": "A", "city": "B"}, {"name": "C", "city": "D"}, POGO)
    assert [c.field for c in result.conflicts] == ["city", "name"]


def test_a_conflict_reads_as_a_plain_dict_for_the_plan_and_the_sync_log():
    conflict = FieldConflict("name", INVOICED, "Acme Inc", "Acme AS", "both sides changed since the last sync")
    assert conflict.as_dict() == {
        "field": "name",
        "winner": INVOICED,
        "value": "Acme Inc",
        "losing_value": "Acme AS",
        "reason": "both sides changed since the last sync",
    }


def test_an_empty_result_is_unchanged():
    assert MergeResult({POGO: {}, INVOICED: {}}, {}).unchanged


@pytest.mark.parametrize("policy", [POGO, INVOICED])
def test_a_flow_configured_to_let_one_system_win_ignores_the_timestamps(policy):
    assert (winner(policy, LATER, T0), winner(policy, T0, LATER)) == (policy, policy)


def test_by_default_the_more_recent_change_in_invoiced_wins():
    assert winner("latest", T0, LATER) == INVOICED


def test_by_default_the_more_recent_change_in_poweroffice_go_wins():
    assert winner("latest", LATER, T0) == POGO


def test_changes_at_the_same_instant_go_to_poweroffice_go():
    assert winner("latest", T0, T0) == POGO


def test_the_same_instant_in_different_time_zones_is_a_tie_that_goes_to_poweroffice_go():
    oslo = dt.timezone(dt.timedelta(hours=1))
    assert winner("latest", T0.astimezone(oslo), T0) == POGO


def test_the_side_with_a_known_change_time_wins_over_one_without_poweroffice_go_missing():
    assert winner("latest", None, T0) == INVOICED


def test_the_side_with_a_known_change_time_wins_over_one_without_invoiced_missing():
    assert winner("latest", T0, None) == POGO


def test_with_no_change_time_on_either_side_poweroffice_go_wins():
    assert winner("latest", None, None) == POGO


def test_importing_the_merge_loads_neither_airflow_nor_a_database_or_http_client():
    # The merge is meant to stay a light, pure module (benchmarks, the console and these tests use it bare).
    code = (
        "import sys; import pogo_invoiced_sync.engine.merge; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'psycopg', 'psycopg2', 'requests', "
        "'httpx', 'sqlalchemy', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
