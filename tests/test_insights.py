"""Insights: evidence from the stint's own log, drafts, verdicts on hypotheses, themes and order."""

import uuid

import pytest


@pytest.fixture
def log(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    h = client.post(
        f"/api/stints/{sid}/hypotheses",
        json={"statement": "调度员愿意放弃 Excel 排班", "dimension": "usage"},
        headers=t["researcher"].headers,
    ).json()
    obs = []
    for text in ("调度员每天早上 7 点手工排班，用 Excel", "车队长说：系统排的班司机不认"):
        r = client.post(
            f"/api/stints/{sid}/observations",
            json={"text": text, "quote": "排班还得靠人", "speaker_role": "调度员", "speaker_name": "张师傅"},
            headers=t["researcher"].headers,
        )
        assert r.status_code == 201, r.text
        obs.append(r.json())
    return {**t, "sid": sid, "hypothesis": h, "obs": obs}


def test_insight_with_evidence_and_verdict(client, log):
    r = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={
            "title": "排班依赖个人经验",
            "statement": "排班规则在调度员脑子里，系统只是记录工具。",
            "evidence": [{"observation_id": log["obs"][0]["id"]}, {"observation_id": log["obs"][1]["id"]}],
            "verdicts": [{"hypothesis_id": log["hypothesis"]["id"], "verdict": "refutes"}],
        },
        headers=log["researcher"].headers,
    )
    assert r.status_code == 201, r.text
    insight = r.json()
    assert insight["draft"] is False
    assert [e["observation_id"] for e in insight["evidence"]] == [o["id"] for o in log["obs"]]
    assert insight["evidence"][0]["quote"] == "排班还得靠人"
    assert insight["evidence"][0]["speaker_role"] == "调度员"
    assert insight["verdicts"] == [
        {
            "hypothesis_id": log["hypothesis"]["id"],
            "statement": "调度员愿意放弃 Excel 排班",
            "verdict": "refutes",
        }
    ]
    # Viewers read; they do not write.
    got = client.get(f"/api/insights/{insight['id']}", headers=log["viewer"].headers)
    assert got.status_code == 200 and got.json()["title"] == "排班依赖个人经验"
    denied = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={"title": "x", "statement": "y"},
        headers=log["viewer"].headers,
    )
    assert denied.status_code == 403
    # Outsiders see nothing of the stint.
    assert client.get(f"/api/insights/{insight['id']}", headers=log["outsider"].headers).status_code == 404
    assert (
        client.get(f"/api/stints/{log['sid']}/insights", headers=log["outsider"].headers).status_code == 404
    )


def test_insight_without_evidence_is_a_flagged_draft(client, log):
    r = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={"title": "可能：老板才是决策者", "statement": "待验证"},
        headers=log["researcher"].headers,
    )
    assert r.status_code == 201 and r.json()["draft"] is True
    drafts = client.get(f"/api/stints/{log['sid']}/insights?draft=true", headers=log["viewer"].headers).json()
    assert [d["id"] for d in drafts] == [r.json()["id"]]
    # Adding evidence lifts the draft flag.
    p = client.patch(
        f"/api/insights/{r.json()['id']}",
        json={"evidence": [{"observation_id": log["obs"][0]["id"]}]},
        headers=log["researcher"].headers,
    )
    assert p.status_code == 200 and p.json()["draft"] is False and p.json()["version"] == 2


def test_evidence_from_another_stint_is_refused_and_nothing_is_saved(client, log, person):
    other = client.post(
        "/api/stints",
        json={
            "title": "另一个客户",
            "customer": "华北制造",
            "purpose": "benchmark",
            "start_date": "2026-04-01",
            "end_date": "2026-04-20",
        },
        headers=log["researcher"].headers,
    ).json()
    foreign = client.post(
        f"/api/stints/{other['id']}/observations",
        json={"text": "别处的观察"},
        headers=log["researcher"].headers,
    ).json()
    r = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={"title": "t", "statement": "s", "evidence": [{"observation_id": foreign["id"]}]},
        headers=log["researcher"].headers,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_observation"
    assert client.get(f"/api/stints/{log['sid']}/insights", headers=log["researcher"].headers).json() == []
    # Neither a material that does not exist, nor an item naming both or neither.
    for evidence in (
        [{"material_id": str(uuid.uuid4())}],
        [{}],
        [{"observation_id": foreign["id"], "material_id": foreign["id"]}],
    ):
        bad = client.post(
            f"/api/stints/{log['sid']}/insights",
            json={"title": "t", "statement": "s", "evidence": evidence},
            headers=log["researcher"].headers,
        )
        assert bad.status_code == 422, bad.text


def test_contradictory_verdicts_and_foreign_hypotheses_are_refused(client, log):
    h = log["hypothesis"]["id"]
    r = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={
            "title": "t",
            "statement": "s",
            "verdicts": [
                {"hypothesis_id": h, "verdict": "supports"},
                {"hypothesis_id": h, "verdict": "refutes"},
            ],
        },
        headers=log["researcher"].headers,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "contradictory_verdicts"
    r = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={
            "title": "t",
            "statement": "s",
            "verdicts": [{"hypothesis_id": str(uuid.uuid4()), "verdict": "supports"}],
        },
        headers=log["researcher"].headers,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_hypothesis"


def test_retry_with_same_id_does_not_duplicate(client, log):
    body = {"id": str(uuid.uuid4()), "title": "重试", "statement": "同一个洞见"}
    first = client.post(f"/api/stints/{log['sid']}/insights", json=body, headers=log["researcher"].headers)
    again = client.post(f"/api/stints/{log['sid']}/insights", json=body, headers=log["researcher"].headers)
    assert (first.status_code, again.status_code) == (201, 200)
    other = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={**body, "statement": "别的"},
        headers=log["researcher"].headers,
    )
    assert other.status_code == 409
    assert (
        len(client.get(f"/api/stints/{log['sid']}/insights", headers=log["researcher"].headers).json()) == 1
    )


