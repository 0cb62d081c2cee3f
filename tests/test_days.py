"""The daily log: every day of the stint with counts per researcher, and each researcher's summary."""

import uuid


def test_days_list_every_stint_day_with_gaps(client, stint_team):
    t = stint_team
    sid, r, m = t["stint"]["id"], t["researcher"].headers, t["manager"].headers
    obs = f"/api/stints/{sid}/observations"
    client.post(obs, json={"text": "早班", "observed_at": "2026-03-02T08:00:00+08:00"}, headers=r)
    client.post(obs, json={"text": "午班", "observed_at": "2026-03-02T13:00:00+08:00"}, headers=r)
    client.post(obs, json={"text": "经理巡仓", "observed_at": "2026-03-02T15:00:00+08:00"}, headers=m)
    client.post(obs, json={"text": "周三的记录", "observed_at": "2026-03-04T10:00:00+08:00"}, headers=r)
    gone = client.post(
        obs, json={"text": "写错了", "observed_at": "2026-03-05T10:00:00+08:00"}, headers=r
    ).json()
    client.delete(f"/api/observations/{gone['id']}", headers=r)
    # Logged before the stint began (a scouting visit): shown too, outside the plan.
    client.post(obs, json={"text": "前期踩点", "observed_at": "2026-02-27T10:00:00+08:00"}, headers=r)

    days = client.get(f"/api/stints/{sid}/days", headers=t["viewer"].headers).json()
    by_date = {d["date"]: d for d in days}
    assert len(days) == 26 + 1
    assert by_date["2026-02-27"]["in_stint"] is False and by_date["2026-02-27"]["observations"] == 1
    first = by_date["2026-03-02"]
    assert first["in_stint"] and first["observations"] == 3
    assert {(a["author_name"], a["observations"]) for a in first["authors"]} == {
        ("李研究员", 2),
        ("王经理", 1),
    }
    assert by_date["2026-03-03"]["observations"] == 0 and by_date["2026-03-03"]["authors"] == []
    assert by_date["2026-03-05"]["observations"] == 0  # the deleted one does not count
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)


def test_day_page_and_own_summary(client, stint_team):
    t = stint_team
    sid, r, m = t["stint"]["id"], t["researcher"], t["manager"]
    client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "Dispatcher keeps a paper list of drivers", "observed_at": "2026-03-03T09:00:00+08:00"},
        headers=r.headers,
    )
    url = f"/api/stints/{sid}/days/2026-03-03"
    put = client.put(url, json={"summary": "今天主要跟调度组，发现排班依赖纸质名单。"}, headers=r.headers)
    assert put.status_code == 200, put.text
    client.put(url, json={"summary": "Manager view: dispatch is the bottleneck."}, headers=m.headers)
    again = client.put(url, json={"summary": "今天主要跟调度组，发现排班依赖纸质名单。"}, headers=r.headers)
    page = again.json()
    mine = next(s for s in page["summaries"] if s["author_id"] == r.id)
    assert mine["version"] == 1  # repeating the same summary changes nothing
    assert len(page["summaries"]) == 2 and page["in_stint"] is True
    assert [o["text"] for o in page["observations"]] == ["Dispatcher keeps a paper list of drivers"]
    edited = client.put(url, json={"summary": "改：排班依赖纸质名单和微信群。"}, headers=r.headers).json()
    assert next(s for s in edited["summaries"] if s["author_id"] == r.id)["version"] == 2
    days = {d["date"]: d for d in client.get(f"/api/stints/{sid}/days", headers=r.headers).json()}
    assert days["2026-03-03"]["summaries"] == 2

    assert client.put(url, json={"summary": "viewer tries"}, headers=t["viewer"].headers).status_code == 403
    assert client.put(url, json={"summary": "x" * 10_001}, headers=r.headers).status_code == 422
    assert client.get(f"/api/stints/{sid}/days/2026-13-01", headers=r.headers).status_code == 422
    empty = client.get(f"/api/stints/{sid}/days/2026-06-01", headers=r.headers).json()
    assert empty == {"date": "2026-06-01", "in_stint": False, "summaries": [], "observations": []}


def _summary_op(key, summary, base_version=None):
    return {
        "op_id": uuid.uuid4().hex,
        "type": "daily_summary",
        "id": key,
        "op": "upsert",
        "base_version": base_version,
        "data": {"summary": summary},
    }


