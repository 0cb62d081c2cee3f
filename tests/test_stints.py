"""Stints, their dates and timezone, and the team's roles."""

import uuid

from tests.conftest import STINT


def test_create_stint_makes_creator_manager(client, person):
    p = person("王经理")
    r = client.post("/api/stints", json={**STINT, "goals": "了解调度员的排班流程"}, headers=p.headers)
    assert r.status_code == 201, r.text
    stint = r.json()
    assert stint["my_role"] == "manager" and stint["days"] == 26 and stint["customer"] == "顺达物流"
    assert client.get("/api/stints", headers=p.headers).json()[0]["id"] == stint["id"]
    members = client.get(f"/api/stints/{stint['id']}/members", headers=p.headers).json()
    assert [(m["user_id"], m["role"]) for m in members] == [(p.id, "manager")]


def test_default_timezone_is_china(client, person):
    p = person()
    body = {k: v for k, v in STINT.items() if k != "timezone"}
    assert client.post("/api/stints", json=body, headers=p.headers).json()["timezone"] == "Asia/Shanghai"


def test_dates_must_fit_the_method(client, person):
    p = person()
    too_long = client.post("/api/stints", json={**STINT, "end_date": "2026-05-26"}, headers=p.headers)
    assert too_long.status_code == 422
    assert "12 weeks" in too_long.json()["error"]["message"]
    backwards = client.post("/api/stints", json={**STINT, "end_date": "2026-03-01"}, headers=p.headers)
    assert backwards.status_code == 422 and "before start_date" in backwards.json()["error"]["message"]
    twelve_weeks = client.post("/api/stints", json={**STINT, "end_date": "2026-05-25"}, headers=p.headers)
    assert twelve_weeks.status_code == 201
    # Years an observation's time can have, no others (year 1 or 9999 is a slip of the keyboard).
    for start, end in (
        ("0001-01-01", "0001-01-10"),
        ("1899-12-30", "1900-01-02"),
        ("2199-12-30", "2200-01-02"),
    ):
        slip = client.post(
            "/api/stints", json={**STINT, "start_date": start, "end_date": end}, headers=p.headers
        )
        assert slip.status_code == 422 and "1900-01-01" in slip.json()["error"]["message"], (start, end)
    moved = client.patch(
        f"/api/stints/{twelve_weeks.json()['id']}", json={"start_date": "0001-05-20"}, headers=p.headers
    )
    assert moved.status_code == 422 and "1900-01-01" in moved.json()["error"]["message"]


def test_bad_fields_are_422(client, person):
    p = person()
    for bad in (
        {"purpose": "fun"},
        {"timezone": "Mars/Olympus"},
        {"timezone": "../../etc/passwd"},
        {"title": "   "},
        {"start_date": "2026-02-30"},
        {"customer": "x" * 201},
        {"unknown_field": 1},
        {"title": "a\x00b"},
    ):
        r = client.post("/api/stints", json={**STINT, **bad}, headers=p.headers)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_error"


