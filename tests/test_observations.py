"""The observation log: idempotent offline creates, optimistic edits, tombstones, paging, filters."""

import base64
import json
import uuid

import sqlalchemy as sa

from api.fields import fingerprint
from api.models import Observation
from api.observation_schemas import ObservationCreate

OBS = {
    "text": "调度员每天早上 7 点用 Excel 手工排班，遇到司机请假要打十几个电话。",
    "kind": "pain_point",
    "observed_at": "2026-03-03T09:15:00+08:00",
    "quote": "我们这边排班全靠经验，系统里的数据不准。",
    "speaker_role": "调度主管",
    "dimension": "words_actions",
    "tags": ["#排班", "Excel", "excel"],
}


def post(client, sid, headers, **body):
    return client.post(f"/api/stints/{sid}/observations", json=body, headers=headers)


def test_create_keeps_phone_time_and_server_time(client, stint_team):
    t = stint_team
    oid = str(uuid.uuid4())
    r = post(client, t["stint"]["id"], t["researcher"].headers, id=oid, **OBS)
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["id"] == oid and o["version"] == 1 and r.headers["ETag"] == '"1"'
    assert r.headers["Location"] == f"/api/observations/{oid}"
    assert o["observed_at"] == "2026-03-03T09:15:00+08:00"  # kept as the phone recorded it
    assert o["received_at"] and o["received_at"] != o["observed_at"]
    assert o["day"] == "2026-03-03"
    assert o["tags"] == ["excel", "排班"]  # normalised, de-duplicated
    assert o["author_id"] == t["researcher"].id and o["author_name"] == "李研究员"
    assert o["speaker_role"] == "调度主管" and o["deleted"] is False


def test_same_id_same_body_is_200_and_nothing_new(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    oid = str(uuid.uuid4())
    first = post(client, sid, h, id=oid, **OBS)
    again = post(client, sid, h, id=oid, **OBS)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    page = client.get(f"/api/stints/{sid}/observations", headers=h).json()
    assert [o["id"] for o in page["items"]] == [oid]
    # A retry after an edit is still the same create: 200 with the current state.
    client.patch(f"/api/observations/{oid}", json={"text": "改过了"}, headers={**h, "If-Match": '"1"'})
    late = post(client, sid, h, id=oid, **OBS)
    assert late.status_code == 200 and late.json()["text"] == "改过了" and late.json()["version"] == 2


def test_same_id_other_body_is_409(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    oid = str(uuid.uuid4())
    post(client, sid, h, id=oid, **OBS)
    r = post(client, sid, h, id=oid, **{**OBS, "text": "另一段内容"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "id_conflict"
    # Someone else reusing the id is a conflict too, never a takeover.
    r = post(client, sid, t["manager"].headers, id=oid, **OBS)
    assert r.status_code == 409


def test_day_follows_the_stint_timezone(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    late = post(client, sid, h, text="晚上 23:50 还在对账", observed_at="2026-03-04T23:50:00+08:00").json()
    assert late["day"] == "2026-03-04"  # UTC says 15:50 on the 4th; a naive UTC day would also be the 4th
    early = post(client, sid, h, text="凌晨 00:10 司机到仓", observed_at="2026-03-05T00:10:00+08:00").json()
    assert early["day"] == "2026-03-05"  # UTC says the 4th: the stint's timezone wins
    utc = post(client, sid, h, text="from a laptop in UTC", observed_at="2026-03-05T17:00:00Z").json()
    assert utc["day"] == "2026-03-06"  # 01:00 on the 6th in Shanghai
    naive = post(client, sid, h, text="no offset", observed_at="2026-03-05T17:00:00")
    assert naive.status_code == 422


def test_patch_needs_if_match(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    o = post(client, sid, h, **OBS).json()
    url = f"/api/observations/{o['id']}"
    r = client.patch(url, json={"text": "补充：周五最忙"}, headers=h)
    assert r.status_code == 428 and r.json()["error"]["code"] == "precondition_required"
    ok = client.patch(
        url, json={"text": "补充：周五最忙", "tags": ["周五"]}, headers={**h, "If-Match": '"1"'}
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.headers["ETag"] == '"2"'
    assert ok.json()["tags"] == ["周五"] and ok.json()["kind"] == "pain_point"
    stale = client.patch(url, json={"text": "stale edit"}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["error"]["details"]["current_version"] == 2
    assert client.get(url, headers=h).json()["text"] == "补充：周五最忙"
    moved = client.patch(
        url, json={"observed_at": "2026-03-10T08:00:00+08:00"}, headers={**h, "If-Match": 'W/"2"'}
    )
    assert moved.status_code == 200 and moved.json()["day"] == "2026-03-10"
    assert client.patch(url, json={"text": None}, headers={**h, "If-Match": '"3"'}).status_code == 422
    assert client.patch(url, json={"text": ""}, headers={**h, "If-Match": '"3"'}).status_code == 422
    # Tags: one tag however it is typed; an invisible one is refused.
    tagged = post(client, sid, h, text="标签", tags=["#Pain  Point", "ｐａｉｎ　point", "排班"])
    assert tagged.status_code == 201 and sorted(tagged.json()["tags"]) == ["pain point", "排班"]
    assert post(client, sid, h, text="标签", tags=["排班", "#\u200b"]).status_code == 422
    # Nothing visible: a zero-width space or a BOM is not a note (str.strip() keeps them).
    for invisible in ("\u200b", " \ufeff\u2060 "):
        assert (
            client.patch(url, json={"text": invisible}, headers={**h, "If-Match": '"3"'}).status_code == 422
        )
        assert post(client, sid, h, text=invisible).status_code == 422


def test_only_author_or_manager_edits(client, stint_team, person):
    t = stint_team
    sid = t["stint"]["id"]
    o = post(client, sid, t["researcher"].headers, **OBS).json()
    url = f"/api/observations/{o['id']}"
    other = person("另一位研究员")
    client.post(
        f"/api/stints/{sid}/members",
        json={"email": other.email, "role": "researcher"},
        headers=t["manager"].headers,
    )
    assert (
        client.patch(url, json={"text": "x"}, headers={**other.headers, "If-Match": '"1"'}).status_code == 403
    )
    assert (
        client.patch(url, json={"text": "x"}, headers={**t["viewer"].headers, "If-Match": '"1"'}).status_code
        == 403
    )
    assert (
        client.patch(
            url, json={"text": "x"}, headers={**t["outsider"].headers, "If-Match": '"1"'}
        ).status_code
        == 404
    )
    assert (
        client.patch(
            url, json={"text": "经理修正"}, headers={**t["manager"].headers, "If-Match": '"1"'}
        ).status_code
        == 200
    )


def test_delete_leaves_a_tombstone(client, stint_team, db):
    from api.models import Observation

    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    o = post(client, sid, h, **OBS).json()
    url = f"/api/observations/{o['id']}"
    assert client.delete(url, headers={**h, "If-Match": '"9"'}).status_code == 412
    assert client.delete(url, headers=h).status_code == 204
    gone = client.get(url, headers=h)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "observation_deleted"
    assert client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"] == []
    row = db.get(Observation, uuid.UUID(o["id"]))
    assert row is not None and row.deleted_at is not None and row.version == 2 and row.text == OBS["text"]
    # Deleting again, or editing the tombstone, says it is gone.
    assert client.delete(url, headers=h).status_code == 410
    assert client.patch(url, json={"text": "x"}, headers={**h, "If-Match": '"2"'}).status_code == 410
    # A late retry of the original create does not resurrect it.
    again = post(client, sid, h, id=o["id"], **OBS)
    assert again.status_code == 200 and again.json()["deleted"] is True


def test_list_pages_with_cursor_in_observed_order(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    created = []
    for i in range(7):
        created.append(
            post(client, sid, h, text=f"第{i}条观察", observed_at=f"2026-03-0{i + 2}T10:00:00+08:00").json()[
                "id"
            ]
        )
    # Same instant twice: the id breaks the tie, nothing is skipped.
    created.append(
        post(client, sid, h, text="同一时刻 A", observed_at="2026-03-08T10:00:00+08:00").json()["id"]
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/api/stints/{sid}/observations", params=params, headers=h).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(created) and len(seen) == len(set(seen)) == 8
    bad = client.get(f"/api/stints/{sid}/observations", params={"cursor": "garbage!"}, headers=h)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    # Forged cursors: well-formed base64 JSON of the wrong shape, or an instant without a UTC form.
    for forged in (
        ["2026-03-02T01:00:00+00:00", 5],
        ["2026-03-02T01:00:00+00:00", ["x"]],
        [1, created[0]],
        ["0001-01-01T00:00:00+14:00", created[0]],
        ["9999-12-31T23:59:59-14:00", created[0]],
    ):
        token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        bad = client.get(f"/api/stints/{sid}/observations", params={"cursor": token}, headers=h)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor", forged
    assert client.get(f"/api/stints/{sid}/observations", params={"limit": 0}, headers=h).status_code == 422
    assert client.get(f"/api/stints/{sid}/observations", params={"limit": 1000}, headers=h).status_code == 422


def test_list_filters(client, stint_team):
    t = stint_team
    sid, r, m = t["stint"]["id"], t["researcher"].headers, t["manager"].headers
    hyp = client.post(
        f"/api/stints/{sid}/hypotheses",
        json={"statement": "调度员愿意用系统排班", "dimension": "usage"},
        headers=m,
    ).json()
    a = post(
        client,
        sid,
        r,
        text="Dispatcher rebuilds the plan by hand",
        kind="behaviour",
        tags=["排班"],
        observed_at="2026-03-03T09:00:00+08:00",
        hypothesis_links=[{"hypothesis_id": hyp["id"], "stance": "refutes"}],
    ).json()
    b = post(
        client,
        sid,
        m,
        text="财务每月对账",
        kind="process",
        tags=["对账"],
        observed_at="2026-03-04T09:00:00+08:00",
    ).json()
    c = post(
        client,
        sid,
        r,
        text="老板说要看实时数据",
        kind="quote",
        tags=["排班", "老板"],
        observed_at="2026-03-04T11:00:00+08:00",
        hypothesis_ids=[hyp["id"]],
    ).json()

    def ids(**params):
        res = client.get(f"/api/stints/{sid}/observations", params=params, headers=r)
        assert res.status_code == 200, res.text
        return [o["id"] for o in res.json()["items"]]

    assert ids(day="2026-03-04") == [b["id"], c["id"]]
    assert ids(author=t["manager"].id) == [b["id"]]
    assert ids(author=t["researcher"].email.upper()) == [a["id"], c["id"]]
    assert ids(author="nobody@example.com") == []
    assert ids(kind="process") == [b["id"]]
    assert ids(tag="#排班") == [a["id"], c["id"]]
    assert ids(hypothesis=hyp["id"]) == [a["id"], c["id"]]
    assert ids(tag="排班", day="2026-03-04") == [c["id"]]
    assert a["hypothesis_links"] == [{"hypothesis_id": hyp["id"], "stance": "refutes"}]
    assert c["hypothesis_links"] == [{"hypothesis_id": hyp["id"], "stance": "supports"}]
    assert (
        client.get(f"/api/stints/{sid}/observations", params={"kind": "gossip"}, headers=r).status_code == 422
    )
    assert (
        client.get(f"/api/stints/{sid}/observations", params={"author": "not-a-uuid"}, headers=r).status_code
        == 422
    )
    assert (
        client.get(f"/api/stints/{sid}/observations", params={"day": "03/04"}, headers=r).status_code == 422
    )


def test_links_only_to_this_stints_hypotheses(client, stint_team):
    from tests.conftest import STINT

    t = stint_team
    sid, h, m = t["stint"]["id"], t["researcher"].headers, t["manager"].headers
    other = client.post("/api/stints", json={**STINT, "title": "另一个项目"}, headers=m).json()
    foreign = client.post(
        f"/api/stints/{other['id']}/hypotheses", json={"statement": "别的项目的假设"}, headers=m
    ).json()
    own = client.post(f"/api/stints/{sid}/hypotheses", json={"statement": "本项目的假设"}, headers=m).json()
    for wrong in (foreign["id"], str(uuid.uuid4())):
        r = post(client, sid, h, text="x", hypothesis_ids=[wrong])
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_hypothesis"
    assert post(client, sid, h, text="x", hypothesis_ids=[own["id"]]).status_code == 201


def test_bad_bodies_are_422_never_500(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    for body in (
        {},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 10_001},
        {"text": "ok", "kind": "gossip"},
        {"text": "ok", "dimension": "vibes"},
        {"text": "ok", "id": "not-a-uuid"},
        {"text": "ok", "observed_at": "yesterday"},
        {"text": "ok", "tags": "排班"},
        {"text": "ok", "tags": ["x" * 41]},
        {"text": "ok", "tags": [f"t{i}" for i in range(21)]},
        {"text": "ok", "tags": ["   "]},
        {"text": "ok", "quote": "q" * 2001},
        {"text": "ok", "speaker_role": "r\x00"},
        {"text": "a\x00b"},
        {"text": 42},
        {"text": "ok", "mystery": True},
        {"text": "ok", "hypothesis_links": [{"hypothesis_id": str(uuid.uuid4()), "stance": "maybe"}]},
    ):
        r = post(client, sid, h, **body)
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["message"]
    assert client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"] == []


def test_an_edit_that_changes_nothing_writes_nothing(client, stint_team):
    """`PATCH {}` (or values equal to the saved ones) answers the current version: no new version,
    nothing in the sync feed, so no other device gets a needless conflict."""
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    hyp = client.post(f"/api/stints/{sid}/hypotheses", json={"statement": "排班靠经验"}, headers=h).json()
    o = post(client, sid, h, **OBS, hypothesis_ids=[hyp["id"]]).json()
    url = f"/api/observations/{o['id']}"
    cursor = client.get("/api/sync/changes", headers=h).json()["cursor"]
    for body in (
        {},
        {"tags": None},
        {"text": OBS["text"], "kind": OBS["kind"]},
        {"observed_at": "2026-03-03T09:15:00.000+08:00"},  # the same time, written otherwise
        {"tags": ["排班", "EXCEL"], "quote": OBS["quote"], "dimension": OBS["dimension"]},
        {"hypothesis_links": o["hypothesis_links"]},
    ):
        r = client.patch(url, json=body, headers={**h, "If-Match": '"1"'})
        assert r.status_code == 200, (body, r.text)
        assert r.json() == o and r.headers["ETag"] == '"1"', body
    assert client.get("/api/sync/changes", params={"since": cursor}, headers=h).json()["changes"] == []
    r = client.patch(url, json={"tags": ["排班"]}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["tags"] == ["排班"]
    changes = client.get("/api/sync/changes", params={"since": cursor}, headers=h).json()["changes"]
    assert [(c["id"], c["version"]) for c in changes] == [(o["id"], 2)]


def test_a_retry_with_its_tags_reordered_is_the_same_create(client, stint_team, app):
    """QA: a re-sent create whose tags came in another order answered 409. Tags are a set; so is
    a create stored before they were hashed sorted (its create_hash holds them in the order sent)."""
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    oid = str(uuid.uuid4())
    first = post(client, sid, h, id=oid, **{**OBS, "tags": ["排班", "Excel", "白板"]})
    assert first.status_code == 201
    again = post(client, sid, h, id=oid, **{**OBS, "tags": ["白板", "#excel", "排班"]})
    assert again.status_code == 200 and again.json() == first.json()
    assert post(client, sid, h, id=oid, **{**OBS, "tags": ["白板", "排班"]}).status_code == 409
    # The same create as stored by the first implementation: tags hashed in the order sent.
    body = ObservationCreate.model_validate({**OBS, "tags": ["排班", "Excel", "白板"]})
    dumped = body.model_dump(mode="json", exclude={"id", "hypothesis_ids", "hypothesis_links"})
    old = fingerprint({**dumped, "links": []})
    assert old != body.fingerprint()
    with app.state.engine.begin() as conn:
        table = Observation.__table__
        conn.execute(sa.update(table).where(table.c.id == uuid.UUID(oid)).values(create_hash=old))
    for tags in (["排班", "Excel", "白板"], ["excel", "白板", "排班"]):
        r = post(client, sid, h, id=oid, **{**OBS, "tags": tags})
        assert r.status_code == 200 and r.json()["version"] == 1, (tags, r.text)
    assert post(client, sid, h, id=oid, **{**OBS, "tags": ["排班"]}).status_code == 409
