"""Concurrent load on a cluster, and a ledger of what it was told.

Theory of operation
-------------------
``run_load`` starts 32 threads, each with boto3 clients of its own (one per node, no
retries, short timeouts), that for a bounded time send random requests to random nodes on a
handful of secrets: PutSecretValue with explicit ClientRequestTokens, GetSecretValue (by
stage and by an acknowledged VersionId), UpdateSecretVersionStage (AWSCURRENT moved to a
random acknowledged version), DescribeSecret and ListSecretVersionIds.

Eight of the threads are four *twin pairs*: the two threads of a pair meet at a barrier,
whose action (run by one of them) draws one token, one secret and two distinct nodes, and
then both send PutSecretValue with that token at once, each to its node. Usually both carry
the same value (AWS: the second is a no-op that answers like the first); one time in four
they carry different values (AWS: one wins, the other gets ResourceExistsException).

Every version a secret gets counts towards AWS's quota of 100 (none of ours is a day old, so
none may be pruned), so puts draw on a budget per secret that grows with elapsed time: the
puts are spread over the whole run, and the quota is never reached.

The ledger records what was *sent* before sending it and what was *acknowledged* after the
answer, and judges each answer as it comes: a 5xx, a transport error from a node that was
alive until the answer came, or an error AWS would not give under these races is a failure.
Reads are checked against the ledger as they come back (an acknowledged version reads back
with its value, from any node; labels always satisfy the staging invariants).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
from tests.multinode.cluster import Cluster, Node

THREADS = 32
TWIN_PAIRS = 4
SECRETS = 5
MAX_VERSIONS = 95  # per secret, below AWS's quota of 100 (the initial version included)
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
# Errors AWS itself gives under these races; anything else is a failure.
RACE_ERRORS = {
    # MoveToVersionId/RemoveFromVersionId read a moment ago, and another request moved it.
    "UpdateSecretVersionStage": {"InvalidParameterException"},
}


def stage_violations(where: str, stages_by_version: dict[str, list[str]]) -> list[str]:
    """What is wrong with one secret's labels (version id -> labels), as readable lines."""
    current = [v for v, s in stages_by_version.items() if CURRENT in s]
    previous = [v for v, s in stages_by_version.items() if PREVIOUS in s]
    problems = []
    if len(current) != 1:
        problems.append(f"{where}: {len(current)} versions labelled AWSCURRENT: {current}")
    if len(previous) > 1:
        problems.append(f"{where}: {len(previous)} versions labelled AWSPREVIOUS: {previous}")
    if set(current) & set(previous):
        problems.append(f"{where}: AWSPREVIOUS is on the AWSCURRENT version {current}")
    return problems


@dataclass
class Ledger:
    secrets: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    # token -> (secret, every value sent with it): recorded before the request is sent.
    sent: dict[str, tuple[str, set[str]]] = field(default_factory=dict)
    # token -> (secret, value): the put was answered 200.
    acknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)
    versions_reserved: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (action, outcome)
    served_after_kill: Counter[str] = field(default_factory=Counter)  # node -> 2xx answers
    lost_to_kill: int = 0  # requests to a node that was killed before they were answered
    failures: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)

    def record_sent(self, secret: str, token: str, value: str) -> None:
        with self.lock:
            self.sent.setdefault(token, (secret, set()))[1].add(value)

    def reserve_version(self, secret: str, budget: int) -> bool:
        with self.lock:
            if self.versions_reserved[secret] >= budget:
                return False
            self.versions_reserved[secret] += 1
            return True

    def acknowledge(self, secret: str, token: str, value: str) -> None:
        with self.lock:
            known = self.acknowledged.get(token)
            if known is not None and known != (secret, value):
                self.failures.append(
                    f"PutSecretValue token {token} acknowledged twice with different values"
                )
            self.acknowledged[token] = (secret, value)

    def acknowledged_of(self, secret: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(t, v) for t, (s, v) in self.acknowledged.items() if s == secret]


