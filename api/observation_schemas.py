"""What observations look like on the wire: create and edit bodies, the answer, a page."""

import hashlib
import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from json.encoder import encode_basestring
from typing import Annotated, Any, Self

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, TypeAdapter, model_validator
from sqlmodel import Session, col

from api.fields import Tags, Text, fingerprint
from api.models import (
    Hypothesis,
    Observation,
    ObservationDimension,
    ObservationHypothesis,
    ObservationKind,
    ObservationTag,
    Stance,
)
from api.users import user_names

MAX_TEXT = 10_000
MAX_QUOTE = 2_000

# The instants an observed_at may name. A technical range, not a plausibility check: every instant in
# it has a day in any timezone (near year 1 or 9999 that arithmetic overflows), and a phone whose
# clock was reset (1970, 2001) still gets its note saved, to be corrected by an edit, rather than
# refused while offline; such a note shows on a day outside the stint.
EARLIEST_OBSERVED = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_OBSERVED = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST_OBSERVED <= moment < LATEST_OBSERVED:
        raise ValueError("observed_at must lie between 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z")
    return moment


ObservedAt = Annotated[AwareDatetime, AfterValidator(_in_range)]


def offset_minutes(moment: datetime) -> int:
    """The UTC offset ``moment`` was written with, in minutes east of UTC (ISO 8601 offsets are
    whole minutes)."""
    offset = moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds()) // 60


def as_recorded(instant: datetime, offset: int | None) -> datetime:
    """The stored instant in the offset it was recorded with; in UTC when that is not known."""
    if not offset:
        return instant.astimezone(UTC)
    try:
        return instant.astimezone(timezone(timedelta(minutes=offset)))
    except OverflowError:  # an instant at the very edge of datetime (imported): shown in UTC
        return instant.astimezone(UTC)


def same_time_as_recorded(moment: datetime, instant: datetime, offset: int | None) -> bool:
    """Would ``moment`` be answered exactly as the stored ``instant`` and ``offset`` are: the same
    instant and the same offset (an unknown one is answered as UTC)?"""
    return moment == instant and offset_minutes(moment) == (offset or 0)


# Create fingerprints stored before tags were sorted are matched in every order of this many tags or
# fewer: 4! = 24 hashes, ~6 ms for the longest note (0.1 ms for a usual one), and only on the way to
# a 409 (a push of a thousand such ops must not take minutes). Notes rarely carry more tags.
LEGACY_TAG_ORDERS = 4


class HypothesisLink(BaseModel):
    model_config = {"extra": "forbid"}

    hypothesis_id: uuid.UUID
    stance: Stance = Stance.supports


