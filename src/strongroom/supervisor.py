"""``strongroom serve --workers N``: N worker processes behind one listening socket.

The supervisor is small: the standard library only (no multiprocessing resource tracker, no
copy of the application), about 14 MiB where uvicorn's took about 40. uvicorn's own
``--workers`` share one listening socket, and whichever worker's event loop wakes first
takes every connection waiting (libuv accepts until none is left): the bench saw 32
connections of 32 on one worker, which then served everything on one core.

- It listens itself and hands each connection to the workers in turn (``handoff.py``: why
  not a socket per worker with ``SO_REUSEPORT``). Its bind is the check that the port is
  free: anything already listening there (another Strongroom included) makes it fail.
- It makes the workers' audit journals durable (``audit/syncer.py``: one thread per worker).
- A worker that dies is replaced; one that dies within seconds of starting, five times in
  a row, ends the server (it cannot start: a bad setting, a database down).
- SIGINT or SIGTERM: it stops accepting, every worker is told SIGTERM (uvicorn's graceful
  shutdown: answers in progress finish, the audit journal is written out), then the
  supervisor exits. A worker also ends when the supervisor's pipe closes, so none outlives
  a supervisor killed with -9.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Final

from strongroom import sync_child
from strongroom.handoff import HANDOFF_FD_VARIABLE, Dispatcher, listen
from strongroom.sync_child import SYNC_FD_VARIABLE

logger = logging.getLogger("strongroom.supervisor")

_BACKLOG: Final = 2048  # uvicorn's default
_QUICK_DEATH: Final = 5.0  # seconds: a worker that dies sooner did not really start
_QUICK_DEATHS_TO_GIVE_UP: Final = 5
_STOP_TIMEOUT: Final = 60.0  # seconds for the workers to finish what they are answering


def address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """The family and socket address to listen on for ``host``, as the first address
    ``getaddrinfo`` gives (what a single uvicorn process binds for a name)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


class Supervisor:
    def __init__(self, workers: int, argv: list[str], dispatcher: Dispatcher) -> None:
        self.argv = argv  # how to start one worker
        self.dispatcher = dispatcher
        self.workers: list[tuple[subprocess.Popen[bytes], float]] = []
        self.count = workers
        self.stopping = False
        self.quick_deaths = 0

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop)
        self.workers = [self._start() for _ in range(self.count)]
        self.dispatcher.start()  # connections that came meanwhile wait in the backlog
        failed = False
        while not self.stopping:
            time.sleep(0.5)  # a signal ends the sleep early
            failed = self._replace_dead()
            if failed:
                self._stop()
        self._wait()
        return 1 if failed else 0

    def _start(self) -> tuple[subprocess.Popen[bytes], float]:
        # The worker's audit journal is synced here, by a thread of this process, over a
        # socket pair: the supervisor has nothing else to do (audit/syncer.py).
        ours, theirs = socket.socketpair()
        handoff = self.dispatcher.channel()
        # Two malloc arenas rather than glibc's default of eight per core: a worker's threads
        # (event loop, database, audit) otherwise each grow an arena of their own, which
        # measured about 6 MiB more resident memory per worker for no throughput.
        env = (
            {"MALLOC_ARENA_MAX": "2"}
            | os.environ
            | {SYNC_FD_VARIABLE: str(theirs.fileno()), HANDOFF_FD_VARIABLE: str(handoff.fileno())}
        )
        # stdin: a pipe only this process holds open; its end tells the worker to stop.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.argv,
            stdin=subprocess.PIPE,
            env=env,
            pass_fds=(theirs.fileno(), handoff.fileno()),
        )
        theirs.close()
        handoff.close()  # the worker's alone now: a send to a dead worker fails at once
        threading.Thread(target=_sync_for, args=(ours,), daemon=True).start()
        return process, time.monotonic()

    def _replace_dead(self) -> bool:
        """Start a worker in place of each that exited; True when they keep failing."""
        for index, (process, started) in enumerate(self.workers):
            code = process.poll()
            if code is None or self.stopping:
                continue
            if time.monotonic() - started < _QUICK_DEATH:
                self.quick_deaths += 1
            else:
                self.quick_deaths = 0
            if self.quick_deaths >= _QUICK_DEATHS_TO_GIVE_UP:
                logger.error("workers keep exiting as they start (last: code %s); stopping", code)
                return True
            logger.warning("worker %d exited with code %s; starting another", process.pid, code)
            _close_pipe(process)
            self.workers[index] = self._start()
        return False

    def _stop(self, _signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        if not self.stopping:
            self.dispatcher.stop()
        self.stopping = True
        for process, _ in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # never SIGINT: twice is uvicorn's force

    def _wait(self) -> None:
        deadline = time.monotonic() + _STOP_TIMEOUT
        for process, _ in self.workers:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker %d did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
            _close_pipe(process)


def _sync_for(channel: socket.socket) -> None:
    """Answer one worker's sync requests until it closes its end (it ended)."""
    # OSError: the worker went away mid-answer (if it lives on, it starts a syncer of its own).
    with channel, channel.makefile("rb") as requests, contextlib.suppress(OSError):
        sync_child.serve(requests, channel.fileno())


def _close_pipe(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()


def run_worker() -> None:
    """One worker: the application, on the connections handed to it, until told to stop."""
    import uvicorn  # noqa: PLC0415 - only workers need it: the supervisor stays small

    from strongroom import settings as settings_module  # noqa: PLC0415
    from strongroom.app import app_from_environment  # noqa: PLC0415
    from strongroom.handed_server import HandedServer  # noqa: PLC0415

    settings = settings_module.load({})
    channel = socket.socket(fileno=int(os.environ[HANDOFF_FD_VARIABLE]))
    _end_with_supervisor()
    config = uvicorn.Config(
        app_from_environment(),
        log_level=settings.log_level,
        access_log=False,  # requests are logged by strongroom.http, without bodies
        server_header=False,
    )
    HandedServer(config, channel).run(sockets=[])  # no listener of its own


def _end_with_supervisor() -> None:
    def watch() -> None:
        sys.stdin.buffer.read()  # returns when the supervisor's end of the pipe closes
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m strongroom.supervisor")
    parser.add_argument("--workers", type=int, default=0, help="supervise this many workers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if not args.workers:  # a worker: everything else comes from the STRONGROOM_* variables
        run_worker()
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        listener = listen(*address(args.host, args.port), _BACKLOG)
    except OSError as exc:
        logger.error("cannot listen on %s port %d: %s", args.host, args.port, exc.strerror)  # noqa: TRY400 - no traceback for a taken port
        return 1
    if args.port == 0:  # the port the kernel picked, for every worker (and their URLs)
        args.port = int(listener.getsockname()[1])
        os.environ["STRONGROOM_PORT"] = str(args.port)
        logger.info("listening on port %d", args.port)
    worker = [sys.executable, "-m", "strongroom.supervisor"]
    return Supervisor(args.workers, worker, Dispatcher(listener)).run()


if __name__ == "__main__":
    sys.exit(main())