class Worker:
    """One load thread: its own clients, its own random generator."""

    def __init__(
        self, cluster: Cluster, ledger: Ledger, seed: int, started: float, duration: float
    ) -> None:
        self.cluster = cluster
        self.ledger = ledger
        self.rng = random.Random(seed)  # noqa: S311 - load generation, not cryptography
        self.started = started
        self.duration = duration
        self.clients = {node.name: cluster.client(node) for node in cluster.nodes}

    # -- sending and judging one request ---------------------------------------------------------
    def call(
        self, node: Node, action: str, *, allowed: frozenset[str] = frozenset(), **kw: Any
    ) -> Any:
        """Send ``action`` to ``node``; the response, or None after an error (judged here)."""
        method = getattr(self.clients[node.name], _snake(action))
        dead_before = node.killed_at is not None
        try:
            response = method(**kw)
        except botocore.exceptions.ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = exc.response.get("Error", {}).get("Code", "?")
            self._judge_error(node, action, f"{status} {code}", server_error=status >= 500)
            if status < 500 and code not in allowed | RACE_ERRORS.get(action, set()):
                self.ledger.fail(f"{action} to {node.name}: unexpected {code}: {exc}")
            return None
        except botocore.exceptions.BotoCoreError as exc:
            self._judge_error(node, action, type(exc).__name__, server_error=True, detail=str(exc))
            return None
        with self.ledger.lock:
            self.ledger.outcomes[action, "200"] += 1
            if any(other.killing_at is not None for other in self.cluster.nodes):
                self.ledger.served_after_kill[node.name] += 1
        if dead_before:
            self.ledger.fail(f"{action} answered by {node.name}, which was killed before")
        return response

    def _judge_error(
        self, node: Node, action: str, outcome: str, *, server_error: bool, detail: str = ""
    ) -> None:
        with self.ledger.lock:
            self.ledger.outcomes[action, outcome] += 1
            if node.killing_at is not None:
                # Killed before this answer came (or instead of it): expected.
                self.ledger.lost_to_kill += 1
                return
        if server_error:
            self.ledger.fail(f"{action} to live {node.name}: {outcome} {detail}".rstrip())

    # -- the actions -------------------------------------------------------------------------
    def node(self) -> Node:
        return self.rng.choice(self.cluster.nodes)

    def put(self, secret: str, token: str, value: str, node: Node, *, rival: bool) -> None:
        self.ledger.record_sent(secret, token, value)
        allowed = frozenset({"ResourceExistsException"}) if rival else frozenset()
        got = self.call(
            node,
            "PutSecretValue",
            allowed=allowed,
            SecretId=secret,
            ClientRequestToken=token,
            SecretString=value,
        )
        if got is None:
            return
        if got["VersionId"] != token:
            self.ledger.fail(f"PutSecretValue {token} answered VersionId {got['VersionId']}")
        self.ledger.acknowledge(secret, token, value)

    def random_put(self, secret: str) -> bool:
        if not self.ledger.reserve_version(secret, self.budget()):
            return False
        token = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.put(secret, token, f"value-{token[:8]}", self.node(), rival=False)
        return True

    def budget(self) -> int:
        """Versions a secret may have by now: the puts are spread over the whole run."""
        elapsed = time.monotonic() - self.started
        return min(MAX_VERSIONS, 3 + int(MAX_VERSIONS * elapsed / self.duration))

    def get_current(self, secret: str) -> None:
        got = self.call(self.node(), "GetSecretValue", SecretId=secret)
        if got is None:
            return
        with self.ledger.lock:
            sent = self.ledger.sent.get(got["VersionId"])
        if sent is None or got["SecretString"] not in sent[1]:
            self.ledger.fail(f"GetSecretValue {secret} read a value never sent for its version")
        if CURRENT not in got["VersionStages"]:
            self.ledger.fail(f"GetSecretValue {secret}: AWSCURRENT without that label")

    def get_version(self, secret: str) -> None:
        known = self.ledger.acknowledged_of(secret)  # acknowledged before this request
        if not known:
            return
        token, value = self.rng.choice(known)
        node = self.node()
        got = self.call(node, "GetSecretValue", SecretId=secret, VersionId=token)
        if got is not None and got["SecretString"] != value:
            self.ledger.fail(f"GetSecretValue {token} via {node.name}: not the acknowledged value")

    def describe(self, secret: str) -> dict[str, list[str]] | None:
        node = self.node()
        got = self.call(node, "DescribeSecret", SecretId=secret)
        if got is None:
            return None
        stages: dict[str, list[str]] = got["VersionIdsToStages"]
        for problem in stage_violations(f"DescribeSecret via {node.name}", stages):
            self.ledger.fail(problem)
        return stages

    def list_versions(self, secret: str) -> None:
        node = self.node()
        got = self.call(node, "ListSecretVersionIds", SecretId=secret, MaxResults=100)
        if got is None:
            return
        stages = {v["VersionId"]: v.get("VersionStages", []) for v in got["Versions"]}
        for problem in stage_violations(f"ListSecretVersionIds via {node.name}", stages):
            self.ledger.fail(problem)

    def move_current(self, secret: str) -> None:
        stages = self.describe(secret)
        known = self.ledger.acknowledged_of(secret)
        if stages is None or not known:
            return
        current = next((v for v, s in stages.items() if CURRENT in s), None)
        target, _ = self.rng.choice(known)
        if current is None or target == current:
            return
        self.call(
            self.node(),
            "UpdateSecretVersionStage",
            SecretId=secret,
            VersionStage=CURRENT,
            MoveToVersionId=target,
            RemoveFromVersionId=current,
        )

    def one_random_action(self) -> None:
        secret = self.rng.choice(self.ledger.secrets)
        roll = self.rng.random()
        if roll < 0.30 and self.random_put(secret):
            return
        actions: list[Callable[[str], Any]] = [
            self.get_current,
            self.get_version,
            self.move_current,
            self.describe,
            self.list_versions,
        ]
        self.rng.choices(actions, weights=[3, 2, 2, 1, 1])[0](secret)


