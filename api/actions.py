"""The improvement action plan (改善行动计划): actions with owner, due date and a priority derived from
impact and effort, a review workflow only managers drive, and a history of every change."""

import uuid
from datetime import date
from typing import Annotated, Any, Self

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from api.access import StintAccess, StintDep, StintWriter, stint_access
from api.action_views import ActionDetail, ActionOut, actions_out, plan_order, stint_actions
from api.auth import CurrentUser
from api.db import SessionDep, utcnow
from api.debrief_models import Action, ActionEvent, ActionInsight, ActionStatus, Insight, Level
from api.errors import Conflict, Forbidden, Gone, Invalid, NotFound, responses
from api.etags import check_if_match, etag
from api.fields import Text, fingerprint
from api.models import Membership, Role, Stint, User
from api.search_docs import record_index_task

router = APIRouter(prefix="/api", tags=["actions"])


# Progress an owner (or a manager) records once an action is approved.
_PROGRESS: dict[ActionStatus, set[ActionStatus]] = {
    ActionStatus.approved: {ActionStatus.in_progress, ActionStatus.done},
    ActionStatus.in_progress: {ActionStatus.done, ActionStatus.approved},
    ActionStatus.done: {ActionStatus.in_progress},
}


class _ActionFields(BaseModel):
    model_config = {"extra": "forbid"}

    description: Text(10_000) | None = None  # type: ignore[valid-type]
    owner_email: Text(320) | None = Field(default=None, description="A member of the stint")  # type: ignore[valid-type]
    due_date: date | None = None
    impact: Level | None = None
    effort: Level | None = None
    insight_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)


class ActionCreate(_ActionFields):
    id: uuid.UUID | None = Field(default=None, description="Chosen by the client; a retry with it is safe")
    title: Text(200, min_length=1)  # type: ignore[valid-type]

    def fingerprint(self) -> str:
        body = self.model_dump(mode="json", exclude={"id"})
        return fingerprint(body)


class ActionUpdate(_ActionFields):
    title: Text(200, min_length=1) | None = None  # type: ignore[valid-type]
    status: ActionStatus | None = Field(
        default=None, description="Progress only: approved → in_progress → done (owner or manager)"
    )
    progress: int | None = Field(default=None, ge=0, le=100, description="Percent done")
    progress_note: Text(2000) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in ("title", "status", "progress", "impact", "effort", "insight_ids"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


def _owner(session: Session, stint_id: uuid.UUID, email: str | None) -> uuid.UUID | None:
    if email is None:
        return None
    found = session.exec(
        select(User.id)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(col(User.email) == email.strip().lower(), col(Membership.stint_id) == stint_id)
    ).first()
    if found is None:
        raise Invalid(
            "The owner must be a member of this stint; add them first.",
            code="owner_not_member",
            details={"owner_email": email},
        )
    return found


def _set_insights(session: Session, action: Action, ids: list[uuid.UUID]) -> None:
    wanted = set(ids)
    if wanted:
        found = set(
            session.exec(
                select(Insight.id).where(
                    col(Insight.id).in_(wanted),
                    col(Insight.stint_id) == action.stint_id,
                    col(Insight.deleted_at).is_(None),
                )
            ).all()
        )
        if missing := wanted - found:
            raise Invalid(
                "Linked insights must belong to this stint.",
                code="unknown_insight",
                details={"insight_ids": sorted(str(m) for m in missing)},
            )
    session.execute(sa.delete(ActionInsight).where(col(ActionInsight.action_id) == action.id))
    session.add_all(ActionInsight(action_id=action.id, insight_id=i) for i in sorted(wanted, key=str))


def _snapshot(session: Session, action: Action) -> dict[str, Any]:
    values = action.model_dump(
        mode="json",
        include={
            "title",
            "description",
            "owner_id",
            "due_date",
            "impact",
            "effort",
            "status",
            "progress",
            "progress_note",
        },
    )
    values["insight_ids"] = sorted(
        str(i)
        for i in session.exec(
            select(ActionInsight.insight_id).where(col(ActionInsight.action_id) == action.id)
        ).all()
    )
    return values


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}


def load_action(
    session: Session, action_id: uuid.UUID, user: User, *, lock: bool = False
) -> tuple[Action, StintAccess]:
    """The action and the caller's access; ``lock`` for writes, so concurrent changes take turns."""
    missing = NotFound("No such action.", code="action_not_found")
    action = session.get(Action, action_id, with_for_update=lock)
    if action is None:
        raise missing
    access = stint_access(session, action.stint_id, user, missing=missing)
    if action.deleted_at is not None:
        raise Gone("This action was deleted.", code="action_deleted")
    return action, access


