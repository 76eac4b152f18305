"""Invoking one rotation step: real child processes for local functions, a real loopback HTTP
server for HTTP functions. The handlers are written into tmp_path by each test."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from strongroom.rotation.invoke import (
    OUTPUT_LIMIT,
    FunctionSpec,
    Invocation,
    StepResult,
    invoke,
)

pytestmark = pytest.mark.slow

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rotate-db"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
EVENT = {
    "Step": "createSecret",
    "SecretId": SECRET_ARN,
    "ClientRequestToken": "3f0e3ad4-6a3b-4b6e-9d3e-5d1d2c8c1a11",
    "RotationToken": "0b6c5f0e-1d2e-4a53-9a11-7c0c7c7c7c7c",
}
# The engine's temporary principal for the step: visible to the function, never to our output.
CALL = Invocation(
    event=EVENT,
    function_arn=FUNCTION_ARN,
    region="eu-west-1",
    endpoint_url="http://127.0.0.1:8855",
    access_key_id="ASIATEMPROTATIONKEY1",
    secret_access_key="temp-secret-access-key-never-printed",
    session_token="temp-session-token-never-printed",
)
CREDENTIALS = (CALL.secret_access_key, CALL.session_token)


def handler_file(tmp_path: Path, source: str, name: str = "fn.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def local(path: Path | str, **changes: Any) -> FunctionSpec:
    fields: dict[str, Any] = {
        "name": "rotate-db",
        "handler": f"{path}:lambda_handler",
        "url": None,
        "env": {},
        "timeout": 30.0,
        "python": None,
    }
    return FunctionSpec(**(fields | changes))


def run(source: str, tmp_path: Path, **changes: Any) -> StepResult:
    return invoke(local(handler_file(tmp_path, source), **changes), CALL)


def assert_no_credentials(result: StepResult) -> None:
    for credential in CREDENTIALS:
        assert credential not in (result.error or "")
        assert credential not in result.output


def live_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies are dead)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in {"Z", "X"}:
            members.append(int(entry.name))
    return members


def eventually(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: give the kernel a moment to finish the job."""
    until = time.monotonic() + within
    while not condition():
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


# --- local functions: results ----------------------------------------------------------------


def test_a_handler_that_returns_succeeds_and_receives_the_event(tmp_path):
    seen = tmp_path / "seen.json"
    result = run(
        f"""
        import json
        def lambda_handler(event, context):
            with open({str(seen)!r}, "w") as f:
                json.dump(event, f)
            return {{"ignored": True}}
        """,
        tmp_path,
    )
    assert result == StepResult(ok=True, error=None, output="", duration=result.duration)
    assert json.loads(seen.read_text()) == EVENT
    assert 0 < result.duration < 30


def test_a_raising_handler_fails_with_its_type_and_message(tmp_path):
    result = run(
        """
        def lambda_handler(event, context):
            raise ValueError(f"{event['Step']}: no AWSPENDING version")
        """,
        tmp_path,
    )
    assert not result.ok
    assert result.error == "ValueError: createSecret: no AWSPENDING version"
    # Like Lambda's log: the error line, then the traceback into the function's own code.
    assert "[ERROR] ValueError: createSecret: no AWSPENDING version" in result.output
    assert "Traceback (most recent call last)" in result.output
    assert "fn.py" in result.output
    assert "host.py" not in result.output
    assert_no_credentials(result)


def test_a_long_exception_message_is_cut_in_the_error(tmp_path):
    result = run(
        "def lambda_handler(event, context):\n    raise RuntimeError('x' * 5000)\n", tmp_path
    )
    assert result.error is not None
    assert result.error.startswith("RuntimeError: xxx")
    assert len(result.error) < 1100


