"""``GET /api/sync/changes``: what changed since a device's cursor, in commit order.

Records come with their current data, deleted ones as tombstones (``deleted: true``, no data).
A ``stint_access`` change is addressed to the reading user only: ``deleted: true`` means drop that
stint and everything in it from the device (removed from the stint, or the stint was closed);
``deleted: false`` means a stint was shared with you: pull it with ``?stint_id=`` and no cursor."""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.access import stint_access
from api.auth import CurrentUser
from api.changelog import ChangeType, SyncChange, horizon, latest_seq
from api.db import SessionDep
from api.errors import BadRequest, Gone, responses
from api.hypotheses import HypothesisOut
from api.material_tables import Material
from api.materials import material_out
from api.models import DailySummary, Hypothesis, Membership, Observation, Stint
from api.observation_schemas import observations_out
from api.users import user_names

router = APIRouter(prefix="/api/sync", tags=["sync"])

ChangeRow = sa.Row[Any]  # seq, type, entity_id, stint_id, user_id, version of a SyncChange

DEFAULT_PAGE = 500
MAX_PAGE = 1000


class Change(BaseModel):
    type: ChangeType
    id: str
    stint_id: uuid.UUID
    version: int
    deleted: bool
    data: dict[str, Any] | None = Field(description="The record as it is now; null for a tombstone")


class ChangesPage(BaseModel):
    changes: list[Change]
    cursor: str = Field(description="Send as `since` next time; kept by the device")
    has_more: bool


def parse_cursor(since: str | None) -> int | None:
    if since is None or since == "":
        return None
    if not (since.isascii() and since.isdigit()) or len(since) > 18:
        raise BadRequest("The cursor is not one this server gave out.", code="invalid_cursor")
    return int(since)


def _visible(user_id: uuid.UUID, stint_id: uuid.UUID | None) -> sa.ColumnElement[bool]:
    if stint_id is not None:
        return sa.and_(col(SyncChange.stint_id) == stint_id, col(SyncChange.user_id).is_(None))
    mine = (
        sa.select(col(Membership.stint_id))
        .join(Stint, col(Stint.id) == col(Membership.stint_id))
        .where(col(Membership.user_id) == user_id, col(Stint.deleted_at).is_(None))
    )
    return sa.or_(
        sa.and_(col(SyncChange.user_id).is_(None), col(SyncChange.stint_id).in_(mine)),
        col(SyncChange.user_id) == user_id,
    )


