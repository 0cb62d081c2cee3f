"""Keeping the index in step with the database: exactly one writer at a time.

An app process runs one :class:`Indexer` thread, except under ``fieldbook serve``, where one
indexer in the serving command's own process keeps the index for all of its workers
(:func:`api.search.indexer_for_workers`); it sees their commits through ``PRAGMA data_version``
on SQLite, and polls on PostgreSQL. A cycle takes the indexer file lock
without waiting; whoever holds it drains the ``search_task`` queue in batches (read the records
back through their sources, apply them to Whoosh in one commit, then delete exactly the tasks it
read). Several uvicorn workers are therefore safe, and a write is never lost: its task stays in
the database until an index commit covers it. ``fieldbook reindex`` and the self-repair of a
lost or corrupt index hold the same lock while they build a fresh index beside the live one,
swap it in, then drain what was queued meanwhile; readers keep using the old index until the swap.
"""

import contextlib
import fcntl
import logging
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

# Register the sources: `fieldbook reindex` and `check` run without the app.
from api import search_debrief_sources, search_sources  # noqa: F401
from api.db import reading
from api.search_docs import SearchDoc, SearchTask, source, sources
from api.search_index import IndexStore

log = logging.getLogger("fieldbook.search")

BATCH = 500
POLL_SECONDS = 0.2
# Rounds start at most this often: under a stream of writes a round takes every task queued
# meanwhile (one index segment, one commit) instead of one round per write, which cost a capture
# request more CPU than the request itself. Well inside the 1 s (p95) write-to-searchable promise.
ROUND_SECONDS = 0.25
# After a round that applied this many tasks, the writes keep coming: the next round starts after
# BUSY_ROUND_SECONDS instead. A round's cost is mostly per round (Whoosh's segment write and merges:
# ~1.5 ms per document in rounds of 20, ~0.45 ms in rounds of 150), so under a stream of captures
# twice the wait costs about half the CPU per capture. A write still waits at most ~0.5 s plus a
# round: within the promise. Quiet times keep ROUND_SECONDS.
# The pace is the index's, not a process's: a busy round stamps its start on a file beside the
# lock, and every worker's indexer waits for BUSY_ROUND_SECONDS after it. Each paced only itself,
# so two workers took turns every ~0.25 s (rounds of ~50 instead of ~100 under the capture bench).
BUSY_TASKS = 20
BUSY_ROUND_SECONDS = 0.5
# How often an indexer that serves other processes looks for their commits (SQLite): a look reads
# the WAL index in shared memory, a few microseconds.
WATCH_SECONDS = 0.02
_INDEXERS: "weakref.WeakSet[Indexer]" = weakref.WeakSet()


@contextlib.contextmanager
def indexer_lock(path: Path, wait_seconds: float = 0.0) -> Iterator[bool]:
    """The single-writer lock (an ``flock`` on a file beside the index: local disks only)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    got = False
                    break
                time.sleep(0.05)
        yield got
    finally:
        os.close(fd)  # releases the lock


@event.listens_for(OrmSession, "after_commit")
def _wake_after_commit(session: OrmSession) -> None:
    if session.info.pop("search_tasks_added", False):
        wake_indexers()


def wake_indexers() -> None:
    """New tasks are committed: this process's indexer takes them at its next turn."""
    for indexer in list(_INDEXERS):
        indexer.wake()


@event.listens_for(OrmSession, "after_rollback")
def _forget_after_rollback(session: OrmSession) -> None:
    session.info.pop("search_tasks_added", None)


class CommitWatch:
    """Commits to a SQLite database by other connections, processes included, seen through ``PRAGMA
    data_version`` on a connection of its own that never writes."""

    def __init__(self, database: str) -> None:
        self._connection = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA query_only=1")
        self._seen = self._version()

    def _version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        """Has anyone else committed since the last look? True when it cannot tell."""
        try:
            now = self._version()
        except sqlite3.Error:
            return True
        changed, self._seen = now != self._seen, now
        return changed

    def close(self) -> None:
        self._connection.close()