class _ObservationFields(BaseModel):
    model_config = {"extra": "forbid"}

    kind: ObservationKind | None = None
    observed_at: ObservedAt | None = Field(
        default=None,
        description="When the phone recorded it, with its UTC offset; kept as recorded. "
        "From 1900-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z, else 422",
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


# The fingerprint's values as json.dumps writes them (strings: ``encode_basestring`` is json's own
# encoder when ensure_ascii is off) and times as pydantic's model_dump(mode="json") gives them.
_INSTANT = TypeAdapter(AwareDatetime)


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


# The serializer itself: dump_python's Python wrapper cost as much again (~0.3 us a create).
_INSTANT_JSON = _INSTANT.serializer.to_python


def _json_instant(value: datetime | None) -> str:
    return "null" if value is None else encode_basestring(_INSTANT_JSON(value, mode="json"))


def _link_json(link: HypothesisLink) -> str:
    return f'{{"hypothesis_id": "{link.hypothesis_id}", "stance": "{link.stance.value}"}}'


class ObservationCreate(_ObservationFields):
    id: uuid.UUID | None = Field(default=None, description="Chosen by the client; a retry with it is safe")
    text: Text(MAX_TEXT, min_length=1)  # type: ignore[valid-type]

    def fingerprint(self) -> str:
        """SHA-256 of the create, stored as the observation's ``create_hash``. Tags are a set to
        users: sorted here, so a retry that sends them in another order is the same create. The
        time is as sent: the same instant in another offset would be shown otherwise, another create.

        The text hashed is ``fields.fingerprint``'s JSON of ``_fingerprint_body()`` (keys sorted,
        json's default separators), written out field by field: a sync push computes a thousand, and
        dumping the model and sorting its keys cost more than the hash (tests/test_fingerprints.py
        compares the two forms on generated creates)."""
        tags = None if self.tags is None else sorted(self.tags)
        links = self.links() or []
        text = (
            f'{{"dimension": {_json_text(self.dimension)}, "kind": {_json_text(self.kind)}, '
            f'"links": [{", ".join(map(_link_json, links))}], '
            f'"observed_at": {_json_instant(self.observed_at)}, "quote": {_json_text(self.quote)}, '
            f'"speaker_name": {_json_text(self.speaker_name)}, '
            f'"speaker_role": {_json_text(self.speaker_role)}, '
            f'"tags": {"null" if tags is None else "[" + ", ".join(map(encode_basestring, tags)) + "]"}, '
            f'"text": {encode_basestring(self.text)}}}'
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def is_create_of(self, stored: str) -> bool:
        """Is ``stored`` (a ``create_hash``) this create's fingerprint? Those stored before tags were
        sorted hold them in the order that create sent them, so every order is tried, up to
        ``LEGACY_TAG_ORDERS`` tags (beyond, only the order sent now): a phone retrying an old create
        with its tags reordered is still told it is the same one."""
        if stored == self.fingerprint():
            return True
        body = self._fingerprint_body()
        tags: list[str] = body["tags"] or []
        if len(tags) < 2:  # nothing to reorder: the old form is the new one
            return False
        orders = itertools.permutations(tags) if len(tags) <= LEGACY_TAG_ORDERS else [tags]
        return any(stored == fingerprint(body | {"tags": list(order)}) for order in orders)

    def _fingerprint_body(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"id", "hypothesis_ids", "hypothesis_links"})
        body["links"] = [link.model_dump(mode="json") for link in self.links() or []]
        return body


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
    observed_at: datetime = Field(
        description="As the phone recorded it, with its UTC offset (in UTC when not known)"
    )
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
            )
            # Links to deleted hypotheses are kept but not shown (see observation_writes.current_links).
            .join(Hypothesis, col(Hypothesis.id) == col(ObservationHypothesis.hypothesis_id))
            .where(col(ObservationHypothesis.observation_id).in_(ids), col(Hypothesis.deleted_at).is_(None))
        ):
            links[obs_id].append(HypothesisLink(hypothesis_id=hypothesis_id, stance=Stance(stance)))
        names = user_names(session, {o.author_id for o in rows})
    return [observation_out(o, names.get(o.author_id, ""), tags[o.id], links[o.id]) for o in rows]


def observation_out(
    obs: Observation, author_name: str, tags: Sequence[str], links: Sequence[HypothesisLink]
) -> ObservationOut:
    """One observation's answer from its row, tags, links and author's name, in the order the
    database read gives them (see :func:`observations_out`)."""
    return new_observation_out(obs.model_dump(), author_name, tags, links)


_NOT_ANSWERED = frozenset({"deleted_at", "create_hash", "observed_offset_minutes"})


def new_observation_out(
    values: Mapping[str, Any], author_name: str, tags: Sequence[str], links: Sequence[HypothesisLink]
) -> ObservationOut:
    """The same answer from the observation's column values (those a create inserts): building
    the row object only to read them back cost a capture request ~0.26 ms (~0.02 ms now)."""
    fields = {key: value for key, value in values.items() if key not in _NOT_ANSWERED}
    fields["observed_at"] = as_recorded(values["observed_at"], values["observed_offset_minutes"])
    return ObservationOut(
        **fields,
        author_name=author_name,
        tags=sorted(tags),
        hypothesis_links=sorted(links, key=lambda link: str(link.hypothesis_id)),
        deleted=values["deleted_at"] is not None,
    )
