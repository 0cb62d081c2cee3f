"""``POST /api/sync/push``: a phone's outbox, applied op by op.

Every op gets its own result; one bad op does not sink the batch. An op already applied (same
``op_id``, also from an earlier batch) answers ``duplicate`` with its first result. The whole
request is idempotent under its ``Idempotency-Key`` (see ``api.idempotency``).

The batch first runs without savepoints, consecutive creates inserted together; ops are checked
before anything is written, so a rejected op leaves nothing behind. Should the database still refuse
a write (a concurrent push of the same record on PostgreSQL), the batch is rolled back and run again
op by op, each in its own savepoint."""

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, col, select

import api.models  # noqa: F401  (sets the constraint naming convention before these tables)
from api import idempotency
from api.changelog import pending_mark, pending_restore, purge_tombstones
from api.db import SessionDep, UTCDateTime, existing, insert_many, utcnow
from api.errors import AppError, Invalid, responses
from api.models import User
from api.sync_batch import Batch, FieldChange, OpIn, OpType, Outcome, hashes, invalid
from api.sync_ops import CREATED, apply, refuse
from api.sync_request import Pusher, PushRoute

router = APIRouter(prefix="/api/sync", tags=["sync"], route_class=PushRoute)


MAX_OPS = 1000
_ENDPOINT = "POST /api/sync/push"


class SyncOp(SQLModel, table=True):
    """An op applied for a user, by ``op_id``: a re-sent op answers ``duplicate``. Kept as long as
    Idempotency-Keys are."""

    __tablename__ = "sync_op"

    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", primary_key=True, ondelete="CASCADE")
    op_id: str = SQLField(primary_key=True, max_length=100)
    op_hash: str = SQLField(max_length=64)
    # applied, or conflict: a refused op stays refused; the device resolves with a new op.
    status: str = SQLField(max_length=16)
    version: int | None = None
    deleted: bool = False
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False, index=True)
    )


# Core inserts: no ORM bookkeeping for a thousand rows.
_SYNC_OP: sa.Table = SyncOp.__table__  # type: ignore[attr-defined]


class PushIn(BaseModel):
    model_config = {"extra": "forbid"}

    ops: list[Any] = Field(
        max_length=MAX_OPS,
        description="Each: {op_id, type: observation/daily_summary/hypothesis_link/material, id, "
        "op: upsert/delete, base_version, data}; each is checked on its own",
    )


class OpError(BaseModel):
    status: int = Field(description="The HTTP status the REST API answers with for this error")
    code: str
    message: str
    details: Any = None


class OpResult(BaseModel):
    index: int
    op_id: str | None
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    version: int | None = None
    deleted: bool | None = None
    current: dict[str, Any] | None = Field(default=None, description="conflict: the server's copy")
    mine: dict[str, Any] | None = Field(default=None, description="conflict: what you sent")
    changes: list[FieldChange] | None = Field(default=None, description="conflict: fields that differ")
    error: OpError | None = None


class PushOut(BaseModel):
    results: list[OpResult]