class Indexer:
    def __init__(
        self,
        store: IndexStore,
        engine: sa.Engine,
        poll_seconds: float = POLL_SECONDS,
        *,
        for_other_processes: bool = False,
    ) -> None:
        """``for_other_processes``: the writes to index come from processes that cannot wake this
        indexer (the workers of ``fieldbook serve``): on SQLite it watches for their commits."""
        self.store = store
        self.engine = engine
        self._for_other_processes = for_other_processes
        url = engine.url
        self._watched = (
            url.database
            if for_other_processes
            and url.get_backend_name() == "sqlite"
            and url.database not in (None, "", ":memory:")
            else None
        )
        # Reads the queue and the documents without SQLite's write lock: as a write (BEGIN
        # IMMEDIATE) a round held up every create while it loaded the documents.
        self.read_engine = reading(engine)
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle (one per web process)

    def start(self) -> None:
        """Make sure an index exists (an empty database gets an empty index at once), then
        drain in the background."""
        with indexer_lock(self.store.lock_path, wait_seconds=5) as got:
            if got and self.store.needs_rebuild():
                if self._record_count() == 0:
                    self.rebuild_locked()
                else:
                    self.store.request_rebuild()  # the thread rebuilds; search answers 503 until then
        _INDEXERS.add(self)
        self._thread = threading.Thread(target=self._run, name="fieldbook-indexer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        _INDEXERS.discard(self)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        if self._for_other_processes:
            _yield_the_cpu()
        watch = None
        if self._watched:
            try:
                watch = CommitWatch(self._watched)
            except sqlite3.Error:
                log.warning("cannot watch %s for commits: polling instead", self._watched, exc_info=True)
        try:
            self._rounds(watch)
        finally:
            if watch is not None:
                watch.close()

    def _rounds(self, watch: CommitWatch | None) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            if (held_off := self.held_off()) > 0:  # another worker's busy round started just now
                self._stop.wait(held_off)
                continue
            started = time.monotonic()
            pause = ROUND_SECONDS
            try:
                if self.cycle() >= BUSY_TASKS:
                    pause = BUSY_ROUND_SECONDS
                failures = 0
            except Exception:
                failures += 1
                log.exception("search indexer cycle failed (%d in a row)", failures)
                self._stop.wait(min(30.0, 0.5 * 2**failures))
            self._stop.wait(pause - (time.monotonic() - started))
            self._idle(watch)

    def _idle(self, watch: CommitWatch | None) -> None:
        """Until woken by a commit in this process or, watching, seen another's; at the latest
        after ``poll_seconds``."""
        if watch is None:
            self._wake.wait(self.poll_seconds)
            return
        deadline = time.monotonic() + self.poll_seconds
        while not self._wake.wait(WATCH_SECONDS):
            if watch.changed() or time.monotonic() >= deadline:
                return

    def cycle(self) -> int:
        """One turn: rebuild if asked to, else apply queued tasks. Answers how many were applied."""
        with indexer_lock(self.store.lock_path) as got:
            if not got:
                return 0
            if self.store.marker.exists() or self.store.current_dir() is None:
                log.warning("search index missing or unreadable: rebuilding from the database")
                self.rebuild_locked()
                return 0
            started = time.time()
            applied = self.drain_locked()
            if applied >= BUSY_TASKS:
                _stamp(self._busy_stamp, started)
            return applied

    @property
    def _busy_stamp(self) -> Path:
        return self.store.lock_path.with_name("busy-round")

    def held_off(self) -> float:
        """Seconds until the next round may start: what is left of BUSY_ROUND_SECONDS after the
        latest busy round of any process. A stamp in the future (the clock stepped back) holds no
        one off: it would for as long as the step."""
        try:
            last = self._busy_stamp.stat().st_mtime
        except OSError:
            return 0.0
        left = last + BUSY_ROUND_SECONDS - time.time()
        return left if 0.0 < left <= BUSY_ROUND_SECONDS else 0.0

    # work, with the lock held

    def drain_locked(self) -> int:
        applied = 0
        while not self._stop.is_set():
            # Only the tasks read here are deleted below: one committed meanwhile (its document
            # perhaps loaded here in an older version) stays queued for the next round.
            with Session(self.read_engine, expire_on_commit=False) as session:
                tasks = session.exec(select(SearchTask).order_by(col(SearchTask.id)).limit(BATCH)).all()
                if not tasks:
                    break
                upserts, deletes = _resolve(session, tasks)
                session.commit()  # end the read transaction before the (slow) index commit
            try:
                self.store.apply(upserts, deletes)
            except Exception:
                self.store.request_rebuild()
                raise
            with Session(self.engine) as session:
                session.execute(sa.delete(SearchTask).where(col(SearchTask.id).in_([t.id for t in tasks])))
                session.commit()
            applied += len(tasks)
            if len(tasks) < BATCH:
                break
        return applied

    def rebuild_locked(self, progress: Callable[[int], None] | None = None) -> int:
        """Build a new index from the database, swap it in, then apply what was queued meanwhile."""
        counter = [0]

        def batches() -> Iterator[list[SearchDoc]]:
            with Session(self.engine, expire_on_commit=False) as session:
                for src in sources():
                    for batch in src.iter_all(session):
                        session.commit()  # short transactions: SQLite writers are not held up
                        counter[0] += len(batch)
                        yield batch

        path = self.store.build(batches(), progress)
        self.store.swap(path)
        self.drain_locked()
        return counter[0]

    def _record_count(self) -> int:
        with Session(self.engine) as session:
            return sum(src.count(session) for src in sources())

    def record_count(self) -> int:
        return self._record_count()


def _yield_the_cpu() -> None:
    """Lower this thread's priority (nice +10; Linux sets it per thread): an indexer beside the
    workers gives them a core first. Under load a request waiting for a core costs more than a
    document indexed a moment later, and rounds that wait grow larger and cheaper per document.
    Capture bench A/B, with api.logs's request ids from a generator of its own: 736 / 756 / 771 ->
    757 / 775 / 783 creates/s."""
    if sys.platform != "linux":
        return  # elsewhere the call would renice the whole process
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + 10))
    except OSError:
        log.warning("could not lower the search indexer's priority", exc_info=True)


