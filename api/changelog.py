"""The change log behind the sync feed: every write records what changed in the same transaction,
and the log's order is the commit order, on SQLite and on PostgreSQL alike.

Writers call :func:`record_change` anywhere in their transaction. The rows are written by a
``before_commit`` hook, as the last statements before COMMIT: on PostgreSQL under a transaction-level
advisory lock, so a change's ``seq`` is drawn only after every earlier holder has committed (the lock
is released after the commit is visible). A reader that has seen ``seq = n`` has therefore seen every
committed change below ``n``: ``seq > cursor`` never skips one. SQLite runs writers one at a time
(BEGIN IMMEDIATE), which gives the same guarantee.

The log keeps one row per record (its latest change): a new change replaces the old row under a new
``seq``. Tombstones older than the retention are purged; the highest purged ``seq`` becomes the horizon,
and a cursor below it answers 410 (the client resyncs)."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Field, Session, SQLModel, col, select

import api.models  # noqa: F401  (sets the constraint naming convention before these tables)
from api.db import UTCDateTime, insert_many, utcnow

# Deleted records stay in the feed this long; a device offline for longer resyncs from scratch.
TOMBSTONE_RETENTION = timedelta(days=90)
# Any constant works; it only has to differ from other advisory locks taken in this database.
_ADVISORY_LOCK = 0x0F1E1DB00C
_PENDING = "fieldbook_pending_changes"
# (type, entity id) -> (new, the log row, its changed_at set at COMMIT); see record_change.
_Pending = dict[tuple[str, str], tuple[bool, dict[str, Any]]]


class ChangeType(StrEnum):
    observation = "observation"
    daily_summary = "daily_summary"
    hypothesis = "hypothesis"
    material = "material"  # metadata only: the bytes come through uploads
    # A stint the reading user gained (role, title...) or lost (removed, stint closed): addressed to one user.
    stint_access = "stint_access"


class SyncChange(SQLModel, table=True):
    __tablename__ = "sync_change"
    __table_args__ = (
        sa.Index("ix_sync_change_entity", "type", "entity_id"),
        sa.Index("ix_sync_change_stint_seq", "stint_id", "seq"),
        sa.Index("ix_sync_change_user_seq", "user_id", "seq"),
        # Never reuse a seq: without AUTOINCREMENT SQLite hands out max(seq) + 1 again after a delete.
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    type: str = Field(max_length=32)
    entity_id: str = Field(max_length=200)
    stint_id: uuid.UUID
    # Set for changes addressed to one user only (stint_access); None: every member of the stint.
    user_id: uuid.UUID | None = None
    version: int
    deleted: bool
    changed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class SyncState(SQLModel, table=True):
    """One row: the highest ``seq`` whose tombstone may have been purged."""

    __tablename__ = "sync_state"

    id: int = Field(primary_key=True)
    horizon: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


def record_change(
    session: Session,
    type: ChangeType,
    entity_id: uuid.UUID | str,
    *,
    stint_id: uuid.UUID,
    version: int,
    deleted: bool = False,
    user_id: uuid.UUID | None = None,
    new: bool = False,
) -> None:
    """Note that a record changed; written to the log when this transaction commits. ``new``: the
    record was inserted in this transaction and its kind is never hard-deleted, so the log holds no
    earlier row of it to replace (a push of a thousand creates skips looking).

    Kept as (new, the log row as it will be inserted): the row gets its ``changed_at`` at COMMIT,
    not rebuilt then (a push notes a thousand)."""
    info = session.info
    pending: _Pending | None = info.get(_PENDING)
    if pending is None:
        pending = info[_PENDING] = {}
    kind: str = type._value_  # the member's own attribute: ``.value`` is a property, a Python call
    text = str(entity_id)
    key = (kind, text)
    # The latest change of a record counts, in the order made (an earlier one is dropped).
    earlier = pending.pop(key, None) if pending else None
    pending[key] = (
        new and (earlier is None or earlier[0]),
        {
            "type": kind,
            "entity_id": text,
            "stint_id": stint_id,
            "user_id": user_id,
            "version": version,
            "deleted": deleted,
            "changed_at": None,
        },
    )


def record_new_rows(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Note the log rows that :func:`new_record_rows` built (taken as they are: their ``changed_at``
    is set at COMMIT): ``record_change(..., version=1, new=True)`` for each, in their order, for a
    writer that inserted a batch of new records (a call each cost a 1,000-op push ~0.6 ms more)."""
    info = session.info
    pending: _Pending | None = info.get(_PENDING)
    if pending is None:
        pending = info[_PENDING] = {}
    pop = pending.pop
    for row in rows:
        key = (row["type"], row["entity_id"])
        earlier = pop(key, None)
        pending[key] = (earlier is None or earlier[0], row)


