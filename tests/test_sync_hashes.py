"""The hashes a push stores (each op's in ``sync_op.op_hash``, the request's under its
Idempotency-Key) are SHA-256 of canonical JSON: keys sorted, no spaces, text as is. Stored in
databases, so their bytes must never change; computed here with plain ``json.dumps``."""

import hashlib
import json
import uuid

import sqlalchemy as sa

from api.idempotency import IdempotencyKey
from api.sync import SyncOp
from tests.test_sync import create_op, push
from tests.test_sync_unreadable import _push_raw


def _canonical_hash(value: object, errors: str = "strict") -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", errors)).hexdigest()


def _stored(app, key: str) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    with app.state.engine.connect() as conn:
        ops = dict(conn.execute(sa.select(SyncOp.op_id, SyncOp.op_hash)).all())
        request = conn.execute(
            sa.select(IdempotencyKey.request_hash).where(IdempotencyKey.key == key)
        ).scalar_one()
    return ops, request


def test_op_and_request_hashes_are_those_of_canonical_json(app, client, stint_team) -> None:  # type: ignore[no-untyped-def]
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    ops = [
        create_op(sid, "调度员说：“先手写，晚上补录” — 😀", tags=["排班", "Excel"], kind="quote"),
        {"data": {"text": "keys in another order", "stint_id": sid}, **create_op(sid, "x")},
        create_op(sid, "a float and nesting", observed_at="2026-03-02T09:15:00+08:00"),
    ]
    key = uuid.uuid4().hex
    r = push(client, who, ops, key)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["applied"] * 3
    stored, request = _stored(app, key)
    assert {op["op_id"]: stored[op["op_id"]] for op in ops} == {
        op["op_id"]: _canonical_hash(op) for op in ops
    }
    assert request == _canonical_hash({"ops": ops})


def test_a_request_with_a_lone_surrogate_is_hashed_as_written(app, client, stint_team) -> None:  # type: ignore[no-untyped-def]
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    good = create_op(sid, "正常的一条")
    bad = json.dumps(create_op(sid, "placeholder")).replace("placeholder", "\\ud800")
    key = uuid.uuid4().hex
    r = _push_raw(client, who, f"[{json.dumps(good)},{bad}]", key)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["applied", "rejected"]
    stored, request = _stored(app, key)
    assert stored[good["op_id"]] == _canonical_hash(good)
    assert request == _canonical_hash({"ops": [good, json.loads(bad)]}, "surrogatepass")


def test_numbers_orjson_writes_otherwise_are_hashed_as_json_writes_them(app, client, stint_team) -> None:  # type: ignore[no-untyped-def]
    """Floats json writes otherwise than orjson (1e-05, 1e+16) and an int past 64 bits: the
    request's hash is still that of json's text (the ops themselves are rejected)."""
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    good = create_op(sid, "正常的一条")
    odd = [
        {**create_op(sid, "x"), "base_version": 1e-05},
        {**create_op(sid, "y"), "base_version": 1e16},
        {**create_op(sid, "z"), "base_version": 2**70},
    ]
    key = uuid.uuid4().hex
    r = push(client, who, [good, *odd], key)
    assert r.status_code == 200, r.text
    stored, request = _stored(app, key)
    assert stored[good["op_id"]] == _canonical_hash(good)
    assert request == _canonical_hash({"ops": [good, *odd]})
