"""What the tests that run rotations share: registering a function, finding a rotation's row,
waiting for the engine."""

from __future__ import annotations

import time
from typing import Any

from click.testing import CliRunner
from tests.conftest import ACCOUNT_ID, Server

from strongroom.cli.main import main as cli


def register_function(server: Server, name: str, *flags: str) -> str:
    """``strongroom functions add NAME FLAGS`` against ``server``; the ARN it prints."""
    result = CliRunner().invoke(
        cli,
        ["functions", "add", name, *flags, *server.cli_args],
        env={"STRONGROOM_ACCOUNT_ID": ACCOUNT_ID},
    )
    assert result.exit_code == 0, result.output
    return result.output.strip()


def function_arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"


def rotation_row(server: Server, version_id: str) -> Any:
    """The rotation that makes ``version_id``, or None."""
    with server.installation.store.read() as tx:
        rows = tx.rotations(ACCOUNT_ID, None, 500)
    return next((row for row, _ in rows if row.version_id == version_id), None)


def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    """``predicate()``'s first true value, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
