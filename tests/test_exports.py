"""Exports: Markdown, self-contained HTML with embedded photos, the action plan as CSV and XLSX,
and the whole stint as a streamed ZIP that an import brings back identical."""

import base64
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlmodel import Session

from api.archive import ArchiveError, import_stint
from api.config import Settings
from api.main import create_app
from api.models import User
from storage import make_store
from tests.material_files import assert_no_metadata, photo


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, ocr=False)


@pytest.fixture
def full(client, stint_team):
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"].headers
    h = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "调度员愿意用系统排班"}, headers=r
    ).json()
    obs = client.post(
        f"/api/stints/{sid}/observations",
        json={
            "text": "调度员在白板上排班",
            "quote": "系统排的班司机不认",
            "speaker_role": "调度员",
            "speaker_name": "张师傅",
            "tags": ["排班", "白板"],
            "dimension": "scene",
            "observed_at": "2026-03-03T09:30:00+08:00",
            "hypothesis_links": [{"hypothesis_id": h["id"], "stance": "refutes"}],
        },
        headers=r,
    ).json()
    client.put(f"/api/stints/{sid}/days/2026-03-03", json={"summary": "今天跟了早班调度"}, headers=r)
    material = client.post(
        f"/api/stints/{sid}/materials",
        files={"file": ("白板.jpg", photo(), "application/octet-stream")},
        data={"caption": "调度室白板", "observation_id": obs["id"]},
        headers=r,
    )
    assert material.status_code == 201, material.text
    theme = client.post(f"/api/stints/{sid}/themes", json={"name": "排班"}, headers=r).json()
    insight = client.post(
        f"/api/stints/{sid}/insights",
        json={
            "title": "白板才是真正的排班系统",
            "statement": "规则在调度员脑子里",
            "theme_id": theme["id"],
            "evidence": [{"observation_id": obs["id"]}, {"material_id": material.json()["id"]}],
            "verdicts": [{"hypothesis_id": h["id"], "verdict": "refutes"}],
        },
        headers=r,
    ).json()
    action = client.post(
        f"/api/stints/{sid}/actions",
        json={
            "title": '=HYPERLINK("http://evil")',
            "description": "排班模板试点",
            "owner_email": t["researcher"].email,
            "due_date": "2026-04-30",
            "impact": "high",
            "effort": "low",
            "insight_ids": [insight["id"]],
        },
        headers=r,
    ).json()
    client.post(
        f"/api/actions/{action['id']}/review",
        json={"decision": "approve", "comment": "同意"},
        headers=t["manager"].headers,
    )
    gone = client.post(f"/api/stints/{sid}/observations", json={"text": "删掉的"}, headers=r).json()
    client.delete(f"/api/observations/{gone['id']}", headers=r)
    return {**t, "sid": sid, "material": material.json(), "insight": insight, "action": action}


def _export(client, t, fmt, who="viewer", **headers):
    return client.get(f"/api/stints/{t['sid']}/export?format={fmt}", headers={**t[who].headers, **headers})


def test_markdown(client, full):
    r = _export(client, full, "md")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert (
        "attachment;" in r.headers["content-disposition"]
        and "filename*=UTF-8''" in r.headers["content-disposition"]
    )
    md = r.text
    assert md.startswith("# 华东物流调度驻场")
    assert "### 白板才是真正的排班系统 · 排班" in md
    assert "> 「系统排的班司机不认」 — 调度员" in md
    assert "调度室白板" in md and "改善行动计划" in md
    assert "张师傅" not in md  # quotes keep the speaker's role
    assert "Insights" in _export(client, full, "md", **{"Accept-Language": "en"}).text


