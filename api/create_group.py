"""Group commit for observation creates on SQLite: the creates that arrive while another is being
written wait, then go to the database together, in one transaction with one COMMIT.

SQLite takes one writer at a time (api/sqlite_writer.py), and a capture request's write holds the
lock for ~0.8 ms of wall time on a quiet server (its fsync'd COMMIT ~0.35 ms of it) and 1-2.6 ms
under load, when each call into the driver waits for the GIL again: the writers' queue, not the CPU,
set how many creates a second the server took. A create still answers only once the transaction
holding it is committed, so nothing is acknowledged before it is durable.

Each worker process has one writer thread for its group. The capture route hands it a create from
the event loop and awaits the answer (no threadpool call: AnyIO's handover, and a thread per waiting
create, cost more than the INSERTs); blocking callers wait on an event. The writer takes its batch
once it holds the write lock, not before: with two worker processes it often waits for the other's
COMMIT, and the creates that arrive meanwhile go with it. PostgreSQL commits concurrent
transactions side by side and keeps the create's own transaction."""

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from api.db import existing_in, insert_rows, utcnow
from api.models import Observation
from api.observation_writes import NewObservation, new_observation_rows
from api.search_indexer import wake_indexers

WRITER_IDLE_SECONDS = 5.0  # a writer thread with nothing to write for this long ends


@dataclass(eq=False)
class _Create:
    item: NewObservation
    answered: Callable[[], object]  # called on the writer thread once inserted or error is set
    inserted: bool = False
    error: BaseException | None = None

    def result(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.inserted


class CreateGroup:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._ready = threading.Condition()
        self._waiting: list[_Create] = []
        self._writer: threading.Thread | None = None

    async def submit(self, item: NewObservation) -> bool:
        """Insert ``item`` as :func:`api.observation_writes.insert_observation_unless_taken` does
        (its links checked first), with the creates that wait meanwhile. True once committed; False,
        with nothing written, when its id is taken. From the event loop."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle() -> None:  # on the loop: the request may have been cancelled meanwhile
            if not done.done():
                done.set_result(None)

        create = _Create(item, lambda: loop.call_soon_threadsafe(settle))
        self._enqueue(create)
        await done  # cancelled (the client went away): the create is written all the same
        return create.result()

    def write(self, item: NewObservation) -> bool:
        """As :meth:`submit`, blocking (from any thread but the writer's)."""
        done = threading.Event()
        create = _Create(item, done.set)
        self._enqueue(create)
        done.wait()
        return create.result()

    def _enqueue(self, create: _Create) -> None:
        with self._ready:
            self._waiting.append(create)
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="fieldbook-writer", daemon=True)
                self._writer.start()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                if not self._waiting:
                    self._ready.wait(WRITER_IDLE_SECONDS)
                if not self._waiting:  # idle: the next create starts a writer again
                    self._writer = None
                    return
            self._write_waiting()

    def _write_waiting(self) -> None:
        """Write every create waiting once the write lock is held: the creates that arrive while
        another process commits join the batch. Taken before the lock, a batch was ~1.6 creates
        under the capture bench (mostly the writer alone); taken after it, ~2.0."""
        batch: list[_Create] = []
        try:
            with self._engine.connect() as connection:
                connection.begin()  # BEGIN IMMEDIATE: no other writer until the COMMIT
                with self._ready:
                    batch, self._waiting = self._waiting, []
                inserted = self._insert(connection, batch)
                connection.commit()
        except sa.exc.IntegrityError:
            for create in batch:  # each alone: one create's failure is its own
                self._write_alone(create)
            return
        except BaseException as exc:  # the database's, not one create's: the whole batch shares it
            if not batch:  # BEGIN failed: the batch was never taken
                with self._ready:
                    batch, self._waiting = self._waiting, []
            for create in batch:
                create.error = exc
        else:
            for create in batch:
                create.inserted = create in inserted
            if inserted:
                wake_indexers()
        _answered(batch)

    def _write_alone(self, create: _Create) -> None:
        try:
            with self._engine.connect() as connection:
                connection.begin()
                create.inserted = bool(self._insert(connection, [create]))
                connection.commit()
        except BaseException as exc:
            create.error = exc
        if create.inserted and create.error is None:
            wake_indexers()
        _answered([create])

    def _insert(self, connection: sa.Connection, batch: list[_Create]) -> set[_Create]:
        """The batch's INSERTs through a Core connection: an ORM session's bookkeeping (its
        transaction, flush, events) cost ~0.5 ms a COMMIT, more than the statements."""
        ids = {create.item.id for create in batch}
        taken = existing_in(connection, Observation.__table__.c.id, ids)  # type: ignore[attr-defined]
        fresh: dict[object, _Create] = {}
        for create in batch:  # the same create twice in one batch (a quick retry): written once
            if create.item.id not in taken:
                fresh.setdefault(create.item.id, create)
        for table, rows in new_observation_rows([create.item for create in fresh.values()], utcnow()):
            insert_rows(connection, table, rows)
        return set(fresh.values())


def _answered(creates: list[_Create]) -> None:
    for create in creates:
        with contextlib.suppress(RuntimeError):  # its event loop has closed: no one waits
            create.answered()


_GROUPS: weakref.WeakKeyDictionary[sa.Engine, CreateGroup] = weakref.WeakKeyDictionary()
_GROUPS_MUTEX = threading.Lock()


def create_group(engine: sa.Engine | sa.Connection) -> CreateGroup | None:
    """The engine's group on SQLite; None on PostgreSQL (and for a session bound to a connection)."""
    if not isinstance(engine, sa.Engine) or engine.dialect.name != "sqlite":
        return None
    if (found := _GROUPS.get(engine)) is None:
        with _GROUPS_MUTEX:
            found = _GROUPS.setdefault(engine, CreateGroup(engine))
    return found
