"""The narrow interface between the rest of Fieldbook and search. No Whoosh here.

Writers call :func:`record_index_task` in the same transaction as their change; the indexer
(``api.search_indexer``) later reads the record back through its :class:`Source` and updates
the index. An area that wants its records found (materials, insights, actions) does two things:

1. at import time, ``register_source(Source(doc_type="material", load=..., iter_all=...))``,
   where ``load(session, ids)`` answers a :class:`SearchDoc` for each id that should be in the
   index (absent or ``None``: deleted, remove it) and ``iter_all(session)`` yields every live
   record in batches (for ``fieldbook reindex`` and ``fieldbook check``);
2. in each write path, before its commit, ``record_index_task(session, "material", material.id)``.

A replacement backend (PostgreSQL full text, OpenSearch) only needs to consume the same tasks
and sources; nothing outside the ``search*`` modules changes.
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Field, Session, SQLModel

from api.db import UTCDateTime, insert_many, utcnow


class SearchTask(SQLModel, table=True):
    """A record whose index entry must be brought up to date (written with the record)."""

    __tablename__ = "search_task"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    doc_type: str = Field(max_length=16)
    doc_id: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


@dataclass(frozen=True)
class SearchDoc:
    """What the index knows about one record. ``texts`` are the searchable parts, in display
    order (e.g. ``{"text": ..., "quote": ...}``); everything else filters, facets and sorts."""

    doc_type: str
    doc_id: str
    stint_id: uuid.UUID
    texts: Mapping[str, str]
    at: datetime  # when it happened: newest-first sorts on this
    day: date | None = None
    kind: str | None = None
    tags: Sequence[str] = ()
    author_id: uuid.UUID | None = None
    dimension: str | None = None
    hypothesis_ids: Sequence[uuid.UUID] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # shown with the hit, not searched

    @property
    def key(self) -> str:
        return f"{self.doc_type}:{self.doc_id}"

    def fingerprint(self) -> str:
        """Changes whenever anything the index holds for this record changes (``fieldbook check``)."""
        body = {
            "texts": dict(self.texts),
            "at": self.at.isoformat(),
            "day": self.day.isoformat() if self.day else None,
            "kind": self.kind,
            "tags": sorted(self.tags),
            "author": str(self.author_id) if self.author_id else None,
            "dimension": self.dimension,
            "hypotheses": sorted(str(h) for h in self.hypothesis_ids),
            "stint": str(self.stint_id),
            "extra": dict(self.extra),
        }
        raw = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


Loader = Callable[[Session, Sequence[str]], Mapping[str, SearchDoc | None]]
AllLoader = Callable[[Session], Iterator[list[SearchDoc]]]
Counter = Callable[[Session], int]
Dependents = Callable[[Session, Sequence[str]], Mapping[str, set[str]]]


@dataclass(frozen=True)
class Source:
    doc_type: str
    load: Loader
    iter_all: AllLoader
    count: Counter
    # Records of other types whose index entry is read from these records (by type, their ids):
    # the indexer reloads them with these (a photo without EXIF time is dated by its observation).
    dependents: Dependents | None = None


_SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> None:
    if len(source.doc_type) > 16:
        raise ValueError("doc_type has at most 16 characters")
    _SOURCES[source.doc_type] = source


def sources() -> list[Source]:
    return list(_SOURCES.values())


def source(doc_type: str) -> Source | None:
    return _SOURCES.get(doc_type)


_PENDING = "fieldbook_pending_index_tasks"
_MARKS = "fieldbook_index_task_marks"


def record_index_task(session: Session, doc_type: str, doc_id: uuid.UUID | str) -> None:
    """Queue ``doc_type``/``doc_id`` for (re)indexing in the caller's transaction: it is
    applied after the caller commits, and never if the caller rolls back.

    The task rows are written together, one multi-row INSERT as the transaction commits (a push
    records a thousand): a task recorded inside a savepoint that is rolled back is dropped with it.
    Each is kept as the row it will be, its ``created_at`` set then."""
    if not session.in_transaction():
        session.begin()  # as adding a row would: a rollback from here on drops the task
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append({"doc_type": doc_type, "doc_id": str(doc_id), "created_at": None})
    session.info["search_tasks_added"] = True


def record_index_tasks(session: Session, doc_type: str, doc_ids: Iterable[uuid.UUID | str]) -> None:
    """:func:`record_index_task` for each of ``doc_ids``, in their order (one call for a batch)."""
    record_task_rows(session, [{"doc_type": doc_type, "doc_id": str(d), "created_at": None} for d in doc_ids])


def record_task_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue the task rows that :func:`new_task_rows` built (taken as they are: their ``created_at``
    is set at COMMIT), as :func:`record_index_tasks` does, for a writer that built them already."""
    if not rows:
        return
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_PENDING, []).extend(rows)
    session.info["search_tasks_added"] = True


def new_task_rows(doc_type: str, doc_ids: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """The task rows of records just written, for a writer without an ORM session (record_index_task
    leaves the same for _write_pending)."""
    return [{"doc_type": doc_type, "doc_id": doc_id, "created_at": now} for doc_id in doc_ids]


def _write_pending(session: OrmSession) -> None:
    """As the outermost transaction commits (a savepoint's release writes nothing: an enclosing
    savepoint may still be rolled back)."""
    if session.in_nested_transaction():
        return
    pending: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    now = utcnow()
    for row in pending:
        row["created_at"] = now
    insert_many(session, SearchTask.__table__, pending)  # type: ignore[attr-defined]


def _mark_savepoint(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, ()))


def _savepoint_rolled_back(session: OrmSession, previous_transaction: SessionTransaction) -> None:
    # Fires after the savepoint's ``after_transaction_end``: its mark is kept until then.
    mark = session.info.get(_MARKS, {}).pop(previous_transaction, None)
    if previous_transaction.nested and mark is not None and _PENDING in session.info:
        del session.info[_PENDING][mark:]


def _transaction_end(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (written) or rolled back: nothing is pending any more
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)


# Any session (plain SQLAlchemy ones too); before the change log's hook, which takes its lock as the
# last thing before COMMIT.
sa.event.listen(OrmSession, "before_commit", _write_pending, insert=True)
sa.event.listen(OrmSession, "after_transaction_create", _mark_savepoint)
sa.event.listen(OrmSession, "after_soft_rollback", _savepoint_rolled_back)
sa.event.listen(OrmSession, "after_transaction_end", _transaction_end)
