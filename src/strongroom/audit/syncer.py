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
- to the child: ``<segment path>\\t<end>\\n``: make the segment durable through byte
  ``end``. The first request for a path also syncs its directory, so that a new segment's
  name survives a crash before any record in it is acknowledged.
- from the child: ``ok <end>\\n``, or ``err <errno>\\n`` when a system call failed.

The child runs ``sync_child.py`` as a script (``python -I -S``: no site packages, nothing
of Strongroom imported), so it costs a few MiB and starts in tens of milliseconds. It ignores
SIGINT (a ^C to the server reaches the whole process group, and the worker still has its
last batch to sync) and ends when its parent closes the pipe, or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

_CHILD: Final = Path(__file__).with_name("sync_child.py")


class SyncerGone(OSError):
    """The child process is gone: what it was syncing is not known to be durable."""


class Syncer:
    """The parent's side: ``request`` a sync; ``on_answer(end, error)`` runs on the loop."""

    def __init__(self, on_answer: Callable[[int, OSError | None], None]) -> None:
        self._on_answer = on_answer
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unread = b""

    def request(self, loop: asyncio.AbstractEventLoop, path: Path, end: int) -> None:
        """Ask for ``path`` to be durable through ``end``; raises OSError if it cannot be
        asked (the answer then never comes)."""
        process = self._started()
        assert process.stdin is not None  # noqa: S101 - PIPE
        assert process.stdout is not None  # noqa: S101 - PIPE
        if loop is not self._loop:  # tests run one loop after another
            self._loop = loop
            loop.add_reader(process.stdout.fileno(), self._readable)
        os.write(process.stdin.fileno(), f"{os.fsdecode(path)}\t{end}\n".encode())

    def wait(self) -> None:
        """Block until the answer in flight arrives (closing, when the loop runs no more)."""
        process = self._process
        if process is None or process.stdout is None:
            return
        os.set_blocking(process.stdout.fileno(), True)
        try:
            self._readable()
        finally:
            with contextlib.suppress(OSError):
                os.set_blocking(process.stdout.fileno(), False)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        self._forget_reader(process)
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

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if self._process is not None:
            self.close()  # it died: reap it and start another
        self._process = subprocess.Popen(  # noqa: S603 - our own script, by absolute path
            [sys.executable, "-I", "-S", str(_CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self._process.stdout is not None  # noqa: S101 - PIPE
        os.set_blocking(self._process.stdout.fileno(), False)
        self._loop, self._unread = None, b""
        return self._process

    def _readable(self) -> None:
        process = self._process
        if process is None or process.stdout is None:
            return
        error: OSError | None = None
        try:
            data = os.read(process.stdout.fileno(), 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            data, error = b"", exc
        if not data:  # the child is gone: fail what it was syncing, start another next time
            self._forget_reader(process)
            process.kill()  # it may not have finished exiting: do not take it for alive
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

    def _forget_reader(self, process: subprocess.Popen[bytes]) -> None:
        if self._loop is not None and process.stdout is not None:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._loop.remove_reader(process.stdout.fileno())
        self._loop = None
