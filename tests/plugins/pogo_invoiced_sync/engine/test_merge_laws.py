"""The laws of the three-way merge (engine/merge.py), checked with Hypothesis over a tiny value alphabet.

A small alphabet (None, "", one- and two-letter text) makes sides, merge base and edits collide often. The runs are
derandomized and keep no example database, so CI sees the same examples every time; no deadline, as the machine is
shared and these are not timing tests.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, SYSTEMS
from pogo_invoiced_sync.engine.merge import MergeResult, merge, winner

LAWS = settings(max_examples=200, derandomize=True, database=None, deadline=None)

FIELDS = ("name", "city", "country", "zip")
ZONES = (dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5)))
VALUES = st.none() | st.text(alphabet="ab", max_size=2)
WINNERS = st.sampled_from(SYSTEMS)
# Change times as the link store hands them over (timestamptz: aware), in a few zones so equal instants differ in form.
TIMES = st.datetimes(
    min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 1, 2), timezones=st.sampled_from(ZONES)
)
Values = dict[str, "str | None"]


def _values(fields: tuple[str, ...] = FIELDS) -> st.SearchStrategy[Values]:
    """One side's values; a field left out reads as None."""
    return st.dictionaries(st.sampled_from(fields), VALUES)


def _full(fields: tuple[str, ...] = FIELDS) -> st.SearchStrategy[Values]:
    """A merge base that holds every field (the pair has been synchronised with all of them)."""
    return st.fixed_dictionaries(dict.fromkeys(fields, VALUES))


FIELD_LISTS = st.lists(st.sampled_from(FIELDS), unique=True)


def _after(values: Values, result: MergeResult, system: str) -> Values:
    """One side once the result's writes to it have been applied."""
    return {**values, **result.writes[system]}


def _moved_base(base: Values, result: MergeResult) -> Values:
    """The merge base once the result is applied: reconcile and upsert move it by the agreed and the written values."""
    return {**base, **result.agreed, **result.writes[POGO], **result.writes[INVOICED]}


@LAWS
@given(FIELD_LISTS, _values(), _values(), _values(), WINNERS)
def test_applying_a_merge_result_leaves_both_sides_and_the_merge_base_equal_on_every_field(
    fields, base, pogo, invoiced, conflict_winner
):
    result = merge(fields, base, pogo, invoiced, conflict_winner)
    p, i, b = _after(pogo, result, POGO), _after(invoiced, result, INVOICED), _moved_base(base, result)
    for name in fields:
        assert name in b
        assert p.get(name) == i.get(name) == b[name]


@LAWS
@given(FIELD_LISTS, _values(), _values(), _values(), WINNERS)
def test_a_merge_never_writes_a_value_the_target_already_holds(fields, base, pogo, invoiced, conflict_winner):
    result = merge(fields, base, pogo, invoiced, conflict_winner)
    for system, values in ((POGO, pogo), (INVOICED, invoiced)):
        for name, value in result.writes[system].items():
            assert values.get(name) != value


@LAWS
@given(FIELD_LISTS, _values(), _values(), _values(), WINNERS)
def test_a_merge_touches_only_the_listed_fields(fields, base, pogo, invoiced, conflict_winner):
    result = merge(fields, base, pogo, invoiced, conflict_winner)
    touched = {*result.writes[POGO], *result.writes[INVOICED], *result.agreed, *(c.field for c in result.conflicts)}
    assert touched <= set(fields)


@LAWS
@given(_full(), _values(), st.sampled_from(SYSTEMS), WINNERS)
def test_a_change_on_one_side_only_is_carried_over_to_the_other(base, edits, edited, conflict_winner):
    changed = {name: value for name, value in edits.items() if value != base[name]}
    sides = {edited: {**base, **changed}, (INVOICED if edited == POGO else POGO): dict(base)}
    result = merge(FIELDS, base, sides[POGO], sides[INVOICED], conflict_winner)
    target = INVOICED if edited == POGO else POGO
    assert result.writes == {target: changed, edited: {}}
    assert (result.agreed, result.conflicts) == ({}, ())


@st.composite
def _disjoint_edits(draw: st.DrawFn) -> tuple[Values, Values, Values]:
    """A merge base holding every field, and edits on each side to fields the other side left alone."""
    base = draw(_full())
    pogo, invoiced = dict(base), dict(base)
    for name in FIELDS:
        side = draw(st.sampled_from((None, pogo, invoiced)))
        if side is not None:
            side[name] = draw(VALUES)
    return base, pogo, invoiced


