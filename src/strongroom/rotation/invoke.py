"""Run one step of a rotation function, outside the server process, and say how it went.

A rotation function is either a Lambda-style handler file, run unchanged in a child process
of its own (``host.py``), or an HTTP endpoint that is POSTed the step's event. ``invoke``
never raises for anything the function does: every failure becomes ``StepResult(ok=False)``.

Theory of operation (local functions)
-------------------------------------
The child starts in a session of its own, so it and everything it spawns form one process
group that a timeout or a cancel kills as a whole: SIGTERM, a short grace, then SIGKILL.
Even after a step that ended well, whatever the function left running is killed, as Lambda
freezes an environment once its handler returns. The child reports on a pipe of its own,
so nothing the function prints can pass for a result; its stdout and stderr share one pipe
whose last ``OUTPUT_LIMIT`` bytes are kept. One thread waits on both pipes with a short
tick, which is how the deadline and the cancel event are noticed without busy-waiting.
The group is signalled only while its leader is unreaped (``waitid(WNOWAIT)``), so its id
cannot have been handed to another process (where ``waitid`` is missing, as on macOS, that
small race remains).

Nothing of ours reaches the function's environment except what it needs: a few harmless
variables, the user's, and the endpoint and temporary credentials. Those credentials never
appear in ``error`` or ``output``, which hold only what the function itself printed or raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import httpx


HOST = Path(__file__).with_name("host.py")
OUTPUT_LIMIT = 64 * 1024
ERROR_LIMIT = 1024
TICK = 0.1  # how soon a cancel is noticed, in seconds
KILL_GRACE = 0.5  # between SIGTERM and SIGKILL
DRAIN_LIMIT = 1.0  # for output still buffered once the function is gone
MAX_REDIRECTS = 3
MEMORY_SIZE_MB = "128"
DEFAULT_HANDLER = "lambda_handler"
INHERITED = ("PATH", "HOME", "LANG")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    handler: str | None  # "PATH/TO/file.py:lambda_handler" for a local function, or
    url: str | None  # "http://..." for an HTTP function; exactly one of the two
    env: Mapping[str, str]
    timeout: float  # seconds
    python: str | None  # interpreter for a local function; None = the server's own


@dataclass(frozen=True, slots=True)
class Invocation:
    event: Mapping[str, str]  # {"Step", "SecretId", "ClientRequestToken", "RotationToken"}
    function_arn: str
    region: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    session_token: str


@dataclass(frozen=True, slots=True)
class StepResult:
    ok: bool
    error: str | None
    output: str
    duration: float


def invoke(
    spec: FunctionSpec, call: Invocation, *, cancel: threading.Event | None = None
) -> StepResult:
    """Run one step; returns how it went. Raises ValueError only for a malformed ``spec``."""
    if (spec.handler is None) == (spec.url is None):
        raise ValueError("a rotation function has exactly one of a handler and a URL")
    if not spec.timeout > 0:
        raise ValueError("a rotation function's timeout must be positive")
    if spec.handler is not None:
        return _invoke_local(spec, spec.handler, call, cancel)
    assert spec.url is not None  # noqa: S101 - checked above; narrows the type
    return _invoke_http(spec, spec.url, call, cancel)


def timed_out(timeout: float) -> str:
    """Lambda's own words for a function that ran out of time."""
    return f"Task timed out after {timeout:.2f} seconds"


class _Tail:
    """The last ``limit`` bytes of a stream, and whether anything before them was dropped."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = False

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        # Trim in batches, so a chatty function costs amortised O(1) per byte.
        if len(self.data) > 2 * self.limit:
            self._trim()

    def text(self) -> str:
        self._trim()
        text = self.data.decode(errors="replace")
        return (
            f"[output truncated to the last {self.limit} bytes]\n{text}" if self.dropped else text
        )

    def _trim(self) -> None:
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]
            self.dropped = True


def _stop_reason(deadline: float, timeout: float, cancel: threading.Event | None) -> str | None:
    if cancel is not None and cancel.is_set():
        return "cancelled"
    if time.monotonic() >= deadline:
        return timed_out(timeout)
    return None


def _short(text: str) -> str:
    return text if len(text) <= ERROR_LIMIT else text[:ERROR_LIMIT] + "..."


# --- local functions -------------------------------------------------------------------------


def _split_handler(handler: str) -> tuple[Path, str]:
    path, sep, function = handler.rpartition(":")
    if not sep or not function.isidentifier():
        path, function = handler, DEFAULT_HANDLER
    return Path(path).expanduser().resolve(), function


def _environment(spec: FunctionSpec, call: Invocation) -> dict[str, str]:
    """A clean environment: never the server's own, which may hold STRONGROOM_* secrets."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.setdefault("PATH", os.defpath)
    # Unbuffered, so what the function printed before a timeout is not lost with it.
    env |= {"TZ": "UTC", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env |= spec.env
    started = time.gmtime()
    # Ours come last: the function talks to this server, as the engine's temporary principal.
    env |= {
        "AWS_ENDPOINT_URL": call.endpoint_url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": call.endpoint_url,
        "SECRETS_MANAGER_ENDPOINT": call.endpoint_url,
        "AWS_REGION": call.region,
        "AWS_DEFAULT_REGION": call.region,
        "AWS_ACCESS_KEY_ID": call.access_key_id,
        "AWS_SECRET_ACCESS_KEY": call.secret_access_key,
        "AWS_SESSION_TOKEN": call.session_token,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": MEMORY_SIZE_MB,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": f"{spec.timeout:g}",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]", started)
        + uuid.uuid4().hex,
    }
    return env


