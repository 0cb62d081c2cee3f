"""Who may see and do what inside a stint: loads-or-404 with the caller's role."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from api import security
from api.auth import (
    CredentialsDep,
    SignedIn,
    bearer_token,
    credentials,
    live,
    look_up,
    raise_not_signed_in,
    remember,
    remembered,
    touch,
)
from api.db import SessionDep, begin_reading, end_reads
from api.errors import Forbidden, NotFound
from api.loop_sign_in import Capturer, StintRef, capturer
from api.models import AuthSession, Membership, Role, Stint, User

_ROLE_NAMES = {Role.viewer: "a viewer", Role.researcher: "a researcher", Role.manager: "a manager"}


@dataclass(frozen=True)
class StintAccess:
    stint: Stint
    role: Role
    user: User

    def require(self, role: Role) -> None:
        if self.role.rank < role.rank:
            raise Forbidden(
                f"This needs {_ROLE_NAMES[role]} of this stint; you are {_ROLE_NAMES[self.role]}."
            )

    @property
    def is_manager(self) -> bool:
        return self.role is Role.manager


# Who has a role in a stint, one definition for both queries below (inner and outer joined) so they
# cannot drift apart: the user's membership of the asked stint (``stint_id``), whose stint is not deleted.
# Untyped bind parameters take the type of the column they are compared with.
def _membership_of(user_id: sa.ColumnElement[uuid.UUID] | Mapped[uuid.UUID]) -> sa.ColumnElement[bool]:
    return sa.and_(col(Membership.user_id) == user_id, col(Membership.stint_id) == sa.bindparam("stint_id"))


_LIVE_STINT = sa.and_(col(Stint.id) == col(Membership.stint_id), col(Stint.deleted_at).is_(None))

# Built once: constructing the expression cost a capture request more than compiling it (cached).
_STINT_ACCESS = (
    select(Stint, Membership.role)
    .select_from(Membership)
    .join(Stint, _LIVE_STINT)
    .where(_membership_of(sa.bindparam("user_id")))
)


def stint_access(
    session: Session, stint_id: uuid.UUID, user: User, *, missing: NotFound | None = None
) -> StintAccess:
    """The caller's access to a stint; 404 for non-members so a stint's existence never leaks.
    ``missing``: the 404 to raise instead, when the caller loaded a record of that stint: a record
    of a stint you are not in answers exactly as a record that does not exist."""
    found = session.exec(_STINT_ACCESS, params={"stint_id": stint_id, "user_id": user.id}).first()
    if found is None:
        raise missing or NotFound("No such stint.", code="stint_not_found")
    stint, role = found
    return StintAccess(stint=stint, role=Role(role), user=user)


# Sign-in and role in one query (statements built once): the session and its user, and the stint
# when the user is a member of it and it is not deleted (else None, answered as stint_access does).
_SIGN_IN_AND_ACCESS = (
    select(AuthSession, User, Stint, Membership.role)
    .join(User, col(User.id) == col(AuthSession.user_id))
    .outerjoin(Membership, _membership_of(col(User.id)))
    .outerjoin(Stint, _LIVE_STINT)
    .where(col(AuthSession.token_hash) == sa.bindparam("digest"))
)


def _sign_in_with_access(session: Session, token: str, stint_id: uuid.UUID) -> tuple[SignedIn, StintAccess]:
    """look_up and stint_access in one query: the same answers, 401 before 404."""
    params = {"digest": security.token_digest(token), "stint_id": stint_id}
    found = session.exec(_SIGN_IN_AND_ACCESS, params=params).first()
    if found is None:
        raise_not_signed_in()
    auth, user, stint, role = found
    signed = live(auth, user)
    if stint is None:
        raise NotFound("No such stint.", code="stint_not_found")
    return signed, StintAccess(stint=stint, role=Role(role), user=user)


def _check(request: Request, session: Session, token: str, stint_id: uuid.UUID, role: Role) -> StintAccess:
    # Sign-in and access in one threadpool call and one read transaction: as separate sync
    # dependencies they were two calls (and two transactions) per request.
    known = remembered(request)  # a dependency before this one signed the request in
    begin_reading(session)
    if known is None:
        signed, access = _sign_in_with_access(session, token, stint_id)
    else:
        signed, access = known, stint_access(session, stint_id, known.user)
    end_reads(session)  # the route begins its own transaction (see end_reads)
    if known is None:
        touch(session, signed.session)
        remember(request, signed)
    access.require(role)
    return access


_UUID = TypeAdapter(uuid.UUID)  # the validation FastAPI gives a path parameter typed uuid.UUID


def _well_formed(raw: str | None) -> bool:
    try:
        _UUID.validate_python(raw)
    except ValidationError:
        return False
    return True


async def _token_checked_first(request: Request, token: CredentialsDep) -> str:
    """The session token; checked here already when the path's stint id is malformed. FastAPI
    validates the id before the dependency below runs, and its 422 would answer a caller without a
    valid session: authentication comes first, such a caller learns nothing of the route's inputs.
    A well-formed id costs no query here: _check signs in and reads the role in one."""
    if not _well_formed(request.path_params.get("stint_id")):
        await run_in_threadpool(_session_is_live, request, token)  # 401, else the usual 422 follows
    return token


def _needs_session(dependant: Dependant) -> bool:
    return any(d.call is credentials or _needs_session(d) for d in dependant.dependencies)


def _session_is_live(request: Request, token: str) -> None:
    with Session(request.app.state.read_engine) as session:
        begin_reading(session)
        look_up(session, token)  # 401 unless live


async def signed_in_before_body(request: Request) -> None:
    """For a route that needs a session: 401 (or the cookie's 403) before the 422 of a body that is
    not JSON at all. FastAPI reads the body before any dependency runs, so without this a caller
    without a valid session would learn what the route accepts (see _token_checked_first)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and _needs_session(route.dependant):
        token = await credentials(request, await bearer_token(request))
        await run_in_threadpool(_session_is_live, request, token)


def _needs(role: Role) -> Callable[[Request, uuid.UUID, Session, str], Awaitable[StintAccess]]:
    async def dependency(
        request: Request,
        stint_id: uuid.UUID,
        session: SessionDep,
        token: Annotated[str, Depends(_token_checked_first)],
    ) -> StintAccess:
        return await run_in_threadpool(_check, request, session, token, stint_id, role)

    return dependency


def _capturing(role: Role) -> Callable[[Request, uuid.UUID, str], Awaitable[Capturer]]:
    """For the capture route: the caller as read on the event loop (api/loop_sign_in.py) when it
    can be, else as _needs signs in (every refusal comes from there)."""

    def check(request: Request, token: str, stint_id: uuid.UUID) -> StintAccess:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            return _check(request, session, token, stint_id, role)

    # No request session (SessionDep): the everyday case needs none, the usual way opens its own.
    async def dependency(
        request: Request, stint_id: uuid.UUID, token: Annotated[str, Depends(_token_checked_first)]
    ) -> Capturer:
        found = capturer(request.app.state.engine, token, stint_id, role)
        if found is not None:
            return found
        access = await run_in_threadpool(check, request, token, stint_id)
        return Capturer(
            user_id=access.user.id,
            user_name=access.user.name,
            stint=StintRef(access.stint.id, access.stint.timezone),
            role=access.role,
        )

    return dependency


StintCapturer = Annotated[Capturer, Depends(_capturing(Role.researcher))]
StintDep = Annotated[StintAccess, Depends(_needs(Role.viewer))]
StintWriter = Annotated[StintAccess, Depends(_needs(Role.researcher))]
StintManager = Annotated[StintAccess, Depends(_needs(Role.manager))]