def test_stdout_stderr_and_logging_are_captured_as_output(tmp_path):
    result = run(
        """
        import logging, sys
        logger = logging.getLogger()
        logger.setLevel(logging.INFO)
        def lambda_handler(event, context):
            print("to stdout")
            print("to stderr", file=sys.stderr)
            logger.info("createSecret: put the pending version")
        """,
        tmp_path,
    )
    assert result.ok, result.error
    assert "to stdout\n" in result.output
    assert "to stderr\n" in result.output
    # Lambda's log format: level, timestamp, request id, message.
    [line] = [line for line in result.output.splitlines() if line.startswith("[INFO]")]
    _level, _timestamp, request_id, message = line.split("\t")
    assert uuid.UUID(request_id)
    assert message == "createSecret: put the pending version"


def test_nothing_the_function_prints_passes_for_its_result(tmp_path):
    failing = run(
        """
        def lambda_handler(event, context):
            print('{"ok": true}')
            raise KeyError("nope")
        """,
        tmp_path,
    )
    assert not failing.ok
    assert failing.error == "KeyError: 'nope'"
    succeeding = run(
        """
        def lambda_handler(event, context):
            print('{"ok": false, "type": "Forged", "message": "forged"}')
        """,
        tmp_path,
    )
    assert succeeding.ok


def test_output_keeps_only_the_last_64_kib(tmp_path):
    result = run(
        """
        def lambda_handler(event, context):
            for i in range(4000):
                print(f"line {i:05d} " + "." * 40)
            print("THE END")
        """,
        tmp_path,
    )
    assert result.ok
    assert result.output.endswith("THE END\n")
    assert "line 03999" in result.output
    assert "line 00000" not in result.output
    assert result.output.startswith("[output truncated")
    assert len(result.output.encode()) <= OUTPUT_LIMIT + 100


def test_the_function_reads_an_empty_stdin(tmp_path):
    result = run(
        """
        import sys
        def lambda_handler(event, context):
            assert sys.stdin.read() == ""
        """,
        tmp_path,
    )
    assert result.ok, result.output


def test_a_handler_without_a_function_name_means_lambda_handler(tmp_path):
    path = handler_file(tmp_path, "def lambda_handler(event, context):\n    print('ran')\n")
    result = invoke(local(path, handler=str(path)), CALL)
    assert result.ok
    assert result.output == "ran\n"


def test_another_function_name_is_called(tmp_path):
    path = handler_file(tmp_path, "def rotate(event, context):\n    print(event['Step'])\n")
    result = invoke(local(path, handler=f"{path}:rotate"), CALL)
    assert result.ok
    assert result.output == "createSecret\n"


# --- local functions: environment and context ------------------------------------------------


def test_the_function_sees_endpoint_region_credentials_and_its_env_but_not_ours(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("STRONGROOM_MASTER_KEY", "server-only-master-key")
    monkeypatch.setenv("SOME_OTHER_SERVER_VARIABLE", "server-only")
    seen = tmp_path / "env.json"
    result = run(
        f"""
        import json, os
        def lambda_handler(event, context):
            with open({str(seen)!r}, "w") as f:
                json.dump({{"env": dict(os.environ), "cwd": os.getcwd()}}, f)
        """,
        tmp_path,
        env={"DB_HOST": "db.internal", "AWS_REGION": "us-east-1"},
        timeout=12.5,
    )
    assert result.ok, result.error
    seen_by_function = json.loads(seen.read_text())
    env = seen_by_function["env"]
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "SECRETS_MANAGER_ENDPOINT",
    ):
        assert env[name] == "http://127.0.0.1:8855"
    # The region and credentials are the engine's: a user's variable cannot redirect them.
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"] == CALL.access_key_id
    assert env["AWS_SECRET_ACCESS_KEY"] == CALL.secret_access_key
    assert env["AWS_SESSION_TOKEN"] == CALL.session_token
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "rotate-db"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "12.5"
    assert env["DB_HOST"] == "db.internal"
    assert env["TZ"] == "UTC"
    assert env["PATH"] == os.environ["PATH"]
    assert "STRONGROOM_MASTER_KEY" not in env
    assert "SOME_OTHER_SERVER_VARIABLE" not in env
    assert not [name for name in env if name.startswith("STRONGROOM")]
    assert Path(seen_by_function["cwd"]) == tmp_path.resolve()
    assert_no_credentials(result)


