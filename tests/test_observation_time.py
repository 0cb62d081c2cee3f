"""observed_at is range-checked: an instant no timezone arithmetic can handle is a 422 (REST) or
that op `rejected` (sync), never a 500; a timezone change never fails on what is stored."""

import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from api.models import Observation
from tests.test_sync import create_op, edit_op, pull_all, push

# Each one overflowed a conversion (to UTC, or to Asia/Shanghai) and answered 500.
OUT_OF_RANGE = (
    "9999-12-31T23:00:00-05:00",
    "9999-12-31T20:00:00+00:00",
    "0001-01-01T01:00:00+08:00",
    "0001-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "2200-01-01T08:00:00+08:00",  # 2200-01-01T00:00:00Z: the end is excluded
)
# A phone whose clock was reset still gets its note kept (it shows on a day outside the stint).
IN_RANGE = (
    "1970-01-01T00:00:00Z",
    "1900-01-01T00:00:00Z",
    "2199-12-31T23:59:59Z",
    "2001-01-01T08:00:00+08:00",
)


def _obs(client, sid, headers, **body):
    return client.post(
        f"/api/stints/{sid}/observations", json={"text": "司机交接班", **body}, headers=headers
    )


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_out_of_range_observed_at_is_422_on_create_and_edit(client, stint_team, moment):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    r = _obs(client, sid, h, observed_at=moment)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and "observed_at" in error["message"]
    assert client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"] == []
    saved = _obs(client, sid, h).json()
    url = f"/api/observations/{saved['id']}"
    r = client.patch(url, json={"observed_at": moment}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert client.get(url, headers=h).json()["version"] == 1


@pytest.mark.parametrize("moment", IN_RANGE)
def test_edges_of_the_range_are_accepted(client, stint_team, moment):
    t = stint_team
    r = _obs(client, t["stint"]["id"], t["researcher"].headers, observed_at=moment)
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["observed_at"]) == datetime.fromisoformat(moment)


def test_sync_rejects_the_bad_op_and_applies_the_others(client, stint_team):
    t = stint_team
    sid, me = t["stint"]["id"], t["researcher"]
    kept = create_op(sid, "早班调度看白板", observed_at="2026-03-03T07:10:00+08:00")
    saved = create_op(sid, "晚班交接")
    push(client, me, [saved])
    ops = [
        kept,
        create_op(sid, "时钟坏了的手机", observed_at="9999-12-31T23:00:00-05:00"),
        edit_op(saved["id"], 1, observed_at="0001-01-01T01:00:00+08:00"),
        edit_op(saved["id"], 1, text="晚班交接（补充）"),
    ]
    key = uuid.uuid4().hex
    r = push(client, me, ops, key=key)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["applied", "rejected", "rejected", "applied"]
    for bad in results[1:3]:
        assert bad["error"]["status"] == 422 and bad["error"]["code"] == "validation_error"
        assert "observed_at" in bad["error"]["message"]
    assert results[3]["version"] == 2
    # The same batch again (the phone's retry) replays the answer: no 500, nothing stuck.
    again = push(client, me, ops, key=key)
    assert again.status_code == 200 and again.json()["results"] == results
    changes, _ = pull_all(client, t["viewer"])
    texts = {c["data"]["text"] for c in changes if c["type"] == "observation"}
    assert texts == {"早班调度看白板", "晚班交接（补充）"}


def test_timezone_change_copes_with_any_stored_time(client, stint_team, app):
    """Rows stored before the range check (QA stored 0001-01-01T00:00Z) must not make every later
    timezone change of the stint fail."""
    t = stint_team
    sid, h, m = t["stint"]["id"], t["researcher"].headers, t["manager"].headers
    ids = [_obs(client, sid, h, observed_at="2026-03-03T00:30:00+08:00").json()["id"] for _ in range(3)]
    edges = {
        ids[1]: (datetime(1, 1, 1, tzinfo=UTC), date(1, 1, 1)),
        ids[2]: (datetime(9999, 12, 31, 20, tzinfo=UTC), date(9999, 12, 31)),
    }
    with app.state.engine.begin() as conn:
        for oid, (at, day) in edges.items():
            conn.execute(
                sa.update(Observation.__table__)
                .where(Observation.__table__.c.id == uuid.UUID(oid))
                .values(observed_at=at, day=day)
            )
    for zone in ("America/New_York", "Pacific/Kiritimati", "Asia/Shanghai"):
        r = client.patch(f"/api/stints/{sid}", json={"timezone": zone}, headers=m)
        assert r.status_code == 200, (zone, r.text)
    days = {
        o["id"]: o["day"] for o in client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"]
    }
    assert days == {ids[0]: "2026-03-03", ids[1]: "0001-01-01", ids[2]: "9999-12-31"}
    r = client.patch(f"/api/stints/{sid}", json={"timezone": "America/New_York"}, headers=m)
    assert r.status_code == 200
    days = {
        o["id"]: o["day"] for o in client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"]
    }
    assert days[ids[0]] == "2026-03-02" and days[ids[1]] == "0001-01-01"