def test_html_is_self_contained_and_print_ready(client, full):
    r = _export(client, full, "html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "@media print" in html and "白板才是真正的排班系统" in html
    assert "<script" not in html and "<link" not in html
    sources = re.findall(r'src="([^"]+)"', html)
    assert sources and all(s.startswith("data:image/jpeg;base64,") for s in sources)
    assert_no_metadata(base64.b64decode(sources[0].split(",", 1)[1]))
    assert "调度员" in html and "张师傅" not in html  # the speaker's role, not the name
    # Text is escaped, never markup.
    assert "=HYPERLINK(&quot;http://evil&quot;)" in html


def test_action_plan_csv_and_xlsx(client, full):
    r = _export(client, full, "csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["优先级", "行动", "说明"]
    assert rows[1][0] == "高" and rows[1][1] == '\'=HYPERLINK("http://evil")'  # never a formula
    assert rows[1][2] == "排班模板试点" and rows[1][5] == "2026-04-30" and rows[1][6] == "已批准"
    assert rows[1][11] == "白板才是真正的排班系统" and rows[1][12] == "王经理: 同意"
    x = _export(client, full, "xlsx", **{"Accept-Language": "en"})
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet.title == "Action plan"
    assert [c.value for c in sheet[1]][:2] == ["Priority", "Action"]
    assert sheet["A2"].value == "High" and sheet["B2"].value.startswith("'=")
    assert sheet["F2"].value.date().isoformat() == "2026-04-30"
    assert sheet["G2"].value == "Approved"


def test_exports_need_membership_and_zip_needs_a_manager(client, full):
    assert _export(client, full, "md", who="outsider").status_code == 404
    assert _export(client, full, "zip", who="viewer").status_code == 403
    assert _export(client, full, "pdf").status_code == 422
    assert client.get(f"/api/stints/{full['sid']}/export", headers=full["viewer"].headers).status_code == 422


def _zip(client, t) -> bytes:
    r = _export(client, t, "zip", who="manager")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "content-length" not in r.headers  # streamed, not built whole
    return r.content


def _check_manifest(data: bytes) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist()[-1] == "manifest.json"
        manifest = json.loads(z.read("manifest.json"))
        files = {f["path"]: z.read(f["path"]) for f in manifest["files"]}
    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["path"]]).hexdigest() == entry["sha256"]
    return manifest, files


def test_zip_holds_data_materials_and_a_manifest(client, full):
    _manifest, files = _check_manifest(_zip(client, full))
    data = json.loads(files["data.json"])
    m = full["material"]
    assert f"materials/{m['sha256']}" in files  # the original, byte for byte
    assert len([p for p in files if p.startswith("materials/")]) == 3  # original and two previews
    # Tombstones travel too, so devices and the restored stint agree on what was deleted; not what
    # the deleted observation said (see test_deleted_content_never_leaves_in_the_zip).
    assert sorted((o["text"], o["deleted_at"] is not None) for o in data["observations"]) == [
        ("", True),
        ("调度员在白板上排班", False),
    ]
    assert {u["email"] for u in data["users"]} >= {full["researcher"].email, full["manager"].email}
    assert all("password_hash" not in u for u in data["users"])
    assert data["insight_evidence"] and data["action_events"] and data["observation_tags"]


def _wipe_stint(engine: sa.Engine, stint_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM stint WHERE id = :id"),
            {"id": uuid.UUID(stint_id).hex if engine.dialect.name == "sqlite" else stint_id},
        )


def test_round_trip_restores_the_stint_identically(client, full, app, settings, tmp_path):
    first = _zip(client, full)
    _, before = _check_manifest(first)
    path = tmp_path / "stint.zip"
    path.write_bytes(first)
    store = make_store(settings.storage_url, settings.data_dir)
    with Session(app.state.engine) as session, pytest.raises(ArchiveError, match="already exists"):
        import_stint(session, store, path)
    _wipe_stint(app.state.engine, full["sid"])
    assert client.get(f"/api/stints/{full['sid']}", headers=full["manager"].headers).status_code == 404
    with Session(app.state.engine) as session:
        import_stint(session, store, path)
    _, after = _check_manifest(_zip(client, full))
    assert after == before  # data.json and every material, byte for byte
    # And it works again: the debrief, the insight with its photo, the action's history.
    d = client.get(f"/api/stints/{full['sid']}/debrief", headers=full["viewer"].headers).json()
    assert d["insights"][0]["evidence"][1]["material_id"] == full["material"]["id"]
    assert [
        e["kind"]
        for e in client.get(f"/api/actions/{full['action']['id']}", headers=full["manager"].headers).json()[
            "history"
        ]
    ] == ["created", "review"]


def _rezip(parts: dict[str, bytes], data: dict, path) -> None:
    """``parts`` with ``data`` as data.json, the manifest's sums made to match (an archive as
    another version of the server would have written it)."""
    parts = {**parts, "data.json": json.dumps(data, ensure_ascii=False).encode()}
    manifest = json.loads(parts.pop("manifest.json"))
    for entry in manifest["files"]:
        body = parts[entry["path"]]
        entry["sha256"], entry["size"] = hashlib.sha256(body).hexdigest(), len(body)
    with zipfile.ZipFile(path, "w") as z:
        for name, body in parts.items():
            z.writestr(name, body)
        z.writestr("manifest.json", json.dumps(manifest))


