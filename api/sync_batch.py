"""What one sync push works with: the op as sent, its outcome, and the batch's caches (stints the
caller may write to, live hypotheses, observations read once, creates collected to be inserted
together). The handlers for each kind of record are in ``api.sync_ops``."""

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, col, select

from api import idempotency
from api.access import StintAccess, stint_access
from api.db import existing
from api.errors import Invalid, NotFound
from api.models import Hypothesis, Observation, Role, User
from api.observation_writes import NewObservation, StintClock, insert_observations

_OBSERVATION: sa.Table = Observation.__table__  # type: ignore[attr-defined]


class OpType(StrEnum):
    observation = "observation"
    daily_summary = "daily_summary"
    hypothesis_link = "hypothesis_link"
    material = "material"


class OpIn(BaseModel):
    """One change made on a device. ``base_version``: the version it was made against (null: a create)."""

    model_config = {"extra": "forbid"}

    # No NUL: PostgreSQL cannot store it (and no device makes one).
    op_id: str = Field(
        min_length=1, max_length=100, pattern=r"^[^\x00]*$", description="Unique per device and change"
    )
    type: OpType
    id: str = Field(
        min_length=1,
        max_length=200,
        description="observation: its UUID; daily_summary: {stint_id}:{author_id}:{YYYY-MM-DD}; "
        "hypothesis_link: the observation's UUID; material: its UUID (uploaded first)",
    )
    op: Literal["upsert", "delete"]
    base_version: int | None = Field(default=None, ge=0)
    data: dict[str, Any] | None = None


class FieldChange(BaseModel):
    field: str
    server: Any
    yours: Any


class Outcome(BaseModel):
    status: Literal["applied", "duplicate", "conflict"]
    version: int | None = None
    deleted: bool = False
    current: dict[str, Any] | None = None
    mine: dict[str, Any] | None = None
    changes: list[FieldChange] | None = None


@dataclass(frozen=True)
class _Clock:
    id: uuid.UUID
    timezone: str


_UNKNOWN = object()  # an observation not looked up yet (None: looked up, not there)


@dataclass
class Batch:
    """What one push knows while applying its ops in order: caches, and creates not yet inserted
    (consecutive creates are inserted together)."""

    session: Session
    user: User
    now: datetime
    careful: bool
    observations: dict[uuid.UUID, Observation | None] = field(default_factory=dict)
    _access: dict[uuid.UUID, StintAccess | None] = field(default_factory=dict)
    _hypotheses: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    _creates: dict[uuid.UUID, NewObservation] = field(default_factory=dict)
    _stint_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    _uuids: dict[str, uuid.UUID] = field(default_factory=dict)
    _writable: dict[uuid.UUID, StintAccess] = field(default_factory=dict)
    _clocks: dict[uuid.UUID, "_Clock"] = field(default_factory=dict)
    user_id: uuid.UUID = field(init=False)  # the user's, read once (an ORM attribute is a Python call)

    def __post_init__(self) -> None:
        self.user_id = self.user.id

    def record_id(self, value: str, what: str) -> uuid.UUID:
        """A record's id as a UUID, parsed once per batch (the preload and the op's handler both ask)."""
        if (found := self._uuids.get(value)) is None:
            found = self._uuids[value] = uuid_of(value, what)
        return found

    def stint_id(self, raw: object) -> uuid.UUID:
        """The stint an op names (a batch's ops mostly name the same one: parsed once)."""
        text = str(raw)
        if (found := self._stint_ids.get(text)) is None:
            found = self._stint_ids[text] = uuid_of(text, "a stint")
        return found

    def preload(self, ids: set[uuid.UUID]) -> None:
        ids = ids - self.observations.keys()
        if not ids:
            return
        # Which exist first (a push's creates: none), then only those loaded.
        there = existing(self.session, _OBSERVATION.c.id, ids)
        # None for each, then those found (dict.fromkeys reuses the set's hashes).
        self.observations.update(dict.fromkeys(ids))
        if there:
            query = select(Observation).where(col(Observation.id).in_(there))
            self.observations.update({o.id: o for o in self.session.exec(query)})

    def observation(self, obs_id: uuid.UUID) -> Observation | None:
        if self._creates and obs_id in self._creates:
            self.flush()
        # One lookup for the usual case, known (a UUID's hash is computed in Python, each time).
        found = self.observations.get(obs_id, _UNKNOWN)
        if found is _UNKNOWN:
            self.preload({obs_id})
            return self.observations[obs_id]
        return found  # type: ignore[return-value]

    def access(self, stint_id: uuid.UUID) -> StintAccess:
        if stint_id not in self._access:
            try:
                self._access[stint_id] = stint_access(self.session, stint_id, self.user)
            except NotFound:
                self._access[stint_id] = None
        found = self._access[stint_id]
        if found is None:
            raise NotFound("No such stint.", code="stint_not_found")
        return found

    def writable(self, stint_id: uuid.UUID) -> StintAccess:
        """As :meth:`access`, for a researcher or more (asked once per stint, not once per create)."""
        if (found := self._writable.get(stint_id)) is None:
            found = self.access(stint_id)
            found.require(Role.researcher)
            self._writable[stint_id] = found
        return found

    def clock(self, stint_id: uuid.UUID) -> StintClock:
        """What a create needs of its stint (one the caller may write to, see :meth:`writable`), as
        plain values: read from the Stint once, not twice per create (an ORM attribute is a call)."""
        if (found := self._clocks.get(stint_id)) is None:
            stint = self.writable(stint_id).stint
            found = self._clocks[stint_id] = _Clock(stint.id, stint.timezone)
        return found

    def hypotheses(self, stint_id: uuid.UUID) -> set[uuid.UUID]:
        if stint_id not in self._hypotheses:
            self._hypotheses[stint_id] = set(
                self.session.exec(
                    select(Hypothesis.id).where(
                        Hypothesis.stint_id == stint_id, col(Hypothesis.deleted_at).is_(None)
                    )
                )
            )
        return self._hypotheses[stint_id]

    def create(self, obs_id: uuid.UUID, new: NewObservation) -> None:
        self._creates[obs_id] = new
        if self.careful:
            self.flush()

    def flush(self) -> None:
        """Insert the creates collected so far."""
        if not self._creates:
            return
        ids, creates, self._creates = list(self._creates), list(self._creates.values()), {}
        insert_observations(self.session, creates, self.now)
        pop = self.observations.pop
        for obs_id in ids:  # read again when asked for
            pop(obs_id, None)