def test_the_context_describes_the_function_and_its_remaining_time(tmp_path):
    seen = tmp_path / "context.json"
    result = run(
        f"""
        import json, time
        def lambda_handler(event, context):
            first = context.get_remaining_time_in_millis()
            time.sleep(0.05)
            second = context.get_remaining_time_in_millis()
            with open({str(seen)!r}, "w") as f:
                json.dump({{
                    "first": first, "second": second,
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "invoked_function_arn": context.invoked_function_arn,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "aws_request_id": context.aws_request_id,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                }}, f)
        """,
        tmp_path,
        timeout=20.0,
    )
    assert result.ok, result.error
    context = json.loads(seen.read_text())
    assert 10_000 < context["first"] <= 20_000
    assert context["first"] - context["second"] >= 40
    assert context["function_name"] == "rotate-db"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == FUNCTION_ARN
    assert int(context["memory_limit_in_mb"]) > 0
    assert uuid.UUID(context["aws_request_id"]).version == 4
    assert context["log_group_name"] == "/aws/lambda/rotate-db"
    assert "[$LATEST]" in context["log_stream_name"]


# --- local functions: timeouts, cancel, leftovers --------------------------------------------

SPAWNS_AND_SLEEPS = """
import json, os, signal, subprocess, time
def lambda_handler(event, context):
    {ignore_term}
    child = subprocess.Popen(["sleep", "100"])
    with open({pids!r}, "w") as f:
        json.dump({{"pgid": os.getpgrp(), "child": child.pid}}, f)
    print("started", flush=True)
    {then}
"""


def spawning_handler(tmp_path: Path, *, then: str, ignore_term: bool = False) -> Path:
    source = SPAWNS_AND_SLEEPS.format(
        pids=str(tmp_path / "pids.json"),
        then=then,
        ignore_term="signal.signal(signal.SIGTERM, signal.SIG_IGN)" if ignore_term else "pass",
    )
    return handler_file(tmp_path, source)


def spawned_group(tmp_path: Path) -> int:
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert pids["pgid"] != os.getpgrp()  # the step ran in a group of its own
    return int(pids["pgid"])


# The timeouts leave a slow machine time to start the function's interpreter, spawn its
# children and write their ids (at 0.5 s, a busy CI machine once killed it before that).
def test_a_step_past_its_timeout_is_killed_with_everything_it_started(tmp_path):
    path = spawning_handler(tmp_path, then="time.sleep(100)")
    result = invoke(local(path, timeout=2.0), CALL)
    assert not result.ok
    assert result.error == "Task timed out after 2.00 seconds"
    assert "started" in result.output  # printed before the timeout, not lost with it
    assert 2.0 <= result.duration < 10.0
    pgid = spawned_group(tmp_path)
    assert eventually(lambda: not live_members(pgid)), live_members(pgid)


def test_a_function_that_ignores_sigterm_is_killed_anyway(tmp_path):
    path = spawning_handler(tmp_path, then="time.sleep(100)", ignore_term=True)
    result = invoke(local(path, timeout=2.0), CALL)
    assert result.error == "Task timed out after 2.00 seconds"
    assert result.duration < 10.0
    pgid = spawned_group(tmp_path)
    assert eventually(lambda: not live_members(pgid)), live_members(pgid)


def test_what_a_finished_step_left_running_is_killed(tmp_path):
    path = spawning_handler(tmp_path, then="return None")
    result = invoke(local(path), CALL)
    assert result.ok, result.error
    pgid = spawned_group(tmp_path)
    assert eventually(lambda: not live_members(pgid)), live_members(pgid)


