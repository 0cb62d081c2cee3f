"""Observations (观察记录): the entries of a stint's daily log, created offline with the phone's own id."""

import base64
import binascii
import json
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select

from api.access import StintAccess, StintCapturer, StintDep, stint_access
from api.auth import CurrentUser
from api.create_group import create_group
from api.db import SessionDep, begin_reading, end_reads, utcnow
from api.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PreconditionFailed,
    responses,
)
from api.etags import check_if_match, etag
from api.fields import normalise_tag
from api.loop_sign_in import Capturer
from api.models import (
    Hypothesis,
    Observation,
    ObservationHypothesis,
    ObservationKind,
    ObservationTag,
    Role,
    User,
)
from api.observation_schemas import (
    ObservationCreate,
    ObservationOut,
    ObservationPage,
    ObservationUpdate,
    new_observation_out,
    observations_out,
)
from api.observation_writes import (
    NewObservation,
    apply_update,
    insert_observation_unless_taken,
    new_observation,
    same_create,
    usable_links,
    write_version,
)

router = APIRouter(prefix="/api", tags=["observations"])


def _with_etag(response: Response, out: ObservationOut) -> ObservationOut:
    response.headers["ETag"] = etag(out.version)
    return out


def _answer(out: ObservationOut, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """The JSON FastAPI would send for ``response_model=ObservationOut``, built in the route: FastAPI
    validates a returned model again in a threadpool call of its own (one of a create's three)."""
    return Response(
        out.model_dump_json(by_alias=True),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag(out.version), **(headers or {})},
    )


def load_observation(
    session: Session, observation_id: uuid.UUID, user: User
) -> tuple[Observation, StintAccess]:
    """The observation and the caller's access; 404 to non-members (as for no such observation), 410
    once deleted."""
    missing = NotFound("No such observation.")
    obs = session.get(Observation, observation_id)
    if obs is None:
        raise missing
    access = stint_access(session, obs.stint_id, user, missing=missing)
    if obs.deleted_at is not None:
        raise Gone("This observation was deleted.", code="observation_deleted")
    return obs, access


def may_edit(access: StintAccess, obs: Observation) -> None:
    access.require(Role.researcher)
    if obs.author_id != access.user.id and not access.is_manager:
        raise Forbidden("Only the author or a manager changes an observation.")


@router.post(
    "/stints/{stint_id}/observations",
    response_model=ObservationOut,
    status_code=201,
    responses={
        **responses(401, 403, 404, 409, 422),
        200: {"model": ObservationOut, "description": "Already saved"},
    },
)
async def create_observation(body: ObservationCreate, request: Request, access: StintCapturer) -> Response:
    """Add an observation to the log. Send your own `id`: the same id and body again answers 200
    and saves nothing new; the same id with another body is 409."""
    obs_id = body.id or uuid.uuid4()
    # No existence check first: the INSERT skips an id already taken (a retry, or a concurrent
    # create of the same id), and the write transaction is only its INSERTs.
    new = new_observation(access.stint, access.user_id, body, obs_id, utcnow())
    engine = request.app.state.engine
    group = create_group(engine)  # SQLite: creates waiting to write share a COMMIT
    if group is not None and not new.links:
        # The everyday create, handed to the group's writer from here: no threadpool call.
        if await group.submit(new):
            return _created(new, access)
        return await run_in_threadpool(_create, engine, body, access, new, taken=True)
    return await run_in_threadpool(_create, engine, body, access, new, taken=False)


def _created(new: NewObservation, access: Capturer) -> Response:
    # Answered from what was just inserted, not read back: the same values, and three queries in
    # a transaction of their own cost a capture request more than its INSERTs.
    created = new_observation_out(new.values, access.user_name, new.tags, new.links)
    return _answer(created, 201, {"Location": f"/api/observations/{new.id}"})


def _create(
    engine: sa.Engine, body: ObservationCreate, access: Capturer, new: NewObservation, *, taken: bool
) -> Response:
    """A create with links to check or on PostgreSQL; ``taken``: its id was found taken already."""
    with Session(engine, expire_on_commit=False) as session:
        group = create_group(engine)
        inserted, invalid = False, None
        try:
            if not taken and group is None:
                new.links = usable_links(session, access.stint.id, new.links)
                if inserted := insert_observation_unless_taken(session, new):
                    session.commit()
            elif not taken and group is not None:
                begin_reading(session)  # the links are read without the write lock
                new.links = usable_links(session, access.stint.id, new.links)
                end_reads(session)
                inserted = group.write(new)
        except Invalid as exc:
            session.rollback()
            invalid = exc  # a retry answers as before, whatever its links are now
        if inserted:
            return _created(new, access)
        # Taken, by a committed row (on PostgreSQL the INSERT waited for a concurrent one), or refused.
        begin_reading(session)
        existing = session.get(Observation, new.id)
        if existing is None and invalid is not None:
            raise invalid
        if existing is None or not same_create(existing, access.stint.id, access.user_id, body):
            raise Conflict(
                "An observation with this id already exists with other content.",
                code="id_conflict",
                details={"id": str(new.id)},
            )
        saved = observations_out(session, [existing])[0]
        end_reads(session)
        return _answer(saved, 200)


