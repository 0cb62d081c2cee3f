"""The daily log (观察日志): one page per day of a stint, with each researcher's own summary."""

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, field_validator
from sqlmodel import Session, col, select

from api.access import StintDep, StintWriter
from api.changelog import ChangeType, logged_version, record_change
from api.db import SessionDep, utcnow
from api.errors import Invalid, responses
from api.fields import Text, blank
from api.models import DailySummary, Observation, Stint
from api.observation_schemas import ObservationOut, observations_out
from api.search_docs import record_index_task
from api.users import user_names

router = APIRouter(prefix="/api/stints/{stint_id}/days", tags=["daily log"])

# A summary may be written for a day this far before the planned start (scouting visits) or after the
# planned end (write-ups once back at the office); any day the log holds observations on is fine too.
SUMMARY_SLACK = timedelta(days=14)


class AuthorCount(BaseModel):
    author_id: uuid.UUID
    author_name: str
    observations: int


class DayOverview(BaseModel):
    date: date
    in_stint: bool
    observations: int
    authors: list[AuthorCount]
    summaries: int


class SummaryIn(BaseModel):
    model_config = {"extra": "forbid"}

    summary: Text(10_000)  # type: ignore[valid-type]

    @field_validator("summary")
    @classmethod
    def _blank_is_empty(cls, value: str) -> str:
        return "" if blank(value) else value  # a zero-width space alone removes the summary too


class SummaryOut(BaseModel):
    author_id: uuid.UUID
    author_name: str
    summary: str
    version: int
    updated_at: datetime


class DayLog(BaseModel):
    date: date
    in_stint: bool
    summaries: list[SummaryOut]
    observations: list[ObservationOut]


@router.get("", response_model=list[DayOverview], responses=responses(401, 404, 422))
def list_days(session: SessionDep, access: StintDep) -> list[DayOverview]:
    """Every day of the stint, empty ones included so gaps show, with counts per researcher.
    Days outside the planned dates appear too when something was logged on them."""
    stint = access.stint
    counts = session.execute(
        sa.select(col(Observation.day), col(Observation.author_id), sa.func.count())
        .where(col(Observation.stint_id) == stint.id, col(Observation.deleted_at).is_(None))
        .group_by(col(Observation.day), col(Observation.author_id))
    ).all()
    summaries = session.execute(
        sa.select(col(DailySummary.day), sa.func.count())
        .where(col(DailySummary.stint_id) == stint.id)
        .group_by(col(DailySummary.day))
    ).all()
    per_day: dict[date, dict[uuid.UUID, int]] = defaultdict(dict)
    for day, author, count in counts:
        per_day[day][author] = count
    summary_days = dict(summaries)
    names = user_names(session, {author for _, author, _ in counts})
    planned = {
        stint.start_date + timedelta(days=i) for i in range((stint.end_date - stint.start_date).days + 1)
    }
    return [
        DayOverview(
            date=day,
            in_stint=day in planned,
            observations=sum(per_day[day].values()),
            authors=[
                AuthorCount(author_id=a, author_name=names.get(a, ""), observations=n)
                for a, n in sorted(per_day[day].items(), key=lambda item: names.get(item[0], ""))
            ],
            summaries=summary_days.get(day, 0),
        )
        for day in sorted(planned | set(per_day) | set(summary_days))
    ]


def _day_log(session: SessionDep, access: StintDep, day: date) -> DayLog:
    stint = access.stint
    rows = session.exec(
        select(Observation)
        .where(Observation.stint_id == stint.id, Observation.day == day, Observation.deleted_at.is_(None))  # type: ignore[union-attr]
        .order_by(Observation.observed_at, Observation.id)  # type: ignore[arg-type]
    ).all()
    summaries = session.exec(
        select(DailySummary).where(DailySummary.stint_id == stint.id, DailySummary.day == day)
    ).all()
    names = user_names(session, {s.author_id for s in summaries})
    return DayLog(
        date=day,
        in_stint=stint.start_date <= day <= stint.end_date,
        summaries=[
            SummaryOut(
                author_id=s.author_id,
                author_name=names.get(s.author_id, ""),
                summary=s.summary,
                version=s.version,
                updated_at=s.updated_at,
            )
            for s in summaries
        ],
        observations=observations_out(session, rows),
    )


@router.get("/{day}", response_model=DayLog, responses=responses(401, 404, 422))
def get_day(day: date, session: SessionDep, access: StintDep) -> DayLog:
    """One day's page: every researcher's summary and the observations, in the order observed."""
    return _day_log(session, access, day)