def new_record_rows(
    type: ChangeType, records: Sequence[tuple[str, uuid.UUID]], now: datetime
) -> list[dict[str, Any]]:
    """The log rows of records just inserted, (id as text, stint id) each, for a writer without an
    ORM session: what record_change(..., version=1, new=True) leaves for _write_pending to write."""
    return [
        {
            "type": type.value,
            "entity_id": entity_id,
            "stint_id": stint_id,
            "user_id": None,
            "version": 1,
            "deleted": False,
            "changed_at": now,
        }
        for entity_id, stint_id in records
    ]


def access_entity(stint_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{stint_id}:{user_id}"


def record_access(session: Session, stint_id: uuid.UUID, user_id: uuid.UUID, *, granted: bool) -> None:
    """Tell ``user_id``'s devices they gained (or lost) a stint: membership added, changed, removed."""
    record_change(
        session,
        ChangeType.stint_access,
        access_entity(stint_id, user_id),
        stint_id=stint_id,
        version=1,
        deleted=not granted,
        user_id=user_id,
    )


def pending_mark(session: Session) -> _Pending:
    """A copy of the changes noted so far, to restore when a savepoint is rolled back."""
    return dict(session.info.get(_PENDING, {}))


def pending_restore(session: Session, mark: _Pending) -> None:
    session.info[_PENDING] = dict(mark)


def logged_version(session: Session, type: ChangeType, entity_id: str) -> int:
    """The version last logged for a record (0 if none): keeps versions rising after a hard delete."""
    version = session.exec(
        select(SyncChange.version).where(SyncChange.type == type.value, SyncChange.entity_id == entity_id)
    ).first()
    return version or 0


def _write_pending(session: Session) -> None:
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Held until COMMIT has become visible: seq order is commit order.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK)))
    by_type: dict[str, list[str]] = {}
    for new, row in pending.values():
        if not new:
            by_type.setdefault(row["type"], []).append(row["entity_id"])
    table = SyncChange.__table__  # type: ignore[attr-defined]
    for type_, ids in by_type.items():
        connection.execute(sa.delete(table).where(table.c.type == type_, table.c.entity_id.in_(ids)))
    now = utcnow()
    rows = [row for _new, row in pending.values()]
    for row in rows:
        row["changed_at"] = now
    insert_many(session, table, rows)


def _forget_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


sa.event.listen(Session, "before_commit", _write_pending)
sa.event.listen(Session, "after_transaction_end", _forget_pending)


def horizon(session: Session) -> int:
    state = session.get(SyncState, 1)
    return state.horizon if state else 0


def latest_seq(session: Session) -> int:
    top = session.execute(sa.select(sa.func.max(col(SyncChange.seq)))).scalar_one_or_none()
    return max(top or 0, horizon(session))


def purge_tombstones(session: Session, now: datetime | None = None) -> int:
    """Drop tombstones older than the retention; cursors from before them get 410. Returns the count."""
    cutoff = (now or utcnow()) - TOMBSTONE_RETENTION
    expired = (col(SyncChange.deleted).is_(True), col(SyncChange.changed_at) < cutoff)
    top = session.execute(sa.select(sa.func.max(col(SyncChange.seq))).where(*expired)).scalar_one_or_none()
    if top is None:
        return 0
    removed = session.execute(sa.delete(SyncChange).where(*expired))
    state = session.get(SyncState, 1)
    if state is None:
        session.add(SyncState(id=1, horizon=top))
    elif state.horizon < top:
        state.horizon = top
        session.add(state)
    count: int = removed.rowcount  # type: ignore[attr-defined]
    return count
