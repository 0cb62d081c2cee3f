"""Engine and session: one place that knows how we talk to SQLite and PostgreSQL."""

import weakref
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Annotated, Any, Literal

import anyio
import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from api import sqlite_writer


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # One step instead of process_bind_param then SQLite's DATETIME formatting in Python (a
        # 1,000-op sync push binds ~5,000 of these); the same text as SQLAlchemy's storage format,
        # "YYYY-MM-DD HH:MM:SS.ffffff" (tests/test_db.py compares them).
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:  # most values are utcnow()'s: no conversion needed
                if value.tzinfo is None:
                    raise ValueError("naive datetime given to a UTC column")
                value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_many(session: OrmSession, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows (mappings with the same keys, covering every column with a Python-side default)
    in one executemany, in the session's transaction.

    On SQLite, SQLAlchemy's executemany builds and type-converts each row's parameters in Python,
    which cost a 1,000-op sync push more than the driver's own inserts: here each column's converter
    is looked up once and the rows go to the driver as tuples. The stored values are the same
    (tests/test_db.py). PostgreSQL keeps SQLAlchemy's path: psycopg adapts the values itself."""
    if not rows:
        return
    if session.get_bind().dialect.name != "sqlite":
        session.execute(sa.insert(table), list(rows))
        return
    insert_rows(session.connection(), table, rows)


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """:func:`insert_many` in a Core connection's transaction (the SQLite group commit's writer)."""
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name != "sqlite":
        connection.execute(sa.insert(table), list(rows))
        return
    statement = _sqlite_insert(table, tuple(rows[0]), dialect)
    columns = []  # converted column by column: map and zip loop in C, not per value in Python
    for key, convert, repeats in statement.columns:
        values = list(map(itemgetter(key), rows))  # a column's values: read in C, not a comprehension
        if convert is None:
            columns.append(values)
        elif repeats == "shared" and values[0] == values[-1] and values.count(values[0]) == len(values):
            # One value in every row (usually the same object: count compares identities first, in C).
            columns.append([convert(values[0])] * len(values))
        elif repeats == "always" or (repeats == "shared" and values[0] == values[-1]):
            # Values the rows share (a push stamps its rows with one "now", one stint, one author;
            # its notes fall on a few days) are converted once; a column of ids, each row's own, is
            # not run through a dict first.
            once = {value: convert(value) for value in set(values)}
            columns.append(list(map(once.__getitem__, values)))
        else:
            columns.append(list(map(convert, values)))
    params = list(zip(*columns, strict=True))
    connection.exec_driver_sql(statement.sql, params)


def existing(
    session: OrmSession,
    column: sa.Column[Any],
    values: Collection[Any],
    where: Mapping[str, Any] | None = None,
) -> set[Any]:
    """Those of ``values`` that ``column`` holds (in rows whose columns equal ``where``'s values).

    As insert_many, on SQLite through the driver: SQLAlchemy renders and converts a 1,000-value IN
    list in Python, ~2 ms per such select of a sync push (the answer is usually "none": new ids)."""
    if not values:
        return set()
    if session.autoflush:
        session.flush()  # as a query through the session would
    return existing_in(session.connection(), column, values, where)


def existing_in(
    connection: sa.Connection,
    column: sa.Column[Any],
    values: Collection[Any],
    where: Mapping[str, Any] | None = None,
) -> set[Any]:
    """:func:`existing` in a Core connection's transaction."""
    if not values:
        return set()
    where = where or {}
    table = column.table
    dialect = connection.dialect
    if dialect.name != "sqlite":
        equal = [table.c[name] == value for name, value in where.items()]
        return set(connection.execute(sa.select(column).where(column.in_(values), *equal)).scalars())

    def converted(col: sa.Column[Any], items: Iterable[Any]) -> list[Any]:
        convert = col.type.dialect_impl(dialect).bind_processor(dialect)
        return list(items) if convert is None else list(map(convert, items))

    quote = dialect.identifier_preparer.quote
    fixed = [f"{quote(name)} = ?" for name in where]
    fixed_params = [converted(table.c[name], [value])[0] for name, value in where.items()]
    read = column.type.dialect_impl(dialect).result_processor(dialect, None)
    found: set[Any] = set()
    params = converted(column, values)
    for start in range(0, len(params), _IN_CHUNK):
        chunk = params[start : start + _IN_CHUNK]
        conditions = " AND ".join([*fixed, f"{quote(column.name)} IN ({', '.join('?' * len(chunk))})"])
        rows = connection.exec_driver_sql(
            # Names from the table's own metadata, quoted; every value is bound.
            f"SELECT {quote(column.name)} FROM {quote(table.name)} WHERE {conditions}",  # noqa: S608
            (*fixed_params, *chunk),
        )
        found.update(row[0] if read is None else read(row[0]) for row in rows)
    return found


_IN_CHUNK = 5000  # SQLite takes up to 32,766 parameters a statement


@dataclass(frozen=True)
class _SqliteInsert:
    sql: str
    # key, converter, and whether values repeat: "always" (few values, cheaply hashed: days, flags),
    # "shared" (often one value for all rows: times, ids of a parent) or "" (no).
    columns: list[tuple[str, Callable[[Any], Any] | None, Literal["always", "shared", ""]]]


# Compiling an INSERT costs ~60-130 us, each time: a capture request makes four.
_SQLITE_INSERTS: weakref.WeakKeyDictionary[Dialect, dict[tuple[sa.Table, tuple[str, ...]], _SqliteInsert]] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_insert(table: sa.Table, keys: tuple[str, ...], dialect: Dialect) -> _SqliteInsert:
    known = _SQLITE_INSERTS.setdefault(dialect, {})
    if (found := known.get((table, keys))) is not None:
        return found
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(keys))
    order = compiled.positiontup or []
    if missing := [k for k in order if k not in keys]:
        raise ValueError(f"insert_many into {table.name}: no value for {missing}")
    columns: list[tuple[str, Callable[[Any], Any] | None, Literal["always", "shared", ""]]] = []
    for key in order:
        column_type = table.c[key].type
        convert = column_type.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(column_type, (sa.Date, sa.Boolean)):
            columns.append((key, convert, "always"))
        elif isinstance(column_type, (sa.DateTime, UTCDateTime, sa.Uuid)):
            columns.append((key, convert, "shared"))
        else:
            columns.append((key, convert, ""))
    known[(table, keys)] = found = _SqliteInsert(compiled.string, columns)
    return found


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: NORMAL in WAL may lose the last commits on power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    # writes gets SQLITE_BUSY without waiting when another process wrote in between.
    # Reads (GET requests) ask for DEFERRED so they never wait for writers (WAL).
    # Writers queue at a fair gate first (api/sqlite_writer.py), not in SQLite's polling busy handler.
    if connection.get_execution_options().get("sqlite_begin", "IMMEDIATE") == "DEFERRED":
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        sqlite_writer.begin_immediate(connection)