def test_a_cancel_from_another_thread_kills_the_step(tmp_path):
    path = spawning_handler(tmp_path, then="time.sleep(100)")
    cancel = threading.Event()
    pids = tmp_path / "pids.json"

    def cancel_once_started() -> None:
        eventually(pids.exists, within=20)
        cancel.set()

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    result = invoke(local(path, timeout=30.0), CALL, cancel=cancel)
    canceller.join()
    assert result.error == "cancelled"
    assert not result.ok
    assert result.duration < 20
    pgid = spawned_group(tmp_path)
    assert eventually(lambda: not live_members(pgid)), live_members(pgid)


def test_a_step_cancelled_before_it_starts_is_cancelled(tmp_path):
    cancel = threading.Event()
    cancel.set()
    path = handler_file(tmp_path, "def lambda_handler(event, context):\n    pass\n")
    result = invoke(local(path), CALL, cancel=cancel)
    assert result.error == "cancelled"


# --- local functions: broken code ------------------------------------------------------------


def test_a_syntax_error_is_reported_as_lambda_does(tmp_path):
    path = handler_file(tmp_path, "def lambda_handler(event, context)\n    pass\n", "broken.py")
    result = invoke(local(path), CALL)
    assert result.error is not None
    assert result.error.startswith("Runtime.UserCodeSyntaxError: Syntax error in module 'broken': ")
    assert "line 1" in result.error


def test_a_missing_handler_function_is_reported_as_lambda_does(tmp_path):
    path = handler_file(tmp_path, "def handler(event, context):\n    pass\n")
    result = invoke(local(path), CALL)
    assert (
        result.error == "Runtime.HandlerNotFound: Handler 'lambda_handler' missing on module 'fn'"
    )


def test_a_failing_import_is_reported_as_lambda_does(tmp_path):
    path = handler_file(tmp_path, "import no_such_module_here\n")
    result = invoke(local(path), CALL)
    assert result.error == (
        "Runtime.ImportModuleError: Unable to import module 'fn': "
        "No module named 'no_such_module_here'"
    )


def test_modules_beside_the_handler_can_be_imported(tmp_path):
    handler_file(tmp_path, "PASSWORD_LENGTH = 32\n", "settings_for_fn.py")
    path = handler_file(
        tmp_path,
        """
        import sys
        import settings_for_fn
        def lambda_handler(event, context):
            print(settings_for_fn.PASSWORD_LENGTH)
            print(any(entry.endswith("rotation") for entry in sys.path))
        """,
    )
    result = invoke(local(path), CALL)
    assert result.ok, result.error
    # The handler's folder is importable; the host's own (with invoke.py in it) is not.
    assert result.output == "32\nFalse\n"


def test_a_missing_handler_file_fails_without_starting_anything(tmp_path):
    result = invoke(local(tmp_path / "absent.py"), CALL)
    assert result.error == (
        "Runtime.ImportModuleError: Unable to import module 'absent': No module named 'absent'"
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("sys.exit(3)", "Runtime.ExitError: Runtime exited with error: exit status 3"),
        ("os._exit(0)", "Runtime.ExitError: Runtime exited without providing a reason"),
        (
            "os.kill(os.getpid(), signal.SIGKILL)",
            "Runtime.ExitError: Runtime exited with error: signal: kill",
        ),
    ],
)
def test_a_function_that_exits_fails_with_how_it_exited(tmp_path, body, error):
    result = run(
        f"import os, signal, sys\ndef lambda_handler(event, context):\n    {body}\n", tmp_path
    )
    assert not result.ok
    assert result.error == error


# --- local functions: the interpreter --------------------------------------------------------


def test_the_function_runs_under_the_interpreter_it_names(tmp_path):
    # Outside the venv, the link is a bare interpreter: the host needs the standard library only.
    python = tmp_path / "bin" / "python-for-rotation"
    python.parent.mkdir()
    python.symlink_to(Path(sys.executable).resolve())
    result = run(
        "import sys\ndef lambda_handler(event, context):\n    print(sys.executable)\n",
        tmp_path,
        python=str(python),
    )
    assert result.ok, result.output
    assert result.output == f"{python}\n"


