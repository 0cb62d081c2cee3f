"""Who may see and do what inside a stint: loads-or-404 with the caller's role."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, select

from api.auth import CredentialsDep, look_up, remember, remembered, touch
from api.db import SessionDep, begin_reading, end_reads
from api.errors import Forbidden, NotFound
from api.models import Membership, Role, Stint, User

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


def stint_access(
    session: Session, stint_id: uuid.UUID, user: User, *, missing: NotFound | None = None
) -> StintAccess:
    """The caller's access to a stint; 404 for non-members so a stint's existence never leaks.
    ``missing``: the 404 to raise instead, when the caller loaded a record of that stint: a record
    of a stint you are not in answers exactly as a record that does not exist."""
    found = session.exec(
        select(Stint, Membership.role)
        .join(Membership, Membership.stint_id == Stint.id)  # type: ignore[arg-type]
        .where(Stint.id == stint_id, Membership.user_id == user.id, Stint.deleted_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if found is None:
        raise missing or NotFound("No such stint.", code="stint_not_found")
    stint, role = found
    return StintAccess(stint=stint, role=Role(role), user=user)


def _check(request: Request, session: Session, token: str, stint_id: uuid.UUID, role: Role) -> StintAccess:
    # Sign-in and access in one threadpool call and one read transaction: as separate sync
    # dependencies they were two calls (and two transactions) per request.
    known = remembered(request)  # a dependency before this one signed the request in
    begin_reading(session)
    signed = known or look_up(session, token)
    access = stint_access(session, stint_id, signed.user)
    end_reads(session)  # the route begins its own transaction (see end_reads)
    if known is None:
        touch(session, signed.session)
        remember(request, signed)
    access.require(role)
    return access


def _needs(role: Role) -> Callable[[Request, uuid.UUID, Session, str], Awaitable[StintAccess]]:
    async def dependency(
        request: Request, stint_id: uuid.UUID, session: SessionDep, token: CredentialsDep
    ) -> StintAccess:
        return await run_in_threadpool(_check, request, session, token, stint_id, role)

    return dependency


StintDep = Annotated[StintAccess, Depends(_needs(Role.viewer))]
StintWriter = Annotated[StintAccess, Depends(_needs(Role.researcher))]
StintManager = Annotated[StintAccess, Depends(_needs(Role.manager))]
