"""``Idempotency-Key`` (IETF httpapi draft): a retried request gets the first answer back.

Missing key: 400. Same key, other body: 422. Same key while the first is still running: 409.
Same key and body after it finished: the stored answer, replayed. Keys are kept 30 days, since a
phone may retry a sync made at a customer site weeks later.

The claim is committed on its own before the work starts, so a concurrent retry sees it; the stored
answer is written in the same transaction as the work, so an answer exists exactly when the work
was committed. A claim whose worker died is taken over after ``CLAIM_TIMEOUT``, and ``fieldbook serve``
releases every unfinished claim before its workers start (a killed server's retries go through at
once instead of answering 409 for the timeout)."""

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col

import api.models  # noqa: F401  (sets the constraint naming convention before these tables)
from api.db import UTCDateTime, utcnow
from api.errors import BadRequest, Conflict, Invalid

KEEP_KEYS = timedelta(days=30)
# A push of a thousand ops takes well under a second; a minute covers a very busy server.
CLAIM_TIMEOUT = timedelta(minutes=1)
MAX_KEY_LENGTH = 255


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"

    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    endpoint: str = Field(max_length=100)
    request_hash: str = Field(max_length=64)
    # None while the first request is running.
    status_code: int | None = None
    response: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False, index=True)
    )
    claimed_until: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: Any


# Built once: json.dumps with options other than the defaults builds a new encoder per call.
# No check for circular references: what is encoded was parsed from JSON, which has none (~0.3 us
# less per op of a sync push; the bytes are the same).
CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False
)
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _orjson_writes_as_json(values: Any) -> bool:
    """True when orjson's bytes for ``values`` are exactly those of the encoders above: nothing but
    dicts, lists, strings, ints, bools and None. orjson writes some floats otherwise (1e-05 as
    0.00001, NaN as null) and serialises types json refuses (UUIDs, datetimes); ints beyond 64 bits,
    lone surrogates and keys that are not strings it refuses, which the callers catch."""
    stack = [values]
    pop, extend = stack.pop, stack.extend
    while stack:  # a loop, not recursion: a push's thousand ops hold ~13,000 values
        value = pop()
        kind = type(value)
        if kind is str:
            continue
        if kind is dict:
            extend(value.values())
        elif kind is list:
            extend(value)
        elif kind is not int and kind is not bool and value is not None:
            return False
    return True


