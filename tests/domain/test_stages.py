"""How staging labels move (spec §3), as pure functions: ``domain.stages``.

Example tests pin the numbered rules of §3.2 / §3.3 and the worked sequence of §3.4; the
hypothesis tests check the invariants on any label map a secret can be in.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strongroom.domain.stages import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    MAX_LABELS,
    holder,
    put_value,
    sorted_stages,
    update_stage,
)
from strongroom.errors import InvalidParameterException, LimitExceededException

LabelMap = Mapping[str, Collection[str]]


def visible(labels: LabelMap) -> dict[str, list[str]]:
    """Labelled versions only, as DescribeSecret shows them."""
    return {vid: sorted(s) for vid, s in labels.items() if s}


# --- PutSecretValue (§3.2) -----------------------------------------------------------------


def test_it_labels_the_first_value_of_a_secret_current():
    assert put_value({}, "v1", None) == {"v1": {AWSCURRENT}}


def test_it_makes_a_new_value_current_when_no_stages_are_requested():  # rule 1
    assert visible(put_value({"v1": {AWSCURRENT}}, "v2", None)) == {
        "v1": [AWSPREVIOUS],
        "v2": [AWSCURRENT],
    }


def test_it_moves_every_requested_label_and_leaves_the_rest():  # rule 2
    labels = {"v1": {AWSCURRENT}, "v2": {"one", "two", "three"}}
    after = put_value(labels, "v3", ["one", "two", "four"])
    assert visible(after) == {"v1": [AWSCURRENT], "v2": ["three"], "v3": ["four", "one", "two"]}


def test_it_deprecates_a_version_whose_labels_all_moved_away():  # rule 2
    labels = {"v1": {AWSCURRENT}, "v2": {"one", "two", "three"}}
    after = put_value(labels, "v3", ["one", "two", "three", "four"])
    assert after["v2"] == set()
    assert visible(after) == {"v1": [AWSCURRENT], "v3": ["four", "one", "three", "two"]}


def test_it_makes_the_old_current_exactly_previous_and_deprecates_the_old_previous():  # rule 3
    labels = {"v1": {AWSPREVIOUS}, "v2": {AWSCURRENT, AWSPENDING, "custom"}}
    after = put_value(labels, "v3", [AWSCURRENT])
    assert after["v1"] == set()
    assert visible(after) == {"v2": [AWSPREVIOUS], "v3": [AWSCURRENT]}


def test_it_keeps_other_labels_on_the_old_previous_version():  # rule 3
    labels = {"v1": {AWSPREVIOUS, "keep"}, "v2": {AWSCURRENT}}
    after = put_value(labels, "v3", None)
    assert visible(after) == {"v1": ["keep"], "v2": [AWSPREVIOUS], "v3": [AWSCURRENT]}


def test_it_leaves_current_and_previous_alone_when_current_is_not_requested():  # rule 4
    labels = {"v1": {AWSPREVIOUS}, "v2": {AWSCURRENT}}
    after = put_value(labels, "v3", ["SAMPLESTAGE1", "SAMPLESTAGE0"])
    assert visible(after) == {
        "v1": [AWSPREVIOUS],
        "v2": [AWSCURRENT],
        "v3": ["SAMPLESTAGE0", "SAMPLESTAGE1"],
    }


def test_it_adds_current_to_the_first_value_even_when_not_requested():  # rule 5
    assert visible(put_value({}, "v1", [AWSPENDING])) == {"v1": [AWSCURRENT, AWSPENDING]}


def test_it_moves_pending_off_the_current_version():  # rule 7
    labels = {"v1": {AWSCURRENT, AWSPENDING}}
    after = put_value(labels, "v2", [AWSPENDING, "extra"])
    assert visible(after) == {"v1": [AWSCURRENT], "v2": [AWSPENDING, "extra"]}


def test_it_fills_an_existing_empty_version_and_keeps_its_labels():
    # The empty AWSPENDING version RotateSecret makes, filled by the rotation function.
    labels = {"v1": {AWSCURRENT}, "v2": {AWSPENDING}}
    after = put_value(labels, "v2", [AWSPENDING])
    assert visible(after) == {"v1": [AWSCURRENT], "v2": [AWSPENDING]}


def test_it_refuses_a_put_that_would_exceed_the_label_quota():
    labels = {"v1": {AWSCURRENT, *(f"L{i}" for i in range(MAX_LABELS - 1))}}
    with pytest.raises(LimitExceededException):
        put_value(labels, "v2", ["one-too-many"])


def test_it_allows_exactly_the_label_quota():
    labels = {"v1": {AWSCURRENT, *(f"L{i}" for i in range(MAX_LABELS - 2))}}
    after = put_value(labels, "v2", ["last"])
    assert len(set().union(*after.values())) == MAX_LABELS


def test_it_does_not_count_labels_that_the_put_removes():
    # v1 loses its custom labels when AWSCURRENT moves, so the total stays within the quota.
    labels = {"v1": {AWSCURRENT, *(f"L{i}" for i in range(MAX_LABELS - 1))}}
    after = put_value(labels, "v2", None)
    assert visible(after) == {"v1": [AWSPREVIOUS], "v2": [AWSCURRENT]}


# --- UpdateSecretVersionStage (§3.3) --------------------------------------------------------


def test_it_adds_a_label_to_the_target_and_keeps_its_others():  # rule 1
    labels = {"v1": {AWSCURRENT}, "v2": {AWSPENDING, "custom"}}
    after = update_stage(labels, AWSCURRENT, remove_from="v1", move_to="v2")
    assert visible(after) == {"v1": [AWSPREVIOUS], "v2": [AWSCURRENT, AWSPENDING, "custom"]}


def test_it_requires_remove_from_when_current_is_elsewhere():  # rule 2
    labels = {"v1": {AWSCURRENT}, "v2": set()}
    with pytest.raises(InvalidParameterException) as info:
        update_stage(labels, AWSCURRENT, remove_from=None, move_to="v2")
    assert info.value.message == (
        "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is "
        "currently attached to version v1, so you must explicitly reference that version in "
        "RemoveFromVersionId."
    )


def test_it_requires_remove_from_for_a_custom_label_attached_elsewhere():  # rule 2
    labels = {"v1": {AWSCURRENT, "blue"}, "v2": set()}
    with pytest.raises(InvalidParameterException) as info:
        update_stage(labels, "blue", remove_from=None, move_to="v2")
    assert "Staging label blue is currently attached to version v1" in info.value.message


def test_it_refuses_a_remove_from_that_does_not_hold_the_label():  # rule 2
    labels = {"v1": {AWSCURRENT}, "v2": set(), "v3": set()}
    with pytest.raises(InvalidParameterException):
        update_stage(labels, AWSCURRENT, remove_from="v2", move_to="v3")


def test_it_refuses_remove_from_equal_to_move_to_when_the_label_is_elsewhere():  # rule 2
    labels = {"v1": {AWSCURRENT}, "v2": set()}
    with pytest.raises(InvalidParameterException):
        update_stage(labels, AWSCURRENT, remove_from="v2", move_to="v2")


def test_it_removes_a_label_and_keeps_the_others():  # rule 3
    labels = {"v1": {AWSCURRENT, "PENDING"}}
    after = update_stage(labels, "PENDING", remove_from="v1", move_to=None)
    assert visible(after) == {"v1": [AWSCURRENT]}


def test_it_refuses_to_remove_a_label_the_version_does_not_have():  # rule 3
    labels = {"v1": {AWSCURRENT}, "v2": {"x"}}
    with pytest.raises(InvalidParameterException) as info:
        update_stage(labels, "x", remove_from="v1", move_to=None)
    assert info.value.message == "Version stage x not found in version v1"


def test_it_refuses_to_remove_current_without_moving_it():
    with pytest.raises(InvalidParameterException):
        update_stage({"v1": {AWSCURRENT}}, AWSCURRENT, remove_from="v1", move_to=None)


def test_it_refuses_a_call_with_neither_version():
    with pytest.raises(InvalidParameterException):
        update_stage({"v1": {AWSCURRENT}}, "x", remove_from=None, move_to=None)


def test_moving_current_keeps_the_losers_other_labels_and_strips_the_old_previous():  # rule 4
    labels = {
        "v1": {AWSPREVIOUS, "PUT0"},
        "v2": {AWSCURRENT, "AWSSOMETHING", "PUT1"},
        "v3": {AWSPENDING},
    }
    after = update_stage(labels, AWSCURRENT, remove_from="v2", move_to="v3")
    assert visible(after) == {
        "v1": ["PUT0"],
        "v2": [AWSPREVIOUS, "AWSSOMETHING", "PUT1"],
        "v3": [AWSCURRENT, AWSPENDING],
    }


def test_rolling_back_swaps_current_and_previous():  # rule 5
    labels = {"v1": {AWSPREVIOUS}, "v2": {AWSCURRENT}}
    after = update_stage(labels, AWSCURRENT, remove_from="v2", move_to="v1")
    assert visible(after) == {"v1": [AWSCURRENT], "v2": [AWSPREVIOUS]}


@pytest.mark.parametrize("missing", ["remove_from", "move_to"])
def test_it_refuses_an_unknown_version(missing):  # rule 6
    labels = {"v1": {AWSCURRENT}, "v2": set()}
    kwargs = {"remove_from": "v1", "move_to": "v2", missing: "nope"}
    with pytest.raises(InvalidParameterException) as info:
        update_stage(labels, AWSCURRENT, **kwargs)
    assert info.value.message == "Not a valid version: nope"


def test_it_refuses_a_move_that_would_exceed_the_label_quota():  # rule 6
    labels = {"v1": {AWSCURRENT, *(f"L{i}" for i in range(MAX_LABELS - 1))}, "v2": set()}
    with pytest.raises(LimitExceededException):
        update_stage(labels, "one-too-many", remove_from=None, move_to="v2")


def test_removing_the_last_label_deprecates_the_version():  # rule 8
    labels = {"v1": {AWSCURRENT}, "v2": {"only"}}
    after = update_stage(labels, "only", remove_from="v2", move_to=None)
    assert after["v2"] == set()


def test_moving_a_label_onto_its_holder_changes_nothing():
    labels = {"v1": {AWSCURRENT}, "v2": {AWSPREVIOUS}}
    assert update_stage(labels, AWSCURRENT, remove_from=None, move_to="v1") == labels


def test_the_worked_reference_sequence():  # §3.4
    labels = put_value({}, "v1", None)
    assert visible(labels) == {"v1": [AWSCURRENT]}
    labels = put_value(labels, "v2", [AWSPENDING])
    assert visible(labels) == {"v1": [AWSCURRENT], "v2": [AWSPENDING]}
    labels = update_stage(labels, AWSCURRENT, remove_from="v1", move_to="v2")
    assert visible(labels) == {"v1": [AWSPREVIOUS], "v2": [AWSCURRENT, AWSPENDING]}
    labels = put_value(labels, "v3", [AWSPENDING])
    assert visible(labels) == {"v1": [AWSPREVIOUS], "v2": [AWSCURRENT], "v3": [AWSPENDING]}
    labels = update_stage(labels, AWSCURRENT, remove_from="v2", move_to="v3")
    assert visible(labels) == {"v2": [AWSPREVIOUS], "v3": [AWSCURRENT, AWSPENDING]}


def test_sorted_stages_is_alphabetical():
    assert sorted_stages({"b", AWSCURRENT, "a"}) == [AWSCURRENT, "a", "b"]


# --- Invariants (hypothesis) ----------------------------------------------------------------

VERSION_IDS = [f"v{i}" for i in range(6)]
LABELS = [AWSCURRENT, AWSPREVIOUS, AWSPENDING, "blue", "green", "red"]


@st.composite
def label_maps(draw):
    """Any state a secret with at least one version can be in."""
    count = draw(st.integers(1, len(VERSION_IDS)))
    ids = VERSION_IDS[:count]
    labels: dict[str, set[str]] = {vid: set() for vid in ids}
    labels[draw(st.sampled_from(ids))].add(AWSCURRENT)
    for label in LABELS[1:]:
        where = draw(st.sampled_from([None, *ids]))
        if where is not None:
            labels[where].add(label)
    return labels


def assert_well_formed(labels: LabelMap) -> None:
    seen: list[str] = [label for stages_ in labels.values() for label in stages_]
    assert len(seen) == len(set(seen)), "a label is on two versions"
    assert sum(AWSCURRENT in s for s in labels.values()) == 1
    assert len(set(seen)) <= MAX_LABELS


version_choice = st.sampled_from([None, *VERSION_IDS, "unknown"])


@settings(max_examples=400, deadline=None)
@given(
    labels=label_maps(),
    new=st.sampled_from([*VERSION_IDS, "fresh"]),
    requested=st.none() | st.sets(st.sampled_from([*LABELS, "new"]), min_size=1),
)
def test_put_value_keeps_the_invariants(labels, new, requested):
    before = copy.deepcopy(labels)
    after = put_value(labels, new, requested)
    assert labels == before, "the input was modified"
    assert_well_formed(after)
    wanted = set(requested or {AWSCURRENT})
    assert wanted <= after[new]
    old_current = holder(before, AWSCURRENT)
    moved_current = AWSCURRENT in wanted and old_current != new
    for vid, old in before.items():
        if vid == new:
            continue
        if moved_current and vid == old_current:
            assert after[vid] == ({AWSPREVIOUS} - wanted)
        elif moved_current:
            assert after[vid] == old - wanted - {AWSPREVIOUS}
        else:
            assert after[vid] == old - wanted
    if not moved_current:
        assert holder(after, AWSCURRENT) == old_current


@settings(max_examples=600, deadline=None)
@given(
    labels=label_maps(),
    stage=st.sampled_from([*LABELS, "new"]),
    remove_from=version_choice,
    move_to=version_choice,
)
def test_update_stage_keeps_the_invariants_or_changes_nothing(labels, stage, remove_from, move_to):
    before = copy.deepcopy(labels)
    try:
        after = update_stage(labels, stage, remove_from=remove_from, move_to=move_to)
    except InvalidParameterException:
        assert labels == before
        return
    assert labels == before, "the input was modified"
    assert_well_formed(after)
    old_holder = holder(before, stage)
    # Whatever the call, a label left its holder only through RemoveFromVersionId.
    if old_holder is not None and old_holder not in (move_to, remove_from):
        assert holder(after, stage) == old_holder
    if move_to is not None:
        assert stage in after[move_to]
    else:
        assert stage not in after[remove_from]
    untouched = {*LABELS, "new"} - {stage, AWSPREVIOUS}
    for label in untouched:
        assert holder(after, label) == holder(before, label)
    if stage == AWSCURRENT and old_holder != move_to:
        assert holder(after, AWSPREVIOUS) == old_holder
        # The version losing AWSCURRENT keeps everything else it had.
        assert after[old_holder] == (before[old_holder] - {AWSCURRENT}) | {AWSPREVIOUS}
    elif stage != AWSPREVIOUS:
        assert holder(after, AWSPREVIOUS) == holder(before, AWSPREVIOUS)


@settings(max_examples=300, deadline=None)
@given(labels=label_maps(), stage=st.sampled_from(LABELS), move_to=st.sampled_from(VERSION_IDS))
def test_a_move_that_names_the_holder_always_succeeds(labels, stage, move_to):
    assume(move_to in labels)
    remove_from = holder(labels, stage)
    after = update_stage(labels, stage, remove_from=remove_from, move_to=move_to)
    assert holder(after, stage) == move_to