# --- observed_at is answered as the phone recorded it: the instant and its UTC offset (issue #5) ---


def test_every_answer_gives_the_recorded_offset(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    created = _obs(client, sid, h, observed_at="2026-03-03T23:50:00+08:00")
    assert created.status_code == 201
    assert created.json()["observed_at"] == "2026-03-03T23:50:00+08:00"
    assert created.json()["day"] == "2026-03-03"
    url = f"/api/observations/{created.json()['id']}"
    assert client.get(url, headers=h).json()["observed_at"] == "2026-03-03T23:50:00+08:00"
    (listed,) = client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"]
    assert listed["observed_at"] == "2026-03-03T23:50:00+08:00"
    day = client.get(f"/api/stints/{sid}/days/2026-03-03", headers=h).json()
    assert [o["observed_at"] for o in day["observations"]] == ["2026-03-03T23:50:00+08:00"]
    # An edit that leaves the time alone keeps its offset.
    edited = client.patch(url, json={"text": "补充"}, headers={**h, "If-Match": '"1"'}).json()
    assert edited["version"] == 2 and edited["observed_at"] == "2026-03-03T23:50:00+08:00"
    # Half-hour offsets west of UTC and seconds are kept too; the day still comes from the stint.
    moved = client.patch(
        url, json={"observed_at": "2026-03-04T09:15:30.250-03:30"}, headers={**h, "If-Match": '"2"'}
    ).json()
    assert moved["observed_at"] == "2026-03-04T09:15:30.250000-03:30"
    assert moved["day"] == "2026-03-04"  # 20:45:30 in Shanghai


def test_the_same_instant_in_another_offset_is_a_change(client, stint_team):
    """What an edit changes is what the answer shows: 23:50+08:00 and 15:50Z are the same instant,
    but a phone corrected from UTC to Shanghai time shows another time. The instant, and so the
    order, the log day and search dates, stay as they were."""
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    o = _obs(client, sid, h, observed_at="2026-03-03T15:50:00Z").json()
    assert o["observed_at"] == "2026-03-03T15:50:00Z"
    url = f"/api/observations/{o['id']}"
    r = client.patch(url, json={"observed_at": "2026-03-03T23:50:00+08:00"}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 200
    assert (r.json()["version"], r.json()["observed_at"], r.json()["day"]) == (
        2,
        "2026-03-03T23:50:00+08:00",
        o["day"],
    )
    # The same value written otherwise is no change.
    same = client.patch(
        url, json={"observed_at": "2026-03-03T23:50:00.000+08:00"}, headers={**h, "If-Match": '"2"'}
    )
    assert same.json()["version"] == 2


def test_order_and_day_follow_the_instant_not_the_local_clock(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    # 07:00 in New York is later than 17:00 in Shanghai (09:00Z): the list is in observed order.
    shanghai = _obs(client, sid, h, text="上海", observed_at="2026-03-05T17:00:00+08:00").json()
    new_york = _obs(client, sid, h, text="纽约", observed_at="2026-03-05T07:00:00-05:00").json()
    utc = _obs(client, sid, h, text="UTC", observed_at="2026-03-05T11:00:00Z").json()
    items = client.get(f"/api/stints/{sid}/observations", params={"limit": 1}, headers=h).json()
    order = [items["items"][0]["id"]]
    while items["next_cursor"]:
        items = client.get(
            f"/api/stints/{sid}/observations", params={"limit": 1, "cursor": items["next_cursor"]}, headers=h
        ).json()
        order += [o["id"] for o in items["items"]]
    assert order == [shanghai["id"], utc["id"], new_york["id"]]
    assert [shanghai["day"], utc["day"], new_york["day"]] == ["2026-03-05", "2026-03-05", "2026-03-05"]
    assert new_york["observed_at"] == "2026-03-05T07:00:00-05:00"


def test_rows_saved_before_offsets_were_kept_answer_in_utc(client, stint_team, app):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    o = _obs(client, sid, h, observed_at="2026-03-03T23:50:00+08:00").json()
    with app.state.engine.begin() as conn:
        table = Observation.__table__
        conn.execute(
            sa.update(table).where(table.c.id == uuid.UUID(o["id"])).values(observed_offset_minutes=None)
        )
    url = f"/api/observations/{o['id']}"
    got = client.get(url, headers=h).json()
    assert (got["observed_at"], got["day"]) == ("2026-03-03T15:50:00Z", "2026-03-03")
    # Sending that answer back in an edit changes nothing; a time in another offset is kept with it.
    r = client.patch(url, json={"observed_at": "2026-03-03T15:50:00Z"}, headers={**h, "If-Match": '"1"'})
    assert r.json()["version"] == 1
    r = client.patch(url, json={"observed_at": "2026-03-03T23:50:00+08:00"}, headers={**h, "If-Match": '"1"'})
    assert (r.json()["version"], r.json()["observed_at"]) == (2, "2026-03-03T23:50:00+08:00")


def test_a_time_without_offset_is_still_refused(client, stint_team):
    t = stint_team
    sid, me = t["stint"]["id"], t["researcher"]
    r = _obs(client, sid, me.headers, observed_at="2026-03-03T23:50:00")
    assert r.status_code == 422 and "observed_at" in r.json()["error"]["message"]
    (result,) = push(client, me, [create_op(sid, "无时区", observed_at="2026-03-03T23:50:00")]).json()[
        "results"
    ]
    assert result["status"] == "rejected" and result["error"]["code"] == "validation_error"


def test_sync_answers_and_conflict_copies_carry_the_offset(client, stint_team):
    t = stint_team
    sid, me, manager = t["stint"]["id"], t["researcher"], t["manager"]
    op = create_op(sid, "夜班", observed_at="2026-03-03T23:50:00+08:00")
    assert push(client, me, [op]).json()["results"][0]["status"] == "applied"
    changes, _ = pull_all(client, t["viewer"])
    (change,) = [c for c in changes if c["type"] == "observation"]
    assert change["data"]["observed_at"] == "2026-03-03T23:50:00+08:00"
    # The same create again is a duplicate; the same instant written in another offset is another
    # create (it would be shown at another time): a conflict, as for any other content.
    assert push(client, me, [{**op, "op_id": "again"}]).json()["results"][0]["status"] == "duplicate"
    utc = create_op(sid, "夜班", obs_id=op["id"], observed_at="2026-03-03T15:50:00Z")
    (other,) = push(client, me, [utc]).json()["results"]
    assert other["status"] == "conflict"
    assert other["current"]["observed_at"] == "2026-03-03T23:50:00+08:00"
    assert other["mine"]["observed_at"] == "2026-03-03T15:50:00Z"
    assert [c["field"] for c in other["changes"]] == ["observed_at"]
    # A stale edit's conflict copy: the server's time as recorded, and the device's.
    assert push(client, me, [edit_op(op["id"], 1, text="夜班交接")]).json()["results"][0]["version"] == 2
    stale = edit_op(op["id"], 1, observed_at="2026-03-04T00:10:00+08:00")
    (c,) = push(client, manager, [stale]).json()["results"]
    assert c["status"] == "conflict" and c["current"]["observed_at"] == "2026-03-03T23:50:00+08:00"
    assert {x["field"]: (x["server"], x["yours"]) for x in c["changes"]} == {
        "observed_at": ("2026-03-03T23:50:00+08:00", "2026-03-04T00:10:00+08:00")
    }
    # An edit through sync stores the new offset.
    moved = edit_op(op["id"], 2, observed_at="2026-03-03T17:50:00+02:00")
    assert push(client, me, [moved]).json()["results"][0]["status"] == "applied"
    got = client.get(f"/api/observations/{op['id']}", headers=me.headers).json()
    assert (got["observed_at"], got["day"], got["version"]) == ("2026-03-03T17:50:00+02:00", "2026-03-03", 3)
