"""Managers review improvement actions: approve, reject or request changes, always with a comment.
Each review is kept in the action's history with its decision and comment."""

import uuid
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel

from api.action_views import ActionDetail
from api.actions import action_detail, load_action
from api.auth import CurrentUser
from api.db import SessionDep, utcnow
from api.debrief_models import ActionEvent, ActionStatus
from api.errors import Conflict, responses
from api.etags import check_if_match
from api.fields import Text
from api.models import Role

router = APIRouter(prefix="/api", tags=["actions"])


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    request_changes = "request_changes"


# What a review may do from each status.
_REVIEWS: dict[Decision, dict[ActionStatus, ActionStatus]] = {
    Decision.approve: {ActionStatus.proposed: ActionStatus.approved},
    Decision.reject: {
        ActionStatus.proposed: ActionStatus.rejected,
        ActionStatus.approved: ActionStatus.rejected,
        ActionStatus.in_progress: ActionStatus.rejected,
    },
    # Also how a manager reopens a rejected action: it goes back to proposed for a new review.
    Decision.request_changes: {
        ActionStatus.proposed: ActionStatus.proposed,
        ActionStatus.approved: ActionStatus.proposed,
        ActionStatus.rejected: ActionStatus.proposed,
    },
}


class ReviewIn(BaseModel):
    model_config = {"extra": "forbid"}

    decision: Decision
    comment: Text(2000, min_length=1)  # type: ignore[valid-type]


@router.post(
    "/actions/{action_id}/review",
    response_model=ActionDetail,
    responses=responses(401, 403, 404, 409, 410, 412, 422),
)
def review_action(
    action_id: uuid.UUID,
    body: ReviewIn,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> ActionDetail:
    """A manager approves, rejects or requests changes, always with a comment."""
    action, access = load_action(session, action_id, user, lock=True)
    access.require(Role.manager)
    check_if_match(if_match, action.version, required=False)
    current = ActionStatus(action.status)
    target = _REVIEWS[body.decision].get(current)
    if target is None:
        raise Conflict(
            f"An action that is {current.value} cannot be given '{body.decision.value}'.",
            code="invalid_transition",
            details={"status": current.value, "decision": body.decision.value},
        )
    changes = {"status": [current.value, target.value]} if target is not current else {}
    action.status = target.value
    action.version += 1
    action.updated_at = utcnow()
    session.add(action)
    session.add(
        ActionEvent(
            action_id=action.id,
            actor_id=user.id,
            kind="review",
            changes=changes,
            decision=body.decision.value,
            comment=body.comment,
        )
    )
    session.commit()
    return action_detail(session, response, action)