@LAWS
@given(_disjoint_edits(), WINNERS)
def test_edits_to_different_fields_on_each_side_both_survive(edits, conflict_winner):
    base, pogo, invoiced = edits
    result = merge(FIELDS, base, pogo, invoiced, conflict_winner)
    for name in FIELDS:
        edited = pogo[name] if pogo[name] != base[name] else invoiced[name]
        assert _after(pogo, result, POGO)[name] == _after(invoiced, result, INVOICED)[name] == edited
    assert result.conflicts == ()


@LAWS
@given(
    st.lists(VALUES, min_size=3, max_size=3, unique=True),
    st.sampled_from(FIELDS),
    _full(),
    WINNERS,
)
def test_a_true_conflict_keeps_the_losing_value_and_both_sides_end_with_the_winners(
    values, name, base, conflict_winner
):
    # The field's merge base and each side's value all differ: both sides changed it since the last sync.
    base = {**base, name: values[0]}
    pogo, invoiced = {**base, name: values[1]}, {**base, name: values[2]}
    won, lost = (values[1], values[2]) if conflict_winner == POGO else (values[2], values[1])
    result = merge(FIELDS, base, pogo, invoiced, conflict_winner)
    [conflict] = [c for c in result.conflicts if c.field == name]
    assert (conflict.winner, conflict.value, conflict.losing_value) == (conflict_winner, won, lost)
    assert conflict.reason == "both sides changed since the last sync"
    assert _after(pogo, result, POGO)[name] == _after(invoiced, result, INVOICED)[name] == won


@LAWS
@given(
    st.lists(st.text(alphabet="ab", min_size=1, max_size=2), min_size=2, max_size=2, unique=True),
    st.sampled_from(FIELDS),
    _full(),
    WINNERS,
)
def test_without_a_merge_base_two_differing_values_are_a_conflict_the_winner_takes(values, name, base, conflict_winner):
    base = {k: v for k, v in base.items() if k != name}
    pogo, invoiced = {**base, name: values[0]}, {**base, name: values[1]}
    won, lost = (values[0], values[1]) if conflict_winner == POGO else (values[1], values[0])
    result = merge(FIELDS, base, pogo, invoiced, conflict_winner)
    assert [(c.field, c.value, c.losing_value, c.reason) for c in result.conflicts] == [
        (name, won, lost, "no merge base yet and both sides hold a value")
    ]
    assert _after(pogo, result, POGO)[name] == _after(invoiced, result, INVOICED)[name] == won


@LAWS
@given(st.none() | TIMES, st.none() | TIMES)
def test_by_default_the_winner_is_never_the_side_whose_change_is_known_to_be_older(pogo_at, invoiced_at):
    won = winner("latest", pogo_at, invoiced_at)
    if pogo_at is not None and invoiced_at is not None:
        assert (pogo_at, invoiced_at)[won == INVOICED] >= (pogo_at, invoiced_at)[won == POGO]
    elif pogo_at is not None or invoiced_at is not None:
        assert won == (POGO if pogo_at is not None else INVOICED)


@LAWS
@given(FIELD_LISTS, _values(), _values(), _values(), WINNERS)
def test_without_a_merge_base_no_write_replaces_a_value_with_none(fields, base, pogo, invoiced, conflict_winner):
    # MAPPING.md, decision 11. Canonical values (flow_mapping.normalise) have one empty value, None: "" never
    # reaches the merge from a record, and the merge treats it as text like any other.
    result = merge(fields, base, pogo, invoiced, conflict_winner)
    for system, values in ((POGO, pogo), (INVOICED, invoiced)):
        for name, value in result.writes[system].items():
            if name not in base:
                assert value is not None or values.get(name) is None


@LAWS
@given(FIELD_LISTS, _values(), _values(), _values(), WINNERS, WINNERS)
def test_our_own_echo_is_no_change_once_the_merge_base_has_moved(fields, base, pogo, invoiced, first, second):
    result = merge(fields, base, pogo, invoiced, first)
    again = merge(
        fields, _moved_base(base, result), _after(pogo, result, POGO), _after(invoiced, result, INVOICED), second
    )
    assert again.unchanged
    assert again.conflicts == ()


@LAWS
@given(FIELD_LISTS, _values(), _values(), _values(), WINNERS)
def test_a_conflict_is_decided_only_where_both_sides_differ_and_neither_side_alone_explains_it(
    fields, base, pogo, invoiced, conflict_winner
):
    result = merge(fields, base, pogo, invoiced, conflict_winner)
    for conflict in result.conflicts:
        a, b = pogo.get(conflict.field), invoiced.get(conflict.field)
        assert a != b
        if conflict.field in base:
            assert base[conflict.field] not in (a, b)
        else:
            assert a is not None
            assert b is not None
