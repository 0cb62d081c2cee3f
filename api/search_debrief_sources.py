"""What the index holds for insights (洞见) and improvement actions (改善行动): their titles and
texts, filed under the day they were written on the stint's clock."""

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from api.debrief_models import Action, Insight
from api.logday import log_day
from api.search_docs import SearchDoc, Source, register_source
from api.search_sources import BATCH, on_stint_clock, stint_timezones, uuids_of


def _insight_docs(session: Session, rows: Sequence[Insight]) -> list[SearchDoc]:
    zones = stint_timezones(session, rows)
    return [
        SearchDoc(
            doc_type="insight",
            doc_id=str(i.id),
            stint_id=i.stint_id,
            texts={"title": i.title, "statement": i.statement},
            at=on_stint_clock(i.created_at, zones.get(i.stint_id, "UTC")),
            day=log_day(i.created_at, zones.get(i.stint_id, "UTC")),
            author_id=i.created_by,
        )
        for i in rows
    ]


def _action_docs(session: Session, rows: Sequence[Action]) -> list[SearchDoc]:
    zones = stint_timezones(session, rows)
    return [
        SearchDoc(
            doc_type="action",
            doc_id=str(a.id),
            stint_id=a.stint_id,
            texts={
                "title": a.title,
                "description": a.description or "",
                "progress_note": a.progress_note or "",
            },
            at=on_stint_clock(a.created_at, zones.get(a.stint_id, "UTC")),
            day=log_day(a.created_at, zones.get(a.stint_id, "UTC")),
            author_id=a.created_by,
        )
        for a in rows
    ]


def _simple_source(
    doc_type: str, table: Any, to_docs: Callable[[Session, Sequence[Any]], list[SearchDoc]]
) -> Source:
    """A source for a table with a UUID ``id`` and a ``deleted_at`` tombstone."""

    def load(session: Session, ids: Sequence[str]) -> Mapping[str, SearchDoc | None]:
        rows = session.exec(
            select(table).where(col(table.id).in_(uuids_of(ids)), col(table.deleted_at).is_(None))
        ).all()
        return {doc.doc_id: doc for doc in to_docs(session, rows)}

    def iter_all(session: Session) -> Iterator[list[SearchDoc]]:
        after: uuid.UUID | None = None
        while True:
            stmt = select(table).where(col(table.deleted_at).is_(None))
            if after is not None:
                stmt = stmt.where(col(table.id) > after)
            rows = session.exec(stmt.order_by(col(table.id)).limit(BATCH)).all()
            if not rows:
                return
            yield to_docs(session, rows)
            after = rows[-1].id

    def count(session: Session) -> int:
        n: int = session.execute(
            sa.select(sa.func.count()).select_from(table).where(col(table.deleted_at).is_(None))
        ).scalar_one()
        return n

    return Source(doc_type, load, iter_all, count)


register_source(_simple_source("insight", Insight, _insight_docs))
register_source(_simple_source("action", Action, _action_docs))
