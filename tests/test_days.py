"""The daily log: every day of the stint with counts per researcher, and each researcher's summary."""


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
