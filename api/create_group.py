"""Group commit for observation creates on SQLite: the creates that arrive while another is being
written wait, then go to the database together, in one transaction with one COMMIT.

SQLite takes one writer at a time (api/sqlite_writer.py), and a capture request's write holds the
lock for ~0.8 ms of wall time on a quiet server (its fsync'd COMMIT ~0.35 ms of it) and 1-2.6 ms
under load, when each call into the driver waits for the GIL again: the writers' queue, not the CPU,
set how many creates a second the server took. A create still answers only once the transaction
holding it is committed, so nothing is acknowledged before it is durable.

One thread at a time writes (the first to arrive, then the first left waiting), with no thread of
its own: followers sleep until their batch is committed or the lead is handed to them. PostgreSQL
commits concurrent transactions side by side and keeps the create's own transaction."""

import threading
import weakref
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from api.db import existing
from api.models import Observation
from api.observation_writes import NewObservation, insert_observations


@dataclass(eq=False)
class _Create:
    item: NewObservation
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # the previous writer handed the writing on to this one
    inserted: bool = False
    error: BaseException | None = None

    def result(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.inserted


class CreateGroup:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._mutex = threading.Lock()
        self._waiting: list[_Create] = []
        self._writing = False

    def write(self, item: NewObservation) -> bool:
        """Insert ``item`` as :func:`api.observation_writes.insert_observation_unless_taken` does
        (its links checked first), with the creates that wait meanwhile. True once committed; False,
        with nothing written, when its id is taken. Blocking: call from a worker thread."""
        mine = _Create(item)
        with self._mutex:
            self._waiting.append(mine)
            lead, self._writing = not self._writing, True
        if not lead:
            mine.done.wait()
            if not mine.lead:
                return mine.result()
        with self._mutex:
            batch, self._waiting = self._waiting, []
        try:
            self._write(batch)
        finally:
            with self._mutex:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].done.set()
                else:
                    self._writing = False
        return mine.result()

    def _write(self, batch: list[_Create]) -> None:
        try:
            inserted = self._insert(batch)
        except sa.exc.IntegrityError as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:  # each alone: one create's failure is its own
                for create in batch:
                    self._write([create])
                return
        except BaseException as exc:  # the database's, not one create's: the whole batch shares it
            for create in batch:
                create.error = exc
        else:
            for create in batch:
                create.inserted = create in inserted
        finally:
            for create in batch:
                create.done.set()

    def _insert(self, batch: list[_Create]) -> set[_Create]:
        with Session(self._engine, expire_on_commit=False) as session:
            session.connection()  # BEGIN IMMEDIATE: no other writer until the COMMIT
            ids = {create.item.id for create in batch}
            taken = existing(session, Observation.__table__.c.id, ids)  # type: ignore[attr-defined]
            fresh: dict[object, _Create] = {}
            for create in batch:  # the same create twice in one batch (a quick retry): written once
                if create.item.id not in taken:
                    fresh.setdefault(create.item.id, create)
            insert_observations(session, [create.item for create in fresh.values()])
            session.commit()
        return set(fresh.values())


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
