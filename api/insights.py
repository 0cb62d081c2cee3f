"""Insights (洞见) drawn at the debrief: create, edit, order, delete. Evidence and verdicts are in
``insight_views``, themes in ``themes``."""

import uuid
from collections import Counter
from typing import Annotated, Any, Self

import sqlalchemy as sa
from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col

from api.access import StintAccess, StintDep, StintWriter, stint_access
from api.auth import CurrentUser
from api.db import SessionDep, begin_reading, end_reads, utcnow
from api.debrief_models import Insight
from api.errors import Conflict, Gone, Invalid, NotFound, responses
from api.etags import check_if_match, etag
from api.fields import Text, fingerprint
from api.insight_views import (
    MAX_EVIDENCE,
    EvidenceIn,
    InsightOut,
    VerdictIn,
    insights_out,
    set_evidence,
    set_verdicts,
    stint_insights,
)
from api.models import Role, User
from api.search_docs import record_index_task
from api.themes import check_theme

router = APIRouter(prefix="/api", tags=["insights"])


class _InsightFields(BaseModel):
    model_config = {"extra": "forbid"}

    theme_id: uuid.UUID | None = None
    evidence: list[EvidenceIn] | None = Field(default=None, max_length=MAX_EVIDENCE)
    verdicts: list[VerdictIn] | None = Field(default=None, max_length=50)
    position: int | None = Field(default=None, ge=0, le=1_000_000)


class InsightCreate(_InsightFields):
    id: uuid.UUID | None = Field(default=None, description="Chosen by the client; a retry with it is safe")
    title: Text(200, min_length=1)  # type: ignore[valid-type]
    statement: Text(10_000, min_length=1)  # type: ignore[valid-type]

    def fingerprint(self) -> str:
        body = self.model_dump(mode="json", exclude={"id"})
        return fingerprint(body)