def reading(engine: sa.Engine) -> sa.Engine:
    """The same engine for read-only work: on SQLite its transactions do not take the write lock."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        sqlite_writer.install(engine, timeout=30)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@asynccontextmanager
async def _session(engine: sa.Engine) -> AsyncIterator[Session]:
    """A session for one request, opened and closed on the event loop: as a ``def`` dependency its
    start and its end were each a threadpool call (two of the seven a capture request made).
    Creating a session does no I/O; closing one that holds no connection does none either. One
    still in a transaction (a route that failed or only read) is closed in the threadpool: its
    ROLLBACK may wait on the database."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):  # a client that went away must not leak the connection
                await run_in_threadpool(session.close)
        else:
            session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    # No commit here: code after ``yield`` runs after the response is sent, so routes commit.
    engine = request.app.state.read_engine if request.method in _READS else request.app.state.engine
    async with _session(engine) as session:
        yield session


async def get_write_session(request: Request) -> AsyncIterator[Session]:
    """For GET routes that also write (access logs, counters): on SQLite a read transaction that
    later writes fails at once with "database is locked" when another writer got in first."""
    async with _session(request.app.state.engine) as session:
        yield session


def begin_reading(session: Session) -> None:
    """Begin the session's transaction as a read unless one is under way: on SQLite BEGIN DEFERRED,
    which neither takes nor waits for the write lock, so a write request's sign-in and access checks
    do not queue behind other writers. The transaction must not write: end it with end_reads."""
    if not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})


def end_reads(session: Session) -> None:
    """End a transaction that has only read; loaded objects stay usable (no expiry on commit).

    For dependencies: FastAPI runs each sync dependency, the route and the answer's validation as
    separate threadpool calls. On SQLite a write request's first query takes the write lock (BEGIN
    IMMEDIATE); held from one call to the next it waits for a free thread while the threads waiting
    for that lock fill the pool, and every writer stalls until the busy timeout (500 "database is
    locked" for 100 simulated researchers in bench/load.py). Each call must finish what it begins."""
    if session.in_transaction():
        session.commit()


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]
