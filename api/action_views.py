"""How the action plan reads: priority from impact and effort, overdue, history, plan order."""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.db import utcnow
from api.debrief_models import Action, ActionEvent, ActionInsight, ActionStatus, Insight, Level
from api.logday import log_day
from api.models import Stint, User
from api.users import user_names


def priority(impact: Level, effort: Level) -> tuple[str, int]:
    """Impact/effort matrix: a big win for little effort comes first. Score 1 (low) … 7 (high)."""
    score = 2 * impact.rank - effort.rank + 2  # 1 … 7
    label = "high" if score >= 6 else "medium" if score >= 4 else "low"
    return label, score


class EventOut(BaseModel):
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID
    actor_name: str
    kind: str
    changes: dict[str, Any]
    decision: str | None
    comment: str | None


class ActionOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    stint_title: str
    title: str
    description: str | None
    owner_id: uuid.UUID | None
    owner_name: str | None
    owner_email: str | None
    due_date: date | None
    overdue: bool
    impact: Level
    effort: Level
    priority: str = Field(description="high, medium or low, from impact and effort")
    priority_score: int = Field(description="1 (low) … 7 (high): sorts the plan")
    status: ActionStatus
    progress: int
    progress_note: str | None
    insight_ids: list[uuid.UUID]
    last_review: EventOut | None
    created_by: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


class ActionDetail(ActionOut):
    history: list[EventOut]


def is_overdue(action: Action, today: date) -> bool:
    open_ = action.status not in (ActionStatus.done.value, ActionStatus.rejected.value)
    return open_ and action.due_date is not None and action.due_date < today


def _events(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[EventOut]]:
    out: dict[uuid.UUID, list[EventOut]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.exec(
        select(ActionEvent)
        .where(col(ActionEvent.action_id).in_(ids))
        .order_by(col(ActionEvent.at), col(ActionEvent.id))
    ).all()
    names = user_names(session, {e.actor_id for e in rows})
    for e in rows:
        out[e.action_id].append(
            EventOut(
                id=e.id,
                at=e.at,
                actor_id=e.actor_id,
                actor_name=names.get(e.actor_id, ""),
                kind=e.kind,
                changes=e.changes,
                decision=e.decision,
                comment=e.comment,
            )
        )
    return out


def actions_out(session: Session, rows: Sequence[Action], *, history: bool = False) -> list[ActionDetail]:
    ids = [a.id for a in rows]
    links: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if ids:
        for link in session.exec(
            select(ActionInsight)
            .join(Insight, col(Insight.id) == col(ActionInsight.insight_id))
            .where(col(ActionInsight.action_id).in_(ids), col(Insight.deleted_at).is_(None))
        ):
            links[link.action_id].append(link.insight_id)
    owners = {
        u.id: u
        for u in session.exec(select(User).where(col(User.id).in_({a.owner_id for a in rows if a.owner_id})))
    }
    stints = {
        s.id: s for s in session.exec(select(Stint).where(col(Stint.id).in_({a.stint_id for a in rows})))
    }
    events = _events(session, ids)
    out = []
    for a in rows:
        owner = owners.get(a.owner_id) if a.owner_id else None
        stint = stints[a.stint_id]
        label, score = priority(Level(a.impact), Level(a.effort))
        reviews = [e for e in events[a.id] if e.kind == "review"]
        out.append(
            ActionDetail(
                **a.model_dump(exclude={"deleted_at", "create_hash", "impact", "effort", "status"}),
                stint_title=stint.title,
                owner_name=owner.name if owner else None,
                owner_email=owner.email if owner else None,
                overdue=is_overdue(a, log_day(utcnow(), stint.timezone)),
                impact=Level(a.impact),
                effort=Level(a.effort),
                status=ActionStatus(a.status),
                priority=label,
                priority_score=score,
                insight_ids=sorted(links[a.id], key=str),
                last_review=reviews[-1] if reviews else None,
                history=events[a.id] if history else [],
            )
        )
    return out


def plan_order(rows: Sequence[Action]) -> list[Action]:
    """The action plan's order: rejected last, then by priority, due date, creation."""
    return sorted(
        rows,
        key=lambda a: (
            a.status == ActionStatus.rejected.value,
            -priority(Level(a.impact), Level(a.effort))[1],
            a.due_date or date.max,
            a.created_at,
        ),
    )


def stint_actions(session: Session, stint_id: uuid.UUID) -> list[Action]:
    return plan_order(
        session.exec(
            select(Action).where(col(Action.stint_id) == stint_id, col(Action.deleted_at).is_(None))
        ).all()
    )