def test_themes_group_and_order(client, log):
    sid, h = log["sid"], log["researcher"].headers
    later = client.post(f"/api/stints/{sid}/themes", json={"name": "采购决策"}, headers=h).json()
    first = client.post(f"/api/stints/{sid}/themes", json={"name": "排班", "position": 0}, headers=h).json()
    client.patch(f"/api/themes/{later['id']}", json={"name": "采购决策", "position": 5}, headers=h)
    a = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "A", "statement": "a", "theme_id": later["id"]},
        headers=h,
    ).json()
    b = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "B", "statement": "b", "theme_id": first["id"]},
        headers=h,
    ).json()
    c = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "C", "statement": "c", "theme_id": first["id"]},
        headers=h,
    ).json()
    d = client.post(f"/api/stints/{sid}/insights", json={"title": "D", "statement": "d"}, headers=h).json()
    titles = [i["title"] for i in client.get(f"/api/stints/{sid}/insights", headers=h).json()]
    assert titles == ["B", "C", "A", "D"]  # theme order, then position; unthemed last
    r = client.put(f"/api/stints/{sid}/insights/order", json={"insight_ids": [c["id"], b["id"]]}, headers=h)
    assert r.status_code == 200
    assert [i["title"] for i in r.json()] == ["C", "B", "A", "D"]
    assert (
        client.put(
            f"/api/stints/{sid}/insights/order", json={"insight_ids": [str(uuid.uuid4())]}, headers=h
        ).status_code
        == 422
    )
    # A theme of another stint cannot be used; deleting a theme keeps its insights.
    assert (
        client.patch(f"/api/insights/{d['id']}", json={"theme_id": str(uuid.uuid4())}, headers=h).status_code
        == 422
    )
    assert client.delete(f"/api/themes/{first['id']}", headers=h).status_code == 204
    left = client.get(f"/api/stints/{sid}/insights", headers=h).json()
    assert {i["title"] for i in left} == {"A", "B", "C", "D"}
    assert all(i["theme_id"] is None for i in left if i["title"] in ("B", "C"))
    assert a["theme_id"] == later["id"]


def test_deleted_observation_drops_out_of_evidence(client, log):
    r = client.post(
        f"/api/stints/{log['sid']}/insights",
        json={"title": "t", "statement": "s", "evidence": [{"observation_id": log["obs"][0]["id"]}]},
        headers=log["researcher"].headers,
    ).json()
    assert (
        client.delete(
            f"/api/observations/{log['obs'][0]['id']}", headers=log["researcher"].headers
        ).status_code
        == 204
    )
    again = client.get(f"/api/insights/{r['id']}", headers=log["researcher"].headers).json()
    assert again["evidence"] == [] and again["draft"] is True
    assert client.delete(f"/api/insights/{r['id']}", headers=log["researcher"].headers).status_code == 204
    assert client.get(f"/api/insights/{r['id']}", headers=log["researcher"].headers).status_code == 410


def test_stale_edit_is_refused_and_changes_nothing(client, log):
    h = log["researcher"].headers
    r = client.post(
        f"/api/stints/{log['sid']}/insights", json={"title": "原标题", "statement": "s"}, headers=h
    )
    iid = r.json()["id"]
    assert r.headers["etag"] == '"1"'
    ok = client.patch(f"/api/insights/{iid}", json={"title": "新标题"}, headers={**h, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    stale = client.patch(f"/api/insights/{iid}", json={"title": "覆盖"}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert client.get(f"/api/insights/{iid}", headers=h).json()["title"] == "新标题"
    for bad in ({"title": None}, {"title": ""}, {"evidence": None}, {"verdicts": [{"hypothesis_id": "x"}]}):
        assert client.patch(f"/api/insights/{iid}", json=bad, headers=h).status_code == 422, bad


def test_theme_retry_with_same_id_does_not_duplicate(client, log):
    sid, h = log["sid"], log["researcher"].headers
    body = {"id": str(uuid.uuid4()), "name": "排班"}
    assert client.post(f"/api/stints/{sid}/themes", json=body, headers=h).status_code == 201
    assert client.post(f"/api/stints/{sid}/themes", json=body, headers=h).status_code == 200
    assert (
        client.post(f"/api/stints/{sid}/themes", json={**body, "name": "别的"}, headers=h).status_code == 409
    )
    assert [t["name"] for t in client.get(f"/api/stints/{sid}/themes", headers=h).json()] == ["排班"]


def test_an_order_naming_an_insight_twice_is_refused(client, log):
    """QA: PUT .../insights/order with [X, X] answered 200; which place did the caller mean?"""
    sid, h = log["sid"], log["researcher"].headers
    a, b = (
        client.post(f"/api/stints/{sid}/insights", json={"title": t, "statement": t}, headers=h).json()
        for t in ("A", "B")
    )
    for ids in ([b["id"], b["id"]], [b["id"], a["id"], b["id"].upper()]):
        r = client.put(f"/api/stints/{sid}/insights/order", json={"insight_ids": ids}, headers=h)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "duplicate_insight" and error["details"] == {"insight_ids": [b["id"]]}
        assert "more than once" in error["message"]
    # Nothing moved.
    assert [i["title"] for i in client.get(f"/api/stints/{sid}/insights", headers=h).json()] == ["A", "B"]
    r = client.put(f"/api/stints/{sid}/insights/order", json={"insight_ids": [b["id"], a["id"]]}, headers=h)
    assert [i["title"] for i in r.json()] == ["B", "A"]
