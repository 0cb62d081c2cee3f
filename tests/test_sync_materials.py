"""Material metadata in sync: the feed carries creates (multipart and tus), edits and deletes;
push upserts (caption, observation_id) and deletes with base_version conflicts, like observations."""

import base64
import uuid
from typing import Any

from tests.material_files import photo
from tests.test_sync import create_op, pull_all, push

PHOTO = photo()


def _upload(client, who, sid: str, caption: str = "白板", mid: str | None = None) -> dict[str, Any]:
    mid = mid or str(uuid.uuid4())
    r = client.post(
        f"/api/stints/{sid}/materials",
        files={"file": ("白板.jpg", PHOTO, "image/jpeg")},
        data={"id": mid, "caption": caption},
        headers=who.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _tus_upload(client, who, sid: str, mid: str) -> None:
    def b64(v: str) -> str:
        return base64.b64encode(v.encode()).decode()

    h = {**who.headers, "Tus-Resumable": "1.0.0"}
    meta = f"stint_id {b64(sid)},filename {b64('仓库.jpg')},id {b64(mid)},caption {b64('仓库')}"
    r = client.post("/api/uploads", headers={**h, "Upload-Length": str(len(PHOTO)), "Upload-Metadata": meta})
    assert r.status_code == 201, r.text
    p = client.patch(
        r.headers["location"],
        content=PHOTO,
        headers={**h, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert p.status_code == 204, p.text


def material_op(mid: str, base: int | None, op: str = "upsert", **data: Any) -> dict[str, Any]:
    return {
        "op_id": uuid.uuid4().hex,
        "type": "material",
        "id": mid,
        "op": op,
        "base_version": base,
        "data": data if op == "upsert" else None,
    }


def _materials(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in changes if c["type"] == "material"}


def test_feed_carries_material_create_update_delete(client, stint_team):
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    _, cursor = pull_all(client, r)
    made = _upload(client, r, sid, caption="排班白板")
    tus_id = str(uuid.uuid4())
    _tus_upload(client, r, sid, tus_id)
    changes, cursor = pull_all(client, r, cursor)
    got = _materials(changes)
    assert set(got) == {made["id"], tus_id}
    m = got[made["id"]]
    assert (m["version"], m["deleted"], m["stint_id"]) == (1, False, sid)
    rest = client.get(f"/api/materials/{made['id']}", headers=r.headers).json()
    rest.pop("extracted_text")
    rest.pop("deleted")
    assert m["data"] == rest  # metadata as the REST API shows it
    assert got[tus_id]["data"]["caption"] == "仓库"

    # A metadata change through REST (If-Match required) reaches the feed.
    url = f"/api/materials/{made['id']}"
    assert client.patch(url, json={"caption": "新"}, headers=r.headers).status_code == 428
    stale = client.patch(url, json={"caption": "新"}, headers={**r.headers, "If-Match": '"7"'})
    assert stale.status_code == 412
    obs = client.post(
        f"/api/stints/{sid}/observations", json={"text": "白板上的排班"}, headers=r.headers
    ).json()
    ok = client.patch(
        url,
        json={"caption": " 排班白板（更新） ", "observation_id": obs["id"]},
        headers={**r.headers, "If-Match": '"1"'},
    )
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == '"2"' and ok.json()["caption"] == "排班白板（更新）"
    changes, cursor = pull_all(client, r, cursor)
    m = _materials(changes)[made["id"]]
    assert m["version"] == 2 and m["data"]["observation_id"] == obs["id"]

    # A delete is a tombstone.
    assert client.delete(url, headers=r.headers).status_code == 204
    changes, cursor = pull_all(client, r, cursor)
    assert _materials(changes)[made["id"]] == {
        "type": "material",
        "id": made["id"],
        "stint_id": sid,
        "version": 3,
        "deleted": True,
        "data": None,
    }


def test_push_material_upsert_delete_conflict_duplicate_rejected(client, stint_team):
    t = stint_team
    sid, r, v = t["stint"]["id"], t["researcher"], t["viewer"]
    mid = _upload(client, r, sid, caption="白板")["id"]
    obs_op = create_op(sid, "仓库白板上写着排班")

    edit = material_op(mid, 1, caption="仓库白板", observation_id=obs_op["id"])
    res = push(client, r, [obs_op, edit]).json()["results"]
    assert [x["status"] for x in res] == ["applied", "applied"]
    assert res[1]["version"] == 2
    got = client.get(f"/api/materials/{mid}", headers=r.headers).json()
    assert (got["caption"], got["observation_id"], got["version"]) == ("仓库白板", obs_op["id"], 2)

    # The same op again: duplicate with the first answer; the same values from another device: duplicate.
    again = push(client, r, [edit]).json()["results"][0]
    assert (again["status"], again["version"]) == ("duplicate", 2)
    same = push(client, r, [material_op(mid, None, caption="仓库白板")]).json()["results"][0]
    assert (same["status"], same["version"]) == ("duplicate", 2)

    # Made against version 1 while the server is at 2: conflict with both copies, nothing written.
    stale = push(client, r, [material_op(mid, 1, caption="手机上的说明")]).json()["results"][0]
    assert stale["status"] == "conflict" and stale["version"] == 2
    assert stale["current"]["caption"] == "仓库白板" and stale["mine"] == {"caption": "手机上的说明"}
    assert stale["changes"] == [{"field": "caption", "server": "仓库白板", "yours": "手机上的说明"}]
    # Resolving is a normal push against the server's version.
    fixed = push(client, r, [material_op(mid, 2, caption="手机上的说明")]).json()["results"][0]
    assert (fixed["status"], fixed["version"]) == ("applied", 3)

    # Rejected: unknown id (bytes never uploaded), bytes fields, a viewer, a stale delete is a conflict.
    unknown = push(client, r, [material_op(str(uuid.uuid4()), None, caption="x")]).json()["results"][0]
    assert unknown["status"] == "rejected"
    assert unknown["error"]["code"] == "material_not_uploaded" and unknown["error"]["status"] == 404
    bytes_op = push(client, r, [material_op(mid, 3, sha256="0" * 64)]).json()["results"][0]
    assert bytes_op["status"] == "rejected" and bytes_op["error"]["status"] == 422
    viewer = push(client, v, [material_op(mid, 3, caption="看客")]).json()["results"][0]
    assert viewer["status"] == "rejected" and viewer["error"]["status"] == 403
    stale_delete = push(client, r, [material_op(mid, 1, op="delete")]).json()["results"][0]
    assert stale_delete["status"] == "conflict" and stale_delete["current"]["caption"] == "手机上的说明"

    deleted = push(client, r, [material_op(mid, 3, op="delete")]).json()["results"][0]
    assert (deleted["status"], deleted["version"], deleted["deleted"]) == ("applied", 4, True)
    assert client.get(f"/api/materials/{mid}", headers=r.headers).status_code == 410
    # An edit made before the delete: conflict, the material stays deleted.
    late = push(client, r, [material_op(mid, 3, caption="迟到")]).json()["results"][0]
    assert late["status"] == "conflict" and late["deleted"] is True
    changes, _ = pull_all(client, r)
    assert _materials(changes)[mid]["deleted"] is True


def test_non_member_gets_nothing(client, stint_team):
    t = stint_team
    sid, r, outsider = t["stint"]["id"], t["researcher"], t["outsider"]
    mid = _upload(client, r, sid)["id"]
    changes, _ = pull_all(client, outsider)
    assert _materials(changes) == {}
    # Pushing to a material of someone else's stint answers as for an unknown one (no existence leak).
    res = push(client, outsider, [material_op(mid, 1, caption="x")]).json()["results"][0]
    assert res["status"] == "rejected" and res["error"]["code"] == "material_not_uploaded"
    gone = push(client, outsider, [material_op(mid, 1, op="delete")]).json()["results"][0]
    assert gone["status"] == "rejected" and gone["error"]["code"] == "material_not_uploaded"
    assert client.get(f"/api/materials/{mid}", headers=r.headers).json()["version"] == 1
    patch = client.patch(
        f"/api/materials/{mid}", json={"caption": "x"}, headers={**outsider.headers, "If-Match": '"1"'}
    )
    assert patch.status_code == 404


def test_finished_text_extraction_reaches_the_changes_feed(client, stint_team, app, monkeypatch) -> None:
    """A device that pulled a document while its text was pending learns when it is done: the
    material comes again in the feed (same version: nothing a phone edits changed)."""
    import api.material_upload
    from api.textextract import drain
    from tests.material_files import docx

    monkeypatch.setattr(api.material_upload, "drain", lambda engine, store: 0)  # extraction "later"
    t = stint_team
    me, viewer = t["researcher"], t["viewer"]
    r = client.post(
        f"/api/stints/{t['stint']['id']}/materials",
        files={"file": ("访谈纪要.docx", docx(["调度员每天手工排班", "司机请假要打十几个电话"]))},
        headers=me.headers,
    )
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    seen = client.get("/api/sync/changes", headers=viewer.headers).json()
    mine = [c for c in seen["changes"] if c["type"] == "material"]
    assert [(c["id"], c["version"], c["data"]["text_status"]) for c in mine] == [(mid, 1, "pending")]

    assert drain(app.state.engine, app.state.blob_store) == 1
    later = client.get("/api/sync/changes", params={"since": seen["cursor"]}, headers=viewer.headers).json()
    assert [(c["type"], c["id"], c["version"], c["data"]["text_status"]) for c in later["changes"]] == [
        ("material", mid, 1, "done")
    ]
    assert client.get(f"/api/materials/{mid}", headers=me.headers).json()["version"] == 1
    # A caption edit made against the version the phone holds still applies.
    op = {"op_id": "cap-1", "type": "material", "id": mid, "op": "upsert", "base_version": 1}
    pushed = client.post(
        "/api/sync/push",
        json={"ops": [{**op, "data": {"caption": "访谈纪要（整理版）"}}]},
        headers={**me.headers, "Idempotency-Key": "k-cap-1"},
    ).json()["results"][0]
    assert (pushed["status"], pushed["version"]) == ("applied", 2)
