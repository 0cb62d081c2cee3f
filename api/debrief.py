"""The assembled debrief (复盘) of a stint: purpose and goals, hypotheses with their evidence,
coverage of the log, insights with their evidence, and the action plan."""

import uuid
from collections import Counter
from datetime import date, timedelta

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.access import StintDep
from api.action_views import ActionOut, actions_out, stint_actions
from api.db import SessionDep, utcnow
from api.debrief_models import Insight, InsightVerdict
from api.errors import responses
from api.insight_views import InsightOut, insights_out, stint_insights
from api.logday import log_day
from api.models import (
    Hypothesis,
    Observation,
    ObservationDimension,
    ObservationHypothesis,
    ObservationKind,
    Stance,
    Stint,
)
from api.themes import ThemeOut, stint_themes
from api.users import user_names

router = APIRouter(prefix="/api", tags=["debrief"])


class StintSummary(BaseModel):
    id: uuid.UUID
    title: str
    customer: str
    site: str | None
    purpose: str
    goals: str | None
    start_date: date
    end_date: date
    timezone: str


class HypothesisFigures(BaseModel):
    id: uuid.UUID
    statement: str
    dimension: str | None
    status: str
    supporting_observations: int
    refuting_observations: int
    supporting_insights: int
    refuting_insights: int


class GapRange(BaseModel):
    start: date
    end: date
    days: int


class ResearcherFigures(BaseModel):
    user_id: uuid.UUID
    name: str
    observations: int
    days_logged: int


class RoleQuotes(BaseModel):
    speaker_role: str | None
    quotes: int


class Coverage(BaseModel):
    stint_days: int
    days_so_far: int
    days_logged: int
    gaps: list[date]
    gap_ranges: list[GapRange]
    days_outside_stint: list[date]
    observations: int
    by_dimension: dict[str, int]
    by_kind: dict[str, int]
    by_researcher: list[ResearcherFigures]
    quotes: int
    quotes_by_speaker_role: list[RoleQuotes]


class Debrief(BaseModel):
    stint: StintSummary
    hypotheses: list[HypothesisFigures]
    coverage: Coverage
    themes: list[ThemeOut]
    insights: list[InsightOut]
    actions: list[ActionOut]


def _ranges(days: list[date]) -> list[GapRange]:
    out: list[GapRange] = []
    for day in days:
        if out and out[-1].end + timedelta(days=1) == day:
            out[-1].end = day
            out[-1].days += 1
        else:
            out.append(GapRange(start=day, end=day, days=1))
    return out


def coverage(session: Session, stint: Stint, *, by_researcher: bool = True) -> Coverage:
    """Figures of the log. Gaps are stint days up to today (in the stint's timezone) with nothing logged."""
    rows = session.execute(
        sa.select(
            col(Observation.author_id),
            col(Observation.day),
            col(Observation.kind),
            col(Observation.dimension),
            col(Observation.quote),
            col(Observation.speaker_role),
        ).where(col(Observation.stint_id) == stint.id, col(Observation.deleted_at).is_(None))
    ).all()
    today = log_day(utcnow(), stint.timezone)
    last = min(stint.end_date, today)
    stint_days = (stint.end_date - stint.start_date).days + 1
    days_so_far = max((last - stint.start_date).days + 1, 0)
    logged = {r.day for r in rows}
    in_range = [stint.start_date + timedelta(days=n) for n in range(days_so_far)]
    gaps = [d for d in in_range if d not in logged]
    by_dimension = {d.value: 0 for d in ObservationDimension} | {"unassigned": 0}
    by_kind = {k.value: 0 for k in ObservationKind}
    per_author: Counter[uuid.UUID] = Counter()
    author_days: dict[uuid.UUID, set[date]] = {}
    roles: Counter[str | None] = Counter()
    for r in rows:
        by_dimension[r.dimension or "unassigned"] = by_dimension.get(r.dimension or "unassigned", 0) + 1
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
        per_author[r.author_id] += 1
        author_days.setdefault(r.author_id, set()).add(r.day)
        if r.quote:
            roles[(r.speaker_role or "").strip() or None] += 1
    names = user_names(session, set(per_author)) if by_researcher else {}
    researchers = [
        ResearcherFigures(user_id=a, name=names.get(a, ""), observations=n, days_logged=len(author_days[a]))
        for a, n in per_author.items()
    ]
    return Coverage(
        stint_days=stint_days,
        days_so_far=days_so_far,
        days_logged=len([d for d in logged if stint.start_date <= d <= stint.end_date]),
        gaps=gaps,
        gap_ranges=_ranges(gaps),
        days_outside_stint=sorted(d for d in logged if not stint.start_date <= d <= stint.end_date),
        observations=len(rows),
        by_dimension=by_dimension,
        by_kind=by_kind,
        by_researcher=sorted(researchers, key=lambda r: (-r.observations, r.name)) if by_researcher else [],
        quotes=sum(roles.values()),
        quotes_by_speaker_role=[
            RoleQuotes(speaker_role=role, quotes=n)
            for role, n in sorted(roles.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
        ],
    )


def hypothesis_figures(session: Session, stint_id: uuid.UUID) -> list[HypothesisFigures]:
    hypotheses = session.exec(
        select(Hypothesis)
        .where(col(Hypothesis.stint_id) == stint_id, col(Hypothesis.deleted_at).is_(None))
        .order_by(col(Hypothesis.created_at), col(Hypothesis.id))
    ).all()
    observed: Counter[tuple[uuid.UUID, str]] = Counter()
    for hid, stance in session.execute(
        sa.select(col(ObservationHypothesis.hypothesis_id), col(ObservationHypothesis.stance))
        .join(Observation, col(Observation.id) == col(ObservationHypothesis.observation_id))
        .where(col(Observation.stint_id) == stint_id, col(Observation.deleted_at).is_(None))
    ).all():
        observed[(hid, stance)] += 1
    judged: Counter[tuple[uuid.UUID, str]] = Counter()
    for hid, verdict in session.execute(
        sa.select(col(InsightVerdict.hypothesis_id), col(InsightVerdict.verdict))
        .join(Insight, col(Insight.id) == col(InsightVerdict.insight_id))
        .where(col(Insight.stint_id) == stint_id, col(Insight.deleted_at).is_(None))
    ).all():
        judged[(hid, verdict)] += 1
    return [
        HypothesisFigures(
            id=h.id,
            statement=h.statement,
            dimension=h.dimension,
            status=h.status,
            supporting_observations=observed[(h.id, Stance.supports.value)],
            refuting_observations=observed[(h.id, Stance.refutes.value)],
            supporting_insights=judged[(h.id, Stance.supports.value)],
            refuting_insights=judged[(h.id, Stance.refutes.value)],
        )
        for h in hypotheses
    ]


def build_debrief(session: Session, stint: Stint) -> Debrief:
    return Debrief(
        stint=StintSummary.model_validate(stint, from_attributes=True),
        hypotheses=hypothesis_figures(session, stint.id),
        coverage=coverage(session, stint),
        themes=[ThemeOut.model_validate(t, from_attributes=True) for t in stint_themes(session, stint.id)],
        insights=insights_out(session, stint_insights(session, stint.id)),
        actions=list(actions_out(session, stint_actions(session, stint.id))),
    )


@router.get("/stints/{stint_id}/debrief", response_model=Debrief, responses=responses(401, 404, 422))
def get_debrief(session: SessionDep, access: StintDep) -> Debrief:
    """Everything the team needs for the 复盘 in one answer (any member)."""
    return build_debrief(session, access.stint)
