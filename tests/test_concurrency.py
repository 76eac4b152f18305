"""Many clients at once on the same few secrets (the in-process server, real HTTP).

Writes on one secret serialise in the database (``BEGIN IMMEDIATE`` on SQLite), so whatever
the interleaving: every acknowledged PutSecretValue is readable by its VersionId with its
value, each secret ends with exactly one AWSCURRENT, and a ClientRequestToken sent by many
threads at once makes one version, not several.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

THREADS = 16
OPS_PER_THREAD = 12

# A label move can lose a race (RemoveFromVersionId no longer holds the label): AWS refuses
# that with InvalidParameterException, and so may we. Nothing else is an acceptable answer.
LOST_RACE = "InvalidParameterException"


def in_parallel(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for i in range(count) on ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def start(i: int) -> Any:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


def labels_of(client: Any, name: str) -> dict[str, list[str]]:
    response = client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
    assert "NextToken" not in response
    return {v["VersionId"]: v.get("VersionStages", []) for v in response["Versions"]}


class Workload:
    """Random puts, label moves and reads on a few secrets, and what they were told."""

    def __init__(self, server: Any, region: str, names: list[str]) -> None:
        self.server, self.region, self.names = server, region, names
        self.values: dict[str, str] = {}  # version id -> value, noted before the request
        self.acknowledged: dict[str, str] = {}  # version id -> secret, noted after a 200
        self.lock = threading.Lock()

    def put(self, client: Any, name: str, value: str) -> None:
        token = str(uuid.uuid4())
        with self.lock:
            self.values[token] = value
        client.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString=value)
        with self.lock:
            self.acknowledged[token] = name

    def get(self, client: Any, name: str) -> str | None:
        got = client.get_secret_value(SecretId=name)
        with self.lock:
            expected = self.values.get(got["VersionId"])
        if got["SecretString"] != expected:
            return f"{got['VersionId']} read as {got['SecretString']!r}"
        return None

    def run(self, i: int) -> list[str]:
        client = self.server.client(self.region)  # one client per thread, as boto3 advises
        rng = random.Random(i)  # noqa: S311 - a reproducible mix of actions, not a secret
        problems = []
        for step in range(OPS_PER_THREAD):
            name = rng.choice(self.names)
            action = rng.choice(["put", "put", "move", "get"])
            try:
                if action == "put":
                    self.put(client, name, f"{name} {i}.{step}")
                elif action == "move":
                    move_current(client, name, rng)
                elif problem := self.get(client, name):
                    problems.append(problem)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if not (action == "move" and code == LOST_RACE):
                    problems.append(f"{action} on {name}: {code} {exc}")
        return problems


def test_mixed_writers_and_readers_leave_exactly_one_current_and_lose_no_write(server, region):
    setup = server.client(region)
    load = Workload(server, region, [f"hot/{n}" for n in range(3)])
    for name in load.names:
        created = setup.create_secret(Name=name, SecretString=f"{name} initial")
        load.values[created["VersionId"]] = f"{name} initial"
        load.acknowledged[created["VersionId"]] = name

    problems = [p for per_thread in in_parallel(THREADS, load.run) for p in per_thread]
    assert problems == []

    for version_id, name in load.acknowledged.items():
        got = setup.get_secret_value(SecretId=name, VersionId=version_id)
        assert got["SecretString"] == load.values[version_id]
    for name in load.names:
        labels = [stage for stages in labels_of(setup, name).values() for stage in stages]
        assert labels.count("AWSCURRENT") == 1, labels
        assert labels.count("AWSPREVIOUS") <= 1, labels
    assert len(load.acknowledged) > len(load.names) + THREADS  # the writers did write


def move_current(client: Any, name: str, rng: random.Random) -> None:
    """Move AWSCURRENT to a random version (a rollback), naming the holder we just saw."""
    labels = labels_of(client, name)
    holder = next(v for v, stages in labels.items() if "AWSCURRENT" in stages)
    client.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=rng.choice(sorted(labels)),
        RemoveFromVersionId=holder,
    )


@pytest.mark.parametrize("value_kind", ["SecretString", "SecretBinary"])
def test_one_token_sent_by_eight_threads_at_once_makes_one_version(server, region, value_kind):
    setup = server.client(region)
    setup.create_secret(Name="idem", SecretString="initial")
    value: Any = "same value" if value_kind == "SecretString" else b"same\x00value"
    for _ in range(3):  # a few rounds, for more chances of a real overlap
        token = str(uuid.uuid4())
        before = labels_of(setup, "idem")

        def put(_: int, token: str = token) -> dict[str, Any]:
            client = server.client(region)
            return client.put_secret_value(
                SecretId="idem", ClientRequestToken=token, **{value_kind: value}
            )

        answers = in_parallel(8, put)
        assert {a["VersionId"] for a in answers} == {token}
        assert all(a["VersionStages"] == ["AWSCURRENT"] for a in answers)
        after = labels_of(setup, "idem")
        assert set(after) == set(before) | {token}
        assert after[token] == ["AWSCURRENT"]
        got = setup.get_secret_value(SecretId="idem", VersionId=token)
        assert got[value_kind] == value


def test_one_create_secret_sent_by_eight_threads_at_once_makes_one_secret(server, region):
    token = str(uuid.uuid4())

    def create(_: int) -> dict[str, Any]:
        client = server.client(region)
        return client.create_secret(Name="born-once", SecretString="v", ClientRequestToken=token)

    answers = in_parallel(8, create)
    assert {(a["ARN"], a["VersionId"]) for a in answers} == {(answers[0]["ARN"], token)}
    client = server.client(region)
    assert [s["Name"] for s in client.list_secrets()["SecretList"]] == ["born-once"]
    assert labels_of(client, "born-once") == {token: ["AWSCURRENT"]}


def test_different_tokens_for_one_new_name_create_it_once_and_refuse_the_rest(server, region):
    def create(i: int) -> str:
        client = server.client(region)
        try:
            client.create_secret(Name="contested", SecretString=f"from {i}")
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        return "created"

    outcomes = in_parallel(8, create)
    assert sorted(outcomes) == ["ResourceExistsException"] * 7 + ["created"]
    client = server.client(region)
    assert len(labels_of(client, "contested")) == 1
