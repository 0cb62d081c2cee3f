"""The public side of share links: ``/s/{token}`` (a page) and ``/api/public/{token}`` (JSON), without
signing in. Unknown, expired and revoked tokens get one and the same 404; every answer is rate limited
per client address and carries no-store / no-referrer / noindex headers. Every debrief view (page or
JSON) and every photo served is logged: time, IP address hashed with the link's own salt, user agent,
and what was opened (``debrief``, or ``photo`` with its material id). The link's ``access_count`` and
``last_accessed_at`` count debrief views only, not the photos a view then loads: a reader opening a
page with five photos is one view (and those photo fetches do not all update the link's row).

What a link shows is redacted: chosen insights only, and of those only the ones still backed by live
evidence; coverage figures of the whole log, labelled as such; no speaker or researcher names, photos only as
metadata-free previews and only when asked for, nothing of other stints, no action plan."""

import hashlib
import math
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api import security
from api.config import Settings
from api.db import WriteSessionDep, utcnow
from api.debrief import Coverage, Debrief, StintSummary, coverage
from api.debrief_media import PREVIEW_TYPE, material_previews, preview_bytes
from api.debrief_models import AccessKind, Insight, PublicThrottle, ShareAccess, ShareInsight, ShareLink
from api.debrief_page import STYLE_HASH, pick_language, render, text_for
from api.errors import ErrorResponse, error_body
from api.ingest import StoreDep
from api.insight_views import InsightOut, insights_out, stint_insights
from api.models import Stint
from api.themes import ThemeOut, stint_themes

router = APIRouter(tags=["public"])


_WINDOW = 60
PUBLIC_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
_PAGE_CSP = (
    f"default-src 'none'; img-src 'self' data:; style-src '{STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# Photos per page view the rate limit allows for.
IMAGE_BUDGET = 10
_NOT_FOUND = "This link does not exist, has expired or was revoked."


class PublicEvidence(BaseModel):
    text: str | None = None
    kind: str | None = None
    quote: str | None = None
    speaker_role: str | None = None
    day: date | None = None
    caption: str | None = None
    image_url: str | None = None


class PublicVerdict(BaseModel):
    statement: str
    verdict: str


class PublicStint(BaseModel):
    title: str
    customer: str
    site: str | None
    purpose: str
    goals: str | None
    start_date: date
    end_date: date


class PublicInsight(BaseModel):
    title: str
    statement: str
    theme: str | None
    evidence: list[PublicEvidence]
    verdicts: list[PublicVerdict]


class PublicDebrief(BaseModel):
    stint: PublicStint
    coverage: Coverage = Field(
        description="Figures of the stint's whole log (every observation, not only the evidence this "
        "link shows); no per-researcher or per-speaker-role breakdown"
    )
    coverage_of: Literal["whole_log"] = "whole_log"
    insights: list[PublicInsight]
    expires_at: datetime
    language: str


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _throttle(session: Session, limit: int, ip: str, scope: str) -> int | None:
    """Count this request; the seconds to wait when over the limit, else None."""
    key = hashlib.sha256(f"public-{scope}:{ip}".encode()).hexdigest()
    now = utcnow()
    row = session.get(PublicThrottle, key, with_for_update=True)
    if row is None or (now - row.window_started_at).total_seconds() >= _WINDOW:
        if row is None:
            session.execute(
                sa.delete(PublicThrottle).where(
                    col(PublicThrottle.window_started_at) < now - timedelta(seconds=10 * _WINDOW)
                )
            )
            row = PublicThrottle(key=key, window_started_at=now, hits=0)
        row.window_started_at, row.hits = now, 0
    row.hits += 1
    session.add(row)
    try:
        session.commit()
    except sa.exc.IntegrityError:  # a concurrent first request from the same address
        session.rollback()
        return _throttle(session, limit, ip, scope)
    if row.hits > limit:
        left = _WINDOW - (now - row.window_started_at).total_seconds()
        return max(1, math.ceil(left))
    return None


def _public_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message), status_code=status, headers={**PUBLIC_HEADERS, **(headers or {})}
    )


