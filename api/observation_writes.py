"""Writing observations: shared by the REST routes and sync pushes, so both keep the same rules
(client ids, versions, the change log, index tasks)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from api.changelog import ChangeType, SyncChange, new_record_rows, record_change, record_new_rows
from api.db import insert_many, utcnow
from api.errors import Invalid
from api.logday import log_day
from api.models import (
    Hypothesis,
    Observation,
    ObservationHypothesis,
    ObservationKind,
    ObservationTag,
    Stance,
)
from api.observation_schemas import (
    HypothesisLink,
    ObservationCreate,
    ObservationUpdate,
    offset_minutes,
    same_time_as_recorded,
)
from api.search_docs import SearchTask, new_task_rows, record_index_task, record_task_rows

_OBSERVATIONS: sa.Table = Observation.__table__  # type: ignore[attr-defined]
_CHANGES: sa.Table = SyncChange.__table__  # type: ignore[attr-defined]
_TASKS: sa.Table = SearchTask.__table__  # type: ignore[attr-defined]


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


def usable_links(
    session: Session,
    stint_id: uuid.UUID,
    links: Sequence[HypothesisLink],
    live: set[uuid.UUID] | None = None,
) -> list[HypothesisLink]:
    """The links a write keeps: those to live hypotheses (``live``: at least those of ``links`` that
    are, when the caller knows them; else looked up, see :func:`live_hypotheses`). A link to a hypothesis of this stint that was deleted is left
    out, not refused: a device that read or made it before it learned of the deletion is not stuck.
    Invalid for any other hypothesis (another stint's, or none)."""
    if not links:
        return []
    if live is None:
        live = live_hypotheses(session, stint_id, {link.hypothesis_id for link in links})
    missing = {link.hypothesis_id for link in links} - live
    if not missing:
        return list(links)
    deleted = set(
        session.exec(
            select(Hypothesis.id).where(
                col(Hypothesis.id).in_(missing),
                Hypothesis.stint_id == stint_id,
                col(Hypothesis.deleted_at).is_not(None),
            )
        ).all()
    )
    check_links([link for link in links if link.hypothesis_id not in deleted], live)
    return [link for link in links if link.hypothesis_id in live]


def current_links(session: Session, obs: Observation) -> dict[uuid.UUID, HypothesisLink]:
    """The observation's links to live hypotheses. Links to deleted hypotheses stay in the database,
    unseen and untouched by edits (the evidence an observation gave stays on record)."""
    rows = session.execute(
        sa.select(col(ObservationHypothesis.hypothesis_id), col(ObservationHypothesis.stance))
        .join(Hypothesis, col(Hypothesis.id) == col(ObservationHypothesis.hypothesis_id))
        .where(col(ObservationHypothesis.observation_id) == obs.id, col(Hypothesis.deleted_at).is_(None))
    )
    return {hid: HypothesisLink(hypothesis_id=hid, stance=Stance(stance)) for hid, stance in rows}


def _set_links(
    session: Session, obs: Observation, before: dict[uuid.UUID, HypothesisLink], links: list[HypothesisLink]
) -> None:
    """Replace the links to live hypotheses (``before``, from :func:`current_links`) with ``links``
    (from :func:`usable_links`); links to deleted hypotheses stay."""
    if before:
        session.execute(
            sa.delete(ObservationHypothesis).where(
                col(ObservationHypothesis.observation_id) == obs.id,
                col(ObservationHypothesis.hypothesis_id).in_(before),
            )
        )
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


class StintClock(Protocol):
    """What a new observation needs of its stint: a Stint, or the id and timezone read at sign-in."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def timezone(self) -> str: ...


def new_observation(
    stint: StintClock, author_id: uuid.UUID, body: ObservationCreate, obs_id: uuid.UUID, now: datetime
) -> NewObservation:
    """A new observation as the phone recorded it: ``observed_at`` kept, ``received_at`` now, and the
    log day taken in the stint's timezone (23:50 in Shanghai is that day, not UTC's)."""
    observed_at = (body.observed_at or now).astimezone(UTC)
    # Without a time from the phone, its offset is not known: answered in UTC.
    offset = offset_minutes(body.observed_at) if body.observed_at else None
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
        "observed_offset_minutes": offset,
        "received_at": now,
        "updated_at": now,
        "day": log_day(observed_at, stint.timezone),
        "version": 1,
        "create_hash": body.fingerprint(),
        "deleted_at": None,
    }
    return NewObservation(values=values, tags=list(body.tags or []), links=body.links() or [])


def insert_observations(
    session: Session, items: Sequence[NewObservation], now: datetime | None = None
) -> None:
    """Insert new observations with their tags and links, a statement per table however many there
    are; their change log and index task rows are noted for the commit as built for the whole batch
    (a call per row cost a 1,000-op push ~0.6 ms more). Links must have been checked
    (:func:`usable_links`)."""
    _insert_rows(session, items, now or utcnow(), with_observations=True)


def insert_observation_unless_taken(session: Session, item: NewObservation) -> bool:
    """Insert one new observation as :func:`insert_observations` does, unless its id is taken:
    then nothing is written and the answer is False. A retried create is the usual case, and
    ON CONFLICT meets it without an error (PostgreSQL logs every unique violation)."""
    table: sa.Table = Observation.__table__  # type: ignore[attr-defined]
    taken = [table.c.id]
    statement = (
        sqlite.insert(table).on_conflict_do_nothing(index_elements=taken).returning(table.c.id)
        if session.get_bind().dialect.name == "sqlite"
        else postgresql.insert(table).on_conflict_do_nothing(index_elements=taken).returning(table.c.id)
    )
    # RETURNING, not rowcount: psycopg's is -1 for an INSERT through SQLAlchemy.
    if session.execute(statement, item.values).first() is None:
        return False
    _insert_rows(session, [item], utcnow(), with_observations=False)
    return True


def _tag_and_link_rows(
    ided: Sequence[tuple[uuid.UUID, NewObservation]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tags = [{"observation_id": obs_id, "tag": tag} for obs_id, item in ided for tag in item.tags]
    links = [
        {"observation_id": obs_id, "hypothesis_id": link.hypothesis_id, "stance": link.stance.value}
        for obs_id, item in ided
        for link in item.links
    ]
    return tags, links


def new_observation_rows(items: Sequence[NewObservation], now: datetime) -> list[tuple[sa.Table, list[Any]]]:
    """Every row :func:`insert_observations` writes for ``items`` (observations, tags, links, the
    change log, index tasks), table by table, parents first: for a writer without an ORM session
    (api/create_group.py; its session's bookkeeping cost a grouped create more than the INSERTs)."""
    ided = [(item.values["id"], item) for item in items]
    tags, links = _tag_and_link_rows(ided)
    text_ids = [str(obs_id) for obs_id, _item in ided]
    changes = new_record_rows(
        ChangeType.observation,
        [(text, item.values["stint_id"]) for text, (_, item) in zip(text_ids, ided, strict=True)],
        now,
    )
    return [
        (Observation.__table__, [item.values for item in items]),  # type: ignore[attr-defined]
        (ObservationTag.__table__, tags),  # type: ignore[attr-defined]
        (ObservationHypothesis.__table__, links),  # type: ignore[attr-defined]
        (SyncChange.__table__, changes),  # type: ignore[attr-defined]
        (SearchTask.__table__, new_task_rows("observation", text_ids, now)),  # type: ignore[attr-defined]
    ]


def _insert_rows(
    session: Session, items: Sequence[NewObservation], now: datetime, *, with_observations: bool
) -> None:
    """What :func:`new_observation_rows` builds, through the session: the rows that come with new
    observations (tags, links) inserted, the change log's and index tasks' noted for the commit."""
    if not items:
        return
    for table, rows in new_observation_rows(items, now):
        if table is _CHANGES:
            record_new_rows(session, rows)  # written as the transaction commits
        elif table is _TASKS:
            record_task_rows(session, rows)
        elif with_observations or table is not _OBSERVATIONS:
            insert_many(session, table, rows)


def same_create(
    existing: Observation, stint_id: uuid.UUID, author_id: uuid.UUID, body: ObservationCreate
) -> bool:
    """Is this create a retry of the one that made ``existing`` (tags in any order)?"""
    return (
        existing.stint_id == stint_id
        and existing.author_id == author_id
        and body.is_create_of(existing.create_hash)
    )


def apply_update(
    session: Session,
    obs: Observation,
    timezone: str,
    body: ObservationUpdate,
    *,
    restore: bool = False,
    live: set[uuid.UUID] | None = None,
) -> bool:
    """Apply an edit as the next version of ``obs`` (``restore``: and undelete it). An edit that
    changes nothing writes nothing: no new version, nothing in the change log. False, with nothing
    written, when someone else wrote a newer version first. Invalid for links outside the stint
    (``live``: the stint's live hypotheses, when the caller knows them)."""
    values: dict[str, Any] = {}
    sent = body.model_dump(
        exclude_unset=True, exclude={"tags", "hypothesis_ids", "hypothesis_links", "observed_at"}
    )
    for field, value in sent.items():
        plain = value.value if isinstance(value, Enum) else value
        if getattr(obs, field) != plain:
            values[field] = plain
    moment = body.observed_at
    # A change is what would be answered differently: the instant, or the offset it is shown in.
    if moment is not None and not same_time_as_recorded(moment, obs.observed_at, obs.observed_offset_minutes):
        values["observed_at"] = moment
        values["observed_offset_minutes"] = offset_minutes(moment)
        values["day"] = log_day(moment, timezone)
    if restore:
        values["deleted_at"] = None
    links = body.links()
    before: dict[uuid.UUID, HypothesisLink] = {}
    if links is not None:
        links = usable_links(session, obs.stint_id, links, live)
        before = current_links(session, obs)
        if {link.hypothesis_id: link for link in links} == before:
            links = None
    tags = body.tags
    if tags is not None:
        saved = session.exec(select(ObservationTag.tag).where(ObservationTag.observation_id == obs.id)).all()
        if set(saved) == set(tags):
            tags = None
    if not values and tags is None and links is None:
        return True  # nothing to change
    if not write_version(session, obs, values):
        return False
    if tags is not None:
        _set_tags(session, obs, tags)
    if links is not None:
        _set_links(session, obs, before, links)
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