def _invoke_local(
    spec: FunctionSpec, handler: str, call: Invocation, cancel: threading.Event | None
) -> StepResult:
    started = time.monotonic()
    path, function = _split_handler(handler)
    if not path.is_file():
        error = (
            f"Runtime.ImportModuleError: Unable to import module '{path.stem}': "
            f"No module named '{path.stem}'"
        )
        return StepResult(ok=False, error=error, output="", duration=time.monotonic() - started)
    python = spec.python or sys.executable
    deadline_ms = int((time.time() + spec.timeout) * 1000)
    argv = [python, str(HOST), str(path), function, "", str(deadline_ms), call.function_arn]
    try:
        child = _Child(argv, path.parent, _environment(spec, call))
    except OSError as exc:
        error = f"cannot start the interpreter {python}: {exc.strerror or exc}"
        return StepResult(ok=False, error=error, output="", duration=time.monotonic() - started)
    with child:
        child.send(json.dumps(dict(call.event)).encode())
        stop = child.watch(started + spec.timeout, spec.timeout, cancel)
        if stop is None:
            child.kill_group()  # leftovers of a step that has ended
        else:
            child.terminate_group()
        child.finish()
    failure = stop or _report_error(bytes(child.report), child.proc.returncode, child.output)
    return StepResult(
        ok=failure is None,
        error=failure,
        output=child.output.text(),
        duration=time.monotonic() - started,
    )


class _Child:
    """One run of ``host.py``: the process, its output pipe and its report pipe."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.output = _Tail()
        self.report = bytearray()
        self._report_r, report_w = os.pipe()
        argv[4] = str(report_w)  # the host's RESULT_FD
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our argv; the interpreter is configured
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                pass_fds=(report_w,),
                start_new_session=True,
            )
        except OSError:
            os.close(self._report_r)
            raise
        finally:
            os.close(report_w)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close our ends of the pipes and reap the child."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        os.close(self._report_r)
        self.proc.wait()

    def send(self, event: bytes) -> None:
        assert self.proc.stdin is not None  # noqa: S101 - stdin=PIPE
        try:
            # A few hundred bytes: the pipe's buffer takes them without blocking.
            self.proc.stdin.write(event)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # the child died at once; its exit status tells why

    def watch(self, deadline: float, timeout: float, cancel: threading.Event | None) -> str | None:
        """Collect output until the child exits (None) or must be stopped (the reason)."""
        with self._selector() as selector:
            while not self.has_exited():
                reason = _stop_reason(deadline, timeout, cancel)
                if reason is not None:
                    return reason
                _read_ready(selector, min(TICK, max(deadline - time.monotonic(), 0.0)))
        return None

    def finish(self) -> None:
        """Reap the child, then read what is left in both pipes, for at most DRAIN_LIMIT.

        A process that left our group (setsid) may still hold stdout; it is not waited for.
        """
        self.proc.wait()
        until = time.monotonic() + DRAIN_LIMIT
        with self._selector() as selector:
            while selector.get_map() and (left := until - time.monotonic()) > 0:
                _read_ready(selector, left)

    def has_exited(self) -> bool:
        """Whether the child has exited, leaving it unreaped so its group id stays ours."""
        if self.proc.returncode is not None:
            return True
        if not hasattr(os, "waitid"):  # macOS: reaping is the only way to ask
            return self.proc.poll() is not None
        info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None and info.si_pid == self.proc.pid

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is already empty
            os.killpg(self.proc.pid, signal.SIGKILL)

    def terminate_group(self) -> None:
        """SIGTERM the whole group, then SIGKILL it once the leader exits or the grace ends."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        until = time.monotonic() + KILL_GRACE
        while not self.has_exited() and time.monotonic() < until:
            time.sleep(0.02)
        self.kill_group()

    def _selector(self) -> selectors.BaseSelector:
        assert self.proc.stdout is not None  # noqa: S101 - stdout=PIPE
        selector = selectors.DefaultSelector()
        for fd, sink in (
            (self.proc.stdout.fileno(), self.output.add),
            (self._report_r, self.report.extend),
        ):
            with contextlib.suppress(ValueError):  # already closed
                selector.register(fd, selectors.EVENT_READ, sink)
        return selector


