"""A worker's uvicorn server, serving the connections the supervisor hands it (``handoff.py``)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn


class HandedServer(uvicorn.Server):
    """Serves the connections that arrive on ``channel`` instead of listening itself.
    Run it with ``.run(sockets=[])``."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._tasks: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)  # the app's start-up; no listener
        self.channel.setblocking(False)  # noqa: FBT003 - positional-only
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets=sockets)

    def _take(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:  # the supervisor is gone: the worker ends with it (supervisor.py)
                loop.remove_reader(self.channel.fileno())
                return
            for fd in fds:
                task = loop.create_task(self._adopt(socket.socket(fileno=fd)))
                self._tasks.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self._tasks.discard)

    async def _adopt(self, connection: socket.socket) -> None:
        connection.setblocking(False)  # noqa: FBT003 - positional-only
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self._protocol, connection)
        except OSError:
            connection.close()  # the client left before its connection was set up

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's own listener makes for each connection it accepts (Server.startup).
        protocol_class: Any = self.config.http_protocol_class
        protocol: asyncio.Protocol = protocol_class(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol
