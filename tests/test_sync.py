"""Offline-first sync: push with per-op results and Idempotency-Key, the changes feed."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from api import idempotency
from api.changelog import TOMBSTONE_RETENTION, purge_tombstones
from api.db import utcnow
from api.errors import AppError
from api.idempotency import IdempotencyKey
from api.sync import _parse


@pytest.fixture
def writer(app):
    """A session on the write engine: on SQLite its transactions take the write lock up front."""
    with Session(app.state.engine, expire_on_commit=False) as session:
        yield session


def push(client, who, ops, key=None):
    return client.post(
        "/api/sync/push",
        json={"ops": ops},
        headers={**who.headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def pull(client, who, since=None, **params):
    if since is not None:
        params["since"] = since
    r = client.get("/api/sync/changes", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def pull_all(client, who, since=None, limit=500):
    changes = []
    while True:
        page = pull(client, who, since, limit=limit)
        changes += page["changes"]
        since = page["cursor"]
        if not page["has_more"]:
            return changes, since


def create_op(sid, text, obs_id=None, **data):
    return {
        "op_id": uuid.uuid4().hex,
        "type": "observation",
        "id": obs_id or str(uuid.uuid4()),
        "op": "upsert",
        "base_version": None,
        "data": {"stint_id": sid, "text": text, **data},
    }


def edit_op(obs_id, base, **data):
    return {
        "op_id": uuid.uuid4().hex,
        "type": "observation",
        "id": obs_id,
        "op": "upsert",
        "base_version": base,
        "data": data,
    }


def test_push_creates_and_feed_returns_with_time_handling(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    op = create_op(
        sid,
        "调度员晚上还在用 Excel 排第二天的班",
        observed_at="2026-03-03T23:50:00+08:00",
        tags=["排班", "Excel"],
        quote="这个表只有我看得懂",
        speaker_role="调度员",
    )
    r = push(client, t["researcher"], [op])
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [
        {
            "index": 0,
            "op_id": op["op_id"],
            "status": "applied",
            "version": 1,
            "deleted": False,
            "current": None,
            "mine": None,
            "changes": None,
            "error": None,
        }
    ]
    changes, cursor = pull_all(client, t["manager"])
    obs = [c for c in changes if c["type"] == "observation"]
    assert [c["id"] for c in obs] == [op["id"]]
    data = obs[0]["data"]
    assert data["text"] == "调度员晚上还在用 Excel 排第二天的班"
    assert data["day"] == "2026-03-03"  # 23:50 local time belongs to that evening's page
    assert data["observed_at"] == "2026-03-03T23:50:00+08:00"  # as the phone recorded it
    assert data["received_at"] > data["observed_at"]
    assert data["tags"] == ["excel", "排班"]
    # Nothing new since the cursor.
    assert pull(client, t["manager"], cursor)["changes"] == []


def test_day_comes_from_stint_timezone_not_utc(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    # 00:30 on the 4th in Shanghai is still the 3rd in UTC.
    op = create_op(sid, "早班交接，司机排队领单", observed_at="2026-03-03T16:30:00Z")
    assert push(client, t["researcher"], [op]).json()["results"][0]["status"] == "applied"
    got = client.get(f"/api/observations/{op['id']}", headers=t["researcher"].headers).json()
    assert got["day"] == "2026-03-04"
    assert got["observed_at"].startswith("2026-03-03T16:30:00")


def test_one_bad_op_does_not_sink_the_batch(client, stint_team, person):
    t = stint_team
    sid = t["stint"]["id"]
    other = client.post(
        "/api/stints",
        json=_stint_body(),
        headers=t["outsider"].headers,
    ).json()
    good = create_op(sid, "财务月底对账要三天")
    ops = [
        good,
        create_op(sid, ""),  # empty text
        {"op_id": "x1", "type": "photo_album", "id": "1", "op": "upsert"},  # unknown type
        "not an object",
        create_op(other["id"], "我不是这个驻场的成员"),  # not a member: 404, no leak
        create_op(sid, "link to nowhere", hypothesis_ids=[str(uuid.uuid4())]),
        edit_op(str(uuid.uuid4()), 3, text="改一个不存在的记录"),
    ]
    r = client.post(
        "/api/sync/push", json={"ops": ops}, headers={**t["researcher"].headers, "Idempotency-Key": "k-bad-1"}
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["applied"] + ["rejected"] * 6
    errors = [x["error"] for x in results[1:]]
    assert [e["status"] for e in errors] == [422, 422, 422, 404, 422, 404]
    assert errors[0]["code"] == "validation_error" and "text" in errors[0]["message"]
    assert errors[3]["code"] == "stint_not_found"
    assert errors[4]["code"] == "unknown_hypothesis"
    assert errors[5]["code"] == "unknown_record"
    assert results[2]["op_id"] == "x1" and results[3]["op_id"] is None
    assert client.get(f"/api/observations/{good['id']}", headers=t["researcher"].headers).status_code == 200
    # A viewer's writes are rejected with 403, the batch still answers 200.
    r = push(client, t["viewer"], [create_op(sid, "viewer note")])
    assert r.json()["results"][0]["error"]["status"] == 403


def _stint_body():
    return {
        "title": "别人的驻场",
        "customer": "其他客户",
        "purpose": "benchmark",
        "start_date": "2026-03-02",
        "end_date": "2026-03-20",
    }


def test_idempotency_key_semantics(client, stint_team, writer):
    t = stint_team
    r_ = t["researcher"]
    sid = t["stint"]["id"]
    op = create_op(sid, "仓库主管说：系统慢的时候我们就先手写")
    # Missing key.
    r = client.post("/api/sync/push", json={"ops": [op]}, headers=r_.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "idempotency_key_missing"
    assert client.get(f"/api/observations/{op['id']}", headers=r_.headers).status_code == 404
    # First time, then a replay (keys in another order: the same body).
    first = push(client, r_, [op], key="batch-1")
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    reordered = {"ops": [dict(reversed(list(op.items())))]}
    again = client.post(
        "/api/sync/push", json=reordered, headers={**r_.headers, "Idempotency-Key": "batch-1"}
    )
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Same key, another body.
    other = push(client, r_, [create_op(sid, "另一条")], key="batch-1")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    # The same key of another user is theirs alone.
    assert push(client, t["manager"], [create_op(sid, "经理的记录")], key="batch-1").status_code == 200
    # A retry while the first request still runs: 409.
    body = {"ops": [create_op(sid, "正在处理")]}
    idempotency.claim(writer, r_.user.id, "batch-2", "POST /api/sync/push", idempotency.fingerprint(body))
    busy = client.post("/api/sync/push", json=body, headers={**r_.headers, "Idempotency-Key": "batch-2"})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"
    assert busy.headers["retry-after"]
    # A claim whose worker died is taken over once it times out.
    writer.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.key == "batch-2")
        .values(claimed_until=utcnow() - timedelta(seconds=1))
    )
    writer.commit()
    took_over = client.post("/api/sync/push", json=body, headers={**r_.headers, "Idempotency-Key": "batch-2"})
    assert took_over.status_code == 200 and took_over.json()["results"][0]["status"] == "applied"


def test_keys_are_kept_thirty_days(client, stint_team, writer):
    t = stint_team
    r_ = t["researcher"]
    op = create_op(t["stint"]["id"], "客户的采购流程要过三道签字")
    first = push(client, r_, [op], key="old-batch")

    def age(days):
        writer.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == "old-batch")
            .values(created_at=utcnow() - timedelta(days=days))
        )
        writer.commit()

    age(29)
    r = push(client, r_, [op], key="old-batch")
    assert r.headers.get("idempotent-replayed") == "true" and r.json() == first.json()
    age(31)
    # The key is gone; the op itself is still known by its op_id (kept as long), so nothing doubles.
    r = push(client, r_, [op], key="old-batch")
    assert "idempotent-replayed" not in r.headers
    assert r.json()["results"][0]["status"] == "duplicate"


def test_resent_op_is_duplicate_and_same_id_create_is_recognised(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    op = create_op(sid, "一线员工不看报表，只看微信群")
    assert push(client, t["researcher"], [op]).json()["results"][0]["status"] == "applied"
    # The same op in a new batch (new key): duplicate, the first answer.
    again = push(client, t["researcher"], [op]).json()["results"][0]
    assert again["status"] == "duplicate" and again["version"] == 1
    # The same create under a new op_id (the outbox lost its bookkeeping): duplicate too.
    again = push(client, t["researcher"], [{**op, "op_id": "fresh"}]).json()["results"][0]
    assert again["status"] == "duplicate"
    # The same op_id for another change is refused.
    clash = push(client, t["researcher"], [{**op, "data": {**op["data"], "text": "x"}}]).json()["results"][0]
    assert clash["status"] == "rejected" and clash["error"]["code"] == "op_id_reused"
    # Same id, other content, as a create: a conflict, not an overwrite.
    other = push(client, t["researcher"], [create_op(sid, "完全不同的内容", obs_id=op["id"])]).json()[
        "results"
    ][0]
    assert other["status"] == "conflict"
    assert other["current"]["text"] == "一线员工不看报表，只看微信群"
    # A batch that creates the same record twice makes one record.
    twice = create_op(sid, "同一批里两次")
    res = push(client, t["researcher"], [twice, {**twice, "op_id": "second"}]).json()["results"]
    assert [x["status"] for x in res] == ["applied", "duplicate"]
    changes, _ = pull_all(client, t["researcher"])
    ids = [c["id"] for c in changes if c["type"] == "observation"]
    assert len(ids) == len(set(ids)) == 2


def test_conflict_carries_both_versions_and_resolves_by_a_normal_push(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    op = create_op(sid, "客户说审批要一周", tags=["审批"])
    push(client, t["researcher"], [op])
    # Two devices edit version 1 offline.
    a = push(client, t["researcher"], [edit_op(op["id"], 1, text="客户说审批要一周，加急三天")]).json()[
        "results"
    ][0]
    assert a["status"] == "applied" and a["version"] == 2
    b = push(
        client, t["manager"], [edit_op(op["id"], 1, text="审批一周（财务总监口述）", tags=["审批", "财务"])]
    )
    b = b.json()["results"][0]
    assert b["status"] == "conflict" and b["version"] == 2
    assert b["current"]["text"] == "客户说审批要一周，加急三天"
    assert b["mine"] == {"text": "审批一周（财务总监口述）", "tags": ["审批", "财务"]}
    assert {c["field"]: (c["server"], c["yours"]) for c in b["changes"]} == {
        "text": ("客户说审批要一周，加急三天", "审批一周（财务总监口述）"),
        "tags": (["审批"], ["审批", "财务"]),
    }
    # Nothing was overwritten.
    got = client.get(f"/api/observations/{op['id']}", headers=t["manager"].headers).json()
    assert got["text"] == "客户说审批要一周，加急三天" and got["version"] == 2
    # The manager merges both and pushes against the server's version.
    merged = edit_op(op["id"], 2, text="客户说审批要一周，加急三天（财务总监口述）", tags=["审批", "财务"])
    r = push(client, t["manager"], [merged]).json()["results"][0]
    assert r["status"] == "applied" and r["version"] == 3
    got = client.get(f"/api/observations/{op['id']}", headers=t["manager"].headers).json()
    assert got["text"] == "客户说审批要一周，加急三天（财务总监口述）" and got["tags"] == ["审批", "财务"]


def test_delete_tombstone_and_stale_delete_conflict(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    op = create_op(sid, "叉车司机自己记里程")
    push(client, t["researcher"], [op])
    _, cursor = pull_all(client, t["manager"])
    push(client, t["researcher"], [edit_op(op["id"], 1, text="叉车司机自己在本子上记里程")])
    stale = {"op_id": "del-1", "type": "observation", "id": op["id"], "op": "delete", "base_version": 1}
    r = push(client, t["manager"], [stale]).json()["results"][0]
    assert r["status"] == "conflict" and r["current"]["text"] == "叉车司机自己在本子上记里程"
    ok = {**stale, "op_id": "del-2", "base_version": 2}
    r = push(client, t["manager"], [ok]).json()["results"][0]
    assert r == {**r, "status": "applied", "version": 3, "deleted": True}
    changes, _ = pull_all(client, t["researcher"], cursor)
    assert [(c["id"], c["deleted"], c["version"], c["data"]) for c in changes] == [(op["id"], True, 3, None)]
    # An edit against the deleted version brings it back (the user chose to keep it).
    keep = edit_op(op["id"], 3, text="留着：叉车司机自己记里程")
    assert push(client, t["researcher"], [keep]).json()["results"][0]["status"] == "applied"
    got = client.get(f"/api/observations/{op['id']}", headers=t["researcher"].headers).json()
    assert got["text"] == "留着：叉车司机自己记里程" and got["deleted"] is False


def test_daily_summary_and_hypothesis_links(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    me = t["researcher"]
    hyp = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "调度员愿意放弃 Excel"}, headers=me.headers
    ).json()
    op = create_op(sid, "调度员说 Excel 最灵活")
    push(client, me, [op])
    key = f"{sid}:{me.id}:2026-03-03"
    ops = [
        {
            "op_id": "s1",
            "type": "daily_summary",
            "id": key,
            "op": "upsert",
            "data": {"summary": "今天跟了早班调度"},
        },
        {
            "op_id": "l1",
            "type": "hypothesis_link",
            "id": op["id"],
            "op": "upsert",
            "data": {"hypothesis_id": hyp["id"], "stance": "refutes"},
        },
        {
            "op_id": "s2",
            "type": "daily_summary",
            "id": f"{sid}:{t['manager'].id}:2026-03-03",
            "op": "upsert",
            "data": {"summary": "not mine"},
        },
    ]
    results = push(client, me, ops).json()["results"]
    assert [(x["status"], x["version"]) for x in results[:2]] == [("applied", 1), ("applied", 2)]
    assert results[2]["error"]["status"] == 403
    changes, cursor = pull_all(client, t["viewer"])
    by_type = {c["type"]: c for c in changes if c["type"] != "stint_access"}
    assert by_type["daily_summary"]["id"] == key
    assert by_type["daily_summary"]["data"]["summary"] == "今天跟了早班调度"
    assert by_type["observation"]["data"]["hypothesis_links"] == [
        {"hypothesis_id": hyp["id"], "stance": "refutes"}
    ]
    assert by_type["hypothesis"]["data"]["statement"] == "调度员愿意放弃 Excel"
    # Two devices link the same observation to different things: both kept (links merge).
    hyp2 = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "主管决定工具"}, headers=me.headers
    ).json()
    link2 = {
        "op_id": "l2",
        "type": "hypothesis_link",
        "id": op["id"],
        "op": "upsert",
        "base_version": 1,
        "data": {"hypothesis_id": hyp2["id"]},
    }
    assert push(client, t["manager"], [link2]).json()["results"][0]["status"] == "applied"
    unlink = {
        "op_id": "l3",
        "type": "hypothesis_link",
        "id": op["id"],
        "op": "delete",
        "data": {"hypothesis_id": hyp["id"]},
    }
    assert push(client, me, [unlink]).json()["results"][0]["version"] == 4
    got = client.get(f"/api/observations/{op['id']}", headers=me.headers).json()
    assert got["hypothesis_links"] == [{"hypothesis_id": hyp2["id"], "stance": "supports"}]
    # Summary: stale edit conflicts, delete leaves a tombstone, re-creating keeps versions rising.
    stale = {
        "op_id": "s3",
        "type": "daily_summary",
        "id": key,
        "op": "upsert",
        "base_version": 0,
        "data": {"summary": "另一台手机写的"},
    }
    c = push(client, me, [stale]).json()["results"][0]
    assert c["status"] == "conflict" and c["current"]["summary"] == "今天跟了早班调度"
    delete = {"op_id": "s4", "type": "daily_summary", "id": key, "op": "delete", "base_version": 1}
    assert push(client, me, [delete]).json()["results"][0] == {
        **c,
        "index": 0,
        "op_id": "s4",
        "status": "applied",
        "version": 2,
        "deleted": True,
        "current": None,
        "mine": None,
        "changes": None,
    }
    changes, cursor = pull_all(client, t["viewer"], cursor)
    tomb = [x for x in changes if x["type"] == "daily_summary"]
    assert [(x["deleted"], x["version"]) for x in tomb] == [(True, 2)]
    again = {"op_id": "s5", "type": "daily_summary", "id": key, "op": "upsert", "data": {"summary": "重写"}}
    assert push(client, me, [again]).json()["results"][0]["version"] == 3


def test_rest_writes_reach_the_feed(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    me = t["researcher"]
    _, cursor = pull_all(client, t["viewer"])
    created = client.post(
        f"/api/stints/{sid}/observations", json={"text": "REST 记录"}, headers=me.headers
    ).json()
    client.patch(
        f"/api/observations/{created['id']}",
        json={"text": "REST 记录（改）"},
        headers={**me.headers, "If-Match": '"1"'},
    )
    client.put(f"/api/stints/{sid}/days/2026-03-05", json={"summary": "复盘准备"}, headers=me.headers)
    changes, cursor = pull_all(client, t["viewer"], cursor)
    assert [(c["type"], c["version"]) for c in changes] == [("observation", 2), ("daily_summary", 1)]
    assert changes[0]["data"]["text"] == "REST 记录（改）"
    client.delete(f"/api/observations/{created['id']}", headers=me.headers)
    changes, _ = pull_all(client, t["viewer"], cursor)
    assert [(c["id"], c["deleted"]) for c in changes] == [(created["id"], True)]


def test_feed_pages_in_commit_order_without_gaps(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    ops = [create_op(sid, f"第 {i} 条观察 observation {i}") for i in range(7)]
    push(client, t["researcher"], ops[:4])
    push(client, t["researcher"], ops[4:])
    push(client, t["researcher"], [edit_op(ops[0]["id"], 1, text="第 0 条，改过")])
    seen = []
    since = None
    pages = 0
    while True:
        page = pull(client, t["viewer"], since, limit=3)
        pages += 1
        seen += [c["id"] for c in page["changes"] if c["type"] == "observation"]
        since = page["cursor"]
        if not page["has_more"]:
            break
    assert pages >= 3
    # The edited record moved to the end (its latest change), and each appears once.
    assert seen == [o["id"] for o in ops[1:]] + [ops[0]["id"]]


def test_feed_visibility_and_member_removal(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    push(client, t["researcher"], [create_op(sid, "只有成员能看到")])
    assert pull(client, t["outsider"])["changes"] == []
    changes, cursor = pull_all(client, t["viewer"])
    access = [c for c in changes if c["type"] == "stint_access"]
    assert [(c["id"], c["deleted"], c["data"]["role"]) for c in access] == [(sid, False, "viewer")]
    _, manager_cursor = pull_all(client, t["manager"])
    r = client.delete(f"/api/stints/{sid}/members/{t['viewer'].id}", headers=t["manager"].headers)
    assert r.status_code == 204
    push(client, t["researcher"], [create_op(sid, "移除之后的记录")])
    changes, _ = pull_all(client, t["viewer"], cursor)
    assert [(c["type"], c["id"], c["deleted"]) for c in changes] == [("stint_access", sid, True)]
    # The others see the new record, not the removed member's signal.
    changes, _ = pull_all(client, t["manager"], manager_cursor)
    assert [c["type"] for c in changes] == ["observation"]
    # Added back: told to pull the stint again, which the stint_id filter does.
    client.post(
        f"/api/stints/{sid}/members",
        json={"email": t["viewer"].email, "role": "viewer"},
        headers=t["manager"].headers,
    )
    changes, _ = pull_all(client, t["viewer"], cursor)
    assert [(c["type"], c["deleted"]) for c in changes][-1] == ("stint_access", False)
    page = pull(client, t["viewer"], stint_id=sid)
    assert len([c for c in page["changes"] if c["type"] == "observation"]) == 2
    assert (
        client.get("/api/sync/changes", params={"stint_id": sid}, headers=t["outsider"].headers).status_code
        == 404
    )
    # Closing the stint tells every device to drop it.
    client.delete(f"/api/stints/{sid}", headers=t["manager"].headers)
    changes, _ = pull_all(client, t["researcher"], cursor)
    assert ("stint_access", sid, True) in [(c["type"], c["id"], c["deleted"]) for c in changes]


def test_cursor_errors_and_expiry(client, stint_team, writer):
    t = stint_team
    sid = t["stint"]["id"]
    me = t["researcher"]
    for bad in ("abc", "-1", "1" * 30, "²", "١٢"):  # digits to str.isdigit(), not cursors
        r = client.get("/api/sync/changes", params={"since": bad}, headers=me.headers)
        assert r.status_code in (400, 422) and r.json()["error"]["code"] in (
            "invalid_cursor",
            "validation_error",
        )
    _, old = pull_all(client, me)
    r = client.get("/api/sync/changes", params={"since": str(int(old) + 1000)}, headers=me.headers)
    assert r.status_code == 410  # a cursor this server never gave (restored from a backup?)
    op = create_op(sid, "会被删掉的记录")
    push(client, me, [op])
    push(
        client, me, [{"op_id": "d", "type": "observation", "id": op["id"], "op": "delete", "base_version": 1}]
    )
    _, recent = pull_all(client, me)
    assert purge_tombstones(writer, utcnow() + TOMBSTONE_RETENTION - timedelta(days=1)) == 0
    assert purge_tombstones(writer, utcnow() + TOMBSTONE_RETENTION + timedelta(days=1)) == 1
    writer.commit()
    r = client.get("/api/sync/changes", params={"since": old}, headers=me.headers)
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "cursor_expired" and r.json()["error"]["details"] == {"resync": True}
    assert pull(client, me, recent)["changes"] == []  # a cursor after the purged tombstone is fine
    changes, _ = pull_all(client, me)  # a fresh pull starts over
    assert op["id"] not in [c["id"] for c in changes]


def test_expired_session_mid_sync_loses_nothing(client, stint_team, writer):
    t = stint_team
    me = t["researcher"]
    ops = [create_op(t["stint"]["id"], "会话过期前写的")]
    from api.models import AuthSession

    writer.execute(
        sa.update(AuthSession).where(AuthSession.user_id == me.user.id).values(revoked_at=utcnow())
    )
    writer.commit()
    r = push(client, me, ops, key="k-expired")
    assert r.status_code == 401
    token = client.post("/api/auth/token", data={"username": me.email, "password": "correct horse battery"})
    me.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    r = push(client, me, ops, key="k-expired")
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "applied"


def test_malformed_push_bodies_are_4xx(client, stint_team):
    me = stint_team["researcher"]
    h = {**me.headers, "Idempotency-Key": "m"}
    assert (
        client.post(
            "/api/sync/push", content=b"{not json", headers={**h, "Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert client.post("/api/sync/push", json={"ops": "x"}, headers=h).status_code == 422
    assert client.post("/api/sync/push", json={"ops": [{}] * 1001}, headers=h).status_code == 422
    assert client.post("/api/sync/push", json={"ops": []}, headers=h).json() == {"results": []}
    assert (
        client.post(
            "/api/sync/push", json={"ops": []}, headers={**me.headers, "Idempotency-Key": "x" * 300}
        ).status_code
        == 400
    )


def test_ops_built_on_a_refused_op_are_refused_too(client, stint_team):
    """Versions are small integers: a device's own second edit (base 2, on top of its refused edit)
    must not land on another device's version 2."""
    t = stint_team
    sid = t["stint"]["id"]
    op = create_op(sid, "司机排队领单 20 分钟")
    push(client, t["researcher"], [op])
    push(client, t["manager"], [edit_op(op["id"], 1, text="司机排队领单 20 分钟（早班）")])
    first = edit_op(op["id"], 1, text="司机排队 20 分钟")
    second = edit_op(op["id"], 2, text="司机排队 20 分钟，有时 40 分钟")
    res = push(client, t["researcher"], [first, second]).json()["results"]
    assert [x["status"] for x in res] == ["conflict", "conflict"]
    assert res[1]["current"]["text"] == "司机排队领单 20 分钟（早班）"
    # Re-sent later (even under a new key), a refused op stays refused.
    again = push(client, t["researcher"], [second]).json()["results"][0]
    assert again["status"] == "conflict"
    got = client.get(f"/api/observations/{op['id']}", headers=t["manager"].headers).json()
    assert got["text"] == "司机排队领单 20 分钟（早班）" and got["version"] == 2
    # The resolution is a new op against the server's version.
    fix = edit_op(op["id"], 2, text="司机排队领单 20 分钟（早班），有时 40 分钟")
    assert push(client, t["researcher"], [fix]).json()["results"][0]["version"] == 3