def _read_ready(selector: selectors.BaseSelector, wait: float) -> None:
    for key, _ in selector.select(wait):
        chunk = os.read(key.fd, 65536)
        if chunk:
            key.data(chunk)
        else:
            selector.unregister(key.fd)


def _report_error(report: bytes, returncode: int | None, output: _Tail) -> str | None:
    """The step's error from the child's report, or from how it exited if it sent none."""
    try:
        parsed = json.loads(report) if report else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if parsed.get("ok") is True:
            return None
        trace = parsed.get("traceback")
        error = f"{parsed.get('type')}: {parsed.get('message')}"
        # Where Lambda puts it: the function's log, as an [ERROR] line and its traceback.
        output.add(f"[ERROR] {error}\n{trace or ''}".encode())
        return _short(error)
    if returncode is not None and returncode < 0:
        reason = f"signal: {signal.Signals(-returncode).name.removeprefix('SIG').lower()}"
        return f"Runtime.ExitError: Runtime exited with error: {reason}"
    if returncode:
        return f"Runtime.ExitError: Runtime exited with error: exit status {returncode}"
    return "Runtime.ExitError: Runtime exited without providing a reason"


# --- HTTP functions --------------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    error: str | None = None
    output: str = ""


def _invoke_http(
    spec: FunctionSpec, url: str, call: Invocation, cancel: threading.Event | None
) -> StepResult:
    """POST the event from a worker thread, so a cancel or the deadline is answered at once.

    The abandoned request still ends by itself: httpx's own timeouts are the same.
    """
    started = time.monotonic()
    deadline = started + spec.timeout
    outcome = _Outcome()
    done = threading.Event()

    def post() -> None:
        try:
            _post(spec, url, call, outcome)
        finally:
            done.set()

    threading.Thread(target=post, name=f"rotation-http-{spec.name}", daemon=True).start()
    stop = None
    while not done.wait(min(TICK, max(deadline - time.monotonic(), 0.0))):
        stop = _stop_reason(deadline, spec.timeout, cancel)
        if stop is not None:
            break
    if stop is not None:
        return StepResult(ok=False, error=stop, output="", duration=time.monotonic() - started)
    return StepResult(
        ok=outcome.error is None,
        error=outcome.error,
        output=outcome.output,
        duration=time.monotonic() - started,
    )


def _post(spec: FunctionSpec, url: str, call: Invocation, outcome: _Outcome) -> None:
    """POST the event; follow redirects only to the same origin, and only as a POST (307/308)."""
    headers = {"Content-Type": "application/json", "X-Strongroom-Function-Arn": call.function_arn}
    body = json.dumps(dict(call.event)).encode()
    import httpx  # noqa: PLC0415 - ~8 MiB per server process, needed only by HTTP functions

    try:
        with httpx.Client(timeout=spec.timeout, follow_redirects=False) as client:
            request = client.build_request("POST", url, content=body, headers=headers)
            for _ in range(MAX_REDIRECTS + 1):
                response = client.send(request, stream=True)
                try:
                    following = response.next_request
                    if following is not None and _may_follow(request, following):
                        request = following
                        continue
                    text = _read_bounded(response)
                finally:
                    response.close()
                outcome.output = text
                if not response.is_success:
                    outcome.error = _short(f"HTTP {response.status_code}: {text}")
                return
            outcome.error = f"more than {MAX_REDIRECTS} redirects"
    except httpx.TimeoutException:
        outcome.error = timed_out(spec.timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # httpx's texts name the failure (refused, DNS, bad URL), not the request's contents.
        outcome.error = _short(f"{type(exc).__name__}: {exc}")


def _may_follow(request: httpx.Request, following: httpx.Request) -> bool:
    same_origin = (request.url.scheme, request.url.host, request.url.port) == (
        following.url.scheme,
        following.url.host,
        following.url.port,
    )
    return same_origin and following.method == "POST"


def _read_bounded(response: httpx.Response) -> str:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= OUTPUT_LIMIT:
            break
    return bytes(body[:OUTPUT_LIMIT]).decode(errors="replace")