def _resolve(session: Session, token: str) -> ShareLink | None:
    """The live link for a token; None for unknown, expired and revoked alike."""
    if not 20 <= len(token) <= 100:
        return None
    link = session.exec(
        select(ShareLink).where(col(ShareLink.token_hash) == security.token_digest(token))
    ).first()
    if link is None or link.revoked_at is not None or link.expires_at <= utcnow():
        return None
    stint = session.get(Stint, link.stint_id)
    if stint is None or stint.deleted_at is not None:
        return None
    return link


def _record_access(
    session: Session, link: ShareLink, request: Request, material_id: uuid.UUID | None = None
) -> None:
    """Log one answer and commit. A debrief view (no ``material_id``) also counts as a view of the
    link (``access_count``, ``last_accessed_at``); a photo is logged only."""
    ip_hash = hashlib.sha256(f"{link.ip_salt}:{_client_ip(request)}".encode()).hexdigest()
    agent = request.headers.get("user-agent", "")[:300].replace("\x00", "")
    kind = AccessKind.debrief if material_id is None else AccessKind.photo
    session.add(
        ShareAccess(
            share_id=link.id, ip_hash=ip_hash, user_agent=agent, kind=kind.value, material_id=material_id
        )
    )
    if kind is AccessKind.debrief:
        session.execute(
            sa.update(ShareLink)
            .where(col(ShareLink.id) == link.id)
            .values(access_count=col(ShareLink.access_count) + 1, last_accessed_at=utcnow())
        )
    session.commit()


def redacted_debrief(session: Session, link: ShareLink) -> Debrief:
    """The debrief as the link shows it: chosen insights of this stint only, no names, no actions."""
    stint = session.get(Stint, link.stint_id)
    assert stint is not None
    chosen = set(
        session.exec(select(ShareInsight.insight_id).where(col(ShareInsight.share_id) == link.id)).all()
    )
    rows: list[Insight] = [i for i in stint_insights(session, stint.id) if i.id in chosen]
    insights: list[InsightOut] = []
    for insight in insights_out(session, rows):
        if insight.draft:
            # No live evidence (all of it deleted since the link was made): an outsider would read
            # a claim with nothing behind it, so it is not shown.
            continue
        evidence = [
            e.model_copy(update={"speaker_name": None})
            for e in insight.evidence
            if e.observation_id or (link.include_photos and e.preview_url)
        ]
        # Backed by photos a link without photos leaves out: shown, but not as a draft.
        insights.append(insight.model_copy(update={"evidence": evidence, "draft": False}))
    used_themes = {i.theme_id for i in insights}
    figures = coverage(session, stint, by_researcher=False)
    return Debrief(
        stint=StintSummary.model_validate(stint, from_attributes=True),
        hypotheses=[],
        # Figures of the whole log, labelled so on the page and in the JSON; the speaker roles of
        # quotes the link does not show are left out (a role alone can say who talked).
        coverage=figures.model_copy(update={"quotes_by_speaker_role": []}),
        themes=[
            ThemeOut.model_validate(t, from_attributes=True)
            for t in stint_themes(session, stint.id)
            if t.id in used_themes
        ],
        insights=insights,
        actions=[],
    )


def _public_json(debrief: Debrief, link: ShareLink, token: str, lang: str) -> PublicDebrief:
    themes = {t.id: t.name for t in debrief.themes}
    return PublicDebrief(
        stint=PublicStint.model_validate(debrief.stint.model_dump()),
        coverage=debrief.coverage,
        insights=[
            PublicInsight(
                title=i.title,
                statement=i.statement,
                theme=themes.get(i.theme_id) if i.theme_id else None,
                evidence=[
                    PublicEvidence(
                        text=e.text,
                        kind=e.kind,
                        quote=e.quote,
                        speaker_role=e.speaker_role,
                        day=e.day,
                        caption=e.caption,
                        image_url=f"/api/public/{token}/materials/{e.material_id}" if e.material_id else None,
                    )
                    for e in i.evidence
                ],
                verdicts=[PublicVerdict(statement=v.statement, verdict=v.verdict.value) for v in i.verdicts],
            )
            for i in debrief.insights
        ],
        expires_at=link.expires_at,
        language=lang,
    )


_PUBLIC_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown, expired or revoked link (one answer for all)"},
    429: {"model": ErrorResponse, "description": "Too many requests; see Retry-After"},
}


