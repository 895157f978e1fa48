"""An embedded redis-server: started on a free loopback port with its data in a directory.

With ``unix_socket=True`` it also listens on a Unix socket in that directory
(``socket_url``), for clients on the same machine.

Used by ``millstream up`` (with the append-only file on), by benchmarks and by
tests. ``stop()`` terminates it and waits, so no process is left behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from streams.errors import TransportError
from streams.service.processes import terminate

SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    def __init__(self, directory: Path, *, appendonly: bool = False, port: int = 0,
                 binary: str = "redis-server", unix_socket: bool = False,
                 max_bulk_bytes: int | None = None) -> None:
        """``max_bulk_bytes``: Redis's ``proto-max-bulk-len``, the largest string a client may send
        (at least 1 MiB); None keeps Redis's 512 MB."""
        path = shutil.which(binary)
        if path is None:
            raise TransportError(f"{binary} is not installed (scripts/setup.sh installs it)")
        directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        socket_path = directory / "redis.sock"
        if unix_socket and len(str(socket_path)) > SOCKET_PATH_MAX:
            raise TransportError(f"Unix socket path too long ({socket_path}): use a shorter directory")
        self.socket_url = f"unix://{socket_path}" if unix_socket else None
        listen = ["--unixsocket", str(socket_path), "--unixsocketperm", "700"] if unix_socket else []
        if max_bulk_bytes is not None:
            listen += ["--proto-max-bulk-len", str(max_bulk_bytes)]
        self.process = subprocess.Popen(
            [path, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory), *listen,
             "--save", "", "--appendonly", "yes" if appendonly else "no",
             "--logfile", str(directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError as error:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        log = self.directory / "redis.log"
                        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                        problem = f"redis-server did not start on port {self.port}:\n{tail}"
                        raise TransportError(problem) from error
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        terminate(self.process)

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