def test_a_missing_interpreter_fails_the_step(tmp_path):
    path = handler_file(tmp_path, "def lambda_handler(event, context):\n    pass\n")
    result = invoke(local(path, python=str(tmp_path / "no-python")), CALL)
    assert not result.ok
    assert (
        result.error
        == f"cannot start the interpreter {tmp_path / 'no-python'}: No such file or directory"
    )


def test_a_spec_needs_exactly_one_of_handler_and_url(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        invoke(local(tmp_path / "fn.py", url="http://127.0.0.1:1/"), CALL)
    with pytest.raises(ValueError, match="exactly one"):
        invoke(local(tmp_path / "fn.py", handler=None), CALL)


# --- HTTP functions --------------------------------------------------------------------------


@dataclass
class FunctionServer:
    """A fake HTTP rotation function: records each request, answers by path."""

    url: str
    port: int
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def function_server() -> Iterator[FunctionServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    state = FunctionServer(url=f"http://127.0.0.1:{port}", port=port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, dict(self.headers), body))
            routes = {
                "/ok": (200, {}, b"rotated"),
                "/fail": (500, {}, b"E" * 5000),
                "/redirect-same": (307, {"Location": "/ok"}, b""),
                "/redirect-away": (307, {"Location": f"http://localhost:{port}/ok"}, b""),
                "/redirect-get": (303, {"Location": "/ok"}, b""),
            }
            if self.path == "/slow":
                state.release.wait(10)
                routes["/slow"] = (200, {}, b"late")
            status, headers, reply = routes[self.path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def remote(url: str, **changes: Any) -> FunctionSpec:
    fields: dict[str, Any] = {
        "name": "rotate-db",
        "handler": None,
        "url": url,
        "env": {"IGNORED": "for HTTP"},
        "timeout": 10.0,
        "python": None,
    }
    return FunctionSpec(**(fields | changes))


def test_an_http_function_is_posted_the_event_and_2xx_succeeds(function_server):
    result = invoke(remote(f"{function_server.url}/ok"), CALL)
    assert result.ok, result.error
    assert result.output == "rotated"
    [(path, headers, body)] = function_server.received
    assert path == "/ok"
    assert json.loads(body) == EVENT
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-strongroom-function-arn"] == FUNCTION_ARN
    assert "authorization" not in headers
    for credential in (*CREDENTIALS, CALL.access_key_id):
        assert credential not in json.dumps(headers)
        assert credential.encode() not in body


def test_an_http_error_status_fails_with_the_start_of_the_body(function_server):
    result = invoke(remote(f"{function_server.url}/fail"), CALL)
    assert not result.ok
    assert result.error == "HTTP 500: " + "E" * 1014 + "..."


def test_a_slow_http_function_times_out(function_server):
    result = invoke(remote(f"{function_server.url}/slow", timeout=0.5), CALL)
    assert result.error == "Task timed out after 0.50 seconds"
    assert result.duration < 5.0


def test_a_cancel_stops_waiting_for_an_http_function(function_server):
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    result = invoke(remote(f"{function_server.url}/slow", timeout=30.0), CALL, cancel=cancel)
    timer.join()
    assert result.error == "cancelled"
    assert result.duration < 5.0


def test_an_unreachable_http_function_fails_with_a_short_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke(remote(f"http://127.0.0.1:{port}/"), CALL)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("ConnectError: ")


def test_a_redirect_to_the_same_origin_is_followed_as_a_post(function_server):
    result = invoke(remote(f"{function_server.url}/redirect-same"), CALL)
    assert result.ok, result.error
    assert [(path, json.loads(body)) for path, _, body in function_server.received] == [
        ("/redirect-same", EVENT),
        ("/ok", EVENT),
    ]


@pytest.mark.parametrize(("path", "status"), [("/redirect-away", 307), ("/redirect-get", 303)])
def test_a_redirect_elsewhere_or_to_a_get_is_not_followed(function_server, path, status):
    result = invoke(remote(f"{function_server.url}{path}"), CALL)
    assert result.error == f"HTTP {status}: "
    assert [path for path, _, _ in function_server.received] == [path]