def _readable(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (see :func:`api.sync_batch.hashes`)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unreadable() -> Invalid:
    return Invalid(
        "A text in this op holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character.",
        code="invalid_text",
    )


Result = dict[str, Any]  # an OpResult as JSON: built directly, a push answers a thousand of them


def _answer(index: int, op_id: str | None, status: str, **fields: Any) -> Result:
    return {
        "index": index,
        "op_id": op_id,
        "status": status,
        "version": None,
        "deleted": None,
        "current": None,
        "mine": None,
        "changes": None,
        "error": None,
        **fields,
    }


def _rejected(index: int, op_id: str | None, exc: AppError) -> Result:
    error = OpError(status=exc.status_code, code=exc.code, message=exc.message, details=exc.details)
    return _answer(index, op_id, "rejected", error=error.model_dump(mode="json"))


_CREATED_ANSWER = _answer(0, None, "applied", version=1, deleted=False)
del _CREATED_ANSWER["index"], _CREATED_ANSWER["op_id"]


def _result(index: int, op_id: str, outcome: Outcome) -> Result:
    if outcome is CREATED:  # most of a push: no keywords to merge
        return {"index": index, "op_id": op_id, **_CREATED_ANSWER}
    if outcome.status == "conflict":
        return _answer(index, op_id, **outcome.model_dump(mode="json"))
    return _answer(index, op_id, outcome.status, version=outcome.version, deleted=outcome.deleted)


_PLAIN_ANSWERS = frozenset(("applied", "duplicate"))


# The whole batch in one call (~30 % less than a thousand model_validate calls); a batch with an
# invalid op is validated again op by op, for each op's own result.
_OPS = TypeAdapter(list[OpIn])


def _parse(raw_ops: list[Any]) -> list[OpIn | AppError]:
    with contextlib.suppress(ValidationError):
        return list(_OPS.validate_python(raw_ops))
    parsed: list[OpIn | AppError] = []
    for raw in raw_ops:
        try:
            parsed.append(OpIn.model_validate(raw))
        except ValidationError as exc:
            parsed.append(invalid(exc, where="op"))
    return parsed


def _run(
    session: Session, user: User, raw_ops: list[Any], op_hashes: list[str | None], *, careful: bool
) -> list[Result]:
    parsed = [
        op if op_hash is not None else _unreadable()
        for op, op_hash in zip(_parse(raw_ops), op_hashes, strict=True)
    ]
    ops = [op for op in parsed if isinstance(op, OpIn)]
    user_id = user.id  # read once: an ORM attribute costs a Python call each time
    # Which op ids were seen first (a new batch's: none), then only those loaded. Each is kept as
    # the row it was recorded with (op_hash, status, version, deleted), as are the batch's own.
    seen = existing(session, _SYNC_OP.c.op_id, {op.op_id for op in ops}, {"user_id": user_id})
    query = select(SyncOp).where(SyncOp.user_id == user_id, col(SyncOp.op_id).in_(seen))
    done: dict[str, dict[str, Any]] = {
        r.op_id: {"op_hash": r.op_hash, "status": r.status, "version": r.version, "deleted": r.deleted}
        for r in (session.exec(query) if seen else ())
    }
    batch = Batch(session=session, user=user, now=utcnow(), careful=careful)
    # An op's observation id, parsed before the batch starts: read them all at once. (``is``, not
    # ``in`` a set: an enum member's hash is a Python call.)
    ids = set()
    for op in ops:
        if op.type is OpType.observation or op.type is OpType.hypothesis_link:
            try:  # noqa: SIM105 (contextlib.suppress: a context manager per op)
                ids.add(batch.record_id(op.id, "an observation"))
            except Invalid:
                pass  # rejected by its handler
    batch.preload(ids)
    results: list[Result] = []
    records: list[dict[str, Any]] = []
    # A record with a conflicting op: the batch's later ops on it were made on top of the refused one.
    refused: set[tuple[OpType, str]] = set()
    for index, (raw, parsed_op, op_hash) in enumerate(zip(raw_ops, parsed, op_hashes, strict=True)):
        if isinstance(parsed_op, AppError):
            op_id = raw.get("op_id") if isinstance(raw, dict) else None
            readable = isinstance(op_id, str) and (op_hash is not None or _readable(op_id))
            results.append(_rejected(index, op_id if readable else None, parsed_op))
            continue
        assert op_hash is not None  # an op without one was refused above
        op = parsed_op
        first = done.get(op.op_id)
        if first is not None and (first["op_hash"] != op_hash or first["status"] == "applied"):
            if first["op_hash"] != op_hash:
                results.append(
                    _rejected(
                        index,
                        op.op_id,
                        Invalid(
                            "This op_id was already used for another change; give each change its own op_id.",
                            code="op_id_reused",
                        ),
                    )
                )
            else:
                results.append(
                    _answer(index, op.op_id, "duplicate", version=first["version"], deleted=first["deleted"])
                )
            continue
        blocked = first is not None or (
            bool(refused) and op.type is not OpType.hypothesis_link and (op.type, op.id) in refused
        )
        handler = refuse if blocked else apply
        if careful:
            result = _apply_carefully(batch, index, op, handler)
        else:
            try:
                result = _result(index, op.op_id, handler(batch, op))
            except AppError as exc:
                result = _rejected(index, op.op_id, exc)
        results.append(result)
        status = result["status"]
        if status == "conflict":
            refused.add((op.type, op.id))
        if first is None and (status == "applied" or status == "conflict"):
            record: dict[str, Any] = {
                "user_id": user_id,
                "op_id": op.op_id,
                "op_hash": op_hash,
                "status": status,
                "version": result["version"],
                "deleted": bool(result["deleted"]),
                "created_at": batch.now,
            }
            done[op.op_id] = record
            if careful:
                # A concurrent push of the same op (another key) may have recorded it first.
                with contextlib.suppress(sa.exc.IntegrityError), session.begin_nested():
                    session.execute(sa.insert(_SYNC_OP), [record])
            else:
                records.append(record)
    batch.flush()
    insert_many(session, _SYNC_OP, records)
    return results


def _apply_carefully(batch: Batch, index: int, op: OpIn, handler: Callable[[Batch, OpIn], Outcome]) -> Result:
    """One op in its own savepoint, written at once (the batch's second run, see :func:`run_batch`)."""
    session = batch.session
    for attempt in (1, 2):
        mark = pending_mark(session)
        savepoint = session.begin_nested()
        try:
            outcome = handler(batch, op)
            batch.flush()
            savepoint.commit()
            return _result(index, op.op_id, outcome)
        except AppError as exc:
            savepoint.rollback()
            pending_restore(session, mark)
            return _rejected(index, op.op_id, exc)
        except sa.exc.IntegrityError:
            # Someone else wrote this record at the same moment: look again, once.
            savepoint.rollback()
            pending_restore(session, mark)
            batch.observations.clear()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def run_batch(
    session: Session, user: User, raw_ops: list[Any], op_hashes: list[str | None] | None = None
) -> list[Result]:
    """Apply the ops in order, in the caller's transaction (a new one if none is under way)."""
    if op_hashes is None:
        op_hashes = hashes(raw_ops)[0]
    if not session.in_transaction():
        # The transaction holds only the batch: should the database refuse a write, rolling it back
        # undoes exactly what a savepoint would. On SQLite, writing inside a savepoint copies each
        # page it first changes to a sub-journal: ~8 ms of a 1,000-op push's ~30 ms of inserts.
        try:
            return _run(session, user, raw_ops, op_hashes, careful=False)
        except sa.exc.IntegrityError:
            session.rollback()
            return _run(session, user, raw_ops, op_hashes, careful=True)
    mark = pending_mark(session)
    attempt = session.begin_nested()
    try:
        results = _run(session, user, raw_ops, op_hashes, careful=False)
        attempt.commit()
        return results
    except sa.exc.IntegrityError:
        attempt.rollback()
        pending_restore(session, mark)
        session.expire_all()
        return _run(session, user, raw_ops, op_hashes, careful=True)


@router.post(
    "/push",
    response_model=PushOut,
    responses={
        **responses(400, 401, 409, 413, 422),
        200: {
            "model": PushOut,
            "description": "A result per op; a replay carries `Idempotent-Replayed: true`",
        },
    },
)
def push(
    body: PushIn,
    request: Request,
    session: SessionDep,
    user: Pusher,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="New per batch, the same on every retry")
    ] = None,
) -> Response:
    """Apply a device's changes. Each op answers applied, duplicate, conflict (with the server's copy,
    yours, and the fields that differ: resolve by pushing against the server's version) or rejected
    (with the REST API's error). Retry with the same Idempotency-Key until you get an answer."""
    key = idempotency.check_key(idempotency_key)
    # body.ops holds plain JSON values as parsed: hashed as they are, no model_dump of a thousand ops.
    op_hashes, request_hash = hashes(body.ops, plain=getattr(request.state, "plain_json", False))
    stored = idempotency.claim(session, user.id, key, _ENDPOINT, request_hash)
    if stored is not None:
        return JSONResponse(
            stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )
    with idempotency.released_on_failure(session, user.id, key):
        results = run_batch(session, user, body.ops, op_hashes)
        # Applied and duplicate ops answer with ids, numbers, flags and nulls only.
        plain = all(r["status"] in _PLAIN_ANSWERS for r in results)
        encoded = idempotency.complete(session, user.id, key, 200, {"results": results}, plain=plain)
        session.commit()
    _housekeeping(session)
    return Response(encoded, media_type="application/json")  # encoded once, for the store and the wire


_HOUSEKEEPING_EVERY = timedelta(minutes=10)
_last_housekeeping: list[datetime] = []


def _housekeeping(session: Session) -> None:
    """Forget op ids as old as the oldest keys kept, and purge tombstones past their retention:
    after a push, at most every ten minutes per process (the deletes use indexes, but each is a
    commit)."""
    now = utcnow()
    if _last_housekeeping and now - _last_housekeeping[0] < _HOUSEKEEPING_EVERY:
        return
    _last_housekeeping[:] = [now]
    try:
        session.execute(sa.delete(SyncOp).where(col(SyncOp.created_at) < utcnow() - idempotency.KEEP_KEYS))
        purge_tombstones(session)
        session.commit()
    except sa.exc.OperationalError:
        session.rollback()  # best effort: the next push tries again