def test_archive_keeps_the_phone_time_as_recorded(client, full, app, settings, tmp_path):
    archive = _zip(client, full)
    data = json.loads(_check_manifest(archive)[1]["data.json"])
    (obs,) = [o for o in data["observations"] if o["deleted_at"] is None]
    assert (obs["observed_at"], obs["observed_offset_minutes"]) == ("2026-03-03T09:30:00+08:00", 480)
    url, m = f"/api/observations/{obs['id']}", full["manager"].headers
    store = make_store(settings.storage_url, settings.data_dir)
    path = tmp_path / "stint.zip"
    path.write_bytes(archive)
    _wipe_stint(app.state.engine, full["sid"])
    with Session(app.state.engine) as session:
        import_stint(session, store, path)
    got = client.get(url, headers=m).json()
    assert (got["observed_at"], got["day"]) == ("2026-03-03T09:30:00+08:00", "2026-03-03")
    # An archive from before offsets were kept has none: its times are answered in UTC, as they were.
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    for row in data["observations"]:
        del row["observed_offset_minutes"]
    obs["observed_at"] = "2026-03-03T01:30:00Z"
    _rezip(parts, data, path)
    _wipe_stint(app.state.engine, full["sid"])
    with Session(app.state.engine) as session:
        import_stint(session, store, path)
    got = client.get(url, headers=m).json()
    assert (got["observed_at"], got["day"]) == ("2026-03-03T01:30:00Z", "2026-03-03")


def test_import_into_an_empty_installation(client, full, tmp_path):
    archive = tmp_path / "stint.zip"
    archive.write_bytes(_zip(client, full))
    _, before = _check_manifest(archive.read_bytes())
    other = Settings(
        data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'other.db'}", ocr=False
    )
    from api import migrations
    from api.db import make_engine

    engine = make_engine(other.sqlalchemy_url)
    migrations.upgrade(engine)
    engine.dispose()
    fresh = create_app(other)
    try:
        with Session(fresh.state.engine) as session:
            stint = import_stint(session, make_store(other.storage_url, other.data_dir), archive)
            assert str(stint.id) == full["sid"]
            # Accounts it names exist now, disabled until an admin enables them.
            manager = session.get(User, full["manager"].user.id)
            assert manager is not None and manager.is_active is False and manager.password_hash == "!"
            from api.archive import stint_data

            assert json.loads(before["data.json"]) == stint_data(session, stint.id)
    finally:
        fresh.state.engine.dispose()


def test_damaged_archives_are_refused_and_write_nothing(client, full, app, settings, tmp_path):
    good = _zip(client, full)
    store = make_store(settings.storage_url, settings.data_dir)
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    data = json.loads(parts["data.json"])
    data["insights"][0]["title"] = "被篡改"
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as z:
        for name, body in parts.items():
            z.writestr(name, json.dumps(data).encode() if name == "data.json" else body)
    _wipe_stint(app.state.engine, full["sid"])
    with Session(app.state.engine) as session:
        with pytest.raises(ArchiveError, match="SHA-256"):
            import_stint(session, store, tampered)
        not_zip = tmp_path / "x.zip"
        not_zip.write_bytes(b"PK\x03\x04 nonsense")
        with pytest.raises(ArchiveError, match="cannot be read"):
            import_stint(session, store, not_zip)
    assert client.get(f"/api/stints/{full['sid']}", headers=full["manager"].headers).status_code == 404


