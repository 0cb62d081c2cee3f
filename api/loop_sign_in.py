"""Sign-ins read on the event loop on SQLite: the capture route's (the session, its user, their role in
the stint) and the sync push's (the session and its user).

A capture request's sign-in (one query) cost ~0.6 ms of CPU through the ORM and a threadpool call, as
much as the rest of the request; here, through the driver, it takes ~16 us with its conversions (in a
quiet process; ~80 us in a server under writes, whose commits restart the connection's page cache),
less than handing it to a thread. SQLite in WAL mode never makes a reader wait for writers, so it
runs on the event loop here, on a connection of the thread's own that only reads. Only the everyday
case is answered here: a live session of an active user (who has the role asked for in a live
stint), seen within the last few minutes. Anything else (no such session, an ended one, a
non-member, a role too low, a "last seen" to update, a database error) gets ``None``, and the caller
signs in the usual way, whose answers (401, 403, 404) and writes it keeps."""

import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from api import security
from api.auth import TOUCH_EVERY
from api.db import utcnow
from api.models import AuthSession, Membership, Role, Stint, User


@dataclass(frozen=True)
class StintRef:
    id: uuid.UUID
    timezone: str


@dataclass(frozen=True)
class Capturer:
    """Who captures into which stint: what the capture route needs to know of both."""

    user_id: uuid.UUID
    user_name: str
    stint: StintRef
    role: Role


_COLUMNS: list[Any] = [
    col(AuthSession.revoked_at),
    col(AuthSession.expires_at),
    col(AuthSession.last_used_at),
    col(User.id),
    col(User.name),
    col(User.is_active),
    col(Stint.id),
    col(Stint.timezone),
    col(Membership.role),
]
# The same conditions as api.access's _SIGN_IN_AND_ACCESS (which imports this module, so they are
# written out here), inner joins: a row only for a member of a live stint. tests/test_loop_sign_in.py
# checks each case against the answers of the usual way.
_QUERY = (
    sa.select(*_COLUMNS)
    .select_from(AuthSession)
    .join(User, col(User.id) == col(AuthSession.user_id))
    .join(
        Membership,
        sa.and_(
            col(Membership.user_id) == col(User.id), col(Membership.stint_id) == sa.bindparam("stint_id")
        ),
    )
    .join(Stint, sa.and_(col(Stint.id) == col(Membership.stint_id), col(Stint.deleted_at).is_(None)))
    .where(col(AuthSession.token_hash) == sa.bindparam("digest"))
)


_USER_COLUMNS: list[sa.Column[Any]] = list(User.__table__.columns)  # type: ignore[attr-defined]
_SESSION_COLUMNS: list[Any] = [
    col(AuthSession.revoked_at),
    col(AuthSession.expires_at),
    col(AuthSession.last_used_at),
]
# api.auth.look_up's query: the session by its token's digest, joined to its user.
_USER_QUERY = (
    sa.select(*_SESSION_COLUMNS, *_USER_COLUMNS)
    .select_from(AuthSession)
    .join(User, col(User.id) == col(AuthSession.user_id))
    .where(col(AuthSession.token_hash) == sa.bindparam("digest"))
)


class _Reader:
    """A query compiled once for the engine's dialect, run on the engine's database opened for reading."""

    def __init__(self, engine: sa.Engine, query: sa.Select[Any]) -> None:
        dialect = engine.dialect
        compiled = query.compile(dialect=dialect)
        self.sql = str(compiled)
        self.binds: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or []
        ]
        self.results = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in query.selected_columns
        ]
        self.path = engine.url.database or ""

    def row(self, **params: Any) -> list[Any] | None:
        values = [params[name] if convert is None else convert(params[name]) for name, convert in self.binds]
        # fetchall: the statement ends here, so no read transaction stays open (a checkpoint waits for those)
        rows = _connection(self.path).execute(self.sql, values).fetchall()
        if not rows:
            return None
        return [
            value if convert is None else convert(value)
            for convert, value in zip(self.results, rows[0], strict=True)
        ]


_LOCAL = threading.local()  # per thread (in a server: the event loop's only), a connection per database


def _connection(path: str) -> sqlite3.Connection:
    connections: dict[str, sqlite3.Connection] = _LOCAL.__dict__.setdefault("connections", {})
    conn = connections.get(path)
    if conn is None:
        # Autocommit: each SELECT is its own read transaction and sees every commit before it.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=1")
        # The pages it reads come from the page cache through a mapping, not a read() each:
        # the cache of a connection is dropped whenever another one has committed.
        conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA busy_timeout=50")  # never hold the event loop long: fall back instead
        connections[path] = conn
    return conn


_READERS: weakref.WeakKeyDictionary[sa.Engine, dict[str, _Reader]] = weakref.WeakKeyDictionary()


def _reader(engine: sa.Engine, name: str, query: sa.Select[Any]) -> _Reader | None:
    """The engine's reader for ``query``; None unless the engine is a SQLite file."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    readers = _READERS.get(engine)
    if readers is None:
        readers = _READERS.setdefault(engine, {})
    found = readers.get(name)
    if found is None:
        found = readers.setdefault(name, _Reader(engine, query))
    return found


def _everyday(
    revoked_at: datetime | None, expires_at: datetime, last_used_at: datetime, is_active: bool
) -> bool:
    now: datetime = utcnow()
    return revoked_at is None and expires_at > now and is_active and now - last_used_at <= TOUCH_EVERY


def capturer(engine: sa.Engine, token: str, stint_id: uuid.UUID, role: Role) -> Capturer | None:
    """The caller, when the everyday case holds (see the module's docstring); else None."""
    reader = _reader(engine, "capturer", _QUERY)
    if reader is None:
        return None
    try:
        found = reader.row(digest=security.token_digest(token), stint_id=stint_id)
    except sqlite3.Error:
        return None
    if found is None:
        return None
    revoked_at, expires_at, last_used_at, user_id, user_name, is_active, stint, timezone, role_name = found
    if not _everyday(revoked_at, expires_at, last_used_at, is_active) or Role(role_name).rank < role.rank:
        return None
    return Capturer(
        user_id=user_id, user_name=user_name, stint=StintRef(stint, timezone), role=Role(role_name)
    )


def signed_in_user(engine: sa.Engine, token: str) -> dict[str, Any] | None:
    """The signed-in user's columns (by attribute name), when the everyday case holds; else None."""
    reader = _reader(engine, "user", _USER_QUERY)
    if reader is None:
        return None
    try:
        found = reader.row(digest=security.token_digest(token))
    except sqlite3.Error:
        return None
    if found is None:
        return None
    revoked_at, expires_at, last_used_at, *values = found
    user = {c.key: value for c, value in zip(_USER_COLUMNS, values, strict=True)}
    if not _everyday(revoked_at, expires_at, last_used_at, user["is_active"]):
        return None
    return user
