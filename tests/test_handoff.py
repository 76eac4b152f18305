"""The supervisor's dispatcher over real sockets: each connection to the next live worker."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from strongroom.handoff import Dispatcher, listen


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(listen(socket.AF_INET, ("127.0.0.1", 0), 16))
    yield dispatcher
    dispatcher.stop()


def _received(channel: socket.socket) -> socket.socket:
    channel.settimeout(5)
    data, fds, _, _ = socket.recv_fds(channel, 1, 1)
    assert data == b"c"
    assert len(fds) == 1
    return socket.socket(fileno=fds[0])


def test_connections_go_to_the_workers_in_turn_and_arrive_connected(dispatcher):
    channels = [dispatcher.channel() for _ in range(3)]
    dispatcher.start()
    clients = [socket.create_connection(("127.0.0.1", dispatcher.port)) for _ in range(6)]
    try:
        for round_ in range(2):
            for index, channel in enumerate(channels):
                with _received(channel) as server_end:
                    client = clients[round_ * 3 + index]
                    client.sendall(b"ping %d" % (round_ * 3 + index))
                    server_end.settimeout(5)
                    assert server_end.recv(16) == b"ping %d" % (round_ * 3 + index)
                    assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for channel in channels:
            channel.setblocking(False)
            with pytest.raises(BlockingIOError):
                channel.recv(1)  # nothing more: two each
    finally:
        for client in clients:
            client.close()


def test_a_worker_that_is_gone_is_skipped_and_nothing_is_lost(dispatcher):
    gone, alive = dispatcher.channel(), dispatcher.channel()
    gone.close()  # its process died
    dispatcher.start()
    clients = [socket.create_connection(("127.0.0.1", dispatcher.port)) for _ in range(3)]
    try:
        for client in clients:
            with _received(alive) as server_end:
                client.sendall(b"x")
                server_end.settimeout(5)
                assert server_end.recv(1) == b"x"
    finally:
        for client in clients:
            client.close()


def test_stop_closes_the_port(dispatcher):
    dispatcher.channel()
    dispatcher.start()
    port = dispatcher.port
    dispatcher.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_taken_port_is_refused():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            listen(socket.AF_INET, taken.getsockname(), 16)