def test_import_stint_command(client, full, app, settings, tmp_path):
    archive = tmp_path / "stint.zip"
    archive.write_bytes(_zip(client, full))
    _wipe_stint(app.state.engine, full["sid"])
    env = {
        **os.environ,
        "FIELDBOOK_DATA_DIR": str(settings.data_dir),
        "FIELDBOOK_DATABASE_URL": settings.sqlalchemy_url,
    }
    cmd = [sys.executable, "-m", "api.cli", "import-stint", str(archive)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert full["sid"] in r.stderr
    assert client.get(f"/api/stints/{full['sid']}/debrief", headers=full["viewer"].headers).status_code == 200
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_zip_is_streamed_a_chunk_at_a_time(client, full, app, settings):
    big = os.urandom(3 * 2**20).hex().encode()  # 6 MiB of text that compresses to about half
    r = client.post(
        f"/api/stints/{full['sid']}/materials",
        files={"file": ("排班记录.txt", big, "text/plain")},
        headers=full["researcher"].headers,
    )
    assert r.status_code == 201, r.text
    from api.archive import stream_stint_zip
    from api.models import Stint

    with Session(app.state.engine) as session:
        stint = session.get(Stint, uuid.UUID(full["sid"]))
        chunks, _ = stream_stint_zip(session, make_store(settings.storage_url, settings.data_dir), stint)
        sizes = [len(c) for c in chunks]
    assert sum(sizes) > 3 * 2**20
    assert max(sizes) < 2**20 + 2**16  # never more than about one blob chunk in memory
    assert len(sizes) > 3


def test_a_lost_blob_is_named_not_a_broken_download(client, full, settings):
    make_store(settings.storage_url, settings.data_dir).delete(full["material"]["sha256"])
    manifest, files = _check_manifest(_zip(client, full))
    assert manifest["missing_materials"] == [full["material"]["sha256"]]
    assert f"materials/{full['material']['sha256']}" not in files
    assert len([p for p in files if p.startswith("materials/")]) == 2  # the previews are still there


_KIND_CODES = ("note", "quote", "behaviour", "process", "pain_point", "idea", "question")


def test_markdown_speaks_the_readers_language(client, full):
    """QA: the zh-CN export listed kinds as codes (按类型: note 33, quote 34…) and titled the
    action column of the plan like the whole plan (改善行动计划)."""
    client.post(
        f"/api/stints/{full['sid']}/observations",
        json={"text": "司机抱怨导航", "kind": "pain_point"},
        headers=full["researcher"].headers,
    )
    md = _export(client, full, "md").text
    kinds = next(line for line in md.splitlines() if line.startswith("- 按类型: "))
    assert kinds == "- 按类型: 笔记 1, 原话 0, 行为 0, 流程 0, 痛点 1, 想法 0, 问题 0"
    assert not re.search(r"\b(" + "|".join(_KIND_CODES) + r")\b", md)
    assert "## 改善行动计划" in md and "| 优先级 | 行动 | 负责人 | 截止 | 状态 |" in md
    en = _export(client, full, "md", **{"Accept-Language": "en"}).text
    assert "- By kind: Note 1, Quote 0, Behaviour 0, Process 0, Pain point 1, Idea 0, Question 0" in en
    assert "## Improvement action plan" in en and "| Priority | Action | Owner | Due | Status |" in en
    # The HTML export's plan has the same column.
    html = _export(client, full, "html").text
    assert "<th>优先级</th><th>行动</th>" in html


@pytest.fixture
def deleted(client, full):
    """Confidential content entered on site and deleted again: one of each kind of record."""
    sid, r, m = full["sid"], full["researcher"].headers, full["manager"].headers
    h = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "机密假设：并购顺达"}, headers=r
    ).json()
    obs = client.post(
        f"/api/stints/{sid}/observations",
        json={
            "text": "机密：财务总监说明年裁员三成",
            "quote": "机密原话：这事别外传",
            "speaker_role": "机密角色",
            "speaker_name": "机密姓名",
            "tags": ["机密标签"],
            "observed_at": "2026-03-04T18:20:00+08:00",
            "hypothesis_links": [{"hypothesis_id": h["id"], "stance": "supports"}],
        },
        headers=r,
    ).json()
    secret_photo = photo(colour="darkred")
    material = client.post(
        f"/api/stints/{sid}/materials",
        files={"file": ("机密合同.jpg", secret_photo, "application/octet-stream")},
        data={"caption": "机密合同第3页", "observation_id": obs["id"]},
        headers=r,
    ).json()
    insight = client.post(
        f"/api/stints/{sid}/insights",
        json={
            "title": "机密洞见",
            "statement": "机密结论",
            "evidence": [{"observation_id": obs["id"]}, {"material_id": material["id"]}],
            "verdicts": [{"hypothesis_id": h["id"], "verdict": "supports"}],
        },
        headers=r,
    ).json()
    action = client.post(
        f"/api/stints/{sid}/actions",
        json={"title": "机密行动", "description": "机密说明", "insight_ids": [insight["id"]]},
        headers=r,
    ).json()
    client.post(
        f"/api/actions/{action['id']}/review", json={"decision": "approve", "comment": "机密批语"}, headers=m
    )
    # A live insight keeps its link to the observation deleted under it.
    kept = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "留下的洞见", "statement": "…", "evidence": [{"observation_id": obs["id"]}]},
        headers=r,
    ).json()
    for path in (
        f"/api/actions/{action['id']}",
        f"/api/insights/{insight['id']}",
        f"/api/materials/{material['id']}",
        f"/api/observations/{obs['id']}",
        f"/api/hypotheses/{h['id']}",
    ):
        assert client.delete(path, headers=m).status_code == 204, path
    return {
        **full,
        "secret_sha256": hashlib.sha256(secret_photo).hexdigest(),
        "ids": {
            "hypotheses": h,
            "observations": obs,
            "materials": material,
            "insights": insight,
            "actions": action,
        },
        "kept": kept,
    }


