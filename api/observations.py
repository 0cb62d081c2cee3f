"""Observations (观察记录): the entries of a stint's daily log, created offline with the phone's own id."""

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Any, NoReturn, Self

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from api.access import StintAccess, StintDep, StintWriter, stint_access
from api.auth import CurrentUser
from api.changelog import ChangeType, record_change
from api.db import SessionDep, utcnow
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
from api.fields import Tags, Text, normalise_tag
from api.logday import log_day
from api.models import (
    Hypothesis,
    Observation,
    ObservationDimension,
    ObservationHypothesis,
    ObservationKind,
    ObservationTag,
    Role,
    Stance,
    Stint,
    User,
)
from api.search_docs import record_index_task
from api.users import user_names

router = APIRouter(prefix="/api", tags=["observations"])

MAX_TEXT = 10_000
MAX_QUOTE = 2_000


class HypothesisLink(BaseModel):
    model_config = {"extra": "forbid"}

    hypothesis_id: uuid.UUID
    stance: Stance = Stance.supports


class _ObservationFields(BaseModel):
    model_config = {"extra": "forbid"}

    kind: ObservationKind | None = None
    observed_at: AwareDatetime | None = Field(
        default=None, description="When the phone recorded it, with its UTC offset; kept as recorded"
    )
    quote: Text(MAX_QUOTE) | None = None  # type: ignore[valid-type]
    speaker_role: Text(100) | None = Field(default=None, description="e.g. 调度员, finance, boss")  # type: ignore[valid-type]
    speaker_name: Text(100) | None = Field(default=None, description="Never shown through share links")  # type: ignore[valid-type]
    dimension: ObservationDimension | None = None
    tags: Tags | None = None
    hypothesis_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=50, description="Shorthand: supports"
    )
    hypothesis_links: list[HypothesisLink] | None = Field(default=None, max_length=50)

    def links(self) -> list[HypothesisLink] | None:
        if self.hypothesis_ids is None and self.hypothesis_links is None:
            return None
        merged = {link.hypothesis_id: link for link in self.hypothesis_links or []}
        for hid in self.hypothesis_ids or []:
            merged.setdefault(hid, HypothesisLink(hypothesis_id=hid))
        return sorted(merged.values(), key=lambda link: str(link.hypothesis_id))


