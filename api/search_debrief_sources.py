"""What the index holds for insights (洞见) and improvement actions (改善行动): their titles and
texts, filed under the day they were written on the stint's clock."""

from collections.abc import Sequence

from sqlmodel import Session

from api.debrief_models import Action, Insight
from api.logday import log_day
from api.search_docs import SearchDoc, register_source
from api.search_sources import on_stint_clock, stint_timezones, tombstoned_source


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


register_source(tombstoned_source("insight", Insight, _insight_docs))
register_source(tombstoned_source("action", Action, _action_docs))
