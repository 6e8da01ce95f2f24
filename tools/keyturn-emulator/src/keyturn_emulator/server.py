"""uvicorn in a background thread, on a loopback socket bound before the thread starts.

Binding first means the port (0 lets the OS pick) is known at once and the server is
reachable as soon as :meth:`ServerThread.start` returns. :meth:`ServerThread.stop` asks
uvicorn to exit, joins the thread and closes the socket; calling it twice is harmless.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

__all__ = ["ServerThread"]

_START_TIMEOUT = 15.0


class ServerThread:
    """One uvicorn server in a daemon thread.

    :param host: the address to bind (loopback).
    :param port: the port; 0 picks a free one.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, make_app: Callable[[int], Any]) -> int:
        """Bind, start serving, wait until uvicorn accepts connections; returns the port.

        :param make_app: builds the ASGI app once the port is known.

        :raises OSError: the port cannot be bound.
        :raises RuntimeError: uvicorn did not start.
        """
        # proto=IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # that say they are TCP, and with Nagle on every keep-alive answer waits ~40 ms for
        # the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            make_app(self.port),
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            loop="asyncio",
            backlog=4096,
            timeout_graceful_shutdown=2,
            # uvicorn closes a connection idle for 5 s by default, the very expiry httpx gives
            # its pooled connections: a client whose loop runs late under load then sends a
            # request on a connection being closed and gets a network error. Providers keep
            # connections open for minutes; a minute is plenty here.
            timeout_keep_alive=60,
        )
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"keyturn-emulator-{self.port}",
            daemon=True,
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator's server did not start")
            time.sleep(0.005)
        return self.port

    def stop(self) -> None:
        """Stop serving and join the thread. Idempotent."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join()
        if sock is not None:
            sock.close()