class ObservationCreate(_ObservationFields):
    id: uuid.UUID | None = Field(default=None, description="Chosen by the client; a retry with it is safe")
    text: Text(MAX_TEXT, min_length=1)  # type: ignore[valid-type]

    def fingerprint(self) -> str:
        body = self.model_dump(mode="json", exclude={"id", "hypothesis_ids", "hypothesis_links"})
        body["links"] = [link.model_dump(mode="json") for link in self.links() or []]
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ObservationUpdate(_ObservationFields):
    text: Text(MAX_TEXT, min_length=1) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in ("text", "kind", "observed_at"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ObservationOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    text: str
    kind: ObservationKind
    quote: str | None
    speaker_role: str | None
    speaker_name: str | None
    dimension: ObservationDimension | None
    tags: list[str]
    hypothesis_links: list[HypothesisLink]
    observed_at: datetime
    received_at: datetime
    updated_at: datetime
    day: date
    version: int
    deleted: bool


class ObservationPage(BaseModel):
    items: list[ObservationOut]
    next_cursor: str | None


def observations_out(session: Session, rows: Sequence[Observation]) -> list[ObservationOut]:
    """Serialise a page of observations with their tags, links and authors in three queries."""
    ids = [o.id for o in rows]
    tags: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    links: dict[uuid.UUID, list[HypothesisLink]] = {i: [] for i in ids}
    names: dict[uuid.UUID, str] = {}
    if ids:
        # Columns, not ORM objects: a sync page serialises a thousand observations at a time.
        for obs_id, tag in session.execute(
            sa.select(col(ObservationTag.observation_id), col(ObservationTag.tag)).where(
                col(ObservationTag.observation_id).in_(ids)
            )
        ):
            tags[obs_id].append(tag)
        for obs_id, hypothesis_id, stance in session.execute(
            sa.select(
                col(ObservationHypothesis.observation_id),
                col(ObservationHypothesis.hypothesis_id),
                col(ObservationHypothesis.stance),
            ).where(col(ObservationHypothesis.observation_id).in_(ids))
        ):
            links[obs_id].append(HypothesisLink(hypothesis_id=hypothesis_id, stance=Stance(stance)))
        names = user_names(session, {o.author_id for o in rows})
    return [
        ObservationOut(
            **o.model_dump(exclude={"deleted_at", "create_hash"}),
            author_name=names.get(o.author_id, ""),
            tags=sorted(tags[o.id]),
            hypothesis_links=sorted(links[o.id], key=lambda link: str(link.hypothesis_id)),
            deleted=o.deleted_at is not None,
        )
        for o in rows
    ]


def _set_tags(session: Session, obs: Observation, tags: list[str]) -> None:
    session.execute(sa.delete(ObservationTag).where(ObservationTag.observation_id == obs.id))  # type: ignore[arg-type]
    session.add_all(ObservationTag(observation_id=obs.id, tag=tag) for tag in tags)


def live_hypotheses(session: Session, stint_id: uuid.UUID, wanted: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``wanted`` that are hypotheses of this stint, not deleted."""
    if not wanted:
        return set()
    return set(
        session.exec(
            select(Hypothesis.id).where(
                col(Hypothesis.id).in_(wanted),
                Hypothesis.stint_id == stint_id,
                col(Hypothesis.deleted_at).is_(None),
            )
        ).all()
    )


def check_links(links: Sequence[HypothesisLink], found: set[uuid.UUID]) -> None:
    """Invalid unless every linked hypothesis is in ``found`` (see :func:`live_hypotheses`)."""
    if missing := {link.hypothesis_id for link in links} - found:
        raise Invalid(
            "Linked hypotheses must belong to this stint.",
            code="unknown_hypothesis",
            details={"hypothesis_ids": sorted(str(m) for m in missing)},
        )


def _set_links(session: Session, obs: Observation, links: list[HypothesisLink]) -> None:
    """Replace the links (checked beforehand with :func:`check_links`)."""
    session.execute(sa.delete(ObservationHypothesis).where(ObservationHypothesis.observation_id == obs.id))  # type: ignore[arg-type]
    session.add_all(
        ObservationHypothesis(
            observation_id=obs.id, hypothesis_id=link.hypothesis_id, stance=link.stance.value
        )
        for link in links
    )


@dataclass
class NewObservation:
    """A new observation's column values, its tags and links (plain values: a sync push makes a
    thousand at a time, and building ORM objects would cost more than inserting them)."""

    values: dict[str, Any]
    tags: list[str]
    links: list[HypothesisLink]

    @property
    def id(self) -> uuid.UUID:
        obs_id: uuid.UUID = self.values["id"]
        return obs_id

    @property
    def row(self) -> Observation:
        return Observation(**self.values)

    def hypothesis_ids(self) -> set[uuid.UUID]:
        return {link.hypothesis_id for link in self.links}


def new_observation(
    stint: Stint, author_id: uuid.UUID, body: ObservationCreate, obs_id: uuid.UUID, now: datetime
) -> NewObservation:
    """A new observation as the phone recorded it: ``observed_at`` kept, ``received_at`` now, and the
    log day taken in the stint's timezone (23:50 in Shanghai is that day, not UTC's)."""
    observed_at = (body.observed_at or now).astimezone(UTC)
    values = {
        "id": obs_id,
        "stint_id": stint.id,
        "author_id": author_id,
        "text": body.text,
        "kind": (body.kind or ObservationKind.note).value,
        "quote": body.quote,
        "speaker_role": body.speaker_role,
        "speaker_name": body.speaker_name,
        "dimension": body.dimension.value if body.dimension else None,
        "observed_at": observed_at,
        "received_at": now,
        "updated_at": now,
        "day": log_day(observed_at, stint.timezone),
        "version": 1,
        "create_hash": body.fingerprint(),
        "deleted_at": None,
    }
    return NewObservation(values=values, tags=list(body.tags or []), links=body.links() or [])


def insert_observations(session: Session, items: Sequence[NewObservation]) -> None:
    """Insert new observations with their tags and links, a statement per table however many there
    are. Links must have been checked (:func:`check_links`)."""
    if not items:
        return
    session.execute(sa.insert(Observation.__table__), [item.values for item in items])  # type: ignore[attr-defined]
    tags = [{"observation_id": item.id, "tag": tag} for item in items for tag in item.tags]
    if tags:
        session.execute(sa.insert(ObservationTag.__table__), tags)  # type: ignore[attr-defined]
    links = [
        {"observation_id": item.id, "hypothesis_id": link.hypothesis_id, "stance": link.stance.value}
        for item in items
        for link in item.links
    ]
    if links:
        session.execute(sa.insert(ObservationHypothesis.__table__), links)  # type: ignore[attr-defined]
    for item in items:
        record_change(session, ChangeType.observation, item.id, stint_id=item.values["stint_id"], version=1)
        record_index_task(session, "observation", item.id)


def same_create(existing: Observation, stint_id: uuid.UUID, author_id: uuid.UUID, fingerprint: str) -> bool:
    """Is this create a retry of the one that made ``existing``?"""
    return (
        existing.stint_id == stint_id
        and existing.author_id == author_id
        and existing.create_hash == fingerprint
    )


def _with_etag(response: Response, out: ObservationOut) -> ObservationOut:
    response.headers["ETag"] = etag(out.version)
    return out


def _load(session: Session, observation_id: uuid.UUID, user: User) -> tuple[Observation, StintAccess]:
    obs = session.get(Observation, observation_id)
    if obs is None:
        raise NotFound("No such observation.")
    access = stint_access(session, obs.stint_id, user)
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
def create_observation(
    body: ObservationCreate, response: Response, session: SessionDep, access: StintWriter
) -> ObservationOut:
    """Add an observation to the log. Send your own `id`: the same id and body again answers 200
    and saves nothing new; the same id with another body is 409."""
    fingerprint = body.fingerprint()
    obs_id = body.id or uuid.uuid4()
    existing = session.get(Observation, obs_id)
    if existing is None:
        new = new_observation(access.stint, access.user.id, body, obs_id, utcnow())
        check_links(new.links, live_hypotheses(session, access.stint.id, new.hypothesis_ids()))
        insert_observations(session, [new])
        obs = new.row
        try:
            session.commit()
        except sa.exc.IntegrityError:
            # A concurrent retry of the same create won the race; answer as for a retry.
            session.rollback()
            existing = session.get(Observation, obs_id)
            if existing is None:
                raise
        else:
            response.headers["Location"] = f"/api/observations/{obs.id}"
            return _with_etag(response, observations_out(session, [obs])[0])
    if not same_create(existing, access.stint.id, access.user.id, fingerprint):
        raise Conflict(
            "An observation with this id already exists with other content.",
            code="id_conflict",
            details={"id": str(obs_id)},
        )
    response.status_code = 200
    return _with_etag(response, observations_out(session, [existing])[0])


def _cursor(obs: Observation) -> str:
    raw = json.dumps([obs.observed_at.isoformat(), str(obs.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, obs_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(obs_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
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
    if hypothesis is not None:
        stmt = stmt.where(
            sa.exists().where(
                col(ObservationHypothesis.observation_id) == col(Observation.id),
                col(ObservationHypothesis.hypothesis_id) == hypothesis,
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
    obs, _ = _load(session, observation_id, user)
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
    obs, access = _load(session, observation_id, user)
    may_edit(access, obs)
    check_if_match(if_match, obs.version, required=True)
    if not apply_update(session, obs, access.stint.timezone, body):
        _stale(session, obs)
    session.commit()
    return _with_etag(response, observations_out(session, [obs])[0])


def apply_update(
    session: Session, obs: Observation, timezone: str, body: ObservationUpdate, *, restore: bool = False
) -> bool:
    """Apply an edit as the next version of ``obs`` (``restore``: and undelete it). False, with nothing
    written, when someone else wrote a newer version first. Invalid for links outside the stint."""
    values = {
        field: value.value if isinstance(value, Enum) else value
        for field, value in body.model_dump(
            exclude_unset=True, exclude={"tags", "hypothesis_ids", "hypothesis_links"}
        ).items()
    }
    if "observed_at" in values:
        values["day"] = log_day(values["observed_at"], timezone)
    if restore:
        values["deleted_at"] = None
    links = body.links()
    if links is not None:
        check_links(links, live_hypotheses(session, obs.stint_id, {link.hypothesis_id for link in links}))
    if not write_version(session, obs, values):
        return False
    if body.tags is not None:
        _set_tags(session, obs, body.tags)
    if links is not None:
        _set_links(session, obs, links)
    return True


def write_version(session: Session, obs: Observation, values: dict[str, Any]) -> bool:
    """Write ``values`` and the next version, only if no one else wrote since ``obs`` was read:
    two concurrent edits on PostgreSQL cannot both win. False, with nothing written, if one did."""
    written = session.execute(
        sa.update(Observation)
        .where(col(Observation.id) == obs.id, col(Observation.version) == obs.version)
        .values(**values, version=obs.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(obs)
    record_change(
        session,
        ChangeType.observation,
        obs.id,
        stint_id=obs.stint_id,
        version=obs.version,
        deleted=obs.deleted_at is not None,
    )
    record_index_task(session, "observation", obs.id)
    return True


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
    obs, access = _load(session, observation_id, user)
    may_edit(access, obs)
    check_if_match(if_match, obs.version, required=False)
    if not write_version(session, obs, {"deleted_at": utcnow()}):
        _stale(session, obs)
    session.commit()
    return Response(status_code=204)
