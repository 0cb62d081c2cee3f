"""Hypotheses (假设) a stint sets out to test; observations support or refute them."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel
from sqlmodel import Session, select

from api.access import StintAccess, StintDep, StintWriter, stint_access
from api.auth import CurrentUser
from api.changelog import ChangeType, record_change
from api.db import SessionDep, utcnow
from api.errors import Gone, Invalid, NotFound, responses
from api.etags import check_if_match, etag
from api.fields import Text
from api.models import Hypothesis, HypothesisDimension, HypothesisStatus, Role, User
from api.search_docs import record_index_task

router = APIRouter(prefix="/api", tags=["hypotheses"])

Statement = Text(2000, min_length=1)


class HypothesisCreate(BaseModel):
    model_config = {"extra": "forbid", "str_strip_whitespace": True}

    statement: Statement  # type: ignore[valid-type]
    dimension: HypothesisDimension | None = None
    status: HypothesisStatus = HypothesisStatus.open


class HypothesisUpdate(BaseModel):
    model_config = {"extra": "forbid", "str_strip_whitespace": True}

    statement: Statement | None = None  # type: ignore[valid-type]
    dimension: HypothesisDimension | None = None
    status: HypothesisStatus | None = None


class HypothesisOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    statement: str
    dimension: HypothesisDimension | None
    status: HypothesisStatus
    created_by: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


def _log_change(session: Session, hypothesis: Hypothesis) -> None:
    record_change(
        session,
        ChangeType.hypothesis,
        hypothesis.id,
        stint_id=hypothesis.stint_id,
        version=hypothesis.version,
        deleted=hypothesis.deleted_at is not None,
    )


def _load(session: Session, hypothesis_id: uuid.UUID, user: User) -> tuple[Hypothesis, StintAccess]:
    missing = NotFound("No such hypothesis.")
    hypothesis = session.get(Hypothesis, hypothesis_id)
    if hypothesis is None:
        raise missing
    access = stint_access(session, hypothesis.stint_id, user, missing=missing)
    if hypothesis.deleted_at is not None:
        raise Gone("This hypothesis was deleted.")
    return hypothesis, access


@router.post(
    "/stints/{stint_id}/hypotheses",
    response_model=HypothesisOut,
    status_code=201,
    responses=responses(401, 403, 404, 422),
)
def create_hypothesis(
    body: HypothesisCreate, response: Response, session: SessionDep, access: StintWriter
) -> Hypothesis:
    hypothesis = Hypothesis(
        stint_id=access.stint.id,
        statement=body.statement,
        dimension=body.dimension.value if body.dimension else None,
        status=body.status.value,
        created_by=access.user.id,
    )
    session.add(hypothesis)
    _log_change(session, hypothesis)
    session.commit()
    response.headers["ETag"] = etag(hypothesis.version)
    return hypothesis


@router.get(
    "/stints/{stint_id}/hypotheses", response_model=list[HypothesisOut], responses=responses(401, 404, 422)
)
def list_hypotheses(session: SessionDep, access: StintDep) -> list[Hypothesis]:
    return list(
        session.exec(
            select(Hypothesis)
            .where(Hypothesis.stint_id == access.stint.id, Hypothesis.deleted_at.is_(None))  # type: ignore[union-attr]
            .order_by(Hypothesis.created_at)  # type: ignore[arg-type]
        ).all()
    )


@router.get(
    "/hypotheses/{hypothesis_id}", response_model=HypothesisOut, responses=responses(401, 404, 410, 422)
)
def get_hypothesis(
    hypothesis_id: uuid.UUID, response: Response, session: SessionDep, user: CurrentUser
) -> Hypothesis:
    hypothesis, _ = _load(session, hypothesis_id, user)
    response.headers["ETag"] = etag(hypothesis.version)
    return hypothesis


@router.patch(
    "/hypotheses/{hypothesis_id}",
    response_model=HypothesisOut,
    responses=responses(401, 403, 404, 410, 412, 422),
)
def update_hypothesis(
    hypothesis_id: uuid.UUID,
    body: HypothesisUpdate,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header()] = None,
) -> Hypothesis:
    """Edit a hypothesis or set its status (researchers and managers). If-Match is honoured when sent."""
    hypothesis, access = _load(session, hypothesis_id, user)
    access.require(Role.researcher)
    check_if_match(if_match, hypothesis.version, required=False)
    changes = body.model_dump(exclude_unset=True)
    if "statement" in changes and changes["statement"] is None:
        raise Invalid("statement cannot be empty.")
    if "status" in changes and changes["status"] is None:
        raise Invalid("status cannot be empty.")
    for field, value in changes.items():
        setattr(hypothesis, field, value.value if hasattr(value, "value") else value)
    hypothesis.version += 1
    hypothesis.updated_at = utcnow()
    session.add(hypothesis)
    _log_change(session, hypothesis)
    session.commit()
    response.headers["ETag"] = etag(hypothesis.version)
    return hypothesis


@router.delete(
    "/hypotheses/{hypothesis_id}", status_code=204, responses=responses(401, 403, 404, 410, 412, 422)
)
def delete_hypothesis(
    hypothesis_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    hypothesis, access = _load(session, hypothesis_id, user)
    access.require(Role.researcher)
    check_if_match(if_match, hypothesis.version, required=False)
    hypothesis.deleted_at = utcnow()
    hypothesis.version += 1
    session.add(hypothesis)
    _log_change(session, hypothesis)
    record_index_task(session, "hypothesis", hypothesis.id)  # its observations leave hypothesis:<id>
    session.commit()
    return Response(status_code=204)
