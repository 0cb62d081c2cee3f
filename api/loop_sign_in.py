"""The capture route's sign-in and stint role, read on the event loop on SQLite.

A capture request's sign-in (the session, its user, their role in the stint: one query) cost ~0.6 ms
of CPU through the ORM and a threadpool call, as much as the rest of the request; here, through the
driver, it takes ~16 us with its conversions (in process), less than handing it to a thread. SQLite in WAL mode never makes a
reader wait for writers, so it runs on the event loop here, on a connection of the worker's own
that only reads. Only the everyday case is answered here: a live session of an active user who has
the role asked for in a live stint, seen within the last few minutes. Anything else (no such
session, an ended one, a non-member, a role too low, a "last seen" to update, a database error)
gets ``None``, and the caller signs in the usual way, whose answers (401, 403, 404) it keeps."""

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


class _Reader:
    """The query compiled once for the engine's dialect, and the engine's database opened for reading."""

    def __init__(self, engine: sa.Engine) -> None:
        dialect = engine.dialect
        compiled = _QUERY.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = list(compiled.positiontup or [])
        stint_id_type = Membership.__table__.c.stint_id.type  # type: ignore[attr-defined]
        uuid_bind = stint_id_type.dialect_impl(dialect).bind_processor(dialect)
        self.convert_id: Callable[[Any], Any] = uuid_bind or (lambda value: value)
        self.results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in _COLUMNS]
        self.path = engine.url.database or ""
        self.local = threading.local()  # a connection per thread (in a server: the event loop's only)

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            # Autocommit: each SELECT is its own read transaction and sees every commit before it.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=1")
            # The pages it reads come from the page cache through a mapping, not a read() each:
            # the cache of a connection is dropped whenever another one has committed.
            conn.execute("PRAGMA mmap_size=268435456")
            conn.execute("PRAGMA busy_timeout=50")  # never hold the event loop long: fall back instead
            self.local.conn = conn
        return conn

    def row(self, digest: str, stint_id: uuid.UUID) -> list[Any] | None:
        params = {"digest": digest, "stint_id": self.convert_id(stint_id)}
        # fetchall: the statement ends here, so no read transaction stays open (a checkpoint waits for those)
        rows = self.connection().execute(self.sql, [params[name] for name in self.order]).fetchall()
        if not rows:
            return None
        found = rows[0]
        return [
            value if convert is None else convert(value)
            for convert, value in zip(self.results, found, strict=True)
        ]


_READERS: weakref.WeakKeyDictionary[sa.Engine, _Reader] = weakref.WeakKeyDictionary()


def capturer(engine: sa.Engine, token: str, stint_id: uuid.UUID, role: Role) -> Capturer | None:
    """The caller, when the everyday case holds (see the module's docstring); else None."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS.setdefault(engine, _Reader(engine))
    try:
        found = reader.row(security.token_digest(token), stint_id)
    except sqlite3.Error:
        return None
    if found is None:
        return None
    revoked_at, expires_at, last_used_at, user_id, user_name, is_active, stint, timezone, role_name = found
    now: datetime = utcnow()
    if revoked_at is not None or expires_at <= now or not is_active or now - last_used_at > TOUCH_EVERY:
        return None
    if Role(role_name).rank < role.rank:
        return None
    return Capturer(
        user_id=user_id, user_name=user_name, stint=StintRef(stint, timezone), role=Role(role_name)
    )
