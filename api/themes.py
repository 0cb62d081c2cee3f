"""Themes group a stint's insights in the debrief (e.g. 排班, 采购决策), in their own order."""

import uuid

import sqlalchemy as sa
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.access import StintDep, StintWriter, stint_access
from api.auth import CurrentUser
from api.db import SessionDep
from api.debrief_models import Insight, Theme
from api.errors import Conflict, Invalid, NotFound, responses
from api.fields import Text
from api.models import Role, User

router = APIRouter(prefix="/api", tags=["insights"])


class ThemeIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: Text(200, min_length=1)  # type: ignore[valid-type]
    position: int | None = Field(default=None, ge=0, le=1_000_000)


class ThemeCreate(ThemeIn):
    id: uuid.UUID | None = Field(default=None, description="Chosen by the client; a retry with it is safe")


class ThemeOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    name: str
    position: int


def stint_themes(session: Session, stint_id: uuid.UUID) -> list[Theme]:
    return list(
        session.exec(
            select(Theme)
            .where(col(Theme.stint_id) == stint_id)
            .order_by(col(Theme.position), col(Theme.created_at), col(Theme.id))
        ).all()
    )


def check_theme(session: Session, stint_id: uuid.UUID, theme_id: uuid.UUID | None) -> None:
    if theme_id is None:
        return
    theme = session.get(Theme, theme_id)
    if theme is None or theme.stint_id != stint_id:
        raise Invalid("The theme must belong to this stint.", code="unknown_theme")


@router.post(
    "/stints/{stint_id}/themes",
    response_model=ThemeOut,
    status_code=201,
    responses={
        **responses(401, 403, 404, 409, 422),
        200: {"model": ThemeOut, "description": "Already saved"},
    },
)
def create_theme(body: ThemeCreate, response: Response, session: SessionDep, access: StintWriter) -> Theme:
    """A theme groups insights in the debrief (e.g. 排班, 采购决策). Send your own `id`: the same id
    and name again answers 200 and saves nothing new."""
    theme_id = body.id or uuid.uuid4()
    existing = session.get(Theme, theme_id)
    if existing is not None:
        if existing.stint_id != access.stint.id or existing.name != body.name:
            raise Conflict("A theme with this id already exists with another name.", code="id_conflict")
        response.status_code = 200
        return existing
    position = len(stint_themes(session, access.stint.id)) if body.position is None else body.position
    theme = Theme(id=theme_id, stint_id=access.stint.id, name=body.name, position=position)
    session.add(theme)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        if session.get(Theme, theme_id) is None:
            raise
        return create_theme(body, response, session, access)
    return theme


@router.get("/stints/{stint_id}/themes", response_model=list[ThemeOut], responses=responses(401, 404, 422))
def list_themes(session: SessionDep, access: StintDep) -> list[Theme]:
    return stint_themes(session, access.stint.id)


def _load_theme(session: Session, theme_id: uuid.UUID, user: User) -> Theme:
    missing = NotFound("No such theme.", code="theme_not_found")
    theme = session.get(Theme, theme_id)
    if theme is None:
        raise missing
    stint_access(session, theme.stint_id, user, missing=missing).require(Role.researcher)
    return theme


@router.patch("/themes/{theme_id}", response_model=ThemeOut, responses=responses(401, 403, 404, 422))
def update_theme(theme_id: uuid.UUID, body: ThemeIn, session: SessionDep, user: CurrentUser) -> Theme:
    theme = _load_theme(session, theme_id, user)
    theme.name = body.name
    if body.position is not None:
        theme.position = body.position
    session.add(theme)
    session.commit()
    return theme


@router.delete("/themes/{theme_id}", status_code=204, responses=responses(401, 403, 404, 422))
def delete_theme(theme_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    """Delete a theme; its insights stay, without a theme."""
    theme = _load_theme(session, theme_id, user)
    session.execute(sa.update(Insight).where(col(Insight.theme_id) == theme.id).values(theme_id=None))
    session.delete(theme)
    session.commit()
    return Response(status_code=204)
