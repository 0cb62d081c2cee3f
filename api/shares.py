"""Share links, the managers' side: read-only, expiring, revocable links to a stint's debrief for
outside readers (the public side is ``share_public``).

The token (256 bits from the OS CSPRNG) is shown once; only its SHA-256 is stored. What a link shows is
redacted: chosen insights only, no speaker or researcher names, photos only as metadata-free previews
and only when asked for, nothing of other stints, no action plan."""

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api import idempotency, security
from api.access import StintAccess, StintManager, stint_access
from api.auth import CurrentUser
from api.db import SessionDep, utcnow
from api.debrief_models import AccessKind, ShareAccess, ShareInsight, ShareLink
from api.errors import Invalid, NotFound, responses
from api.fields import Text
from api.insight_views import insights_out, stint_insights
from api.models import Role

router = APIRouter(tags=["shares"])

DEFAULT_DAYS = 14
MAX_DAYS = 90


class ShareCreate(BaseModel):
    model_config = {"extra": "forbid"}

    expires_in_days: int = Field(default=DEFAULT_DAYS, ge=1, le=MAX_DAYS, description="1–90 days")
    include_photos: bool = False
    insight_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=500, description="Default: every insight that has evidence"
    )
    label: Text(200) | None = None  # type: ignore[valid-type]


class ShareOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    label: str | None
    include_photos: bool
    insight_ids: list[uuid.UUID]
    created_by: uuid.UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool
    access_count: int = Field(description="Views of the debrief (page or JSON); photos are not counted")
    last_accessed_at: datetime | None = Field(description="The last view of the debrief")


class ShareCreated(ShareOut):
    token: str = Field(description="Shown only in this answer; only its SHA-256 is kept")
    url: str


class AccessOut(BaseModel):
    at: datetime
    ip_hash: str = Field(description="SHA-256 of the reader's IP address, salted per link")
    user_agent: str
    kind: AccessKind = Field(
        description="What was opened: `debrief` (the page /s/{token} or its JSON) or `photo` (one photo "
        "of a shared insight)"
    )
    material_id: uuid.UUID | None = Field(description="The photo's material id (kind `photo`), else null")


def _out(session: Session, link: ShareLink) -> ShareOut:
    ids = session.exec(select(ShareInsight.insight_id).where(col(ShareInsight.share_id) == link.id)).all()
    now = utcnow()
    return ShareOut(
        **link.model_dump(exclude={"token_hash", "ip_salt"}),
        insight_ids=sorted(ids, key=str),
        active=link.revoked_at is None and link.expires_at > now,
    )


_CREATE = "POST /api/stints/{stint_id}/shares"


@router.post(
    "/api/stints/{stint_id}/shares",
    response_model=ShareCreated,
    status_code=201,
    responses={
        **responses(400, 401, 403, 404, 409, 422),
        200: {
            "model": ShareCreated,
            "description": "A retry (same Idempotency-Key): the same link, a new token",
        },
    },
)
def create_share(
    body: ShareCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    access: StintManager,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key", description="Optional: the same value on a retry makes no second link"
        ),
    ] = None,
) -> ShareCreated:
    """A manager makes a read-only link to the debrief. The token is in this answer only: copy it now.

    With an Idempotency-Key, a retry whose first answer was lost makes no second link: it answers
    200 with the same link and a new token (only the token's hash is kept, so the first one cannot
    be shown again; it stops working)."""
    key = None if idempotency_key is None else idempotency.check_key(idempotency_key)
    if key is not None:
        request_hash = idempotency.fingerprint(
            {"stint_id": str(access.stint.id), **body.model_dump(mode="json")}
        )
        stored = idempotency.claim(session, access.user.id, key, _CREATE, request_hash)
        if stored is not None:
            link = session.get(ShareLink, uuid.UUID(stored.body["share_id"]))
            if link is None:  # the stint's links are never deleted; this is only a safeguard
                raise NotFound("No such share link.", code="share_not_found")
            token = _new_token(session, link)
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
            return _created(request, response, session, link, token)
    with idempotency.released_on_failure(session, access.user.id, key):
        link, token = _create(session, access, body)
        if key is not None:
            idempotency.complete(session, access.user.id, key, 201, {"share_id": str(link.id)})
        session.commit()
    return _created(request, response, session, link, token)


def _create(session: Session, access: StintAccess, body: ShareCreate) -> tuple[ShareLink, str]:
    live = {i.id: i for i in stint_insights(session, access.stint.id)}
    if body.insight_ids is None:
        chosen = [o.id for o in insights_out(session, list(live.values())) if not o.draft]
    else:
        chosen = list(dict.fromkeys(body.insight_ids))
        if unknown := [str(i) for i in chosen if i not in live]:
            raise Invalid(
                "Share only insights of this stint.", code="unknown_insight", details={"insight_ids": unknown}
            )
    token = security.new_token()
    link = ShareLink(
        stint_id=access.stint.id,
        token_hash=security.token_digest(token),
        label=body.label,
        include_photos=body.include_photos,
        created_by=access.user.id,
        expires_at=utcnow() + timedelta(days=body.expires_in_days),
        ip_salt=secrets.token_hex(16),
    )
    session.add(link)
    session.flush()
    session.add_all(ShareInsight(share_id=link.id, insight_id=i) for i in chosen)
    return link, token


def _new_token(session: Session, link: ShareLink) -> str:
    token = security.new_token()
    link.token_hash = security.token_digest(token)
    session.add(link)
    session.commit()
    return token


def _created(
    request: Request, response: Response, session: Session, link: ShareLink, token: str
) -> ShareCreated:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/api/shares/{link.id}"
    base = str(request.base_url).rstrip("/")
    return ShareCreated(**_out(session, link).model_dump(), token=token, url=f"{base}/s/{token}")


@router.get(
    "/api/stints/{stint_id}/shares", response_model=list[ShareOut], responses=responses(401, 403, 404, 422)
)
def list_shares(session: SessionDep, access: StintManager) -> list[ShareOut]:
    """The stint's links (never their tokens), with how often each was opened."""
    links = session.exec(
        select(ShareLink)
        .where(col(ShareLink.stint_id) == access.stint.id)
        .order_by(col(ShareLink.created_at))
    ).all()
    return [_out(session, link) for link in links]


def _load(session: Session, share_id: uuid.UUID, user: CurrentUser) -> ShareLink:
    missing = NotFound("No such share link.", code="share_not_found")
    link = session.get(ShareLink, share_id)
    if link is None:
        raise missing
    stint_access(session, link.stint_id, user, missing=missing).require(Role.manager)
    return link


@router.get(
    "/api/shares/{share_id}/accesses", response_model=list[AccessOut], responses=responses(401, 403, 404, 422)
)
def list_accesses(
    share_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ShareAccess]:
    """Who opened the link, newest first: time, hashed IP address, user agent, and what was opened:
    `debrief` (the page or its JSON; these are the link's `access_count`) or `photo` with the photo's
    `material_id` (each photo served; not counted in `access_count`). Managers of the stint only."""
    link = _load(session, share_id, user)
    return list(
        session.exec(
            select(ShareAccess)
            .where(col(ShareAccess.share_id) == link.id)
            .order_by(col(ShareAccess.at).desc())
            .limit(limit)
        ).all()
    )


@router.delete("/api/shares/{share_id}", status_code=204, responses=responses(401, 403, 404, 422))
def revoke_share(share_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke a link: from now on it answers 404, like a link that never existed."""
    link = _load(session, share_id, user)
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        session.add(link)
        session.commit()
    return Response(status_code=204)
