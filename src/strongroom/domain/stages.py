"""How staging labels move between the versions of one secret (spec §3).

Both functions are pure: they take the current label map (version id -> labels, deprecated
versions mapped to an empty set) and return the new one, or raise the error AWS gives. The
operations layer loads the map, calls one of these, and writes the result back in the same
transaction, so the invariants below hold wherever the map is checked:

* a label is on at most one version;
* once any version exists, exactly one carries AWSCURRENT;
* at most ``MAX_LABELS`` distinct labels across all versions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from strongroom.errors import InvalidParameterException, LimitExceededException

AWSCURRENT = "AWSCURRENT"
AWSPREVIOUS = "AWSPREVIOUS"
AWSPENDING = "AWSPENDING"
MAX_LABELS = 20  # per secret, across all versions (AWS quota)

Labels = dict[str, set[str]]


def _copy(labels: Mapping[str, Collection[str]]) -> Labels:
    return {version: set(stages) for version, stages in labels.items()}


def holder(labels: Mapping[str, Collection[str]], stage: str) -> str | None:
    for version, stages in labels.items():
        if stage in stages:
            return version
    return None


def _check_limit(labels: Labels) -> Labels:
    distinct = set().union(*labels.values()) if labels else set()
    if len(distinct) > MAX_LABELS:
        # Text UNCONFIRMED (spec §2.5); the code is AWS's.
        raise LimitExceededException(
            f"A secret can have at most {MAX_LABELS} staging labels across all its versions."
        )
    return labels


def put_value(
    labels: Mapping[str, Collection[str]], new_version: str, requested: Collection[str] | None
) -> Labels:
    """Labels after PutSecretValue / UpdateSecret stores ``new_version`` (spec §3.2).

    ``new_version`` may already exist (the empty AWSPENDING version a rotation made); it keeps
    what it had and gains ``requested`` (AWSCURRENT when omitted).
    """
    result = _copy(labels)
    wanted = set(requested) if requested else {AWSCURRENT}
    current = holder(result, AWSCURRENT)
    if current is None:
        wanted.add(AWSCURRENT)  # the first value of a secret is always current (rule 5)
    for held in result.values():
        held.difference_update(wanted)
    if AWSCURRENT in wanted and current is not None and current != new_version:
        # The old current version becomes exactly [AWSPREVIOUS]: it loses AWSPENDING (observed)
        # and custom labels (UNCONFIRMED; what every observation is consistent with, rule 3).
        for stages in result.values():
            stages.discard(AWSPREVIOUS)
        result[current] = set() if AWSPREVIOUS in wanted else {AWSPREVIOUS}
    result.setdefault(new_version, set()).update(wanted)
    return _check_limit(result)


def update_stage(  # noqa: C901 - one branch per rule of spec §3.3, read top to bottom
    labels: Mapping[str, Collection[str]],
    stage: str,
    *,
    remove_from: str | None,
    move_to: str | None,
) -> Labels:
    """Labels after UpdateSecretVersionStage (spec §3.3)."""
    result = _copy(labels)
    for version in (remove_from, move_to):
        if version is not None and version not in result:
            # Text from emulators, UNCONFIRMED against AWS (spec §16.2).
            raise InvalidParameterException(f"Not a valid version: {version}")
    current_holder = holder(result, stage)
    # Also when RemoveFromVersionId equals MoveToVersionId: naming the target as the version
    # to remove from must not stand in for the version that really holds the label (rule 2).
    if remove_from is not None and stage not in result[remove_from]:
        raise InvalidParameterException(f"Version stage {stage} not found in version {remove_from}")
    if move_to is None:
        if remove_from is None:
            raise InvalidParameterException(
                "You must specify either MoveToVersionId or RemoveFromVersionId."
            )
        if stage == AWSCURRENT:
            # Keeps "exactly one AWSCURRENT"; AWS refuses too (text UNCONFIRMED).
            raise InvalidParameterException(
                "You can't remove the staging label AWSCURRENT from a version without "
                "moving it to another version with MoveToVersionId."
            )
        result[remove_from].discard(stage)
        return result
    if current_holder is not None and current_holder != move_to and remove_from is None:
        raise InvalidParameterException(
            f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is "
            f"currently attached to version {current_holder}, so you must explicitly reference "
            "that version in RemoveFromVersionId."
        )
    if current_holder == move_to:
        return result
    if current_holder is not None:
        result[current_holder].discard(stage)
    result[move_to].add(stage)
    if stage == AWSCURRENT and current_holder is not None:
        # The version that lost AWSCURRENT becomes AWSPREVIOUS and keeps its other labels;
        # the old AWSPREVIOUS holder (the target itself on a roll-back) loses it (rules 4, 5).
        for stages in result.values():
            stages.discard(AWSPREVIOUS)
        result[current_holder].add(AWSPREVIOUS)
    return _check_limit(result)


def sorted_stages(stages: Collection[str]) -> list[str]:
    # AWS's own order is UNCONFIRMED (its snapshots sort); a stable order is what clients need.
    return sorted(stages)
