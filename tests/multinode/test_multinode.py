"""Several ``strongroom serve`` processes on one PostgreSQL database.

Three real server processes (``cluster.py``) take 32 threads of concurrent, conflicting
requests, each sent to a random node (``load.py``); afterwards every node and the tables
themselves must agree on the invariants (``verify.py``): one AWSCURRENT per secret,
AWSPREVIOUS on one version at most and never the current one, every acknowledged
PutSecretValue readable with its value, one version per ClientRequestToken, and no 5xx or
dropped connection from a node that was alive.

Needs ``TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/``): skipped
without it, a failure under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ACCOUNT_ID
from tests.multinode.cluster import REGION, Cluster, Node, running_cluster
from tests.multinode.load import SECRETS, Ledger, run_load
from tests.multinode.verify import api_problems, database_problems

pytestmark = pytest.mark.slow

LOAD_SECONDS = 20.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as running:
        yield running


def seeded_secrets(cluster: Cluster) -> Ledger:
    """SECRETS secrets, each with a first value whose token the ledger knows."""
    ledger = Ledger(secrets=[f"multinode/{n}" for n in range(SECRETS)])
    client = cluster.client(cluster.nodes[0])
    for n, name in enumerate(ledger.secrets):
        token, value = str(uuid.uuid4()), f"initial-{n}"
        ledger.record_sent(name, token, value)
        client.create_secret(Name=name, SecretString=value, ClientRequestToken=token)
        ledger.acknowledge(name, token, value)
        ledger.reserve_version(name, 1)
    return ledger


def summary(ledger: Ledger) -> str:
    lines = [f"{action} {outcome}: {n}" for (action, outcome), n in sorted(ledger.outcomes.items())]
    lines.append(f"puts acknowledged: {len(ledger.acknowledged)}, tokens sent: {len(ledger.sent)}")
    lines.append(f"requests lost to the kill: {ledger.lost_to_kill}")
    lines.append(f"answered after the kill, by node: {dict(ledger.served_after_kill)}")
    return "\n".join(lines)


def assert_no_failures(cluster: Cluster, ledger: Ledger) -> None:
    print(summary(ledger))  # shown with -s, and with the failure  # noqa: T201
    failures = ledger.failures
    assert not failures, (
        f"{len(failures)} failures during the load, the first ones:\n"
        + "\n".join(failures[:20])
        + f"\n{summary(ledger)}\n{cluster.logs()}"
    )


def assert_invariants(cluster: Cluster, ledger: Ledger) -> None:
    t0 = time.monotonic()
    problems = api_problems(cluster, ledger) + database_problems(cluster, ledger)
    print(f"invariants checked in {time.monotonic() - t0:.1f} s")  # noqa: T201
    assert not problems, "\n".join(problems[:40]) + f"\n{cluster.logs()}"


def assert_audit_trail(cluster: Cluster, ledger: Ledger) -> None:
    """Every acknowledged write was recorded (on whichever node served it) and the trail the
    nodes share seals and verifies."""
    with cluster.connect() as conn:
        rows = conn.execute(
            "SELECT record FROM audit_events WHERE event_name IN ('CreateSecret', 'PutSecretValue')"
        ).fetchall()
    records = [json.loads(row[0]) for row in rows]
    recorded = {
        r["requestParameters"]["clientRequestToken"] for r in records if "errorCode" not in r
    }
    missing = [token for token in ledger.acknowledged if token not in recorded]
    assert not missing, f"{len(missing)} acknowledged puts without a record, e.g. {missing[:5]}"
    flags = cluster.settings_flags(cluster.nodes[0].data_dir)
    sealed = cluster.cli("audit", "seal", *flags)
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    verified = cluster.cli("audit", "verify", *flags)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK: the audit trail is intact" in verified.stdout


def test_three_nodes_under_concurrent_load_keep_every_invariant(cluster):
    ledger = seeded_secrets(cluster)
    t0 = time.monotonic()
    run_load(cluster, ledger, LOAD_SECONDS, seed=1)
    print(f"load ran {time.monotonic() - t0:.1f} s")  # noqa: T201
    assert_no_failures(cluster, ledger)
    assert_invariants(cluster, ledger)
    assert_audit_trail(cluster, ledger)
    # The load did what it is for: puts everywhere, same-token races, stage moves. (How many
    # moves win their race depends on the machine's speed: 36 of 235 on a CI machine that
    # managed 80 requests a second, well over 50 on a quick one.)
    assert len(ledger.acknowledged) > 100
    assert ledger.outcomes["UpdateSecretVersionStage", "200"] > 10
    assert ledger.outcomes["PutSecretValue", "400 ResourceExistsException"] > 0


def test_a_node_killed_mid_load_loses_nothing_and_the_others_keep_serving(cluster):
    ledger = seeded_secrets(cluster)
    victim = cluster.nodes[1]
    run_load(cluster, ledger, LOAD_SECONDS, seed=2, kill=(victim, LOAD_SECONDS / 2))
    assert not victim.alive()
    assert_no_failures(cluster, ledger)
    survivors = [node.name for node in cluster.live_nodes()]
    assert all(ledger.served_after_kill[name] > 100 for name in survivors), summary(ledger)
    assert_invariants(cluster, ledger)  # through the two survivors
    # The killed node comes back on its data dir and tells the same story.
    cluster.restart(victim)
    assert_invariants(cluster, ledger)


# -- a rotation whose node dies is taken over ---------------------------------------------------

# A rotation function as users write them for AWS. Every step appends "<step> <node pid> <pid>"
# to CONTROL/steps (the node is the function's parent process). A setSecret that finds
# CONTROL/hold takes it (renames it to held-<pid>) and waits for CONTROL/release-<pid>: the
# test holds exactly the runs it means to, one per hold file it puts there.
FUNCTION = textwrap.dedent(
    """
    import json, os, pathlib, time
    import boto3

    CONTROL = pathlib.Path(os.environ["CONTROL"])

    def lambda_handler(event, context):
        step, arn, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
        with open(CONTROL / "steps", "a") as log:
            log.write(f"{step} {os.getppid()} {os.getpid()}\\n")
        sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
        if step == "createSecret":
            try:
                sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            except sm.exceptions.ResourceNotFoundException:
                sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                    SecretString=json.dumps({"password": token[:12]}),
                                    VersionStages=["AWSPENDING"])
        elif step == "setSecret":
            try:
                os.rename(CONTROL / "hold", CONTROL / f"held-{os.getpid()}")
            except FileNotFoundError:
                pass
            else:
                while not (CONTROL / f"release-{os.getpid()}").exists():
                    time.sleep(0.05)
        elif step == "testSecret":
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        elif step == "finishSecret":
            described = sm.describe_secret(SecretId=arn)
            current = next(v for v, s in described["VersionIdsToStages"].items()
                           if "AWSCURRENT" in s)
            if current != token:
                sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                               MoveToVersionId=token, RemoveFromVersionId=current)
    """
)
FUNCTION_TIMEOUT = 20
# The engine's lease is 60 s plus the function's timeout from the start of each step
# (rotation/engine.py): a real takeover after kill -9 waits that long. Unless
# MULTINODE_REAL_LEASE=1, the test ends the lease in the database instead of waiting.
REAL_LEASE = os.environ.get("MULTINODE_REAL_LEASE") == "1"


def steps_run(control: Path) -> list[tuple[str, int, int]]:
    path = control / "steps"
    if not path.exists():
        return []
    return [
        (step, int(ppid), int(pid))
        for step, ppid, pid in (line.split() for line in path.read_text().splitlines())
    ]


def wait_for(predicate: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
    return value


def rotation_row(cluster: Cluster, version_id: str) -> dict[str, Any] | None:
    with cluster.connect() as conn:
        cur = conn.execute(
            "SELECT state, attempts, step, error, lease_owner, lease_expires_at FROM rotations"
            " WHERE version_id = %s",
            (version_id,),
        )
        row = cur.fetchone()
        names = [c.name for c in cur.description or []]
    return None if row is None else dict(zip(names, row, strict=True))


@dataclass
class HeldRotation:
    """A rotation held in setSecret on the node that claimed it."""

    function: str
    control: Path
    first_version: str  # AWSCURRENT before the rotation
    token: str  # the rotation's version
    owner: Node  # the node running it
    step_pid: int  # its setSecret process

    def held_steps(self) -> list[tuple[str, int, int]]:
        """The setSecret runs holding now or before: (step, node pid, pid)."""
        held = {int(p.name.removeprefix("held-")) for p in self.control.glob("held-*")}
        return [s for s in steps_run(self.control) if s[0] == "setSecret" and s[2] in held]

    def release(self, pid: int) -> None:
        (self.control / f"release-{pid}").touch()

    def end_lease(self, cluster: Cluster) -> None:
        """Stands in for waiting out the lease (60 s + the function's timeout): the lease
        ends now; nothing else about the rotation is touched."""
        with cluster.connect() as conn:
            conn.execute(
                "UPDATE rotations SET lease_expires_at = %s WHERE version_id = %s",
                (time.time() - 1, self.token),
            )


def start_held_rotation(cluster: Cluster, tmp_path: Path) -> HeldRotation:
    control = tmp_path / "control"
    control.mkdir()
    handler = tmp_path / "rotate.py"
    handler.write_text(FUNCTION)
    added = cluster.cli(
        "functions", "add", "slow",
        "--handler", f"{handler}:lambda_handler",
        "--env", f"CONTROL={control}",
        "--timeout", str(FUNCTION_TIMEOUT),
        "--python", sys.executable,
        *cluster.settings_flags(tmp_path / "cli"),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:slow"
    client = cluster.client(cluster.nodes[2])
    first = client.create_secret(Name="db/rotated", SecretString='{"password": "initial"}')
    (control / "hold").touch()
    token = client.rotate_secret(SecretId="db/rotated", RotationLambdaARN=function)["VersionId"]
    held = HeldRotation(function, control, first["VersionId"], token, cluster.nodes[0], 0)
    # Whichever node's engine claimed it runs setSecret, and holds there.
    _, owner_pid, held.step_pid = wait_for(held.held_steps, "setSecret to hold", timeout=30)[0]
    held.owner = next(node for node in cluster.nodes if node.pid == owner_pid)
    return held


def assert_rotated_once_more(cluster: Cluster, held: HeldRotation) -> None:
    """The rotation succeeded on its second attempt, and the labels show it."""
    settled = wait_for(
        lambda: (r := rotation_row(cluster, held.token)) and r["state"] != "running" and r,
        "the rotation to settle",
        timeout=60 + FUNCTION_TIMEOUT + 60 if REAL_LEASE else 45,
    )
    assert (settled["state"], settled["attempts"], settled["error"]) == ("succeeded", 2, None)
    client = cluster.client(next(n for n in cluster.live_nodes() if n is not held.owner))
    stages = client.describe_secret(SecretId="db/rotated")["VersionIdsToStages"]
    assert stages == {held.token: ["AWSCURRENT"], held.first_version: ["AWSPREVIOUS"]}
    value = client.get_secret_value(SecretId="db/rotated")["SecretString"]
    assert value == f'{{"password": "{held.token[:12]}"}}'


@pytest.mark.timeout(300 if REAL_LEASE else 120)
def test_a_rotation_whose_node_is_killed_is_taken_over_by_another(cluster, tmp_path):
    held = start_held_rotation(cluster, tmp_path)
    held.owner.kill_9()
    # The step's process is in a session of its own and outlives its node: let it end.
    held.release(held.step_pid)
    wait_for(lambda: not _running(held.step_pid), "the orphaned setSecret to end", timeout=10)
    row = rotation_row(cluster, held.token)
    assert row is not None
    assert (row["state"], row["step"], row["attempts"]) == ("running", "setSecret", 1)
    if not REAL_LEASE:
        held.end_lease(cluster)

    assert_rotated_once_more(cluster, held)
    steps = steps_run(held.control)
    taken_over = steps[steps.index(("setSecret", held.owner.pid, held.step_pid)) + 1 :]
    assert [s[0] for s in taken_over] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {s[1] for s in taken_over} <= {n.pid for n in cluster.live_nodes()}


def test_a_paused_node_whose_rotation_was_taken_over_runs_no_further_step(cluster, tmp_path):
    held = start_held_rotation(cluster, tmp_path)
    os.kill(held.owner.pid, signal.SIGSTOP)  # a pause longer than the lease: GC, VM, swap
    try:
        (held.control / "hold").touch()  # the taking-over node holds in setSecret too
        held.end_lease(cluster)
        taker = wait_for(
            lambda: [s for s in held.held_steps() if s[2] != held.step_pid],
            "another node to take the rotation over",
            timeout=30,
        )[0]
        assert taker[1] != held.owner.pid
    finally:
        os.kill(held.owner.pid, signal.SIGCONT)
    held.release(held.step_pid)  # the paused node's setSecret returns...
    wait_for(lambda: not _running(held.step_pid), "the old setSecret to end", timeout=10)
    time.sleep(3)  # ...and its engine would go on within a moment
    steps = steps_run(held.control)
    after = steps[steps.index(("setSecret", held.owner.pid, held.step_pid)) + 1 :]
    late = [step for step in after if step[1] == held.owner.pid]
    held.release(taker[2])
    assert_rotated_once_more(cluster, held)
    time.sleep(3)  # both nodes are done with it by now
    row = rotation_row(cluster, held.token)
    assert late == [], f"the paused node ran {late} of a rotation taken over; then {row}"
    assert row is not None
    assert (row["state"], row["error"]) == ("succeeded", None)


def _running(pid: int) -> bool:
    """False once ``pid`` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