def read_json(body: bytes) -> tuple[Any, bool]:
    """``json.loads(body)``, through orjson when that reads the same value (a sync push's ~380 KB:
    ~0.75 ms instead of ~1.6 ms); and whether the value is one orjson writes as json does (see
    :func:`_orjson_writes_as_json`), so that :func:`canonical_bytes` need not look again. orjson
    reads ints past 64 bits as floats, and refuses NaN, Infinity, lone surrogates, a byte order
    mark and other encodings than UTF-8, all of which json takes: such a body (or one that is no
    JSON at all) is read by json, its errors included."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body), False
    if _orjson_writes_as_json(value):  # no float: nothing orjson may have read otherwise
        return value, True
    return json.loads(body), False


def canonical_bytes(values: list[Any], *, plain: bool = False) -> list[bytes] | None:
    """Each value's ``CANONICAL_JSON`` as UTF-8, or None when orjson cannot give the same bytes
    (see :func:`_orjson_writes_as_json`, not asked again when ``plain``: :func:`read_json` said so;
    a lone surrogate is not even UTF-8). ~8x faster than encoding a sync push's ops with json, the
    hashes of which are stored (tests/test_sync_hashes.py)."""
    if not plain and not _orjson_writes_as_json(values):
        return None
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    try:
        return [dumps(value, option=sort_keys) for value in values]
    except orjson.JSONEncodeError:
        return None


def compact_json(body: Any, *, plain: bool = False) -> str:
    """``body`` as compact JSON (no spaces, non-ASCII as is): through orjson when that gives the
    same text (a sync push's answer: ~1.1 ms less for a thousand results). ``plain``: the caller
    knows it holds only what orjson writes as json does (see :func:`_orjson_writes_as_json`)."""
    if plain or _orjson_writes_as_json(body):
        with contextlib.suppress(orjson.JSONEncodeError):
            return orjson.dumps(body).decode()
    return _COMPACT_JSON.encode(body)


def fingerprint(payload: Any) -> str:
    """The same JSON body whatever its key order or spacing."""
    return hashlib.sha256(CANONICAL_JSON.encode(payload).encode()).hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadRequest(
            "Send an Idempotency-Key header (a new random value per batch, the same one on every retry).",
            code="idempotency_key_missing",
        )
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"The Idempotency-Key is at most {MAX_KEY_LENGTH} printable characters.",
            code="idempotency_key_invalid",
        )
    return key


# Core statements on the table, built once: the claim and the answer went through the ORM's
# identity map, unit of work and bulk-update machinery, ~1.5 ms of a sync push's ~2.5 ms claim.
_KEYS: sa.Table = IdempotencyKey.__table__  # type: ignore[attr-defined]
_THIS_KEY = (_KEYS.c.user_id == sa.bindparam("k_user_id"), _KEYS.c.key == sa.bindparam("k_key"))
_EXPIRE = sa.delete(_KEYS).where(_KEYS.c.created_at < sa.bindparam("before"))
_FIND = sa.select(
    _KEYS.c.endpoint, _KEYS.c.request_hash, _KEYS.c.status_code, _KEYS.c.response, _KEYS.c.claimed_until
).where(*_THIS_KEY)
_CLAIM = sa.insert(_KEYS)
_TAKE_OVER = sa.update(_KEYS).where(*_THIS_KEY).values(claimed_until=sa.bindparam("until"))
_COMPLETE = (
    sa.update(_KEYS)
    .where(*_THIS_KEY)
    .values(status_code=sa.bindparam("status"), response=sa.bindparam("body"), claimed_until=None)
)


def _find(session: Session, user_id: uuid.UUID, key: str) -> sa.Row[Any] | None:
    return session.execute(_FIND, {"k_user_id": user_id, "k_key": key}).first()


def claim(
    session: Session, user_id: uuid.UUID, key: str, endpoint: str, request_hash: str
) -> StoredAnswer | None:
    """Claim the key for this request and commit. Returns the stored answer of a finished request
    with this key; raises 422 (other body) or 409 (still running)."""
    now = utcnow()
    session.execute(_EXPIRE, {"before": now - KEEP_KEYS})
    row = _find(session, user_id, key)
    if row is None:
        try:
            session.execute(
                _CLAIM,
                {
                    "user_id": user_id,
                    "key": key,
                    "endpoint": endpoint,
                    "request_hash": request_hash,
                    "status_code": None,
                    "response": None,
                    "created_at": now,
                    "claimed_until": now + CLAIM_TIMEOUT,
                },
            )
            session.commit()
        except sa.exc.IntegrityError:
            # A concurrent request with the same key claimed it first (PostgreSQL).
            session.rollback()
            row = _find(session, user_id, key)
            if row is None:
                raise
        else:
            return None
    if row.endpoint != endpoint or row.request_hash != request_hash:
        session.rollback()
        raise Invalid(
            "This Idempotency-Key was already used for another request; use a new key for each new request.",
            code="idempotency_key_reused",
        )
    if row.status_code is not None and row.response is not None:
        session.rollback()
        return StoredAnswer(row.status_code, json.loads(row.response))
    if row.claimed_until is not None and row.claimed_until > now:
        session.rollback()
        raise Conflict(
            "The first request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_key_in_use",
            headers={"Retry-After": "2"},
        )
    # The first attempt died without committing any work: this retry takes over.
    session.execute(_TAKE_OVER, {"k_user_id": user_id, "k_key": key, "until": now + CLAIM_TIMEOUT})
    session.commit()
    return None


def complete(
    session: Session, user_id: uuid.UUID, key: str, status_code: int, body: Any, *, plain: bool = False
) -> str:
    """Store the answer in the caller's transaction, the one holding the work; returns it as JSON
    (``plain``: see :func:`compact_json`)."""
    encoded = compact_json(body, plain=plain)
    session.execute(_COMPLETE, {"k_user_id": user_id, "k_key": key, "status": status_code, "body": encoded})
    return encoded


@contextlib.contextmanager
def released_on_failure(session: Session, user_id: uuid.UUID, key: str | None) -> Iterator[None]:
    """Around a claimed request's work: if it fails, free the key so a retry runs at once (if even
    that fails, the claim times out on its own). ``key`` None: the request had no key."""
    try:
        yield
    except BaseException:
        if key is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                release(session, user_id, key)
        raise


def release(session: Session, user_id: uuid.UUID, key: str) -> None:
    """The work failed and was rolled back: free the key so a retry runs at once."""
    session.rollback()
    session.execute(
        sa.delete(IdempotencyKey).where(
            col(IdempotencyKey.user_id) == user_id,
            col(IdempotencyKey.key) == key,
            col(IdempotencyKey.status_code).is_(None),
        )
    )
    session.commit()


def release_unfinished(session: Session) -> int:
    """Free every claim whose request never finished: at server start none is running any more
    (another server on the same database may be: its retry then runs again, and the ops' own ids
    keep it from applying anything twice). Returns how many were freed."""
    freed = session.execute(sa.delete(IdempotencyKey).where(col(IdempotencyKey.status_code).is_(None)))
    session.commit()
    count: int = freed.rowcount  # type: ignore[attr-defined]
    return count
