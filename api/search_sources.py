"""What the index holds for observations, daily summaries and materials, and the stint's clock they
are filed on (insights and actions: ``api.search_debrief_sources``; how a source registers:
``api.search_docs``)."""

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import Session, col, select

from api.fields import blank
from api.logday import log_day
from api.material_tables import Material
from api.models import DailySummary, Hypothesis, Observation, ObservationHypothesis, ObservationTag, Stint
from api.search_docs import Dependents, SearchDoc, Source, register_source

BATCH = 1000


def uuids_of(ids: Sequence[str]) -> list[uuid.UUID]:
    out = []
    for raw in ids:
        try:
            out.append(uuid.UUID(raw))
        except ValueError:
            continue
    return out


def tombstoned_source(
    doc_type: str,
    table: Any,
    to_docs: Callable[[Session, Sequence[Any]], list[SearchDoc]],
    dependents: Dependents | None = None,
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

    return Source(doc_type, load, iter_all, count, dependents)


def stint_timezones(session: Session, rows: Sequence[Any]) -> dict[uuid.UUID, str]:
    """The stints' timezones: a material or insight is filed under its stint's local day, as
    observations are (a photo uploaded at 00:30 in Shanghai belongs to that day, not UTC's)."""
    stint_ids = {row.stint_id for row in rows}
    if not stint_ids:
        return {}
    return dict(
        session.execute(
            sa.select(col(Stint.id), col(Stint.timezone)).where(col(Stint.id).in_(stint_ids))
        ).all()  # type: ignore[arg-type]
    )


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def on_stint_clock(moment: datetime, timezone: str) -> datetime:
    """``moment`` on the stint's clock: a hit says when it happened as the team on site lived it,
    like the ``day`` beside it. An instant at the very edge of the calendar is left as it is."""
    try:
        return moment.astimezone(_zone(timezone))
    except OverflowError:
        return moment


def _observation_docs(session: Session, rows: Sequence[Observation]) -> list[SearchDoc]:
    ids = [o.id for o in rows]
    zones = stint_timezones(session, rows)
    tags: dict[uuid.UUID, list[str]] = defaultdict(list)
    hyps: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if ids:
        for oid, tag in session.execute(
            sa.select(col(ObservationTag.observation_id), col(ObservationTag.tag)).where(
                col(ObservationTag.observation_id).in_(ids)
            )
        ):
            tags[oid].append(tag)
        # Links to a deleted hypothesis stay stored but are not shown: nor are they found.
        for oid, hid in session.execute(
            sa.select(col(ObservationHypothesis.observation_id), col(ObservationHypothesis.hypothesis_id))
            .join(Hypothesis, col(Hypothesis.id) == col(ObservationHypothesis.hypothesis_id))
            .where(col(ObservationHypothesis.observation_id).in_(ids), col(Hypothesis.deleted_at).is_(None))
        ):
            hyps[oid].append(hid)
    return [
        SearchDoc(
            doc_type="observation",
            doc_id=str(o.id),
            stint_id=o.stint_id,
            texts={"text": o.text, "quote": o.quote or "", "speaker_role": o.speaker_role or ""},
            at=on_stint_clock(o.observed_at, zones.get(o.stint_id, "UTC")),
            day=o.day,
            kind=o.kind,
            tags=sorted(tags[o.id]),
            author_id=o.author_id,
            dimension=o.dimension,
            hypothesis_ids=sorted(hyps[o.id], key=str),
        )
        for o in rows
    ]


def _observation_materials(session: Session, ids: Sequence[str]) -> Mapping[str, set[str]]:
    """Materials attached to these observations: dated by them when they have no EXIF time."""
    found = session.execute(
        sa.select(col(Material.id)).where(
            col(Material.observation_id).in_(uuids_of(ids)), col(Material.deleted_at).is_(None)
        )
    ).scalars()
    material_ids = {str(mid) for mid in found}
    return {"material": material_ids} if material_ids else {}


def summary_doc_id(stint_id: uuid.UUID, author_id: uuid.UUID, day: date) -> str:
    return f"{stint_id}:{author_id}:{day.isoformat()}"


def _summary_doc(s: DailySummary, timezone: str) -> SearchDoc:
    return SearchDoc(
        doc_type="day",
        doc_id=summary_doc_id(s.stint_id, s.author_id, s.day),
        stint_id=s.stint_id,
        texts={"summary": s.summary},
        at=datetime.combine(s.day, time(23, 59, 59), tzinfo=_zone(timezone)),  # the day's end, on site
        day=s.day,
        author_id=s.author_id,
    )


def _load_summaries(session: Session, ids: Sequence[str]) -> Mapping[str, SearchDoc | None]:
    out: dict[str, SearchDoc | None] = {}
    for raw in ids:
        try:
            stint, author, day = raw.split(":")
            key = (uuid.UUID(stint), uuid.UUID(author), date.fromisoformat(day))
        except ValueError:
            continue
        summary = session.get(DailySummary, key)
        if summary is not None and not blank(summary.summary):
            out[raw] = _summary_doc(summary, stint_timezones(session, [summary]).get(summary.stint_id, "UTC"))
    return out


def _all_summaries(session: Session) -> Iterator[list[SearchDoc]]:
    offset = 0
    while True:
        rows = session.exec(
            select(DailySummary)
            .order_by(col(DailySummary.stint_id), col(DailySummary.author_id), col(DailySummary.day))
            .offset(offset)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        zones = stint_timezones(session, rows)
        yield [_summary_doc(s, zones.get(s.stint_id, "UTC")) for s in rows if not blank(s.summary)]
        offset += len(rows)


def _count_summaries(session: Session) -> int:
    count: int = session.execute(sa.select(sa.func.count()).select_from(DailySummary)).scalar_one()
    return count


register_source(tombstoned_source("observation", Observation, _observation_docs, _observation_materials))
register_source(Source("day", _load_summaries, _all_summaries, _count_summaries))


# --- hypotheses: not searched themselves; their observations carry their ids (hypothesis:) -----


def _no_docs(session: Session, ids: Sequence[str]) -> Mapping[str, SearchDoc | None]:
    return {}


def _no_batches(session: Session) -> Iterator[list[SearchDoc]]:
    return iter(())


def _hypothesis_observations(session: Session, ids: Sequence[str]) -> Mapping[str, set[str]]:
    """Observations linked to these hypotheses: a deleted hypothesis leaves their ``hypothesis:`` filter."""
    found = session.execute(
        sa.select(col(ObservationHypothesis.observation_id))
        .join(Observation, col(Observation.id) == col(ObservationHypothesis.observation_id))
        .where(
            col(ObservationHypothesis.hypothesis_id).in_(uuids_of(ids)), col(Observation.deleted_at).is_(None)
        )
    ).scalars()
    observation_ids = {str(oid) for oid in found}
    return {"observation": observation_ids} if observation_ids else {}


register_source(Source("hypothesis", _no_docs, _no_batches, lambda session: 0, _hypothesis_observations))


# --- materials (素材): caption, file name and extracted text ------------------------------


# A camera clock ahead of the upload by more than this is wrong (or set to another zone than
# the stint's by more than a day): such a photo is dated as if it had no EXIF time.
_CLOCK_SLACK = timedelta(days=1)


def _taken(m: Material, timezone: str) -> datetime | None:
    """When the photo was taken (EXIF), as an instant: a time recorded without its offset is the
    stint's local time (the camera shows the local clock)."""
    if not m.taken_at:
        return None
    try:
        moment = datetime.fromisoformat(m.taken_at)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(timezone))
        if moment > m.created_at + _CLOCK_SLACK:
            return None
        moment.timestamp()  # out of range for the sort column: no usable time
    except (ValueError, OverflowError, OSError, ZoneInfoNotFoundError):
        return None
    return moment


def _linked_observations(
    session: Session, rows: Sequence[Material]
) -> dict[uuid.UUID, tuple[datetime, date]]:
    """``observed_at`` and log day of the live observations the materials are attached to (in the
    material's stint: an observation not yet synced may name another)."""
    wanted = {(m.observation_id, m.stint_id) for m in rows if m.observation_id is not None}
    if not wanted:
        return {}
    found = session.execute(
        sa.select(
            col(Observation.id), col(Observation.stint_id), col(Observation.observed_at), col(Observation.day)
        ).where(col(Observation.id).in_({oid for oid, _ in wanted}), col(Observation.deleted_at).is_(None))
    ).all()
    return {oid: (at, day) for oid, sid, at, day in found if (oid, sid) in wanted}


def _material_docs(session: Session, rows: Sequence[Material]) -> list[SearchDoc]:
    """A material is filed under when it was taken (a photo's EXIF time), else its observation's
    time, else its upload: phones upload days later, and date filters mean the field day."""
    zones = stint_timezones(session, rows)
    linked = _linked_observations(session, rows)
    docs = []
    for m in rows:
        timezone = zones.get(m.stint_id, "UTC")
        taken = _taken(m, timezone)
        if taken is not None:
            at, day = taken, log_day(taken, timezone)
        elif m.observation_id in linked:
            at, day = linked[m.observation_id]
        else:
            at, day = m.created_at, log_day(m.created_at, timezone)
        docs.append(
            SearchDoc(
                doc_type="material",
                doc_id=str(m.id),
                stint_id=m.stint_id,
                texts={
                    "caption": m.caption or "",
                    "filename": m.filename,
                    "extracted_text": m.extracted_text or "",
                },
                at=on_stint_clock(at, timezone),
                day=day,
                kind=None,
                author_id=m.uploaded_by,
                extra={
                    "content_type": m.content_type,
                    "material_kind": m.kind,
                    "observation_id": m.observation_id,
                },
            )
        )
    return docs


register_source(tombstoned_source("material", Material, _material_docs))