@router.get("/changes", response_model=ChangesPage, responses=responses(400, 401, 404, 410, 422))
def changes(
    session: SessionDep,
    user: CurrentUser,
    since: Annotated[str | None, Query(max_length=40, description="The cursor of the last page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    stint_id: Annotated[uuid.UUID | None, Query(description="Only this stint (a newly shared one)")] = None,
) -> JSONResponse:
    """Every change you may see since `since`, oldest first; follow `cursor` while `has_more`.
    Without `since`: everything, from the start. 410 when the cursor is older than the tombstones
    kept (or unknown to this server): drop local copies and pull again without `since`."""
    after = parse_cursor(since)
    if stint_id is not None:
        stint_access(session, stint_id, user)  # 404 for non-members
    if after is not None and (after < horizon(session) or after > latest_seq(session)):
        raise Gone(
            "This cursor is older than the deletions the server keeps; resync from scratch.",
            code="cursor_expired",
            details={"resync": True},
        )
    rows = session.execute(
        sa.select(
            col(SyncChange.seq),
            col(SyncChange.type),
            col(SyncChange.entity_id),
            col(SyncChange.stint_id),
            col(SyncChange.user_id),
            col(SyncChange.version),
        )
        .where(col(SyncChange.seq) > (after or 0), _visible(user.id, stint_id))
        .order_by(col(SyncChange.seq))
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = str(rows[-1].seq) if rows else str(after if after is not None else latest_seq(session))
    # Plain JSON, built once: a page holds up to a thousand records (the model above documents it).
    return JSONResponse({"changes": _changes(session, rows), "cursor": cursor, "has_more": more})


def _changes(session: Session, rows: Sequence[ChangeRow]) -> list[dict[str, Any]]:
    by_type: dict[str, list[ChangeRow]] = {}
    for row in rows:
        by_type.setdefault(row.type, []).append(row)
    data: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    data.update(_observations(session, by_type.get(ChangeType.observation.value, [])))
    data.update(_hypotheses(session, by_type.get(ChangeType.hypothesis.value, [])))
    data.update(_summaries(session, by_type.get(ChangeType.daily_summary.value, [])))
    data.update(_materials(session, by_type.get(ChangeType.material.value, [])))
    data.update(_access(session, by_type.get(ChangeType.stint_access.value, [])))
    out = []
    for row in rows:
        current = data.get((row.type, row.entity_id))
        is_access = row.type == ChangeType.stint_access.value
        out.append(
            {
                "type": row.type,
                "id": str(row.stint_id) if is_access else row.entity_id,
                "stint_id": str(row.stint_id),
                "version": current[0] if current else (row.seq if is_access else row.version),
                "deleted": current is None,
                "data": current[1] if current else None,
            }
        )
    return out


def _observations(
    session: Session, rows: list[ChangeRow]
) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    if not rows:
        return {}
    ids = [uuid.UUID(r.entity_id) for r in rows]
    found = session.exec(
        select(Observation).where(col(Observation.id).in_(ids), col(Observation.deleted_at).is_(None))
    ).all()
    return {
        (ChangeType.observation.value, str(o.id)): (o.version, o.model_dump(mode="json", exclude={"deleted"}))
        for o in observations_out(session, found)
    }


def _hypotheses(session: Session, rows: list[ChangeRow]) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    if not rows:
        return {}
    ids = [uuid.UUID(r.entity_id) for r in rows]
    found = session.exec(
        select(Hypothesis).where(col(Hypothesis.id).in_(ids), col(Hypothesis.deleted_at).is_(None))
    ).all()
    return {
        (ChangeType.hypothesis.value, str(h.id)): (
            h.version,
            HypothesisOut.model_validate(h, from_attributes=True).model_dump(mode="json"),
        )
        for h in found
    }


def _materials(session: Session, rows: list[ChangeRow]) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    """Metadata as ``GET /api/materials/{id}`` shows it (without the extracted text)."""
    if not rows:
        return {}
    ids = [uuid.UUID(r.entity_id) for r in rows]
    found = session.exec(
        select(Material).where(col(Material.id).in_(ids), col(Material.deleted_at).is_(None))
    ).all()
    return {
        (ChangeType.material.value, str(m.id)): (
            m.version,
            material_out(m).model_dump(mode="json", exclude={"deleted"}),
        )
        for m in found
    }


def parse_summary_key(key: str) -> tuple[uuid.UUID, uuid.UUID, date]:
    """``{stint_id}:{author_id}:{YYYY-MM-DD}``; ValueError otherwise."""
    stint, author, day = key.split(":")
    return uuid.UUID(stint), uuid.UUID(author), date.fromisoformat(day)


def summary_data(summary: DailySummary, author_name: str) -> dict[str, Any]:
    return {
        "stint_id": str(summary.stint_id),
        "author_id": str(summary.author_id),
        "author_name": author_name,
        "day": summary.day.isoformat(),
        "summary": summary.summary,
        "version": summary.version,
        "updated_at": _iso(summary.updated_at),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _summaries(session: Session, rows: list[ChangeRow]) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    if not rows:
        return {}
    keys = [parse_summary_key(r.entity_id) for r in rows]
    found = session.exec(
        select(DailySummary).where(
            sa.tuple_(col(DailySummary.stint_id), col(DailySummary.author_id), col(DailySummary.day)).in_(
                keys
            )
        )
    ).all()
    names = user_names(session, {s.author_id for s in found})
    return {
        (ChangeType.daily_summary.value, f"{s.stint_id}:{s.author_id}:{s.day.isoformat()}"): (
            s.version,
            summary_data(s, names.get(s.author_id, "")),
        )
        for s in found
    }


def _access(session: Session, rows: list[ChangeRow]) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    if not rows:
        return {}
    out: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for row in rows:
        assert row.user_id is not None and row.seq is not None
        found = session.exec(
            select(Stint, Membership.role)
            .join(Membership, col(Membership.stint_id) == col(Stint.id))
            .where(
                col(Stint.id) == row.stint_id,
                col(Membership.user_id) == row.user_id,
                col(Stint.deleted_at).is_(None),
            )
        ).first()
        if found is not None:
            stint, role = found
            out[(row.type, row.entity_id)] = (
                row.seq,
                {
                    "stint_id": str(stint.id),
                    "role": role,
                    "title": stint.title,
                    "customer": stint.customer,
                    "timezone": stint.timezone,
                    "start_date": stint.start_date.isoformat(),
                    "end_date": stint.end_date.isoformat(),
                },
            )
    return out