def _cursor(obs: Observation) -> str:
    raw = json.dumps([obs.observed_at.isoformat(), str(obs.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, obs_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(obs_id, str):
            raise ValueError("not a cursor")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        # In UTC as it is compared: an instant at the very edge of datetime's range has none.
        return moment.astimezone(UTC), uuid.UUID(obs_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("The cursor is not one this server gave out.", code="invalid_cursor") from None


@router.get(
    "/stints/{stint_id}/observations", response_model=ObservationPage, responses=responses(400, 401, 404, 422)
)
def list_observations(
    session: SessionDep,
    access: StintDep,
    day: date | None = None,
    author: Annotated[str | None, Query(max_length=320, description="user id or e-mail")] = None,
    kind: ObservationKind | None = None,
    tag: Annotated[str | None, Query(max_length=200)] = None,
    hypothesis: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ObservationPage:
    """The log in the order things were observed, a page at a time; follow `next_cursor`."""
    stmt = select(Observation).where(
        Observation.stint_id == access.stint.id,
        Observation.deleted_at.is_(None),  # type: ignore[union-attr]
    )
    if day is not None:
        stmt = stmt.where(Observation.day == day)
    if author is not None:
        stmt = stmt.where(Observation.author_id == _author_id(session, author))
    if kind is not None:
        stmt = stmt.where(Observation.kind == kind.value)
    if tag is not None:
        try:
            wanted = normalise_tag(tag)
        except ValueError as exc:
            raise Invalid(f"tag: {exc}") from None
        stmt = stmt.where(
            sa.exists().where(
                col(ObservationTag.observation_id) == col(Observation.id), col(ObservationTag.tag) == wanted
            )
        )
    if hypothesis is not None:  # links to a deleted hypothesis are not shown, so they find nothing
        stmt = stmt.where(
            sa.exists().where(
                col(ObservationHypothesis.observation_id) == col(Observation.id),
                col(ObservationHypothesis.hypothesis_id) == hypothesis,
                col(Hypothesis.id) == col(ObservationHypothesis.hypothesis_id),
                col(Hypothesis.deleted_at).is_(None),
            )
        )
    if cursor:
        after_at, after_id = _parse_cursor(cursor)
        stmt = stmt.where(
            sa.or_(
                col(Observation.observed_at) > after_at,
                sa.and_(col(Observation.observed_at) == after_at, col(Observation.id) > after_id),
            )
        )
    rows = session.exec(
        stmt.order_by(col(Observation.observed_at), col(Observation.id)).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return ObservationPage(
        items=observations_out(session, rows), next_cursor=_cursor(rows[-1]) if more and rows else None
    )


def _author_id(session: Session, author: str) -> uuid.UUID | None:
    if "\x00" in author:
        raise Invalid("author: contains a NUL character.")
    if "@" in author:
        return session.exec(select(User.id).where(User.email == author.strip().lower())).first()
    try:
        return uuid.UUID(author)
    except ValueError:
        raise Invalid("author: give a user id or an e-mail address.") from None


@router.get(
    "/observations/{observation_id}", response_model=ObservationOut, responses=responses(401, 404, 410, 422)
)
def get_observation(
    observation_id: uuid.UUID, response: Response, session: SessionDep, user: CurrentUser
) -> ObservationOut:
    obs, _ = load_observation(session, observation_id, user)
    return _with_etag(response, observations_out(session, [obs])[0])


@router.patch(
    "/observations/{observation_id}",
    response_model=ObservationOut,
    responses=responses(401, 403, 404, 410, 412, 422, 428),
)
def update_observation(
    observation_id: uuid.UUID,
    body: ObservationUpdate,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="The ETag you read")] = None,
) -> ObservationOut:
    """Edit an observation (its author or a manager). Needs `If-Match`: 428 without, 412 when stale."""
    obs, access = load_observation(session, observation_id, user)
    may_edit(access, obs)
    check_if_match(if_match, obs.version, required=True)
    if not apply_update(session, obs, access.stint.timezone, body):
        _stale(session, obs)
    session.commit()
    begin_reading(session)  # the answer only reads: not under the write lock (see end_reads)
    updated = observations_out(session, [obs])[0]
    end_reads(session)
    return _with_etag(response, updated)


def _stale(session: Session, obs: Observation) -> NoReturn:
    """Someone else's edit won the race: roll back and answer 412 with the current version."""
    expected = obs.version
    session.rollback()
    current = session.get(Observation, obs.id, populate_existing=True)
    check_if_match(etag(expected), current.version if current else expected + 1, required=True)
    raise PreconditionFailed()


@router.delete(
    "/observations/{observation_id}", status_code=204, responses=responses(401, 403, 404, 410, 412, 422)
)
def delete_observation(
    observation_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> Response:
    """Delete an observation (its author or a manager). A tombstone stays so other devices learn of it."""
    obs, access = load_observation(session, observation_id, user)
    may_edit(access, obs)
    check_if_match(if_match, obs.version, required=False)
    if not write_version(session, obs, {"deleted_at": utcnow()}):
        _stale(session, obs)
    session.commit()
    return Response(status_code=204)
