"""A fair gate for SQLite write transactions: writers queue in arrival order instead of polling.

A writer whose BEGIN IMMEDIATE (api/db.py) finds the write lock taken waits in SQLite's busy handler,
which polls with growing sleeps (up to 100 ms): waiters are served in no order and a late sleeper
keeps losing to newcomers (in bench/load.py capture and push had a p95 8-10x their p50, and a few
writes waited 4-7 s). So a writer first takes a gate, and lets go when its transaction ends (commit,
rollback, close): in the process a lock handed to the waiting threads in arrival order; across
processes (the server's workers, the CLI) ``flock`` on ``<database>-writer.lock``, whose waiter the
kernel wakes at once and which it drops when its process dies. SQLite's lock still guarantees all.

SQLite's worst case stays: after the busy timeout a writer stops waiting for the gate and tries BEGIN
IMMEDIATE with what is left of it (nothing): "database is locked" when the lock is taken, as before;
it goes ahead when the gate's holder is stuck outside SQLite. Reads (BEGIN DEFERRED), savepoints,
PostgreSQL and in-memory databases have no gate."""

import fcntl
import os
import threading
import time
from collections import deque
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

_SETTINGS = "_fieldbook_writer_gate"  # (lock file, timeout in s) on a gated engine's dialect
_Wait = tuple[int, threading.Event, list[bool]]  # a helper thread's flock: descriptor, done, got


class WriterGate:
    """One database file's gate in this process, held by one DB-API connection at a time."""

    def __init__(self, lock_path: str) -> None:
        self.lock_path = lock_path
        self._mutex = threading.Lock()
        self._queue: deque[threading.Lock] = deque()  # the threads waiting, first come first
        self._held = False
        self._owner: Any = None
        self._fd = -1
        self._given_up: _Wait | None = None  # a flock wait its writer stopped waiting for

    def _turn(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
        if turn.acquire(timeout=max(timeout, 0.0)):
            return True
        with self._mutex:
            if turn in self._queue:
                self._queue.remove(turn)
                return False
        return True  # handed over just as the wait ran out

    def _pass_on(self) -> None:
        with self._mutex:
            if self._queue:
                self._queue.popleft().release()  # still held: now by the first in the queue
            else:
                self._held = False

    def _flock(self, timeout: float) -> int | None:
        """A descriptor holding the lock file's flock, or None after ``timeout`` seconds."""
        with self._mutex:
            wait, self._given_up = self._given_up, None  # taken over: one helper thread at most
        if wait is None:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:  # a blocking flock has no timeout: a helper thread waits in it
                wait = (fd, threading.Event(), [False])
                threading.Thread(target=self._wait, args=(wait,), name="sqlite-writer", daemon=True).start()
            except BaseException:
                os.close(fd)
                raise
        fd, done, got = wait
        if not done.wait(max(timeout, 0.0)):
            with self._mutex:
                if not done.is_set():
                    self._given_up = wait  # the next writer takes it over, or the helper lets go
                    return None
        if got[0]:
            return fd
        os.close(fd)
        raise OSError("flock failed")

    def _wait(self, wait: _Wait) -> None:
        fd, done, got = wait
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            got[0] = True
        except OSError:
            pass
        with self._mutex:
            if self._given_up is wait:  # nobody wants it any more
                self._given_up = None
                os.close(fd)
            done.set()

    def acquire(self, owner: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._turn(timeout):
            return False
        try:
            fd = self._flock(deadline - time.monotonic())
        except OSError:  # no lock file (a read-only directory): this process's order only
            fd = -1
        if fd is None:
            self._pass_on()
            return False
        self._owner, self._fd = owner, fd
        return True

    def release(self, owner: Any) -> None:
        if owner is None or self._owner is not owner:
            return
        fd, self._owner, self._fd = self._fd, None, -1
        if fd >= 0:
            os.close(fd)
        self._pass_on()


_GATES: dict[str, WriterGate] = {}
_GATES_MUTEX = threading.Lock()
os.register_at_fork(after_in_child=_GATES.clear)


def gate(lock_path: str) -> WriterGate:
    if (found := _GATES.get(lock_path)) is None:
        with _GATES_MUTEX:
            found = _GATES.setdefault(lock_path, WriterGate(lock_path))
    return found


def install(engine: sa.Engine, timeout: float = 30.0) -> None:
    """Gate ``engine``'s write transactions when it is a SQLite file (again: a new timeout)."""
    url, dialect = engine.url, engine.dialect
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or url.query.get("uri"):
        return
    installed = hasattr(dialect, _SETTINGS)
    setattr(dialect, _SETTINGS, (os.path.abspath(url.database) + "-writer.lock", timeout))
    if installed:
        return
    for name in ("do_commit", "do_rollback", "do_close"):
        _release_after(dialect, name)


def _release_after(dialect: Dialect, name: str) -> None:
    """After the dialect's COMMIT, ROLLBACK (also the pool's on checkin) and close of a connection."""
    inner = getattr(dialect, name)

    def ended(connection: Any) -> None:
        try:
            inner(connection)
        finally:
            raw = getattr(connection, "dbapi_connection", connection)  # the pool's proxy, or not
            # A failed COMMIT leaves the transaction open: its rollback or close lets go.
            if name == "do_close" or not getattr(raw, "in_transaction", False):
                gate(getattr(dialect, _SETTINGS)[0]).release(raw)

    setattr(dialect, name, ended)


def _busy_timeout(raw: Any, ms: int) -> int:
    old = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute(f"PRAGMA busy_timeout={ms}")
    return old


def begin_immediate(connection: sa.Connection) -> None:
    """BEGIN IMMEDIATE, after taking the gate when the engine has one (for the "begin" event)."""
    settings = getattr(connection.dialect, _SETTINGS, None)
    if settings is None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    the_gate, raw, timeout = gate(settings[0]), connection.connection.dbapi_connection, settings[1]
    started = time.monotonic()
    left = timeout - (time.monotonic() - started) if the_gate.acquire(raw, timeout) else 0.0
    restore = None
    try:  # SQLite's busy handler gets what is left of the timeout: the whole wait stays within it
        if left < timeout - 0.05:
            restore = _busy_timeout(raw, int(max(left, 0.0) * 1000))
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        the_gate.release(raw)
        raise
    finally:
        if restore is not None:
            _busy_timeout(raw, restore)
