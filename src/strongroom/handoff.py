"""Connections accepted once, by the supervisor, and handed to the workers in turn.

Why not a listening socket per worker
-------------------------------------
With ``SO_REUSEPORT`` the kernel spreads new connections over the workers' sockets by a hash
of their addresses: a coin toss per connection. Clients keep their connections open (every
AWS SDK pools them), so a toss lasts: 32 connections from one client landed 22 and 10, 20
and 12, 19 and 13 in the bench. Both workers stay busy, but the one holding more
connections answers each of them more slowly (in a closed loop a connection waits for the
others of its worker), which showed in GetSecretValue's p99: 25-27 ms against 19 ms at an
even 16 and 16, all else the same. A client with a small pool can even land wholly on one
worker and use half the machine.

How
---
The supervisor listens, accepts each connection and sends its file descriptor
(``SCM_RIGHTS``) to the next worker in turn, over a socket pair it gives each worker
(``STRONGROOM_HANDOFF_FD``); nothing else of the connection passes through it. The
worker's event loop takes the descriptor and serves it as uvicorn serves a connection it
accepted (``handed_server.HandedServer``). A worker that is gone or has a full channel is
skipped. No library does this for uvicorn (gunicorn's and uvicorn's workers all accept
from a shared socket, whose wake-ups hand whole bursts of connections to one worker), hence
this module.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import threading
from typing import Final

logger = logging.getLogger("strongroom.supervisor")

HANDOFF_FD_VARIABLE: Final = "STRONGROOM_HANDOFF_FD"
_FULL_WAIT: Final = 5.0  # seconds a connection waits for a worker to take it, when none can
_ACCEPT_RETRY: Final = 0.1  # seconds
_TOKEN: Final = b"c"  # the one byte each descriptor travels with


def listen(family: socket.AddressFamily, sockaddr: tuple[str, int], backlog: int) -> socket.socket:
    """The server's one listening socket. Without ``SO_REUSEPORT``: anything listening there
    already (another Strongroom included) makes the bind fail, rather than share the port."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class Dispatcher:
    """The supervisor's side: accepts every connection and hands it to a worker."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self._channels: list[socket.socket] = []  # one per live worker, in turn
        self._lock = threading.Lock()
        self._turn = 0
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def channel(self) -> socket.socket:
        """A channel for a new worker; returns the worker's end, to pass to it."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)  # noqa: FBT003 - positional-only
        with self._lock:
            self._channels.append(ours)
        return theirs

    def start(self) -> None:
        threading.Thread(target=self._run, name="dispatcher", daemon=True).start()

    def stop(self) -> None:
        """Stop accepting; connections accepted already stay with their workers."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        self.listener.close()

    def _run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError as exc:
                if self._stopped.is_set():
                    return
                # Out of descriptors, or the client gave up in the backlog: not the end, but
                # no busy loop either (asyncio waits a second after running out).
                logger.warning("accepting a connection failed: %s", exc.strerror)
                self._stopped.wait(_ACCEPT_RETRY)
                continue
            with connection:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._hand(connection)
            # The worker holds its own copy now; closing ours leaves the connection open.

    def _hand(self, connection: socket.socket) -> None:
        """Send ``connection`` to the next worker that takes it; if none can for a while,
        the connection is closed (the client sees a reset and retries, as SDKs do)."""
        for _ in range(2):
            busy = self._try_each(connection)
            if busy is None:
                return
            if busy:  # every channel full: wait until one has room, then try again
                select.select([], busy, [], _FULL_WAIT)
        logger.warning("no worker took a connection; closing it")

    def _try_each(self, connection: socket.socket) -> list[socket.socket] | None:
        """None once handed; else the channels that were full (empty: no worker at all)."""
        with self._lock:
            channels = list(self._channels)
        busy = []
        for step in range(len(channels)):
            channel = channels[(self._turn + step) % len(channels)]
            try:
                socket.send_fds(channel, [_TOKEN], [connection.fileno()])
            except BlockingIOError:
                busy.append(channel)
                continue
            except OSError as exc:  # the worker is gone (EPIPE, ECONNRESET): drop it
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    logger.warning("handing a connection to a worker failed: %s", exc.strerror)
                self._drop(channel)
                continue
            self._turn = (self._turn + step + 1) % len(channels)
            return None
        return busy

    def _drop(self, channel: socket.socket) -> None:
        with self._lock:
            if channel in self._channels:
                self._channels.remove(channel)
        channel.close()
