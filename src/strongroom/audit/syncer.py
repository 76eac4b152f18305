"""The audit journal's ``fdatasync``, done by a child process rather than a thread.

Why a process
-------------
A batch of records is written (``pwrite``, into the page cache) by the event loop itself;
only the ``fdatasync`` that makes it durable must not stop the loop. A thread of the same
process did it before, and every batch then cost several hand-offs of the GIL between that
thread and the busy event loop (the thread wants the GIL back after each system call, and
takes it whenever the loop lets go, around every SQLite call): under load about five futex
calls and context switches per read, far more CPU than the ``fdatasync`` itself. A process
has its own interpreter: the loop writes one line into a pipe, the child syncs, and its
answer wakes the loop through the same ``epoll`` that wakes it for sockets. docs/audit.md
has the figures.

Protocol (one request in flight at a time, lines of ASCII)
----------------------------------------------------------
- to the child: ``<segment path, hex> <end>\\n``: make the segment durable through byte
  ``end``. The first request for a path also syncs its directory, so that a new segment's
  name survives a crash before any record in it is acknowledged.
- from the child: ``ok <end>\\n``, or ``err <errno>\\n`` when a system call failed.

Under ``strongroom serve --workers N`` the supervisor does the syncing, a thread per
worker over a socket pair it hands each worker (``STRONGROOM_SYNC_FD``): the supervisor has
nothing else to do, and a process per worker would cost about 9 MiB each. Otherwise (one
process, tests), or when the supervisor's channel fails, the worker starts a child of its
own: ``strongroom/sync_child.py`` run as a script (``python -I -S``: no site packages, nothing of
Strongroom imported), which starts in tens of milliseconds. The child ignores SIGINT (a ^C
reaches the whole process group, and the worker still has its last batch to sync) and ends
when its parent closes the pipe, or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from strongroom import sync_child
from strongroom.sync_child import SYNC_FD_VARIABLE

_CHILD: Final = Path(sync_child.__file__)


class SyncerGone(OSError):
    """The syncer is gone: what it was syncing is not known to be durable."""


@dataclass(slots=True)
class _Channel:
    requests: int  # file descriptor the requests go to
    answers: int  # file descriptor the answers come from
    process: subprocess.Popen[bytes] | None  # None: the supervisor's socket

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def close(self) -> None:
        if self.process is None:
            os.close(self.requests)  # one socket both ways
            return
        process = self.process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the child's cue to end
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class Syncer:
    """The worker's side: ``request`` a sync; ``on_answer(end, error)`` runs on the loop."""

    def __init__(self, on_answer: Callable[[int, OSError | None], None]) -> None:
        self._on_answer = on_answer
        self._channel: _Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unread = b""

    def request(self, loop: asyncio.AbstractEventLoop, path: Path, end: int) -> None:
        """Ask for ``path`` to be durable through ``end``; raises OSError if it cannot be
        asked (the answer then never comes)."""
        channel = self._started()
        if loop is not self._loop:  # tests run one loop after another
            self._loop = loop
            loop.add_reader(channel.answers, self._readable)
        # The path in hex: any bytes a file name may hold (a newline too) cross intact.
        os.write(channel.requests, b"%s %d\n" % (os.fsencode(path).hex().encode(), end))

    def wait(self) -> None:
        """Block until the answer in flight arrives (closing, when the loop runs no more)."""
        channel = self._channel
        if channel is None:
            return
        os.set_blocking(channel.answers, True)
        try:
            self._readable()
        finally:
            with contextlib.suppress(OSError):
                os.set_blocking(channel.answers, False)

    def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            self._forget_reader(channel)
            channel.close()

    @property
    def child_pid(self) -> int | None:
        """The pid of the syncer's own child process, if it has one (tests)."""
        channel = self._channel
        return None if channel is None or channel.process is None else channel.process.pid

    def _started(self) -> _Channel:
        if self._channel is not None and self._channel.alive():
            return self._channel
        self.close()  # it died: reap it and start another
        inherited = os.environ.pop(SYNC_FD_VARIABLE, "")  # offered once: not after a failure
        if inherited.isdigit():
            channel = _Channel(int(inherited), int(inherited), None)
        else:
            process = subprocess.Popen(  # noqa: S603 - our own script, by absolute path
                [sys.executable, "-I", "-S", str(_CHILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
            assert process.stdin is not None  # noqa: S101 - PIPE
            assert process.stdout is not None  # noqa: S101 - PIPE
            channel = _Channel(process.stdin.fileno(), process.stdout.fileno(), process)
        os.set_blocking(channel.answers, False)
        self._channel, self._loop, self._unread = channel, None, b""
        return channel

    def _readable(self) -> None:
        channel = self._channel
        if channel is None:
            return
        error: OSError | None = None
        try:
            data = os.read(channel.answers, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            data, error = b"", exc
        if not data:  # the syncer is gone: fail what it was syncing, start another next time
            if channel.process is not None:
                channel.process.kill()  # it may not have finished exiting: not alive
            self.close()
            self._on_answer(-1, SyncerGone(str(error or "the audit journal's syncer stopped")))
            return
        self._unread += data
        while b"\n" in self._unread:
            line, _, self._unread = self._unread.partition(b"\n")
            word, _, value = line.partition(b" ")
            if word == b"ok":
                self._on_answer(int(value), None)
            else:
                number = int(value)
                self._on_answer(-1, OSError(number, os.strerror(number)))

    def _forget_reader(self, channel: _Channel) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._loop.remove_reader(channel.answers)
        self._loop = None