@dataclass
class TwinPlan:
    secret: str
    token: str
    values: tuple[str, str]
    nodes: tuple[Node, Node]
    rival: bool  # different values: one put wins, the other is refused


class TwinPair:
    """Two threads that send the same ClientRequestToken to two nodes at the same moment."""

    def __init__(self, cluster: Cluster, ledger: Ledger, seed: int, worker: Worker) -> None:
        self.cluster = cluster
        self.ledger = ledger
        self.rng = random.Random(seed)  # noqa: S311 - load generation
        self.worker = worker  # its budget() is the shared one
        self.plan: TwinPlan | None = None
        self.barrier = threading.Barrier(2, action=self._draw, timeout=30)

    def _draw(self) -> None:
        # Run by exactly one of the two threads, while the other waits at the barrier.
        secret = self.rng.choice(self.ledger.secrets)
        if not self.ledger.reserve_version(secret, self.worker.budget()):
            self.plan = None
            return
        token = str(uuid.UUID(int=self.rng.getrandbits(128)))
        rival = self.rng.random() < 0.25
        values = (f"twin-{token[:8]}-a", f"twin-{token[:8]}-{'b' if rival else 'a'}")
        first, second = self.rng.sample(self.cluster.nodes, 2)
        self.plan = TwinPlan(secret, token, values, (first, second), rival)


def run_load(
    cluster: Cluster,
    ledger: Ledger,
    duration: float,
    *,
    seed: int,
    kill: tuple[Node, float] | None = None,
) -> None:
    """Run the load for ``duration`` seconds; ``kill=(node, t)`` kill -9s ``node`` at ``t``."""
    seeds = random.Random(seed)  # noqa: S311 - load generation
    workers = [
        Worker(cluster, ledger, seeds.getrandbits(64), 0.0, duration) for _ in range(THREADS)
    ]
    started = time.monotonic()  # after the clients are built: that takes a few seconds
    deadline = started + duration
    for worker in workers:
        worker.started = started
    pairs = [
        TwinPair(cluster, ledger, seeds.getrandbits(64), workers[2 * i]) for i in range(TWIN_PAIRS)
    ]

    twins = [
        threading.Thread(target=_twin, args=(worker, deadline, pairs[i // 2], i % 2), daemon=True)
        for i, worker in enumerate(workers[: 2 * TWIN_PAIRS])
    ]
    plain = [
        threading.Thread(target=_plain, args=(worker, deadline), daemon=True)
        for worker in workers[2 * TWIN_PAIRS :]
    ]
    threads = twins + plain
    for thread in threads:
        thread.start()
    if kill is not None:
        node, at = kill
        time.sleep(max(0.0, started + at - time.monotonic()))
        node.kill_9()
    for thread in threads:
        thread.join(timeout=duration + 60)
        if thread.is_alive():  # a client timeout bounds every request; this is a hang
            ledger.fail(f"load thread {thread.name} did not finish")


def _plain(worker: Worker, deadline: float) -> None:
    while time.monotonic() < deadline:
        worker.one_random_action()


def _twin(worker: Worker, deadline: float, pair: TwinPair, side: int) -> None:
    while time.monotonic() < deadline:
        try:
            pair.barrier.wait()
        except threading.BrokenBarrierError:
            return  # the other side has stopped
        plan = pair.plan
        if plan is not None:
            worker.put(
                plan.secret, plan.token, plan.values[side], plan.nodes[side], rival=plan.rival
            )
        for _ in range(worker.rng.randint(1, 3)):
            worker.one_random_action()
    pair.barrier.abort()


def _snake(action: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in action).lstrip("_")