def action_detail(session: Session, response: Response, action: Action) -> ActionDetail:
    response.headers["ETag"] = etag(action.version)
    return actions_out(session, [action], history=True)[0]


@router.post(
    "/stints/{stint_id}/actions",
    response_model=ActionDetail,
    status_code=201,
    responses={
        **responses(401, 403, 404, 409, 422),
        200: {"model": ActionDetail, "description": "Already saved"},
    },
)
def create_action(
    body: ActionCreate, response: Response, session: SessionDep, access: StintWriter
) -> ActionDetail:
    """Propose an improvement action (researchers and managers). It starts as `proposed` until a
    manager reviews it. Send your own `id` so a retry never makes a second action."""
    fingerprint = body.fingerprint()
    action_id = body.id or uuid.uuid4()
    existing = session.get(Action, action_id)
    if existing is not None:
        if existing.stint_id != access.stint.id or existing.create_hash != fingerprint:
            raise Conflict(
                "An action with this id already exists with other content.",
                code="id_conflict",
                details={"id": str(action_id)},
            )
        response.status_code = 200
        return action_detail(session, response, existing)
    action = Action(
        id=action_id,
        stint_id=access.stint.id,
        title=body.title,
        description=body.description,
        owner_id=_owner(session, access.stint.id, body.owner_email),
        due_date=body.due_date,
        impact=(body.impact or Level.medium).value,
        effort=(body.effort or Level.medium).value,
        created_by=access.user.id,
        create_hash=fingerprint,
    )
    session.add(action)
    session.flush()
    _set_insights(session, action, body.insight_ids or [])
    session.add(
        ActionEvent(
            action_id=action.id,
            actor_id=access.user.id,
            kind="created",
            changes=_diff({}, _snapshot(session, action)),
        )
    )
    record_index_task(session, "action", action.id)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        # A concurrent retry of the same create won the race: answer as for a retry.
        session.rollback()
        if session.get(Action, action_id) is None:
            raise
        return create_action(body, response, session, access)
    response.headers["Location"] = f"/api/actions/{action.id}"
    return action_detail(session, response, action)


@router.get("/stints/{stint_id}/actions", response_model=list[ActionOut], responses=responses(401, 404, 422))
def list_stint_actions(session: SessionDep, access: StintDep) -> list[ActionDetail]:
    """The stint's action plan, highest priority first (rejected actions last)."""
    return actions_out(session, stint_actions(session, access.stint.id))


@router.get("/actions", response_model=list[ActionOut], responses=responses(401, 422))
def list_my_actions(
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[list[ActionStatus] | None, Query(description="Repeat for several")] = None,
    owner: Annotated[str | None, Query(max_length=320, description="'me', a user id or an e-mail")] = None,
    overdue: bool | None = None,
    stint_id: uuid.UUID | None = None,
) -> list[ActionDetail]:
    """Actions across every stint the caller manages, plus those the caller owns elsewhere."""
    managed = select(Membership.stint_id).where(
        col(Membership.user_id) == user.id, col(Membership.role) == Role.manager.value
    )
    member_of = select(Membership.stint_id).where(col(Membership.user_id) == user.id)
    stmt = (
        select(Action)
        .join(Stint, col(Stint.id) == col(Action.stint_id))
        .where(
            col(Action.deleted_at).is_(None),
            col(Stint.deleted_at).is_(None),
            col(Action.stint_id).in_(member_of),
            sa.or_(col(Action.stint_id).in_(managed), col(Action.owner_id) == user.id),
        )
    )
    if status:
        stmt = stmt.where(col(Action.status).in_([s.value for s in status]))
    if stint_id is not None:
        stmt = stmt.where(col(Action.stint_id) == stint_id)
    if owner is not None:
        owner_id = _owner_filter(session, user, owner)
        if owner_id is None:
            return []  # an e-mail nobody has owns nothing (not: the actions nobody owns)
        stmt = stmt.where(col(Action.owner_id) == owner_id)
    rows = session.exec(stmt).all()
    out = actions_out(session, plan_order(rows))
    if overdue is not None:
        out = [a for a in out if a.overdue == overdue]
    return sorted(out, key=lambda a: (not a.overdue, a.due_date or date.max))


def _owner_filter(session: Session, user: User, owner: str) -> uuid.UUID | None:
    """The owner's id; None for an e-mail address no account has."""
    owner = owner.strip()
    if owner == "me":
        return user.id
    if "@" in owner:
        return session.exec(select(User.id).where(col(User.email) == owner.lower())).first()
    try:
        return uuid.UUID(owner)
    except ValueError:
        raise Invalid("owner: give 'me', a user id or an e-mail address.") from None