def test_patch_stint_revalidates_dates(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["manager"].headers
    r = client.patch(f"/api/stints/{sid}", json={"end_date": "2026-07-01"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_dates"
    r = client.patch(f"/api/stints/{sid}", json={"title": "调度驻场（第二期）", "site": None}, headers=h)
    assert r.status_code == 200 and r.json()["title"] == "调度驻场（第二期）" and r.json()["site"] is None
    assert client.patch(f"/api/stints/{sid}", json={"title": None}, headers=h).status_code == 422


def test_timezone_change_refiles_observations(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    # 2026-03-03 23:50 in Shanghai is 15:50 UTC: it belongs to the 3rd there, and still the 3rd in London.
    obs = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "夜班交接", "observed_at": "2026-03-03T23:50:00+08:00"},
        headers=t["researcher"].headers,
    ).json()
    assert obs["day"] == "2026-03-03"
    client.patch(f"/api/stints/{sid}", json={"timezone": "America/Los_Angeles"}, headers=t["manager"].headers)
    again = client.get(f"/api/observations/{obs['id']}", headers=t["researcher"].headers).json()
    assert again["day"] == "2026-03-03"  # 07:50 on the 3rd in Los Angeles
    assert again["version"] == 1  # not moved, not changed
    client.patch(f"/api/stints/{sid}", json={"timezone": "Pacific/Kiritimati"}, headers=t["manager"].headers)
    again = client.get(f"/api/observations/{obs['id']}", headers=t["researcher"].headers).json()
    assert again["day"] == "2026-03-04"  # UTC+14: 05:50 on the 4th
    assert again["version"] == 1  # a move is not an edit: edits made against version 1 still apply
    feed = client.get("/api/sync/changes", headers=t["researcher"].headers).json()
    latest = [c for c in feed["changes"] if c["id"] == obs["id"]]
    assert latest and latest[-1]["version"] == 1 and latest[-1]["data"]["day"] == "2026-03-04"


def _push(client, who, ops):
    r = client.post(
        "/api/sync/push", json={"ops": ops}, headers={**who.headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_offline_edits_survive_a_timezone_change(client, stint_team):
    """Phones synced, went offline and edited; meanwhile the manager changed the stint's timezone,
    moving the observation to another day. The edits apply (no conflict), and a phone that only
    pulls learns the new day from the changes feed."""
    t = stint_team
    sid, r, v = t["stint"]["id"], t["researcher"], t["viewer"]
    obs = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "夜班交接", "observed_at": "2026-03-03T23:50:00+08:00"},
        headers=r.headers,
    ).json()
    late = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "晚班排班", "observed_at": "2026-03-03T22:00:00+08:00"},
        headers=r.headers,
    ).json()
    noon = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "午饭时间", "observed_at": "2026-03-03T12:00:00+08:00"},
        headers=r.headers,
    ).json()
    cursor = client.get("/api/sync/changes", headers=v.headers).json()["cursor"]
    moved = client.patch(
        f"/api/stints/{sid}", json={"timezone": "Pacific/Kiritimati"}, headers=t["manager"].headers
    )
    assert moved.status_code == 200, moved.text

    feed = client.get("/api/sync/changes", params={"since": cursor}, headers=v.headers).json()["changes"]
    # Only the observations that moved, with the version the phones have and the new day.
    assert sorted((c["id"], c["version"], c["data"]["day"]) for c in feed) == sorted(
        [(obs["id"], 1, "2026-03-04"), (late["id"], 1, "2026-03-04")]
    )
    assert noon["id"] not in {c["id"] for c in feed}
    day = client.get(f"/api/stints/{sid}/days/2026-03-04", headers=v.headers).json()
    assert {o["id"] for o in day["observations"]} == {obs["id"], late["id"]}

    edit = {
        "op_id": uuid.uuid4().hex,
        "type": "observation",
        "id": obs["id"],
        "op": "upsert",
        "base_version": 1,
        "data": {"text": "夜班交接：调度把纸质名单交给早班"},
    }
    [result] = _push(client, r, [edit])
    assert (result["status"], result["version"]) == ("applied", 2), result
    got = client.get(f"/api/observations/{obs['id']}", headers=r.headers).json()
    assert got["text"] == "夜班交接：调度把纸质名单交给早班" and got["day"] == "2026-03-04"
    # The REST way too: the ETag read before the move is still good.
    r2 = client.patch(
        f"/api/observations/{late['id']}",
        json={"text": "晚班排班靠微信群"},
        headers={**r.headers, "If-Match": f'"{late["version"]}"'},
    )
    assert r2.status_code == 200, r2.text
    assert r2.json()["version"] == 2 and r2.json()["day"] == "2026-03-04"


def test_delete_stint_hides_it(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    assert client.delete(f"/api/stints/{sid}", headers=t["researcher"].headers).status_code == 403
    assert client.delete(f"/api/stints/{sid}", headers=t["manager"].headers).status_code == 204
    assert client.get(f"/api/stints/{sid}", headers=t["manager"].headers).status_code == 404
    assert client.get("/api/stints", headers=t["manager"].headers).json() == []


def test_members_roles_and_last_manager(client, stint_team, person):
    t = stint_team
    sid, h = t["stint"]["id"], t["manager"].headers
    dup = client.post(
        f"/api/stints/{sid}/members", json={"email": t["viewer"].email, "role": "viewer"}, headers=h
    )
    assert dup.status_code == 409
    unknown = client.post(
        f"/api/stints/{sid}/members", json={"email": "nobody@example.com", "role": "viewer"}, headers=h
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_account"
    bad_role = client.post(
        f"/api/stints/{sid}/members", json={"email": t["outsider"].email, "role": "owner"}, headers=h
    )
    assert bad_role.status_code == 422

    # The only manager cannot step down or leave.
    last = client.patch(f"/api/stints/{sid}/members/{t['manager'].id}", json={"role": "viewer"}, headers=h)
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_manager"
    assert client.delete(f"/api/stints/{sid}/members/{t['manager'].id}", headers=h).status_code == 409

    promoted = client.patch(
        f"/api/stints/{sid}/members/{t['researcher'].id}", json={"role": "manager"}, headers=h
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    assert client.delete(f"/api/stints/{sid}/members/{t['manager'].id}", headers=h).status_code == 204
    assert client.get(f"/api/stints/{sid}", headers=h).status_code == 404

    # A viewer may leave but not remove others.
    v = t["viewer"]
    rh = t["researcher"].headers
    other = person()
    client.post(f"/api/stints/{sid}/members", json={"email": other.email, "role": "viewer"}, headers=rh)
    assert client.delete(f"/api/stints/{sid}/members/{other.id}", headers=v.headers).status_code == 403
    assert client.delete(f"/api/stints/{sid}/members/{v.id}", headers=v.headers).status_code == 204
    assert client.get(f"/api/stints/{sid}", headers=v.headers).status_code == 404


def test_admin_is_not_a_reader_of_stints(client, stint_team):
    t = stint_team
    assert client.get(f"/api/stints/{t['stint']['id']}", headers=t["admin"].headers).status_code == 404
    assert client.get("/api/stints", headers=t["admin"].headers).json() == []