@router.put("/{day}", response_model=DayLog, responses=responses(401, 403, 404, 422))
def put_day_summary(day: date, body: SummaryIn, session: SessionDep, access: StintWriter) -> DayLog:
    """Write your own summary of the day (researchers and managers). Repeating it changes nothing more.
    An empty (or whitespace-only) summary removes yours: the sync feed gets a tombstone.

    A new summary belongs to a day of the stint: its planned days, up to 14 days before the start
    or after the end, or any other day with observations in the log; else 422 ``day_outside_stint``.
    A summary already written may always be changed or removed, whatever its day."""
    current = session.get(DailySummary, (access.stint.id, access.user.id, day))
    if body.summary:
        save_summary(session, access.stint.id, access.user.id, day, body.summary, current)
    elif current is not None:
        delete_summary(session, current)
    session.commit()
    return _day_log(session, access, day)


def summary_key(stint_id: uuid.UUID, author_id: uuid.UUID, day: date) -> str:
    """The id of one researcher's summary of one day, in the sync feed and in sync pushes."""
    return f"{stint_id}:{author_id}:{day.isoformat()}"


def _slack_bounds(stint: Stint) -> tuple[date, date]:
    """The stint's days with their slack, held at the calendar's ends: a stint stored before stints'
    dates were limited to 1900-2199 may be dated year 1 or 9999."""
    earliest = date.min if stint.start_date - date.min < SUMMARY_SLACK else stint.start_date - SUMMARY_SLACK
    latest = date.max if date.max - stint.end_date < SUMMARY_SLACK else stint.end_date + SUMMARY_SLACK
    return earliest, latest


def check_summary_day(session: Session, stint: Stint, day: date) -> None:
    """Refuse a new summary of a day that is not one of the stint's (see ``put_day_summary``)."""
    earliest, latest = _slack_bounds(stint)
    if earliest <= day <= latest:
        return
    logged = session.exec(
        select(Observation.id)
        .where(Observation.stint_id == stint.id, Observation.day == day, Observation.deleted_at.is_(None))  # type: ignore[union-attr]
        .limit(1)
    ).first()
    if logged is None:
        raise Invalid(
            f"{day.isoformat()} is not a day of this stint ({stint.start_date.isoformat()} to "
            f"{stint.end_date.isoformat()}, give or take {SUMMARY_SLACK.days} days) and nothing was "
            "logged on it.",
            code="day_outside_stint",
            details={
                "day": day.isoformat(),
                "earliest": earliest.isoformat(),
                "latest": latest.isoformat(),
            },
        )


def save_summary(
    session: Session,
    stint_id: uuid.UUID,
    author_id: uuid.UUID,
    day: date,
    text: str,
    current: DailySummary | None,
) -> DailySummary:
    """Create or change a summary; the same text again changes nothing. Versions keep rising
    across a delete, so devices never take a re-created summary for an older one. A new summary
    must be of a day of the stint (``check_summary_day``); empty text is refused: callers remove
    the summary instead (``delete_summary``)."""
    if blank(text):
        raise Invalid("An empty summary is not stored: it removes the summary.", code="empty_summary")
    key = summary_key(stint_id, author_id, day)
    if current is None:
        stint = session.get(Stint, stint_id)
        assert stint is not None  # the caller checked access to it
        check_summary_day(session, stint, day)
        current = DailySummary(
            stint_id=stint_id,
            author_id=author_id,
            day=day,
            summary=text,
            version=logged_version(session, ChangeType.daily_summary, key) + 1,
        )
    elif current.summary != text:
        current.summary, current.version, current.updated_at = text, current.version + 1, utcnow()
    else:
        return current
    session.add(current)
    record_change(session, ChangeType.daily_summary, key, stint_id=stint_id, version=current.version)
    record_index_task(session, "day", key)
    return current


def delete_summary(session: Session, summary: DailySummary) -> int:
    """Delete a summary, leaving a tombstone in the sync feed. Returns the tombstone's version."""
    version = summary.version + 1
    session.delete(summary)
    record_index_task(session, "day", summary_key(summary.stint_id, summary.author_id, summary.day))
    record_change(
        session,
        ChangeType.daily_summary,
        summary_key(summary.stint_id, summary.author_id, summary.day),
        stint_id=summary.stint_id,
        version=version,
        deleted=True,
    )
    return version
