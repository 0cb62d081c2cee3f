"""Worker processes for ``fieldbook serve``: uvicorn's supervisor, with a listening socket per worker.

uvicorn's workers all accept from one shared socket, and libuv (uvloop) accepts every connection
waiting at once: a client that opened several connections together usually had them all served by one
worker, whose GIL then set the pace while the other idled (the capture bench: one worker 9.4 CPU-s of a
10 s window, the other 0.2). Here each worker listens on a socket of its own, all bound to the same
address with SO_REUSEPORT, and the kernel spreads new connections over them by their addresses' hash,
as nginx's and gunicorn's ``reuse_port`` do. The supervisor keeps every socket open, so a connection
hashed to a worker that died waits in its socket's queue for the replacement instead of being refused.

Where SO_REUSEPORT is missing, or balances nothing (it only does on Linux), uvicorn's own supervisor
serves from one shared socket instead, and its workers take turns at accepting (UV_TCP_SINGLE_ACCEPT:
libuv yields after each accept; it shared the connections in only 2 of 8 capture bench runs).

A/B on the capture bench (2 workers, 8 clients, 8 s, interleaved, 25 Nov 2026): one shared socket
with single accepts 294 / 395 / 416 creates/s, CPU per worker 0.2 + 9.4, 3.8 + 7.9, 4.4 + 7.4 s; a
socket per worker 407 / 377 / 396, 4.8 + 7.1, 5.4 + 6.5, 5.6 + 6.5 s: never one worker alone."""

import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


def run(app: str, *, workers: int, **options: Any) -> None:
    """``uvicorn.run(app, factory=True, workers=workers, **options)``, with a socket per worker and
    request bodies handed over without uvicorn's copies (``api.http_protocol``)."""
    options.setdefault("http", "api.http_protocol:BodyChunksAsTheyCome")
    if workers > 1 and sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT"):
        SocketPerWorker(Config(app, factory=True, workers=workers, **options)).run()
        return
    os.environ.setdefault("UV_TCP_SINGLE_ACCEPT", "1")  # set before the workers start: they inherit it
    uvicorn.run(app, factory=True, workers=workers, **options)


def listening_socket(config: Config) -> socket.socket:
    """A socket bound to the configured address that shares it with the other workers' sockets (the
    worker makes it listen)."""
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        logger.error(exc)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    return sock


class SocketPerWorker(Multiprocess):
    """uvicorn's ``Multiprocess`` (health checks, restarts, signals), but worker ``i`` always gets socket
    ``i``: a replacement takes over the socket, and the queue, of the worker it replaces."""

    def __init__(self, config: Config) -> None:
        self.worker_sockets = [listening_socket(config) for _ in range(config.workers)]
        host, port = self.worker_sockets[0].getsockname()[:2]
        logger.info("Uvicorn running on http://%s:%d, a socket per worker (Press CTRL+C to quit)", host, port)
        super().__init__(config, sockets=[])

    def _worker(self, index: int) -> Process:
        process = Process(self.config, [self.worker_sockets[index]])
        process.start()
        return process

    # The three places where uvicorn's supervisor starts a worker, each as uvicorn 0.54 has it, with the
    # worker's own socket instead of the shared ones.

    def init_processes(self) -> None:
        self.processes = [self._worker(index) for index in range(self.processes_num)]

    def restart_all(self) -> None:
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._worker(index)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(f"New worker [{new.pid}] was not ready in time; keeping [{old.pid}].")
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving: the app or the socket is broken and every restart would fail.
                logger.error(f"Worker [{process.pid}] failed to start, stopping.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info(f"Worker [{process.pid}] died")
            self.processes[index] = self._worker(index)

    # Resizing (SIGTTIN / SIGTTOU) would need a socket per new worker: not offered.
    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN: the number of workers is fixed (--workers).")

    def handle_ttou(self) -> None:
        logger.info("Received SIGTTOU: the number of workers is fixed (--workers).")
