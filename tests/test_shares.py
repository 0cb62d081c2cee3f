"""Share links: entropy, hash at rest, expiry, revocation, one 404, redaction, access log, rate limit,
headers, the reader's language."""

import base64
import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from api import migrations
from api.config import Settings
from api.db import make_engine, utcnow
from api.debrief_models import ShareAccess, ShareLink
from tests.material_files import assert_no_metadata, photo

LIMIT = 8


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, share_rate_limit_per_minute=LIMIT, ocr=False
    )


@pytest.fixture
def shared(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    obs = client.post(
        f"/api/stints/{sid}/observations",
        json={
            "text": "调度员在白板上画排班表",
            "quote": "这套规则只有我懂",
            "speaker_role": "调度员",
            "speaker_name": "张师傅",
            "dimension": "scene",
        },
        headers=h,
    ).json()
    secret = client.post(
        f"/api/stints/{sid}/observations",
        json={
            "text": "老板透露明年预算砍半",
            "quote": "别外传",
            "speaker_role": "老板",
            "speaker_name": "刘总",
        },
        headers=h,
    ).json()
    chosen = client.post(
        f"/api/stints/{sid}/insights",
        json={
            "title": "排班知识在个人手里",
            "statement": "离职风险高",
            "evidence": [{"observation_id": obs["id"]}],
        },
        headers=h,
    ).json()
    hidden = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "预算收紧", "statement": "内部消息", "evidence": [{"observation_id": secret["id"]}]},
        headers=h,
    ).json()
    client.post(f"/api/stints/{sid}/actions", json={"title": "内部行动：调价"}, headers=h)
    return {**t, "sid": sid, "chosen": chosen, "hidden": hidden}


