"""Accounts, managed by a global admin (and by ``fieldbook user add``)."""

import re
import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, Field
from sqlmodel import Session, col, select

from api import security
from api.auth import CurrentUser, UserOut, end_sessions, normalise_email
from api.db import SessionDep
from api.errors import Conflict, Forbidden, Invalid, NotFound, responses
from api.fields import Text
from api.models import User

router = APIRouter(prefix="/api/users", tags=["accounts"])

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _valid_email(value: str) -> str:
    value = normalise_email(value)
    if "\x00" in value or len(value) > 320 or not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value


Email = Annotated[str, AfterValidator(_valid_email)]
Password = Annotated[
    str, Field(min_length=security.MIN_PASSWORD_LENGTH, max_length=security.MAX_PASSWORD_LENGTH)
]


class UserCreate(BaseModel):
    model_config = {"extra": "forbid"}

    email: Email
    name: Text(200) = ""  # type: ignore[valid-type]
    password: Password
    is_admin: bool = False


class UserUpdate(BaseModel):
    model_config = {"extra": "forbid"}

    name: Text(200) | None = None  # type: ignore[valid-type]
    is_active: bool | None = None
    is_admin: bool | None = None
    password: Password | None = None


def create_user(
    session: Session, email: str, password: str, *, name: str = "", is_admin: bool = False
) -> User:
    """Add an account and commit. Raises Conflict if the e-mail is taken."""
    email = _valid_email(email)
    if len(password) < security.MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"A password has at least {security.MIN_PASSWORD_LENGTH} characters.", code="weak_password"
        )
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise Conflict("An account with this e-mail already exists.", code="email_taken")
    user = User(
        email=email,
        name=name.strip() or email.split("@")[0],
        password_hash=security.hash_password(password),
        is_admin=is_admin,
    )
    session.add(user)
    session.commit()
    return user


def user_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names for a set of accounts, in one query."""
    if not ids:
        return {}
    return dict(session.execute(sa.select(col(User.id), col(User.name)).where(col(User.id).in_(ids))).all())


def require_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Only an administrator manages accounts.")
    return user


AdminUser = Annotated[User, Depends(require_admin)]


@router.get("", response_model=list[UserOut], responses=responses(401, 403))
def list_users(session: SessionDep, _admin: AdminUser) -> list[User]:
    """All accounts (admins only)."""
    return list(session.exec(select(User).order_by(User.email)).all())


@router.post("", response_model=UserOut, status_code=201, responses=responses(401, 403, 409, 422))
def add_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> User:
    """Create an account (admins only)."""
    return create_user(session, body.email, body.password, name=body.name, is_admin=body.is_admin)


@router.patch("/{user_id}", response_model=UserOut, responses=responses(401, 403, 404, 409, 422))
def update_user(user_id: uuid.UUID, body: UserUpdate, session: SessionDep, admin: AdminUser) -> User:
    """Rename, disable, promote or reset the password of an account. Disabling or a new password
    signs the account out everywhere."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    if user.id == admin.id and (body.is_active is False or body.is_admin is False):
        raise Conflict("You cannot disable or demote your own account.", code="self_lockout")
    if body.name is not None:
        user.name = body.name.strip() or user.name
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    if body.is_active is not None:
        user.is_active = body.is_active
    if body.password is not None:
        user.password_hash = security.hash_password(body.password)
    if body.is_active is False or body.password is not None:
        end_sessions(session, user.id)
    session.add(user)
    session.commit()
    return user
