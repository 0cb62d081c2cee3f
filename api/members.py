"""Who works on a stint, and in which role (manager, researcher, viewer)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.access import StintDep, StintManager
from api.changelog import record_access
from api.db import SessionDep
from api.errors import Conflict, Forbidden, Invalid, NotFound, responses
from api.models import Membership, Role, User
from api.users import Email

router = APIRouter(prefix="/api/stints/{stint_id}/members", tags=["stints"])


class MemberAdd(BaseModel):
    model_config = {"extra": "forbid"}

    email: Email
    role: Role


class MemberUpdate(BaseModel):
    model_config = {"extra": "forbid"}

    role: Role


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    added_at: datetime


def _out(member: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id, email=user.email, name=user.name, role=Role(member.role), added_at=member.added_at
    )


def _managers(session: Session, stint_id: uuid.UUID) -> int:
    count: int = session.execute(
        sa.select(sa.func.count())
        .select_from(Membership)
        .where(col(Membership.stint_id) == stint_id, col(Membership.role) == Role.manager.value)
    ).scalar_one()
    return count


def _member(session: Session, stint_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Membership, User]:
    found = session.exec(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)  # type: ignore[arg-type]
        .where(Membership.stint_id == stint_id, Membership.user_id == user_id)
    ).first()
    if found is None:
        raise NotFound("This person is not a member of the stint.", code="member_not_found")
    return found


@router.get("", response_model=list[MemberOut], responses=responses(401, 404, 422))
def list_members(session: SessionDep, access: StintDep) -> list[MemberOut]:
    rows = session.exec(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)  # type: ignore[arg-type]
        .where(Membership.stint_id == access.stint.id)
        .order_by(Membership.added_at)  # type: ignore[arg-type]
    ).all()
    return [_out(m, u) for m, u in rows]


@router.post("", response_model=MemberOut, status_code=201, responses=responses(401, 403, 404, 409, 422))
def add_member(body: MemberAdd, session: SessionDep, access: StintManager) -> MemberOut:
    """Add a colleague by e-mail (managers). The account must exist."""
    user = session.exec(select(User).where(User.email == body.email, User.is_active == True)).first()  # noqa: E712
    if user is None:
        raise Invalid("There is no active account with this e-mail.", code="unknown_account")
    if session.get(Membership, (access.stint.id, user.id)) is not None:
        raise Conflict("This person is already a member; change their role instead.", code="already_member")
    member = Membership(stint_id=access.stint.id, user_id=user.id, role=body.role.value)
    session.add(member)
    record_access(session, member.stint_id, member.user_id, granted=True)
    session.commit()
    return _out(member, user)


@router.patch("/{user_id}", response_model=MemberOut, responses=responses(401, 403, 404, 409, 422))
def change_role(
    user_id: uuid.UUID, body: MemberUpdate, session: SessionDep, access: StintManager
) -> MemberOut:
    member, user = _member(session, access.stint.id, user_id)
    if (
        member.role == Role.manager.value
        and body.role is not Role.manager
        and _managers(session, access.stint.id) == 1
    ):
        raise Conflict("A stint keeps at least one manager.", code="last_manager")
    member.role = body.role.value
    session.add(member)
    record_access(session, member.stint_id, member.user_id, granted=True)
    session.commit()
    return _out(member, user)


@router.delete("/{user_id}", status_code=204, responses=responses(401, 403, 404, 409, 422))
def remove_member(user_id: uuid.UUID, session: SessionDep, access: StintDep) -> Response:
    """Remove a member (managers), or leave the stint yourself."""
    if user_id != access.user.id and not access.is_manager:
        raise Forbidden("Only a manager removes other members.")
    member, _user = _member(session, access.stint.id, user_id)
    if member.role == Role.manager.value and _managers(session, access.stint.id) == 1:
        raise Conflict("A stint keeps at least one manager.", code="last_manager")
    session.delete(member)
    # Their devices learn from the sync feed to drop this stint.
    record_access(session, member.stint_id, member.user_id, granted=False)
    session.commit()
    return Response(status_code=204)