def _gate(request: Request, session: Session, token: str, *, image: bool = False) -> ShareLink | JSONResponse:
    """Rate limit, then the live link. A page shows several photos, so photos have their own,
    larger budget."""
    settings: Settings = request.app.state.settings
    limit = settings.share_rate_limit_per_minute * (IMAGE_BUDGET if image else 1)
    wait = _throttle(session, limit, _client_ip(request), "image" if image else "page")
    if wait is not None:
        return _public_error(
            429, "too_many_requests", "Too many requests; wait and try again.", {"Retry-After": str(wait)}
        )
    link = _resolve(session, token)
    if link is None:
        session.rollback()
        return _public_error(404, "share_not_found", _NOT_FOUND)
    return link


@router.get("/api/public/{token}", response_model=PublicDebrief, responses=_PUBLIC_RESPONSES, tags=["public"])
def public_debrief(
    token: str,
    request: Request,
    session: WriteSessionDep,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The shared debrief as JSON, without signing in. Logged as a `debrief` access and counted."""
    gate = _gate(request, session, token)
    if isinstance(gate, JSONResponse):
        return gate
    language = pick_language(request.headers.get("accept-language"), lang)
    body = _public_json(redacted_debrief(session, gate), gate, token, language)
    _record_access(session, gate, request)  # last: its commit ends the transaction
    return JSONResponse(body.model_dump(mode="json"), headers=PUBLIC_HEADERS)


@router.get(
    "/s/{token}",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}},
        404: {
            "description": "Unknown, expired or revoked link (one page for all)",
            "content": {"text/html": {}},
        },
        429: {"description": "Too many requests; see Retry-After", "content": {"text/html": {}}},
        422: {
            "description": "Invalid input",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        },
    },
    tags=["public"],
)
def public_page(
    token: str,
    request: Request,
    session: WriteSessionDep,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The shared debrief as a mobile-friendly page in the reader's language (zh-CN or English).
    Logged as a `debrief` access and counted."""
    language = pick_language(request.headers.get("accept-language"), lang)
    gate = _gate(request, session, token)
    if isinstance(gate, JSONResponse):
        key = "link_gone" if gate.status_code == 404 else "too_many"
        headers = {**PUBLIC_HEADERS, "Content-Security-Policy": _PAGE_CSP}
        if "retry-after" in gate.headers:
            headers["Retry-After"] = gate.headers["retry-after"]
        return HTMLResponse(
            f'<!doctype html><html lang="{language}"><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{gate.status_code}</title><p>{text_for(language, key)}</p></html>",
            status_code=gate.status_code,
            headers=headers,
        )
    until = gate.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    html = render(
        redacted_debrief(session, gate),
        language,
        image_src=lambda mid: f"/api/public/{token}/materials/{mid}",
        redacted=True,
        footer=f"{text_for(language, 'shared_until')} {until}",
    )
    _record_access(session, gate, request)  # last: its commit ends the transaction
    return HTMLResponse(html, headers={**PUBLIC_HEADERS, "Content-Security-Policy": _PAGE_CSP})


@router.get(
    "/api/public/{token}/materials/{material_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_PUBLIC_RESPONSES},
    tags=["public"],
)
def public_material(
    token: str, material_id: uuid.UUID, request: Request, session: WriteSessionDep, store: StoreDep
) -> Response:
    """A photo of a shared insight, re-encoded without any metadata; only if the link includes photos.

    Each photo served (200) is logged in the link's access log as a `photo` access with its material
    id; a 404 or 429 is not. Photos do not count as views of the link (`access_count`)."""
    gate = _gate(request, session, token, image=True)
    if isinstance(gate, JSONResponse):
        return gate
    shown = {
        e.material_id for i in redacted_debrief(session, gate).insights for e in i.evidence if e.material_id
    }
    info = material_previews(session, {material_id}).get(material_id) if material_id in shown else None
    session.close()  # do not hold the database (SQLite: its write lock) while the blob is read
    data = preview_bytes(store, info) if info is not None and info.stint_id == gate.stint_id else None
    if data is None:
        return _public_error(404, "share_not_found", _NOT_FOUND)
    _record_access(session, gate, request, material_id)  # a short transaction of its own, committed
    session.close()  # nothing more to write: do not hold the database while the bytes go out
    return Response(data, media_type=PREVIEW_TYPE, headers=PUBLIC_HEADERS)
