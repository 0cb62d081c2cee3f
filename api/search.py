"""``GET /api/search``: find observations, quotes, daily summaries (and materials, insights,
actions once their areas register sources) across the stints the caller belongs to.

Layout of the search area: ``search_docs`` (the narrow interface other areas call: tasks and
sources), ``search_sources`` (observations, daily summaries), ``search_query`` (the query
language), ``search_analysis`` (Chinese/English tokens, snippets), ``search_index`` (Whoosh),
``search_indexer`` (the single writer, reindex), ``search_check`` (``fieldbook check``), and this module
(HTTP and wiring).
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import date
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from api import search_debrief_sources, search_sources  # noqa: F401  (register the index's sources)
from api.access import stint_access
from api.auth import CurrentUser
from api.config import Settings
from api.db import SessionDep, make_engine
from api.errors import AppError, BadRequest, ErrorResponse, Invalid, responses
from api.fields import normalise_tag
from api.models import Membership, ObservationDimension, ObservationKind, Stint, User
from api.search_analysis import analyse_clause, snippet
from api.search_index import Filters, IndexStore, IndexUnavailable
from api.search_indexer import Indexer, store_for
from api.search_query import DocType, QueryError, parse_query

router = APIRouter(prefix="/api", tags=["search"])

MAX_PAGE = 500


class SearchUnavailable(AppError):
    status_code = 503
    code = "search_unavailable"
    message = "The search index is being rebuilt; try again in a moment."


class Hit(BaseModel):
    type: str = Field(description="observation, day, material, insight or action")
    id: str
    stint_id: uuid.UUID
    stint_title: str
    snippet: str = Field(description="HTML: matches in <mark>, everything else escaped")
    snippet_field: str = Field(description="which text the snippet comes from: text, quote, summary…")
    kind: str | None
    tags: list[str]
    dimension: str | None
    author_id: uuid.UUID | None
    author_name: str | None
    day: date | None
    at: str = Field(
        description="when it happened, on the stint's local clock (ISO 8601 with its offset); "
        "newest-first sorts on this"
    )
    score: float | None = Field(description="relevance; null when sorted by time")
    extra: dict[str, Any] = Field(default_factory=dict)


class FacetValue(BaseModel):
    value: str
    label: str
    count: int


class SearchResults(BaseModel):
    total: int
    page: int
    per_page: int
    sort: str
    hits: list[Hit]
    facets: dict[str, list[FacetValue]] = Field(
        description="types, kinds, tags, authors, stints, days: counts over all matches you may see"
    )


def _store(request: Request) -> IndexStore:
    store: IndexStore = request.app.state.search_store
    return store


StoreDep = Annotated[IndexStore, Depends(_store)]


def _readable_stints(session: Session, user: User) -> dict[uuid.UUID, str]:
    rows = session.execute(
        sa.select(col(Stint.id), col(Stint.title))
        .join(Membership, col(Membership.stint_id) == col(Stint.id))
        .where(col(Membership.user_id) == user.id, col(Stint.deleted_at).is_(None))
    )
    return dict(rows.all())


def _authors(session: Session, stints: set[uuid.UUID], wanted: list[str]) -> set[str]:
    """Account ids matching each of ``wanted`` (an id, an e-mail or part of a name) among the
    members of ``stints``; all of ``wanted`` must hold (several author: mean nobody)."""
    members = session.execute(
        sa.select(col(User.id), col(User.email), col(User.name))
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(col(Membership.stint_id).in_(stints))
        .distinct()
    )
    people = list(members.all())
    result: set[str] | None = None
    for raw in wanted:
        needle = raw.strip().casefold()
        found = {
            str(uid)
            for uid, email, name in people
            if needle in (str(uid), email.casefold()) or ("@" not in needle and needle in name.casefold())
        }
        result = found if result is None else result & found
    return result or set()


_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "The index is being rebuilt"}
}


@router.get(
    "/search", response_model=SearchResults, responses={**responses(400, 401, 404, 422), **_UNAVAILABLE}
)
def search(
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    q: Annotated[
        str, Query(max_length=500, description='words, "phrases", -exclusions, tag: kind: author: date:')
    ] = "",
    stint_id: uuid.UUID | None = None,
    kind: ObservationKind | None = None,
    tag: Annotated[str | None, Query(max_length=200)] = None,
    author: Annotated[str | None, Query(max_length=320, description="user id or e-mail")] = None,
    dimension: ObservationDimension | None = None,
    hypothesis: uuid.UUID | None = None,
    type: Annotated[DocType | None, Query(description="record type")] = None,
    date_from: Annotated[date | None, Query(alias="from", description="first log day, inclusive")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="last log day, inclusive")] = None,
    sort: Annotated[
        Literal["relevance", "newest", "oldest"],
        Query(description="relevance (newest first without words), newest or oldest first (by `at`)"),
    ] = "relevance",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    facets: bool = True,
) -> SearchResults:
    """Search everything in the stints you belong to. Chinese matches any substring of two or
    more characters (one character works too); English is matched by word stem, case-insensitively.
    Type `"quoted phrases"`, `-word` to exclude, and filters such as `tag:痛点`, `kind:quote`,
    `author:wang@example.com`, `date:2026-03-02..2026-03-10`. A query that cannot be read is 400."""
    try:
        parsed = parse_query(q)
    except QueryError as exc:
        raise BadRequest(str(exc), code="invalid_query") from None
    readable = _readable_stints(session, user)
    if stint_id is not None:
        stint_access(session, stint_id, user)  # 404 unless a member
        stints = {stint_id}
    else:
        stints = set(readable)
    if date_from or date_to:
        parsed.narrow_dates(date_from, date_to)
    filters = Filters(stints={str(s) for s in stints})
    filters.types = set(parsed.types) | ({type} if type else set())
    filters.kinds = set(parsed.kinds) | ({kind.value} if kind else set())
    filters.not_kinds = set(parsed.not_kinds)
    filters.not_tags = set(parsed.not_tags)
    filters.tags = set(parsed.tags)
    if tag is not None:
        try:
            filters.tags.add(normalise_tag(tag))
        except ValueError as exc:
            raise Invalid(f"tag: {exc}") from None
    authors = parsed.authors + ([author] if author else [])
    if authors:
        filters.authors = _authors(session, stints, authors) if stints else set()
    filters.dimensions = set(parsed.dimensions) | ({dimension.value} if dimension else set())
    if hypothesis:
        filters.hypotheses = {str(hypothesis)}
    if parsed.date_from:
        filters.day_from = int(parsed.date_from.strftime("%Y%m%d"))
    if parsed.date_to:
        filters.day_to = int(parsed.date_to.strftime("%Y%m%d"))

    positive = [analyse_clause(c.text) for c in parsed.positive]
    negative = [analyse_clause(c.text) for c in parsed.negative]
    try:
        outcome = store.search(
            positive,
            negative,
            filters,
            newest=sort == "newest",
            oldest=sort == "oldest",
            offset=(page - 1) * per_page,
            limit=per_page,
            facets=facets,
        )
    except IndexUnavailable:
        raise SearchUnavailable(headers={"Retry-After": "5"}) from None

    highlight = [part for clause in positive for part in clause.parts]
    author_ids = {uuid.UUID(h.body["author_id"]) for h in outcome.hits if h.body.get("author_id")}
    author_ids |= {uuid.UUID(a) for a, _ in outcome.facets.get("authors", [])}
    names = dict(
        session.execute(sa.select(col(User.id), col(User.name)).where(col(User.id).in_(author_ids))).all()
    )
    hits = []
    for h in outcome.hits:
        b = h.body
        field, html = snippet(b["texts"], highlight)
        aid = uuid.UUID(b["author_id"]) if b.get("author_id") else None
        hits.append(
            Hit(
                type=b["type"],
                id=b["id"],
                stint_id=uuid.UUID(b["stint_id"]),
                stint_title=readable.get(uuid.UUID(b["stint_id"]), ""),
                snippet=html,
                snippet_field=field,
                kind=b.get("kind"),
                tags=b.get("tags", []),
                dimension=b.get("dimension"),
                author_id=aid,
                author_name=names.get(aid) if aid else None,
                day=date.fromisoformat(b["day"]) if b.get("day") else None,
                at=b["at"],
                score=round(h.score, 4) if h.score is not None else None,
                extra=b.get("extra") or {},
            )
        )
    labels: Mapping[str, Mapping[str, str]] = {
        "stints": {str(k): v for k, v in readable.items()},
        "authors": {str(k): v for k, v in names.items()},
    }
    return SearchResults(
        total=outcome.total,
        page=page,
        per_page=per_page,
        sort=sort,
        hits=hits,
        facets={
            name: [FacetValue(value=v, label=labels.get(name, {}).get(v, v), count=n) for v, n in values]
            for name, values in outcome.facets.items()
        },
    )


def install(app: FastAPI) -> None:
    """Mount the search API and, unless ``fieldbook serve`` indexes for its workers, run this
    process's indexer thread for the app's lifetime."""
    store = store_for(app.state.settings.data_dir)
    app.state.search_store = store
    app.include_router(router)
    if not app.state.settings.indexer_thread:
        return
    indexer = Indexer(store, app.state.engine)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        await run_in_threadpool(indexer.start)
        try:
            async with inner(a) as state:
                yield state
        finally:
            await run_in_threadpool(indexer.stop)

    app.router.lifespan_context = lifespan


@contextmanager
def indexer_for_workers(settings: Settings) -> Iterator[None]:
    """For ``fieldbook serve``: one indexer thread in this process for every worker it starts, the
    workers running none (they inherit ``FIELDBOOK_INDEXER_THREAD=0``). In each worker the indexer
    shared the GIL with the event loop and the group commit's writer, which waited for it: the
    capture bench (2 workers) went 632-671 -> 726-747 creates/s with the index kept apart (A/B,
    interleaved, 25 Nov 2026). Started before the workers: an empty index exists when they serve."""
    engine = make_engine(settings.sqlalchemy_url)
    indexer = Indexer(store_for(settings.data_dir), engine, for_other_processes=True)
    indexer.start()
    os.environ["FIELDBOOK_INDEXER_THREAD"] = "0"
    try:
        yield
    finally:
        indexer.stop()
        engine.dispose()