@router.get("/actions/{action_id}", response_model=ActionDetail, responses=responses(401, 404, 410, 422))
def get_action(
    action_id: uuid.UUID, response: Response, session: SessionDep, user: CurrentUser
) -> ActionDetail:
    """One action with its whole history (who changed what, when; reviews with their comments)."""
    action, _ = load_action(session, action_id, user)
    return action_detail(session, response, action)


_PROGRESS_FIELDS = {"status", "progress", "progress_note"}

# What a manager approves: what is done (title, description), why (the linked insights), how much
# (impact and effort, hence the priority), and who does it by when (owner, due date). Changing any of
# these after the approval makes it another action than the one approved.
_SUBSTANCE = {"title", "description", "insight_ids", "impact", "effort", "owner_id", "due_date"}

# An action in these states carries a manager's approval.
_REVIEWED = {ActionStatus.approved.value, ActionStatus.in_progress.value, ActionStatus.done.value}


@router.patch(
    "/actions/{action_id}",
    response_model=ActionDetail,
    responses=responses(401, 403, 404, 409, 410, 412, 422),
)
def update_action(
    action_id: uuid.UUID,
    body: ActionUpdate,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> ActionDetail:
    """Researchers and managers edit an action; its owner (and managers) record progress:
    `status` approved → in_progress → done, `progress`, `progress_note`. Approving and rejecting
    go through `/review`. When anyone but a manager changes what was approved (title, description,
    linked insights, impact, effort, owner or due date) of an approved, in-progress or done action,
    it goes back to `proposed` for a new review, a status sent along included; its history says so."""
    action, access = load_action(session, action_id, user, lock=True)
    fields = body.model_fields_set
    is_owner = action.owner_id == user.id
    if fields & _PROGRESS_FIELDS and not (is_owner or access.is_manager):
        raise Forbidden("Only the action's owner or a manager records progress.", code="not_owner")
    if fields - _PROGRESS_FIELDS:
        access.require(Role.researcher)
    check_if_match(if_match, action.version, required=False)
    before = _snapshot(session, action)
    current = ActionStatus(action.status)
    moving = body.status is not None and body.status is not current
    if body.status is not None and moving and body.status not in _PROGRESS.get(current, set()):
        raise Conflict(
            f"An action cannot go from {current.value} to {body.status.value} here; "
            "managers approve and reject through /review.",
            code="invalid_transition",
            details={
                "from": current.value,
                "to": body.status.value,
                "allowed": sorted(_PROGRESS.get(current, set())),
            },
        )
    for name in ("title", "description", "due_date"):
        if name in fields:
            setattr(action, name, getattr(body, name))
    for name in ("impact", "effort"):
        if name in fields and (level := getattr(body, name)) is not None:
            setattr(action, name, level.value)
    if "owner_email" in fields:
        action.owner_id = _owner(session, action.stint_id, body.owner_email)
    if body.insight_ids is not None:
        _set_insights(session, action, body.insight_ids)
    substance = {k for k, v in _snapshot(session, action).items() if k in _SUBSTANCE and before[k] != v}
    if substance and current.value in _REVIEWED and not access.is_manager:
        # What a manager approved is not what it is now: it needs a new review, and progress on
        # it (a status sent in the same request) waits for that review.
        action.status = ActionStatus.proposed.value
    elif body.status is not None and moving:
        action.status = body.status.value
        if body.status is ActionStatus.done and "progress" not in fields:
            action.progress = 100
    if "progress" in fields and body.progress is not None:
        action.progress = body.progress
    if "progress_note" in fields:
        action.progress_note = body.progress_note
    changes = _diff(before, _snapshot(session, action))
    if changes:
        action.version += 1
        action.updated_at = utcnow()
        session.add(action)
        session.add(ActionEvent(action_id=action.id, actor_id=user.id, kind="updated", changes=changes))
        record_index_task(session, "action", action.id)
    session.commit()
    return action_detail(session, response, action)


@router.delete("/actions/{action_id}", status_code=204, responses=responses(401, 403, 404, 410, 412, 422))
def delete_action(
    action_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> Response:
    """Delete an action (managers, or its author while it is still proposed). The history stays."""
    action, access = load_action(session, action_id, user, lock=True)
    access.require(Role.researcher)
    if not access.is_manager and not (
        action.created_by == user.id and action.status == ActionStatus.proposed.value
    ):
        raise Forbidden("Only a manager, or its author while it is proposed, deletes an action.")
    check_if_match(if_match, action.version, required=False)
    action.deleted_at = utcnow()
    action.version += 1
    session.add(action)
    session.add(ActionEvent(action_id=action.id, actor_id=user.id, kind="deleted", changes={}))
    record_index_task(session, "action", action.id)
    session.commit()
    return Response(status_code=204)
