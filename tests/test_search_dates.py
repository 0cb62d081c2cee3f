"""When a material happened, for search: a photo's EXIF time, else its observation's, else its upload
(phones upload days after the field day; date filters and the day facet mean the field day)."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from api.logday import log_day
from api.search_check import check
from tests.test_search import observe, search, settle, wait_for


def jpeg(taken: str | None) -> bytes:
    img = Image.new("RGB", (64, 48), "steelblue")
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal, no offset: the camera's local clock
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _upload(client: TestClient, who: Any, sid: str, data: bytes, name: str, **fields: str) -> dict[str, Any]:
    res = client.post(
        f"/api/stints/{sid}/materials",
        files={"file": (name, data, "image/jpeg")},
        data=fields,
        headers=who.headers,
    )
    assert res.status_code == 201, res.text
    return res.json()


def test_materials_are_dated_by_exif_then_observation_then_upload(client, stint_team, app):
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    uploaded = log_day(datetime.now(UTC), "Asia/Shanghai").isoformat()  # the stint's timezone
    obs = observe(client, r, sid, "充电区巡检", observed_at="2026-03-06T10:00:00+08:00")
    exif = _upload(client, r, sid, jpeg("2026:03:04 15:20:00"), "IMG_1.jpg", caption="叉车充电区")
    assert exif["taken_at"] == "2026-03-04T15:20:00"
    linked = _upload(client, r, sid, jpeg(None), "IMG_2.jpg", caption="叉车排队", observation_id=obs["id"])
    loose = _upload(client, r, sid, jpeg(None), "IMG_3.jpg", caption="叉车钥匙")
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y:%m:%d %H:%M:%S")
    wrong_clock = _upload(client, r, sid, jpeg(future), "IMG_4.jpg", caption="叉车时钟")
    settle(app)

    def hits(**params: Any) -> dict[str, dict[str, Any]]:
        return {h["id"]: h for h in search(client, t["viewer"], q="叉车", **params)["hits"]}

    found = hits()
    assert found[exif["id"]]["day"] == "2026-03-04"
    assert found[exif["id"]]["at"] == "2026-03-04T15:20:00+08:00"  # the stint's local clock
    assert found[linked["id"]]["day"] == "2026-03-06"
    assert found[loose["id"]]["day"] == uploaded
    assert found[wrong_clock["id"]]["day"] == uploaded  # a camera clock in the future is ignored
    assert {h["id"] for h in search(client, t["viewer"], q="叉车 date:2026-03-04")["hits"]} == {exif["id"]}
    assert set(hits(**{"from": "2026-03-04", "to": "2026-03-04"})) == {exif["id"]}
    assert set(hits(**{"from": "2026-03-02", "to": "2026-03-27"})) == {exif["id"], linked["id"]}
    days = {f["value"] for f in search(client, t["viewer"], q="叉车")["facets"]["days"]}
    assert {"2026-03-04", "2026-03-06"} <= days
    assert [h["id"] for h in search(client, t["viewer"], q="叉车", sort="oldest", per_page=2)["hits"]] == [
        exif["id"],
        linked["id"],
    ]

    # The observation moves: its photo (no EXIF time) follows; deleted, the photo falls back to its upload.
    moved = client.patch(
        f"/api/observations/{obs['id']}",
        json={"observed_at": "2026-03-09T08:00:00+08:00"},
        headers={**r.headers, "If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    wait_for(lambda: hits()[linked["id"]]["day"] == "2026-03-09")
    assert client.delete(f"/api/observations/{obs['id']}", headers=r.headers).status_code == 204
    wait_for(lambda: hits()[linked["id"]]["day"] == uploaded)
    settle(app)
    assert check(app.state.search_store, app.state.engine).ok