def test_a_create_resent_with_its_tags_reordered_is_a_duplicate(client, stint_team):
    """QA: the same create with its tags in another order was a conflict. Tags are a set."""
    t = stint_team
    sid, me = t["stint"]["id"], t["researcher"]
    op = create_op(sid, "仓库主管用微信群派单", tags=["微信", "派单", "Excel"])
    assert push(client, me, [op]).json()["results"][0]["status"] == "applied"
    reordered = create_op(sid, "仓库主管用微信群派单", obs_id=op["id"], tags=["excel", "派单", "#微信"])
    (again,) = push(client, me, [reordered]).json()["results"]
    assert (again["status"], again["version"]) == ("duplicate", 1)
    fewer = create_op(sid, "仓库主管用微信群派单", obs_id=op["id"], tags=["派单", "微信"])
    (other,) = push(client, me, [fewer]).json()["results"]
    assert other["status"] == "conflict"
    assert {c["field"]: (c["server"], c["yours"]) for c in other["changes"]} == {
        "tags": (["excel", "微信", "派单"], ["派单", "微信"])
    }
    # A stale edit sending the same tags in another order: only what differs is named.
    assert push(client, me, [edit_op(op["id"], 1, text="派单靠微信群")]).json()["results"][0]["version"] == 2
    stale = edit_op(op["id"], 1, text="派单靠电话", tags=["派单", "微信", "excel"])
    (c,) = push(client, t["manager"], [stale]).json()["results"]
    assert c["status"] == "conflict" and [x["field"] for x in c["changes"]] == ["text"]


def test_ops_validated_together_answer_as_one_by_one():
    """The batch is validated in one call, and again op by op when any op is invalid: each op's
    result must be what validating it alone gives."""
    sid = str(uuid.uuid4())
    valid = [create_op(sid, "司机排队领单"), edit_op(str(uuid.uuid4()), 2, text="改"), create_op(sid, "x")]
    invalid = [
        {"op_id": "x1", "type": "photo_album", "id": "1", "op": "upsert"},
        "not an object",
        {"op_id": ""},
    ]

    def as_plain(parsed: object) -> object:
        if isinstance(parsed, AppError):
            return (parsed.status_code, parsed.code, parsed.message, parsed.details)
        return parsed

    for batch in (valid, valid + invalid, invalid[:1] + valid):
        alone = [as_plain(_parse([op])[0]) for op in batch]
        assert [as_plain(p) for p in _parse(batch)] == alone