def _stamp(path: Path, moment: float) -> None:
    try:
        try:
            os.utime(path, (moment, moment))
        except FileNotFoundError:
            path.touch()
            os.utime(path, (moment, moment))
    except OSError:
        log.warning("could not stamp %s: rounds are paced per process", path, exc_info=True)


def _resolve(session: Session, tasks: Sequence[SearchTask]) -> tuple[list[SearchDoc], list[str]]:
    wanted: dict[str, set[str]] = defaultdict(set)
    for task in tasks:
        wanted[task.doc_type].add(task.doc_id)
    for doc_type, ids in list(wanted.items()):
        src = source(doc_type)
        if src is not None and src.dependents is not None:
            for other, other_ids in src.dependents(session, sorted(ids)).items():
                wanted[other] |= other_ids
    upserts: list[SearchDoc] = []
    deletes: list[str] = []
    for doc_type, ids in wanted.items():
        src = source(doc_type)
        if src is None:
            log.warning("search task for unknown type %r dropped", doc_type)
            continue
        found = src.load(session, sorted(ids))
        for doc_id in sorted(ids):
            doc = found.get(doc_id)
            if doc is None:
                deletes.append(f"{doc_type}:{doc_id}")
            else:
                upserts.append(doc)
    return upserts, deletes


def store_for(data_dir: Path) -> IndexStore:
    return IndexStore(data_dir / "search")