def test_deleted_content_never_leaves_in_the_zip(client, deleted, app, settings, tmp_path):
    """QA: the ZIP carried deleted observations with text, quote and speaker name, deleted insights
    and the original bytes of deleted materials. It is the archive that import-stint restores, so a
    deleted record travels as a tombstone (ids, times, version), never with what it said."""
    archive = _zip(client, deleted)
    manifest, files = _check_manifest(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        everything = b"".join(z.read(n) for n in z.namelist()) + "".join(z.namelist()).encode()
    assert "机密".encode() not in everything
    assert f"materials/{deleted['secret_sha256']}" not in files
    assert deleted["secret_sha256"] not in manifest["missing_materials"]
    assert len([p for p in files if p.startswith("materials/")]) == 3  # the live photo's three files
    data = json.loads(files["data.json"])
    for section, record in deleted["ids"].items():
        (row,) = [r for r in data[section] if r["id"] == record["id"]]
        assert row["deleted_at"] is not None, section
    (obs,) = [o for o in data["observations"] if o["id"] == deleted["ids"]["observations"]["id"]]
    assert (obs["text"], obs["quote"], obs["speaker_role"], obs["speaker_name"]) == ("", None, None, None)
    # When it was observed is no content: kept as recorded, so a restore shows the tombstone the same.
    assert (obs["observed_at"], obs["observed_offset_minutes"]) == ("2026-03-04T18:20:00+08:00", 480)
    (mat,) = [m for m in data["materials"] if m["id"] == deleted["ids"]["materials"]["id"]]
    assert (mat["filename"], mat["caption"], mat["gps_lat"], mat["thumb_sha256"]) == ("", None, None, None)
    dead = {r["id"] for section in deleted["ids"].values() for r in [section]}
    # What hangs off a deleted record goes with it; the history of a deleted action keeps who did
    # what when, without the words.
    assert not [t for t in data["observation_tags"] if t["observation_id"] in dead]
    assert not [h for h in data["observation_hypotheses"] if h["observation_id"] in dead]
    assert not [e for e in data["insight_evidence"] if e["insight_id"] in dead]
    assert not [v for v in data["insight_verdicts"] if v["insight_id"] in dead]
    assert not [a for a in data["action_insights"] if a["action_id"] in dead]
    events = [e for e in data["action_events"] if e["action_id"] in dead]
    assert sorted((e["kind"], e["decision"] or "", e["changes"], e["comment"]) for e in events) == [
        ("created", "", {}, None),
        ("deleted", "", {}, None),
        ("review", "approve", {}, None),
    ]
    # The live insight still names the deleted observation as its (now deleted) evidence.
    assert [
        e["observation_id"] for e in data["insight_evidence"] if e["insight_id"] == deleted["kept"]["id"]
    ] == [deleted["ids"]["observations"]["id"]]
    # It restores, and exports again identically.
    path = tmp_path / "stint.zip"
    path.write_bytes(archive)
    _wipe_stint(app.state.engine, deleted["sid"])
    with Session(app.state.engine) as session:
        import_stint(session, make_store(settings.storage_url, settings.data_dir), path)
    assert _check_manifest(_zip(client, deleted))[1] == files
    m = deleted["manager"].headers
    assert client.get(f"/api/observations/{obs['id']}", headers=m).status_code == 410
    assert client.get(f"/api/materials/{mat['id']}", headers=m).status_code == 410
    # A phone retrying the deleted observation's create is told it was deleted, not given a new one.
    sid = deleted["sid"]
    retry = {
        "id": obs["id"],
        "text": "机密：财务总监说明年裁员三成",
        "quote": "机密原话：这事别外传",
        "speaker_role": "机密角色",
        "speaker_name": "机密姓名",
        "tags": ["机密标签"],
        "observed_at": "2026-03-04T18:20:00+08:00",
        "hypothesis_links": [{"hypothesis_id": deleted["ids"]["hypotheses"]["id"], "stance": "supports"}],
    }
    r = client.post(f"/api/stints/{sid}/observations", json=retry, headers=deleted["researcher"].headers)
    assert r.status_code == 200 and r.json()["deleted"] is True and "机密" not in r.text, r.text
    assert client.get(f"/api/stints/{sid}/debrief", headers=m).status_code == 200