def _share(client, t, **body):
    body.setdefault("insight_ids", [t["chosen"]["id"]])
    r = client.post(f"/api/stints/{t['sid']}/shares", json=body, headers=t["manager"].headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_only_managers_share(client, shared):
    for who, status in (("researcher", 403), ("viewer", 403), ("outsider", 404)):
        r = client.post(f"/api/stints/{shared['sid']}/shares", json={}, headers=shared[who].headers)
        assert r.status_code == status
    assert (
        client.get(f"/api/stints/{shared['sid']}/shares", headers=shared["viewer"].headers).status_code == 403
    )


def test_token_is_256_random_bits_shown_once_and_hashed_at_rest(client, db, shared):
    a, b = _share(client, shared), _share(client, shared)
    assert a["token"] != b["token"]
    raw = base64.urlsafe_b64decode(a["token"] + "=" * (-len(a["token"]) % 4))
    assert len(raw) == 32
    assert a["url"].endswith(f"/s/{a['token']}")
    assert client.get(a["url"]).status_code == 200
    assert r_headers_no_store(
        client.post(f"/api/stints/{shared['sid']}/shares", json={}, headers=shared["manager"].headers)
    )
    stored = db.exec(select(ShareLink).where(ShareLink.id == uuid.UUID(a["id"]))).one().model_dump()
    db.rollback()  # end the read: SQLite's write lock must not stay held while the app answers
    assert stored["token_hash"] == hashlib.sha256(a["token"].encode()).hexdigest()
    assert a["token"] not in str(
        stored
    )  # end the read: SQLite's write lock must not stay held while the app answers
    listed = client.get(f"/api/stints/{shared['sid']}/shares", headers=shared["manager"].headers)
    assert a["token"] not in listed.text and "token" not in listed.json()[0]


def test_a_retry_with_the_same_idempotency_key_makes_no_second_link(client, shared):
    url = f"/api/stints/{shared['sid']}/shares"
    headers = {**shared["manager"].headers, "Idempotency-Key": "share-2026-03-27-a"}
    body = {"insight_ids": [shared["chosen"]["id"]], "expires_in_days": 7, "label": "给客户的汇报"}
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    # The answer was lost on the way: the phone retries with the same key and body.
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["cache-control"] == "no-store"
    a, b = first.json(), again.json()
    assert b["id"] == a["id"] and b["expires_at"] == a["expires_at"] and b["insight_ids"] == a["insight_ids"]
    assert b["token"] != a["token"]  # only the hash is kept: the retry gets a new token, the old one stops
    assert client.get(b["url"]).status_code == 200
    assert client.get(a["url"]).status_code == 404
    listed = client.get(url, headers=shared["manager"].headers).json()
    assert [s["id"] for s in listed] == [a["id"]]
    # The same key for another request is refused; a bad key is a 400; no key still works.
    other = client.post(url, json={**body, "expires_in_days": 8}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    bad = client.post(url, json=body, headers={**headers, "Idempotency-Key": " "})
    assert bad.status_code == 400
    assert client.post(url, json=body, headers=shared["manager"].headers).status_code == 201
    assert len(client.get(url, headers=shared["manager"].headers).json()) == 2


def test_a_failed_create_frees_its_idempotency_key(client, shared):
    url = f"/api/stints/{shared['sid']}/shares"
    headers = {**shared["manager"].headers, "Idempotency-Key": "share-unknown-insight"}
    body = {"insight_ids": [str(uuid.uuid4())]}
    assert client.post(url, json=body, headers=headers).status_code == 422
    assert client.post(url, json=body, headers=headers).status_code == 422  # not 409: the key was freed
    assert client.get(url, headers=shared["manager"].headers).json() == []


def r_headers_no_store(response) -> bool:
    return response.status_code == 201 and response.headers["cache-control"] == "no-store"


def test_expiry_is_mandatory_default_14_max_90(client, db, shared):
    link = _share(client, shared)
    days = ShareLink.model_validate(link | {"token_hash": "x", "ip_salt": "x"}).expires_at - utcnow()
    assert timedelta(days=13, hours=23) < days <= timedelta(days=14)
    for bad in (0, 91, -1, None, "forever"):
        r = client.post(
            f"/api/stints/{shared['sid']}/shares",
            json={"expires_in_days": bad},
            headers=shared["manager"].headers,
        )
        assert r.status_code == 422, bad
    assert _share(client, shared, expires_in_days=90)
    # Once expired, the link answers like one that never existed.
    stored = db.get(ShareLink, uuid.UUID(link["id"]))
    stored.expires_at = utcnow() - timedelta(seconds=1)
    db.add(stored)
    db.commit()
    expired = client.get(f"/api/public/{link['token']}")
    unknown = client.get(f"/api/public/{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}")
    assert expired.status_code == unknown.status_code == 404
    assert expired.json() == unknown.json()
    assert client.get(f"/s/{link['token']}").status_code == 404


def test_revocation_works_at_once_with_the_same_404(client, shared):
    link = _share(client, shared)
    assert client.get(f"/api/public/{link['token']}").status_code == 200
    assert client.delete(f"/api/shares/{link['id']}", headers=shared["researcher"].headers).status_code == 403
    assert client.delete(f"/api/shares/{link['id']}", headers=shared["outsider"].headers).status_code == 404
    assert client.delete(f"/api/shares/{link['id']}", headers=shared["manager"].headers).status_code == 204
    revoked = client.get(f"/api/public/{link['token']}")
    unknown = client.get("/api/public/short")
    assert revoked.status_code == unknown.status_code == 404
    assert revoked.json() == unknown.json()
    page = client.get(f"/s/{link['token']}")
    assert page.status_code == 404 and "revoked" in client.get(f"/s/{link['token']}?lang=en").text
    listed = client.get(f"/api/stints/{shared['sid']}/shares", headers=shared["manager"].headers).json()
    assert listed[0]["active"] is False and listed[0]["revoked_at"] is not None


def test_shows_chosen_insights_only_redacted(client, shared, person):
    # Another stint of the same team, with its own insight: never part of this link.
    other = client.post(
        "/api/stints",
        json={
            "title": "别的驻场",
            "customer": "别的客户",
            "purpose": "product",
            "start_date": "2026-01-05",
            "end_date": "2026-01-30",
        },
        headers=shared["manager"].headers,
    ).json()
    client.post(
        f"/api/stints/{other['id']}/insights",
        json={"title": "别的洞见", "statement": "别处"},
        headers=shared["manager"].headers,
    )
    link = _share(client, shared)
    data = client.get(f"/api/public/{link['token']}").json()
    assert [i["title"] for i in data["insights"]] == ["排班知识在个人手里"]
    [ev] = data["insights"][0]["evidence"]
    assert ev["quote"] == "这套规则只有我懂" and ev["speaker_role"] == "调度员"
    assert "speaker_name" not in ev
    assert data["coverage"]["by_researcher"] == []
    page = client.get(f"/s/{link['token']}").text
    for leak in ("张师傅", "刘总", "预算收紧", "别外传", "内部行动", "别的洞见", "李研究员", "王经理"):
        assert leak not in page, leak
        assert leak not in str(data), leak
    assert "排班知识在个人手里" in page and "调度员" in page
    # Insights of another stint cannot be chosen.
    foreign = client.post(
        f"/api/stints/{other['id']}/insights",
        json={"title": "x", "statement": "y"},
        headers=shared["manager"].headers,
    ).json()
    r = client.post(
        f"/api/stints/{shared['sid']}/shares",
        json={"insight_ids": [foreign["id"]]},
        headers=shared["manager"].headers,
    )
    assert r.status_code == 422
    # Without a choice, the link shows insights that have evidence, not drafts.
    client.post(
        f"/api/stints/{shared['sid']}/insights",
        json={"title": "草稿洞见", "statement": "无证据"},
        headers=shared["manager"].headers,
    )
    everything = _share(client, shared, insight_ids=None)
    titles = {i["title"] for i in client.get(f"/api/public/{everything['token']}").json()["insights"]}
    assert titles == {"排班知识在个人手里", "预算收紧"}


def test_every_access_is_logged_and_counted(client, db, shared):
    link = _share(client, shared)
    client.get(f"/api/public/{link['token']}", headers={"User-Agent": "WeChat/8.0 iPhone"})
    client.get(f"/s/{link['token']}", headers={"User-Agent": "Mozilla/5.0"})
    listed = client.get(f"/api/stints/{shared['sid']}/shares", headers=shared["manager"].headers).json()
    assert listed[0]["access_count"] == 2 and listed[0]["last_accessed_at"]
    log = client.get(f"/api/shares/{link['id']}/accesses", headers=shared["manager"].headers).json()
    assert [a["user_agent"] for a in log] == ["Mozilla/5.0", "WeChat/8.0 iPhone"]
    # The page and the JSON are the same debrief: both are logged as a view of it.
    assert [(a["kind"], a["material_id"]) for a in log] == [("debrief", None), ("debrief", None)]
    assert all(len(a["ip_hash"]) == 64 and a["ip_hash"] != "testclient" for a in log)
    assert len({a["ip_hash"] for a in log}) == 1  # same client, same hash
    hashes = [r.ip_hash for r in db.exec(select(ShareAccess)).all()]
    db.rollback()
    assert len(hashes) == 2 and all("testclient" not in h for h in hashes)
    assert (
        client.get(f"/api/shares/{link['id']}/accesses", headers=shared["viewer"].headers).status_code == 403
    )


def test_public_endpoints_are_rate_limited_with_retry_after(client, shared):
    link = _share(client, shared)
    answers = [client.get(f"/api/public/{link['token']}").status_code for _ in range(LIMIT)]
    assert answers == [200] * LIMIT
    r = client.get(f"/api/public/{link['token']}")
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["cache-control"] == "no-store"
    # Guessing tokens counts too, and the page is limited the same way.
    assert client.get("/api/public/guess-guess-guess-guess-guess").status_code == 429
    page = client.get(f"/s/{link['token']}")
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert 1 <= int(page.headers["retry-after"]) <= 60
    # Photos have their own, larger budget (a page shows several), limited all the same.
    photo_url = f"/api/public/{link['token']}/materials/{uuid.uuid4()}"
    statuses = [client.get(photo_url).status_code for _ in range(LIMIT * 10 + 1)]
    assert statuses[:-1] == [404] * (LIMIT * 10) and statuses[-1] == 429


@pytest.mark.parametrize(
    "path", ["/api/public/{token}", "/s/{token}", "/api/public/unknown-token-of-some-length", "/s/x"]
)
def test_headers_on_every_public_answer(client, shared, path):
    link = _share(client, shared)
    r = client.get(path.format(token=link["token"]))
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in r.headers["x-robots-tag"]


def test_page_in_the_readers_language(client, shared):
    link = _share(client, shared)
    zh = client.get(f"/s/{link['token']}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    en = client.get(f"/s/{link['token']}", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert zh.status_code == en.status_code == 200
    assert 'lang="zh-CN"' in zh.text and "洞见" in zh.text
    assert 'lang="en"' in en.text and "Insights" in en.text and "洞见" not in en.text
    assert 'lang="en"' in client.get(f"/s/{link['token']}?lang=en").text
    assert 'lang="zh-CN"' in client.get(f"/s/{link['token']}").text  # no header: Chinese first
    assert "width=device-width" in zh.text
    # Inline style is allowed by its hash, nothing else runs.
    csp = zh.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "'sha256-" in csp


def test_deleted_stint_takes_its_links_down(client, shared):
    link = _share(client, shared)
    assert client.delete(f"/api/stints/{shared['sid']}", headers=shared["manager"].headers).status_code == 204
    assert client.get(f"/api/public/{link['token']}").status_code == 404


def _photo_insight(client, t, caption="调度室白板"):
    original = photo(gps=(31.2304, 121.4737))
    assert b"Exif" in original and b"xmpmeta" in original  # the camera's metadata is there to leak
    m = client.post(
        f"/api/stints/{t['sid']}/materials",
        files={"file": ("白板.jpg", original, "application/octet-stream")},
        data={"caption": caption},
        headers=t["researcher"].headers,
    )
    assert m.status_code == 201, m.text
    insight = client.post(
        f"/api/stints/{t['sid']}/insights",
        json={
            "title": "白板就是排班系统",
            "statement": "真正的排班在白板上",
            "evidence": [
                {"material_id": m.json()["id"]},
                {"observation_id": t["chosen"]["evidence"][0]["observation_id"]},
            ],
        },
        headers=t["researcher"].headers,
    )
    assert insight.status_code == 201, insight.text
    return m.json(), insight.json()


def test_photos_are_shown_only_when_asked_and_without_any_metadata(client, shared):
    material, insight = _photo_insight(client, shared)
    assert insight["evidence"][0]["material_id"] == material["id"] and insight["evidence"][0]["preview_url"]
    with_photos = _share(client, shared, include_photos=True, insight_ids=[insight["id"]])
    data = client.get(f"/api/public/{with_photos['token']}").json()
    [photo_ev] = [e for e in data["insights"][0]["evidence"] if e["image_url"]]
    assert photo_ev["caption"] == "调度室白板"
    image = client.get(photo_ev["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"
    img = assert_no_metadata(image.content)  # parsed from the bytes: no EXIF, GPS, XMP, ICC, comment
    assert img.size[0] > 0
    assert str(material["id"]) in client.get(f"/s/{with_photos['token']}").text
    # Without photos: no image in the JSON or the page, and the image URL is the same 404.
    without = _share(client, shared, include_photos=False, insight_ids=[insight["id"]])
    data = client.get(f"/api/public/{without['token']}").json()
    assert all(e["image_url"] is None for e in data["insights"][0]["evidence"])
    assert material["id"] not in client.get(f"/s/{without['token']}").text
    assert client.get(f"/api/public/{without['token']}/materials/{material['id']}").status_code == 404
    # A link that does not include the photo's insight does not serve it either.
    other = _share(client, shared, include_photos=True)
    assert client.get(f"/api/public/{other['token']}/materials/{material['id']}").status_code == 404


def _accesses(client, t, link):
    r = client.get(f"/api/shares/{link['id']}/accesses", headers=t["manager"].headers)
    assert r.status_code == 200, r.text
    return r.json()


def _views(client, t, link):
    listed = client.get(f"/api/stints/{t['sid']}/shares", headers=t["manager"].headers).json()
    return next(s["access_count"] for s in listed if s["id"] == link["id"])


def test_photos_served_are_in_the_access_log_not_in_the_view_count(client, db, shared):
    material, insight = _photo_insight(client, shared)
    link = _share(client, shared, include_photos=True, insight_ids=[insight["id"]])
    data = client.get(f"/api/public/{link['token']}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"}).json()
    [image_url] = [e["image_url"] for e in data["insights"][0]["evidence"] if e["image_url"]]
    for _ in range(2):  # the page, then a reload: each photo served is logged
        r = client.get(image_url, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    log = _accesses(client, shared, link)
    assert [(a["kind"], a["material_id"]) for a in log] == [
        ("photo", material["id"]),
        ("photo", material["id"]),
        ("debrief", None),
    ]
    assert {a["user_agent"] for a in log} == {"Mozilla/5.0 (iPhone)"}
    assert len({a["ip_hash"] for a in log}) == 1  # the same reader, as in the debrief view
    # access_count stays the number of debrief views: a page with photos is one view.
    assert _views(client, shared, link) == 1
    rows = db.exec(select(ShareAccess).where(ShareAccess.share_id == uuid.UUID(link["id"]))).all()
    db.rollback()
    assert sorted(r.kind for r in rows) == ["debrief", "photo", "photo"]
    assert {r.material_id for r in rows if r.kind == "photo"} == {uuid.UUID(material["id"])}

    # Only managers read the log.
    for who, status in (("viewer", 403), ("researcher", 403), ("outsider", 404)):
        r = client.get(f"/api/shares/{link['id']}/accesses", headers=shared[who].headers)
        assert r.status_code == status, who


def test_photos_not_served_are_not_logged(client, shared):
    material, insight = _photo_insight(client, shared)
    with_photos = _share(client, shared, include_photos=True, insight_ids=[insight["id"]])
    without = _share(client, shared, include_photos=False, insight_ids=[insight["id"]])
    other = _share(client, shared, include_photos=True)  # does not show the photo's insight
    misses = [
        f"/api/public/{with_photos['token']}/materials/{uuid.uuid4()}",  # not in the link
        f"/api/public/{without['token']}/materials/{material['id']}",  # photos not included
        f"/api/public/{other['token']}/materials/{material['id']}",  # insight not shared
    ]
    for url in misses:
        assert client.get(url).status_code == 404, url
    # A deleted photo is no longer served.
    deleted_material, deleted_insight = _photo_insight(client, shared, caption="已删除")
    deleted_link = _share(client, shared, include_photos=True, insight_ids=[deleted_insight["id"]])
    r = client.delete(f"/api/materials/{deleted_material['id']}", headers=shared["researcher"].headers)
    assert r.status_code == 204
    assert (
        client.get(f"/api/public/{deleted_link['token']}/materials/{deleted_material['id']}").status_code
        == 404
    )
    # Revoked: the same 404, nothing logged.
    assert (
        client.delete(f"/api/shares/{with_photos['id']}", headers=shared["manager"].headers).status_code
        == 204
    )
    assert client.get(f"/api/public/{with_photos['token']}/materials/{material['id']}").status_code == 404
    for link in (with_photos, without, other, deleted_link):
        assert _accesses(client, shared, link) == []
        assert _views(client, shared, link) == 0


def test_photos_refused_by_the_rate_limit_are_not_logged(client, shared):
    material, insight = _photo_insight(client, shared)
    link = _share(client, shared, include_photos=True, insight_ids=[insight["id"]])
    url = f"/api/public/{link['token']}/materials/{material['id']}"
    statuses = [client.get(url).status_code for _ in range(LIMIT * 10 + 1)]
    assert statuses == [200] * (LIMIT * 10) + [429]
    log = _accesses(client, shared, link)
    assert len(log) == LIMIT * 10 and {a["kind"] for a in log} == {"photo"}
    assert _views(client, shared, link) == 0


def test_accesses_logged_before_the_kind_was_kept_read_as_debrief_views(client, shared, database_url):
    """Migration 0006 adds kind with a server default: rows it finds were all debrief views."""
    link = _share(client, shared)
    assert client.get(f"/s/{link['token']}", headers={"User-Agent": "Old/1.0"}).status_code == 200
    engine = make_engine(database_url)
    try:
        migrations.downgrade(engine, "0005")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT user_agent FROM share_access").scalars().all() == ["Old/1.0"]
        migrations.upgrade(engine, "head")
    finally:
        engine.dispose()
    log = _accesses(client, shared, link)
    assert [(a["kind"], a["material_id"], a["user_agent"]) for a in log] == [("debrief", None, "Old/1.0")]


def test_an_insight_whose_evidence_was_all_deleted_is_not_shown(client, shared):
    """Evidence deleted after the link was made: the insight goes from the page, the JSON and the
    photo route; it comes back if it gets live evidence again."""
    t = shared
    material, photo_insight = _photo_insight(client, t)
    link = _share(client, t, include_photos=True, insight_ids=[t["chosen"]["id"], photo_insight["id"]])
    url = f"/api/public/{link['token']}"
    assert [i["title"] for i in client.get(url).json()["insights"]] == [
        "排班知识在个人手里",
        "白板就是排班系统",
    ]
    # Both insights cite this observation; the photo insight still has its photo.
    obs_id = t["chosen"]["evidence"][0]["observation_id"]
    assert client.delete(f"/api/observations/{obs_id}", headers=t["researcher"].headers).status_code == 204
    data = client.get(url).json()
    assert [i["title"] for i in data["insights"]] == ["白板就是排班系统"]
    assert [e["caption"] for e in data["insights"][0]["evidence"]] == ["调度室白板"]
    page = client.get(f"/s/{link['token']}").text
    assert "排班知识在个人手里" not in page and "白板就是排班系统" in page
    assert "草稿" not in page and "Draft" not in page
    # The photo goes too: nothing is left behind either insight.
    gone = client.delete(f"/api/materials/{material['id']}", headers=t["researcher"].headers)
    assert gone.status_code == 204, gone.text
    assert client.get(url).json()["insights"] == []
    page = client.get(f"/s/{link['token']}").text
    assert "白板就是排班系统" not in page and "排班知识在个人手里" not in page
    assert client.get(f"{url}/materials/{material['id']}").status_code == 404
    # New live evidence: the chosen insight is shown again.
    fresh = client.post(
        f"/api/stints/{t['sid']}/observations",
        json={"text": "排班表只在调度员脑子里"},
        headers=t["researcher"].headers,
    ).json()
    edited = client.patch(
        f"/api/insights/{t['chosen']['id']}",
        json={"evidence": [{"observation_id": fresh["id"]}]},
        headers=t["researcher"].headers,
    )
    assert edited.status_code == 200, edited.text
    assert [i["title"] for i in client.get(url).json()["insights"]] == ["排班知识在个人手里"]


def test_coverage_on_a_share_is_labelled_as_the_whole_log(client, shared):
    """The share's figures count the whole log (two observations, one shown), say so, and give no
    per-speaker-role counts: the role of a quote the link does not show stays out."""
    link = _share(client, shared)
    data = client.get(f"/api/public/{link['token']}").json()
    assert data["coverage_of"] == "whole_log"
    assert data["coverage"]["observations"] == 2 and data["coverage"]["quotes"] == 2
    assert data["coverage"]["quotes_by_speaker_role"] == []
    assert "老板" not in str(data)
    zh = client.get(f"/s/{link['token']}?lang=zh-CN").text
    assert "记录覆盖（整个调研日志，不仅是此处展示的内容）" in zh and "老板" not in zh
    en = client.get(f"/s/{link['token']}?lang=en").text
    assert "Coverage of the whole log (all observations, not only those shown here)" in en
    # The team's own debrief page still breaks quotes down by role.
    team = client.get(f"/api/stints/{shared['sid']}/debrief", headers=shared["manager"].headers).json()
    assert {r["speaker_role"] for r in team["coverage"]["quotes_by_speaker_role"]} == {"调度员", "老板"}
