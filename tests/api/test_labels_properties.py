"""Any sequence of PutSecretValue and UpdateSecretVersionStage keeps the label invariants
(spec §2.5, §3), checked over the wire after every step:

* exactly one version carries AWSCURRENT, and GetSecretValue returns its value;
* each label is on at most one version;
* AWSPREVIOUS is on the version that held AWSCURRENT before AWSCURRENT last moved, and
  nowhere before it ever moved (the steps never name AWSPREVIOUS themselves);
* a call that fails changes nothing (ListSecretVersionIds is identical before and after).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
STAGES = [CURRENT, PENDING, "blue", "green"]
UNKNOWN_VERSION = "0" * 32

# A version is named by its index (taken modulo the number of versions), or not at all, or
# by an id the secret has never had, or ("holder") as the version the label is on now.
index = st.integers(0, 15)
special = st.sampled_from([None, "unknown", "holder"])

put_step = st.fixed_dictionaries(
    {
        "op": st.just("put"),
        "stages": st.none() | st.lists(st.sampled_from(STAGES), min_size=1, max_size=3),
        "token": st.sampled_from(["fresh", "fresh", "fresh", "same-value", "other-value"]),
        "version": st.integers(0, 15),
    }
)
move_step = st.fixed_dictionaries(
    {
        "op": st.just("move"),
        "stage": st.sampled_from(STAGES),
        # "target": the same version as MoveToVersionId (legal only if the label is there).
        "remove_from": st.sampled_from(["holder", "holder", "target", None, "unknown"]) | index,
        "move_to": index | index | special,
    }
)
steps = st.lists(put_step | move_step, min_size=3, max_size=12)


@dataclass
class Model:
    """What the test knows independently of the server."""

    name: str
    versions: list[str]  # ids, oldest first
    values: dict[str, str]
    previous: str | None = None  # who held AWSCURRENT before it last moved
    listing: list[dict[str, Any]] = field(default_factory=list)

    def pick(self, ref: Any) -> str | None:
        if ref is None:
            return None
        if ref == "unknown":
            return UNKNOWN_VERSION
        return self.versions[ref % len(self.versions)]


def listing(client, name: str) -> list[dict[str, Any]]:
    return client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]


def label_map(entries: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {e["VersionId"]: set(e.get("VersionStages", [])) for e in entries}


def holder(labels: dict[str, set[str]], stage: str) -> str | None:
    holders = [vid for vid, stages in labels.items() if stage in stages]
    assert len(holders) <= 1, f"{stage} is on {holders}"
    return holders[0] if holders else None


def run_put(client, model: Model, step: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {}
    if step["stages"] is not None:
        kwargs["VersionStages"] = step["stages"]
    if step["token"] == "fresh":
        version_id = str(uuid.uuid4())
        value = f"value-{len(model.versions)}"
    else:
        version_id = model.pick(step["version"])
        value = model.values[version_id]
        if step["token"] == "other-value":
            value += "-changed"
    before = label_map(model.listing)
    response = client.put_secret_value(
        SecretId=model.name, SecretString=value, ClientRequestToken=version_id, **kwargs
    )
    assert step["token"] != "other-value", "a reused token with another value was accepted"
    assert response["VersionId"] == version_id
    if step["token"] == "same-value":
        # An idempotent retry: nothing moves, the answer carries the labels it has now.
        assert sorted(response.get("VersionStages", [])) == sorted(before[version_id])
        return
    model.versions.append(version_id)
    model.values[version_id] = value
    after = label_map(listing(client, model.name))
    assert set(step["stages"] or [CURRENT]) <= after[version_id]
    assert sorted(response["VersionStages"]) == sorted(after[version_id])


def run_move(client, model: Model, step: dict[str, Any]) -> None:
    labels = label_map(model.listing)
    named = {"holder": holder(labels, step["stage"])}
    move_to = named["holder"] if step["move_to"] == "holder" else model.pick(step["move_to"])
    named["target"] = move_to
    ref = step["remove_from"]
    remove_from = named[ref] if ref in named else model.pick(ref)
    kwargs = {"RemoveFromVersionId": remove_from, "MoveToVersionId": move_to}
    client.update_secret_version_stage(
        SecretId=model.name,
        VersionStage=step["stage"],
        **{k: v for k, v in kwargs.items() if v is not None},
    )
    after = label_map(listing(client, model.name))
    if move_to is not None:
        assert step["stage"] in after[move_to]
    else:
        assert step["stage"] not in after[remove_from]
    old_holder = named["holder"]
    if old_holder is not None and old_holder not in (remove_from, move_to):
        assert step["stage"] in after[old_holder], "the label left a version nobody named"


def check_invariants(client, model: Model, current_before: str | None) -> None:
    labels = label_map(model.listing)
    for stage in {s for stages in labels.values() for s in stages}:
        holder(labels, stage)  # asserts at most one holder
    holders = [vid for vid, stages in labels.items() if CURRENT in stages]
    assert len(holders) == 1, f"AWSCURRENT is on {holders}"
    current = holders[0]
    if current != current_before:
        model.previous = current_before
    assert holder(labels, PREVIOUS) == model.previous
    got = client.get_secret_value(SecretId=model.name)
    assert (got["VersionId"], got["SecretString"]) == (current, model.values[current])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_any_sequence_of_puts_and_moves_keeps_the_label_invariants(client, steps):
    name = f"prop-{uuid.uuid4().hex}"
    first = str(uuid.uuid4())
    client.create_secret(Name=name, SecretString="value-0", ClientRequestToken=first)
    model = Model(name=name, versions=[first], values={first: "value-0"})
    model.listing = listing(client, name)
    for step in steps:
        current_before = holder(label_map(model.listing), CURRENT)
        try:
            if step["op"] == "put":
                run_put(client, model, step)
            else:
                run_move(client, model, step)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            expected = {"put": {"ResourceExistsException"}, "move": {"InvalidParameterException"}}
            # A failure is one possible outcome of a random step, not the thing under test.
            assert code in expected[step["op"]], exc.response["Error"]  # noqa: PT017
            assert listing(client, name) == model.listing, "a failed call changed the labels"
            continue
        # GetSecretValue first: it may set LastAccessedDate, which the next comparison sees.
        model.listing = listing(client, name)
        check_invariants(client, model, current_before)
        model.listing = listing(client, name)
    described = client.describe_secret(SecretId=name).get("VersionIdsToStages", {})
    assert {vid: set(s) for vid, s in described.items()} == {
        vid: s for vid, s in label_map(model.listing).items() if s
    }