def _op_hash(canonical: str) -> str | None:
    """SHA-256 of an op's canonical JSON; None when the op holds a lone surrogate: JSON may write one
    (``"\\ud800"``), but it is no character, cannot be stored, and the op is refused."""
    try:
        return hashlib.sha256(canonical.encode()).hexdigest()
    except UnicodeEncodeError:
        return None


def hashes(raw_ops: list[Any], *, plain: bool = False) -> tuple[list[str | None], str]:
    """Each op's hash (see :func:`_op_hash`) of its canonical JSON (keys sorted, no spaces: the same
    op whatever its key order), and the request's (``idempotency.fingerprint`` of ``{"ops": raw_ops}``,
    built from the ops' canonical JSON instead of encoding a thousand ops twice; ``surrogatepass``
    changes nothing for any other text). ``plain``: as read by ``idempotency.read_json``, which
    found nothing orjson writes otherwise than json."""
    sha256 = hashlib.sha256
    # Through orjson when it writes the same bytes (~0.3 ms for a thousand ops, ~3.9 ms with json).
    encoded = idempotency.canonical_bytes(raw_ops, plain=plain)
    if encoded is None:
        canonical = list(map(idempotency.CANONICAL_JSON.encode, raw_ops))
        try:
            encoded = [text.encode() for text in canonical]
        except UnicodeEncodeError:  # an op holds a lone surrogate: each op on its own
            request = ('{"ops":[' + ",".join(canonical) + "]}").encode("utf-8", "surrogatepass")
            return [_op_hash(c) for c in canonical], sha256(request).hexdigest()
    # The same bytes as above, without encoding the ops' text a second time.
    request_hash = sha256(b'{"ops":[' + b",".join(encoded) + b"]}").hexdigest()
    return [sha256(data).hexdigest() for data in encoded], request_hash


def uuid_of(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(f"id: {what} is identified by a UUID.", code="invalid_id") from None


def invalid(exc: ValidationError, where: str = "data") -> Invalid:
    details = [
        {"loc": [where, *e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    first = details[0] if details else {"loc": [where], "msg": "not valid"}
    path = ".".join(str(p) for p in first["loc"])
    return Invalid(f"{path}: {str(first['msg']).removeprefix('Value error, ')}", details=details)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """``model.model_validate(data)``, through the model's validator itself (what model_validate
    calls with its defaults; ~0.4 us less per op of a push), or Invalid with the REST API's details."""
    try:
        found: M = model.__pydantic_validator__.validate_python(data)
    except ValidationError as exc:
        raise invalid(exc) from None
    return found


def diff(current: dict[str, Any], mine: dict[str, Any]) -> list[FieldChange]:
    out = []
    for name, yours in mine.items():
        if name not in current:
            continue
        server = current[name]
        if name == "observed_at" and server and yours:
            # The same instant in another offset is shown as another time: a change.
            ours, theirs = datetime.fromisoformat(str(server)), datetime.fromisoformat(str(yours))
            same = ours == theirs and ours.utcoffset() == theirs.utcoffset()
        elif name == "tags" and isinstance(server, list) and isinstance(yours, list):
            same = sorted(server) == sorted(yours)  # a set: another order is no change
        else:
            same = server == yours
        if not same:
            out.append(FieldChange(field=name, server=server, yours=yours))
    return out


def conflict(current: dict[str, Any] | None, version: int, mine: dict[str, Any]) -> Outcome:
    return Outcome(
        status="conflict",
        version=version,
        deleted=current is None,
        current=current,
        mine=mine,
        changes=diff(current or {}, mine),
    )
