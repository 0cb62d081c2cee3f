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
