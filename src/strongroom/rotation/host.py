"""Child-process entry point: run one rotation step of a local rotation function.

``python host.py HANDLER_FILE FUNCTION RESULT_FD DEADLINE_MS FUNCTION_ARN`` reads the Lambda
event (JSON) from stdin, imports HANDLER_FILE by path, calls ``FUNCTION(event, context)`` and
writes one JSON report to RESULT_FD: ``{"ok": true}`` or ``{"ok": false, "type", "message",
"traceback"}``. The function's own stdout and stderr are left alone: the parent captures them
as the step's output, and the report never mixes with them.

Rule: the standard library only, and nothing newer than the interpreters people still run.
The parent starts this file by its path with whichever interpreter the function asked for,
which need not have Strongroom (or anything else) installed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

MEMORY_LIMIT_MB = "128"


class LambdaContext:
    """The attributes and method that rotation functions use of Lambda's context object."""

    def __init__(self, function_arn: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        # Lambda's Python runtime hands this over as the string from its environment.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_LIMIT_MB)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


class StepFailure(Exception):
    """A failure the runtime reports under its own error type, as Lambda does."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def main(argv: list[str]) -> int:
    handler_file, function, result_fd, deadline_ms, function_arn = argv
    report_fd = int(result_fd)
    # Subprocesses the function starts must not hold the report pipe open.
    os.set_inheritable(report_fd, False)  # noqa: FBT003 - positional-only in os
    event = json.loads(sys.stdin.read())
    _detach_stdin()
    path = Path(handler_file)
    # Run as a script, our own folder is sys.path[0] (unless -P / PYTHONSAFEPATH kept it out);
    # the function's folder belongs there instead.
    if sys.path and sys.path[0] == str(Path(__file__).resolve().parent):
        sys.path[0] = str(path.parent)
    else:
        sys.path.insert(0, str(path.parent))
    context = LambdaContext(function_arn, int(deadline_ms))
    _configure_logging(context.aws_request_id)
    try:
        handler = _load(path, function)
        handler(event, context)
    except StepFailure as exc:
        _report(report_fd, {"ok": False, "type": exc.error_type, "message": str(exc)})
    except Exception as exc:  # noqa: BLE001 - whatever the function raises is the step's result
        _report(report_fd, _describe(exc))
    else:
        _report(report_fd, {"ok": True})
    return 0


def _load(path: Path, function: str) -> Callable[..., Any]:
    """Import the handler the way Lambda's runtime does, with its error types and texts."""
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise StepFailure(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': No module named '{module_name}'",
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise StepFailure(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        raise StepFailure(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        ) from exc
    return _handler(module, module_name, function)


def _handler(module: ModuleType, module_name: str, function: str) -> Callable[..., Any]:
    handler = getattr(module, function, None)
    if not callable(handler):
        raise StepFailure(
            "Runtime.HandlerNotFound", f"Handler '{function}' missing on module '{module_name}'"
        )
    return handler  # type: ignore[no-any-return]  # callable() narrows to Callable[..., object]


def _describe(exc: BaseException) -> dict[str, object]:
    # The first frame is ours (the call into the handler); the function's author needs theirs.
    frames = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    return {
        "ok": False,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, frames)),
    }


def _report(fd: int, report: dict[str, object]) -> None:
    data = json.dumps(report).encode()
    while data:
        data = data[os.write(fd, data) :]
    os.close(fd)


def _detach_stdin() -> None:
    """The event has been read; the function and its subprocesses see an empty stdin."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - replaces the process's stdin


def _configure_logging(request_id: str) -> None:
    """Give the root logger a handler, as Lambda's runtime does.

    Rotation templates log with ``logging.getLogger().setLevel(logging.INFO)`` and no handler
    of their own; without one, their INFO lines would be lost.
    """
    formatter = logging.Formatter(
        f"[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t{request_id}\t%(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)


def _run() -> NoReturn:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    _run()
