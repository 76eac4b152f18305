"""`strongroom audit lookup` and `strongroom audit tail`, through click's runner (and, for
`tail -f` until interrupted, as a process of its own), on the trail of the running server.

The trail is shared by every test of the session: each test filters by a secret of its own,
or relies on tests running one after another on a server (the newest records are its own).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner, Result

from strongroom.cli.main import main

CANARY = "canary-3e8a0f51-not-for-the-audit-cli"


def audit(server: Any, *args: str) -> Result:
    return CliRunner().invoke(main, ["audit", *args, *server.cli_args])


def records(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def _calls(client: Any) -> tuple[str, str]:
    """A secret of this test's own, created, read and described: (name, ARN)."""
    name = f"cli/audit-{uuid.uuid4().hex[:10]}"
    arn = client.create_secret(Name=name, SecretString=CANARY)["ARN"]
    client.get_secret_value(SecretId=name)
    client.describe_secret(SecretId=arn)
    return name, arn


def test_lookup_json_lines_newest_first_by_name_or_arn(server, client):
    name, arn = _calls(client)
    result = audit(server, "lookup", "--resource-name", name, "--output", "json")
    found = records(result)
    assert [r["eventName"] for r in found] == ["DescribeSecret", "GetSecretValue", "CreateSecret"]
    assert {r["eventSource"] for r in found} == {"secretsmanager.amazonaws.com"}
    assert CANARY not in result.output
    by_arn = audit(server, "lookup", "--resource-name", arn, "--output", "json")
    assert records(by_arn) == found


def test_lookup_filters_combine(server, client):
    name, _ = _calls(client)
    mine = ("--resource-name", name, "--output", "json")

    def names(*args: str) -> list[str]:
        return [r["eventName"] for r in records(audit(server, "lookup", *mine, *args))]

    assert names("--event-name", "GetSecretValue") == ["GetSecretValue"]
    assert names("--user-name", "root") == ["DescribeSecret", "GetSecretValue", "CreateSecret"]
    assert names("--user-name", "somebody-else") == []
    assert names("--limit", "2") == ["DescribeSecret", "GetSecretValue"]
    assert names("--from", "2999-01-01") == []
    assert names("--to", "2000-01-01T00:00:00Z") == []
    assert len(names("--from", "2000-01-01", "--to", "2999-01-01T00:00:00Z")) == 3


def test_lookup_table_shows_calls_and_their_errors(server, client):
    name, _ = _calls(client)
    client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=name)
    result = audit(server, "lookup", "--resource-name", name)
    assert result.exit_code == 0, result.output
    # time │ source │ event │ user │ resource │ error, one table row per call
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.output.splitlines()
        if name in line
    ]
    calls = [row for row in rows if row[3] == "root"]  # not what the server did by itself
    assert [row[2] for row in calls] == [
        "GetSecretValue",
        "DeleteSecret",
        "DescribeSecret",
        "GetSecretValue",
        "CreateSecret",
    ]
    assert [row[5] for row in calls] == ["ResourceNotFoundException", "", "", "", ""]
    assert {(row[1], row[4]) for row in rows} == {("secretsmanager", name)}
    assert CANARY not in result.output


def test_tail_prints_the_newest_records_oldest_first(server, client):
    name, _ = _calls(client)
    found = records(audit(server, "tail", "-n", "3", "--output", "json"))
    assert [r["eventName"] for r in found] == ["CreateSecret", "GetSecretValue", "DescribeSecret"]
    text = audit(server, "tail", "-n", "3")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert len(lines) == 3
    assert "CreateSecret" in lines[0]
    assert name in lines[0]
    assert "DescribeSecret" in lines[2]


def test_tail_follow_prints_each_new_record_once(server, client):
    name, _ = _calls(client)
    later = f"cli/audit-later-{uuid.uuid4().hex[:8]}"

    def calls_meanwhile() -> None:
        time.sleep(0.3)
        client.create_secret(Name=later, SecretString=CANARY)
        client.describe_secret(SecretId=later)

    thread = threading.Thread(target=calls_meanwhile)
    thread.start()
    args = ["-f", "-n", "1", "--interval", "0.05", "--max-polls", "40", "--output", "json"]
    result = audit(server, "tail", *args)
    thread.join()
    found = records(result)
    assert found[0]["eventName"] == "DescribeSecret"  # the newest record when it started
    assert found[0]["requestParameters"]["secretId"].split(":")[-1].startswith(name)
    later_names = [
        r["eventName"]
        for r in found
        if (r.get("requestParameters") or {}).get("name") == later
        or (r.get("requestParameters") or {}).get("secretId") == later
    ]
    assert later_names == ["CreateSecret", "DescribeSecret"]
    ids = [r["eventID"] for r in found]
    assert len(ids) == len(set(ids))
    assert CANARY not in result.output


@pytest.mark.slow
def test_tail_follow_runs_until_interrupted(server, client):
    argv = [sys.executable, "-m", "strongroom", "audit", "tail", "-f", "-n", "0"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
        [*argv, "--interval", "0.1", *server.cli_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()])
    reader.start()
    try:
        # It follows from wherever the trail ended when it started, which takes a slow
        # machine a while (imports, first read): a record made before that is not followed,
        # so records are made until one shows.
        deadline = time.monotonic() + 60
        seen = ""
        while True:
            name = f"cli/audit-tailed-{uuid.uuid4().hex[:8]}"
            client.create_secret(Name=name, SecretString=CANARY)
            try:
                while name not in seen:
                    seen = lines.get(timeout=2.0)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "audit tail -f printed no new record"
        assert "CreateSecret" in seen
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        reader.join()
        stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_commands_refuse_a_data_dir_without_an_installation(tmp_path):
    for command in ("lookup", "tail"):
        result = CliRunner().invoke(main, ["audit", command, "--data-dir", str(tmp_path)])
        assert result.exit_code == 1
        assert "no Strongroom installation" in result.output
    assert not list(tmp_path.iterdir())  # nothing was created there
