"""Received bytes to disk off the event loop: a writer thread hashes and writes while the loop keeps
receiving. hashlib and file writes release the GIL, so on two cores the network and the disk overlap.
Memory is bounded: the loop waits (in a worker thread, never blocking itself) above ``HIGH_WATER``."""

import errno
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from starlette.concurrency import run_in_threadpool

from api.errors import AppError

HIGH_WATER = 8 * 2**20  # bytes queued before the receiving side waits


class StorageFull(AppError):
    status_code = 507
    code = "storage_full"
    message = "The server's disk is full; the bytes of this request were not kept. Try again later."


def _fail(exc: BaseException) -> BaseException:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull()
    return exc


class Hasher(Protocol):
    def update(self, data: Any, /) -> None: ...


class Spool:
    def __init__(self, f: BinaryIO, hashers: list[Hasher]) -> None:
        self.file = f
        self.hashers = hashers
        self._queue: queue.SimpleQueue[bytes | memoryview | Callable[[], None] | None] = queue.SimpleQueue()
        self._pending = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fieldbook-spool", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:
                    if callable(item):
                        self.file.flush()
                        os.fsync(self.file.fileno())
                        item()
                    else:
                        for h in self.hashers:
                            h.update(item)
                        self.file.write(item)
            except BaseException as exc:  # kept and raised on the receiving side
                self._error = _fail(exc)
            with self._cond:
                self._pending -= 1 if callable(item) else len(item)
                self._cond.notify_all()

    def put(self, data: bytes | memoryview) -> None:
        """Queue bytes (never blocks; callers ``await relieve()`` between chunks)."""
        if self._error is not None:
            raise self._error
        if len(data):
            with self._cond:
                self._pending += len(data)
            self._queue.put(data)

    def checkpoint(self, then: Callable[[], None]) -> None:
        """Once everything queued so far is written, fsync the file and call ``then`` (on the writer
        thread): the receiving side goes on meanwhile. A failure is raised on the next ``put``."""
        with self._cond:
            self._pending += 1  # counted, so ``sync`` also waits for it
        self._queue.put(then)

    def _wait_below(self, level: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending <= level)
        if self._error is not None:
            raise self._error

    async def relieve(self) -> None:
        if self._pending > HIGH_WATER:
            await run_in_threadpool(self._wait_below, HIGH_WATER // 2)

    def sync(self) -> None:
        """Everything queued is written and fsynced (blocking: call from a worker thread)."""
        self._wait_below(0)
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:
            raise _fail(exc) from exc

    def close(self) -> None:
        """Stop the writer thread (what was queued is still written first)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