def _push(client, who, ops):
    r = client.post(
        "/api/sync/push", json={"ops": ops}, headers={**who.headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_summary_only_for_days_of_the_stint(client, stint_team):
    """The stint runs 2026-03-02 to 03-27: its days and 14 days either side take a summary, as does a
    day with observations further out; 1900, 2200 or a year later is a clear 422, by REST and sync."""
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    days = f"/api/stints/{sid}/days"
    for day in ("2026-03-02", "2026-03-27", "2026-02-16", "2026-04-10"):
        ok = client.put(f"{days}/{day}", json={"summary": f"小结 {day}"}, headers=r.headers)
        assert ok.status_code == 200, (day, ok.text)
    for day in ("1900-01-01", "2200-12-31", "2026-02-15", "2026-04-11", "2027-03-03"):
        bad = client.put(f"{days}/{day}", json={"summary": "写错了日期"}, headers=r.headers)
        assert bad.status_code == 422, (day, bad.text)
        assert bad.json()["error"]["code"] == "day_outside_stint"
        assert bad.json()["error"]["details"]["earliest"] == "2026-02-16"
    # A follow-up visit months later, logged: its day can be summarised.
    client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "回访：纸质名单已停用", "observed_at": "2026-06-10T10:00:00+08:00"},
        headers=r.headers,
    )
    assert client.put(f"{days}/2026-06-10", json={"summary": "回访"}, headers=r.headers).status_code == 200

    far = _push(client, r, [_summary_op(f"{sid}:{r.id}:2031-01-01", "同步来的远期小结")])[0]
    assert far["status"] == "rejected" and far["error"]["code"] == "day_outside_stint"
    assert client.get(f"{days}/2031-01-01", headers=r.headers).json()["summaries"] == []
    listed = {d["date"] for d in client.get(days, headers=r.headers).json()}
    assert not {"1900-01-01", "2200-12-31", "2027-03-03", "2031-01-01"} & listed


def test_empty_summary_removes_it(client, stint_team):
    """Clearing your summary deletes it (tombstone in the sync feed), by REST and by sync push;
    it is never stored as an empty string."""
    t = stint_team
    sid, r, v = t["stint"]["id"], t["researcher"], t["viewer"]
    url = f"/api/stints/{sid}/days/2026-03-03"
    client.put(url, json={"summary": "排班依赖纸质名单"}, headers=r.headers)
    cursor = client.get("/api/sync/changes", headers=v.headers).json()["cursor"]
    cleared = client.put(url, json={"summary": "  \n "}, headers=r.headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["summaries"] == []
    days = {d["date"]: d for d in client.get(f"/api/stints/{sid}/days", headers=r.headers).json()}
    assert days["2026-03-03"]["summaries"] == 0
    feed = client.get("/api/sync/changes", params={"since": cursor}, headers=v.headers).json()["changes"]
    key = f"{sid}:{r.id}:2026-03-03"
    assert [(c["id"], c["deleted"], c["version"]) for c in feed] == [(key, True, 2)]
    # Nothing to clear: nothing happens.
    assert client.put(url, json={"summary": ""}, headers=r.headers).json()["summaries"] == []
    # Invisible characters alone (zero-width space, BOM: str.strip() keeps them) are nothing too.
    client.put(url, json={"summary": "又写了一版"}, headers=r.headers)
    invisible = client.put(url, json={"summary": "\u200b\ufeff "}, headers=r.headers)
    assert invisible.status_code == 200 and invisible.json()["summaries"] == []

    # The phone sends a cleared summary as an upsert of empty text.
    client.put(url, json={"summary": "重写了"}, headers=r.headers)
    result = _push(client, r, [_summary_op(key, "\u200b", base_version=5)])[0]
    assert (result["status"], result["version"], result["deleted"]) == ("applied", 6, True)
    assert client.get(url, headers=r.headers).json()["summaries"] == []
    # Cleared against a version someone else's device has since replaced: a conflict, nothing lost.
    client.put(url, json={"summary": "第二台手机"}, headers=r.headers)
    stale = _push(client, r, [_summary_op(key, "", base_version=6)])[0]
    assert stale["status"] == "conflict" and stale["current"]["summary"] == "第二台手机"
    # Never written on the server (created and cleared offline): nothing to remove, nothing stored.
    other = f"{sid}:{r.id}:2026-03-04"
    gone = _push(client, r, [_summary_op(other, "")])[0]
    assert gone["status"] == "applied" and gone["deleted"] is True
    assert client.get(f"/api/stints/{sid}/days/2026-03-04", headers=r.headers).json()["summaries"] == []
