"""A push whose JSON writes a lone UTF-16 surrogate ("\\ud800": valid JSON, no character) gets that
op refused and the rest applied; never a 500, never a half-stored text."""

import json
import uuid

from tests.test_sync import create_op, pull_all, push


def _push_raw(client, who, ops_json: str, key: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/sync/push",
        content=('{"ops":' + ops_json + "}").encode(),
        headers={
            **who.headers,
            "Idempotency-Key": key or uuid.uuid4().hex,
            "Content-Type": "application/json",
        },
    )


def test_an_op_with_a_lone_surrogate_is_refused_alone(client, stint_team) -> None:  # type: ignore[no-untyped-def]
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    good = create_op(sid, "调度员手工排班")
    in_text = json.dumps(create_op(sid, "placeholder")).replace("placeholder", "\\ud800 排班")
    in_op_id = json.dumps(create_op(sid, "ok")).replace('"op_id": "', '"op_id": "\\udc00')
    in_tag = json.dumps(create_op(sid, "ok", tags=["placeholder"])).replace("placeholder", "\\udbff")
    ops = f"[{json.dumps(good)},{in_text},{in_op_id},{in_tag}]"
    key = uuid.uuid4().hex
    r = _push_raw(client, who, ops, key)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["applied", "rejected", "rejected", "rejected"]
    assert {x["error"]["code"] for x in results[1:]} == {"invalid_text"}
    assert results[2]["op_id"] is None  # its own op_id cannot be written back
    assert results[1]["op_id"] == json.loads(in_text)["op_id"]
    # The same request again is a replay of the stored answer, not another 500.
    again = _push_raw(client, who, ops, key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == r.json()
    changes, _ = pull_all(client, who)
    assert [c["id"] for c in changes if c["type"] == "observation"] == [good["id"]]


def test_a_lone_surrogate_outside_the_ops_is_a_422(client, stint_team) -> None:  # type: ignore[no-untyped-def]
    who = stint_team["researcher"]
    for ops_json in ('"\\ud800"', '{"\\ud800": 1}', "[1]"):
        r = _push_raw(client, who, ops_json)
        assert r.status_code in (200, 422), (ops_json, r.status_code, r.text)
    r = client.post(
        "/api/sync/push",
        content=b'{"ops": [], "\\ud800": 1}',
        headers={**who.headers, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text


def test_an_op_refused_after_a_conflict_is_checked_like_any_other(client, stint_team) -> None:  # type: ignore[no-untyped-def]
    """An op on a record whose earlier op in the batch conflicted is refused without trying, but its
    values are still checked: one the server cannot read is rejected, as when sent alone."""
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    op = create_op(sid, "叉车排队")
    assert push(client, who, [op]).json()["results"][0]["status"] == "applied"
    stale = {
        "op_id": uuid.uuid4().hex,
        "type": "observation",
        "id": op["id"],
        "op": "upsert",
        "base_version": 0,
    }
    ops = [
        {**stale, "data": {"text": "第一台手机改的"}},
        {**stale, "op_id": uuid.uuid4().hex, "data": {"observed_at": "NaN"}},
        {**stale, "op_id": uuid.uuid4().hex, "data": {"tags": [1, "a"]}},
        {**stale, "op_id": uuid.uuid4().hex, "data": {"text": "又改了一次"}},
    ]
    r = push(client, who, ops)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["conflict", "rejected", "rejected", "conflict"]
    assert results[1]["error"]["status"] == 422 and results[3]["mine"] == {"text": "又改了一次"}


def test_an_op_id_with_a_nul_is_rejected_alone(client, stint_team) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL cannot store NUL: such an op_id is refused before it reaches the database."""
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    good, bad = create_op(sid, "正常的一条"), {**create_op(sid, "op_id 里有 NUL"), "op_id": "c\u0000d"}
    r = push(client, who, [bad, good])
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "applied"]