class InsightUpdate(_InsightFields):
    title: Text(200, min_length=1) | None = None  # type: ignore[valid-type]
    statement: Text(10_000, min_length=1) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in ("title", "statement", "evidence", "verdicts", "position"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class OrderIn(BaseModel):
    model_config = {"extra": "forbid"}

    insight_ids: list[uuid.UUID] = Field(max_length=1000)


def _next_position(session: Session, stint_id: uuid.UUID) -> int:
    top = session.execute(
        sa.select(sa.func.max(col(Insight.position))).where(col(Insight.stint_id) == stint_id)
    ).scalar()
    return 0 if top is None else int(top) + 1


def _load(
    session: Session, insight_id: uuid.UUID, user: User, *, lock: bool = False
) -> tuple[Insight, StintAccess]:
    """The insight and the caller's access; ``lock`` for writes, so concurrent edits take turns."""
    missing = NotFound("No such insight.", code="insight_not_found")
    insight = session.get(Insight, insight_id, with_for_update=lock)
    if insight is None:
        raise missing
    access = stint_access(session, insight.stint_id, user, missing=missing)
    if insight.deleted_at is not None:
        raise Gone("This insight was deleted.", code="insight_deleted")
    return insight, access


def _with_etag(response: Response, out: InsightOut) -> InsightOut:
    response.headers["ETag"] = etag(out.version)
    return out


@router.post(
    "/stints/{stint_id}/insights",
    response_model=InsightOut,
    status_code=201,
    responses={
        **responses(401, 403, 404, 409, 422),
        200: {"model": InsightOut, "description": "Already saved"},
    },
)
def create_insight(
    body: InsightCreate, response: Response, session: SessionDep, access: StintWriter
) -> InsightOut:
    """Draw an insight. Without evidence it is saved as a draft (`draft: true`). Send your own `id`:
    the same id and body again answers 200 and saves nothing new; another body is 409."""
    fingerprint = body.fingerprint()
    insight_id = body.id or uuid.uuid4()
    existing = session.get(Insight, insight_id)
    if existing is not None:
        if existing.stint_id != access.stint.id or existing.create_hash != fingerprint:
            raise Conflict(
                "An insight with this id already exists with other content.",
                code="id_conflict",
                details={"id": str(insight_id)},
            )
        response.status_code = 200
        return _with_etag(response, insights_out(session, [existing])[0])
    check_theme(session, access.stint.id, body.theme_id)
    insight = Insight(
        id=insight_id,
        stint_id=access.stint.id,
        theme_id=body.theme_id,
        title=body.title,
        statement=body.statement,
        position=body.position if body.position is not None else _next_position(session, access.stint.id),
        created_by=access.user.id,
        create_hash=fingerprint,
    )
    session.add(insight)
    session.flush()
    set_evidence(session, insight, body.evidence or [])
    set_verdicts(session, insight, body.verdicts or [])
    record_index_task(session, "insight", insight.id)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        # A concurrent retry of the same create won the race: answer as for a retry.
        session.rollback()
        if session.get(Insight, insight_id) is None:
            raise
        return create_insight(body, response, session, access)
    response.headers["Location"] = f"/api/insights/{insight.id}"
    return _with_etag(response, insights_out(session, [insight])[0])


@router.get(
    "/stints/{stint_id}/insights", response_model=list[InsightOut], responses=responses(401, 404, 422)
)
def list_insights(
    session: SessionDep,
    access: StintDep,
    theme_id: uuid.UUID | None = None,
    draft: bool | None = None,
) -> list[InsightOut]:
    """The stint's insights in debrief order (themes in order, then each insight's position)."""
    rows = stint_insights(session, access.stint.id)
    if theme_id is not None:
        rows = [i for i in rows if i.theme_id == theme_id]
    out = insights_out(session, rows)
    return [i for i in out if draft is None or i.draft == draft]


@router.put(
    "/stints/{stint_id}/insights/order",
    response_model=list[InsightOut],
    responses=responses(401, 403, 404, 422),
)
def order_insights(body: OrderIn, session: SessionDep, access: StintWriter) -> list[InsightOut]:
    """Put insights in this order (positions 0, 1, 2…); insights not named keep their place after them.
    Naming an insight twice is a 422 (`duplicate_insight`)."""
    if twice := sorted(str(i) for i, n in Counter(body.insight_ids).items() if n > 1):
        raise Invalid(
            "Name each insight once: an order that names one more than once has no single meaning.",
            code="duplicate_insight",
            details={"insight_ids": twice},
        )
    rows = {i.id: i for i in stint_insights(session, access.stint.id)}
    if unknown := [str(i) for i in body.insight_ids if i not in rows]:
        raise Invalid(
            "Name only insights of this stint.", code="unknown_insight", details={"insight_ids": unknown}
        )
    named = set(body.insight_ids)
    ordered = body.insight_ids + [i for i in rows if i not in named]
    now = utcnow()
    for position, insight_id in enumerate(ordered):
        insight = rows[insight_id]
        if insight.position != position:
            insight.position = position
            insight.version += 1
            insight.updated_at = now
            session.add(insight)
    session.commit()
    begin_reading(session)  # the answer only reads: not under the write lock (see db.end_reads)
    answer = insights_out(session, stint_insights(session, access.stint.id))
    end_reads(session)
    return answer


@router.get("/insights/{insight_id}", response_model=InsightOut, responses=responses(401, 404, 410, 422))
def get_insight(
    insight_id: uuid.UUID, response: Response, session: SessionDep, user: CurrentUser
) -> InsightOut:
    insight, _ = _load(session, insight_id, user)
    return _with_etag(response, insights_out(session, [insight])[0])


@router.patch(
    "/insights/{insight_id}",
    response_model=InsightOut,
    responses=responses(401, 403, 404, 410, 412, 422),
)
def update_insight(
    insight_id: uuid.UUID,
    body: InsightUpdate,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> InsightOut:
    """Edit an insight (researchers and managers). `evidence` and `verdicts` replace the lists."""
    insight, access = _load(session, insight_id, user, lock=True)
    access.require(Role.researcher)
    check_if_match(if_match, insight.version, required=False)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"evidence", "verdicts"})
    if "theme_id" in changes:
        check_theme(session, insight.stint_id, changes["theme_id"])
    for field, value in changes.items():
        setattr(insight, field, value)
    if body.evidence is not None:
        set_evidence(session, insight, body.evidence)
    if body.verdicts is not None:
        set_verdicts(session, insight, body.verdicts)
    insight.version += 1
    insight.updated_at = utcnow()
    session.add(insight)
    record_index_task(session, "insight", insight.id)
    session.commit()
    begin_reading(session)  # the answer only reads: not under the write lock (see db.end_reads)
    updated = insights_out(session, [insight])[0]
    end_reads(session)
    return _with_etag(response, updated)


@router.delete("/insights/{insight_id}", status_code=204, responses=responses(401, 403, 404, 410, 412, 422))
def delete_insight(
    insight_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> Response:
    insight, access = _load(session, insight_id, user, lock=True)
    access.require(Role.researcher)
    check_if_match(if_match, insight.version, required=False)
    insight.deleted_at = utcnow()
    insight.version += 1
    session.add(insight)
    record_index_task(session, "insight", insight.id)
    session.commit()
    return Response(status_code=204)
