"""Materials: multipart uploads, EXIF fields, previews without metadata, serving, deleting, text."""

import hashlib
import io
import threading
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from api.config import Settings
from api.gc import collect
from api.material_tables import Material
from api.textextract import PPTX, _ooxml, ocr_languages
from storage import make_store
from tests.material_files import (
    GPS_SHANGHAI,
    assert_no_metadata,
    docx,
    heic_photo,
    pdf,
    photo,
    pptx,
    wav,
    xlsx,
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, ocr=False)


def upload(
    client: TestClient, stint_id: str, who, data: bytes, filename: str = "现场照片.jpg", **fields: str
):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/stints/{stint_id}/materials",
        files={"file": (filename, data, "application/octet-stream")},
        data=fields,
        headers=who.headers,
    )


def blob_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.data_dir / "blobs").rglob("*") if p.is_file()]


def test_photo_upload_reads_exif_and_keeps_the_bytes(
    client: TestClient, stint_team, settings: Settings
) -> None:
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    data = photo(orientation=6)
    r = upload(client, stint["id"], researcher, data, caption="调度白板 dispatch whiteboard")
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["sha256"] == hashlib.sha256(data).hexdigest()
    assert (m["content_type"], m["kind"], m["size"]) == ("image/jpeg", "image", len(data))
    assert m["filename"] == "现场照片.jpg" and m["caption"] == "调度白板 dispatch whiteboard"
    assert (m["width"], m["height"]) == (300, 400)  # upright: orientation 6 turns 400×300
    assert m["taken_at"] == "2026-03-05T14:03:11+08:00"
    assert (m["camera_make"], m["camera_model"], m["orientation"]) == ("Apple", "iPhone 15 Pro", 6)
    assert m["gps"] == pytest.approx({"lat": GPS_SHANGHAI[0], "lon": GPS_SHANGHAI[1]}, abs=1e-4)
    assert m["has_preview"] is True

    got = client.get(f"/api/materials/{m['id']}", headers=stint_team["viewer"].headers)
    assert got.status_code == 200 and got.json()["gps"] is not None  # members see GPS

    content = client.get(f"/api/materials/{m['id']}/content", headers=stint_team["viewer"].headers)
    assert content.status_code == 200
    assert content.content == data
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["etag"] == f'"{m["sha256"]}"'
    disposition = content.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('现场照片.jpg')}" in disposition
    assert 'filename="material.jpg"' in disposition  # an ASCII fallback for old clients


def test_ranges_and_conditional_requests(client: TestClient, stint_team) -> None:
    data = photo(size=(800, 600))
    m = upload(client, stint_team["stint"]["id"], stint_team["researcher"], data).json()
    url, h = f"/api/materials/{m['id']}/content", stint_team["researcher"].headers
    part = client.get(url, headers={**h, "Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == data[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(data)}"
    tail = client.get(url, headers={**h, "Range": "bytes=-25"})
    assert tail.status_code == 206 and tail.content == data[-25:]
    opened = client.get(url, headers={**h, "Range": f"bytes={len(data) - 5}-"})
    assert opened.content == data[-5:]
    beyond = client.get(url, headers={**h, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    stale = client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == data
    etag = part.headers["etag"]
    assert client.get(url, headers={**h, "If-None-Match": etag}).status_code == 304


def test_previews_are_upright_and_carry_no_metadata(client: TestClient, stint_team) -> None:
    m = upload(client, stint_team["stint"]["id"], stint_team["researcher"], photo(orientation=6)).json()
    for size, longest in (("thumb", 320), ("screen", 1600)):
        r = client.get(f"/api/materials/{m['id']}/preview?size={size}", headers=stint_team["viewer"].headers)
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["content-disposition"].startswith("inline;")
        img = assert_no_metadata(r.content)
        assert max(img.size) <= longest
        assert img.width < img.height  # rotated as the camera said
        red, blue = img.getpixel((img.width // 2, 5)), img.getpixel((img.width // 2, img.height - 5))
        assert red[0] > 200 > red[2] and blue[2] > 150 > blue[0]  # the left half became the top half


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_previews_strip_metadata(client: TestClient, stint_team, fmt: str) -> None:
    r = upload(
        client, stint_team["stint"]["id"], stint_team["researcher"], photo(fmt=fmt), filename="scan.bin"
    )
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == f"image/{fmt.lower()}"  # content decides, not the name
    preview = client.get(f"/api/materials/{r.json()['id']}/preview", headers=stint_team["researcher"].headers)
    assert_no_metadata(preview.content)


def test_heic_photo_is_decoded_with_exif(client: TestClient, stint_team) -> None:
    r = upload(
        client, stint_team["stint"]["id"], stint_team["researcher"], heic_photo(), filename="IMG_0042.HEIC"
    )
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["content_type"] == "image/heic"
    assert (m["width"], m["height"], m["orientation"]) == (240, 320, 6)
    assert m["gps"] is not None and m["taken_at"].startswith("2026-03-05")
    preview = client.get(
        f"/api/materials/{m['id']}/preview?size=thumb", headers=stint_team["researcher"].headers
    )
    img = assert_no_metadata(preview.content)
    assert img.size == (240, 320)


def test_retry_with_the_same_id_is_recognised(client: TestClient, stint_team, db: Session, settings) -> None:
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    mid, data = str(uuid.uuid4()), photo()
    first = upload(client, stint["id"], researcher, data, id=mid)
    again = upload(client, stint["id"], researcher, data, id=mid)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == mid
    other = upload(client, stint["id"], researcher, photo(colour="green"), id=mid)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "material_id_taken"
    assert len(db.exec(select(Material)).all()) == 1
    # The same photo under another id is a second material but one stored blob (plus two previews).
    second = upload(client, stint["id"], researcher, data)
    assert second.status_code == 201 and second.json()["sha256"] == first.json()["sha256"]
    assert len(blob_files(settings)) == 3


def test_roles_and_visibility(client: TestClient, stint_team) -> None:
    stint = stint_team["stint"]
    viewer, outsider, manager = stint_team["viewer"], stint_team["outsider"], stint_team["manager"]
    assert upload(client, stint["id"], viewer, photo()).status_code == 403
    assert upload(client, stint["id"], outsider, photo()).status_code == 404
    assert upload(client, stint["id"], stint_team["admin"], photo()).status_code == 404
    m = upload(client, stint["id"], stint_team["researcher"], photo()).json()
    for path in ("", "/content", "/preview"):
        r = client.get(f"/api/materials/{m['id']}{path}", headers=outsider.headers)
        assert r.status_code == 404, path
    assert client.get(f"/api/materials/{m['id']}/content").status_code == 401
    listed = client.get(f"/api/stints/{stint['id']}/materials", headers=viewer.headers).json()["items"]
    assert [i["id"] for i in listed] == [m["id"]]
    assert client.get(f"/api/stints/{stint['id']}/materials", headers=outsider.headers).status_code == 404
    assert client.delete(f"/api/materials/{m['id']}", headers=viewer.headers).status_code == 403
    assert client.delete(f"/api/materials/{m['id']}", headers=manager.headers).status_code == 204
    for path in ("", "/content", "/preview"):
        assert client.get(f"/api/materials/{m['id']}{path}", headers=viewer.headers).status_code == 410
    assert client.get(f"/api/stints/{stint['id']}/materials", headers=viewer.headers).json()["items"] == []


def test_documents_text_and_audio(client: TestClient, stint_team) -> None:
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    cases = [
        (
            docx(["调度员每天早上核对车辆", "Dispatch checklist"]),
            "流程.docx",
            "wordprocessingml",
            "调度员每天早上核对车辆",
        ),
        (xlsx(["月度对账", "finance sign-off"]), "对账.xlsx", "spreadsheetml", "月度对账"),
        (pptx(["客户成功阶梯", "Quarterly review"]), "汇报.pptx", "presentationml", "Quarterly review"),
        (pdf("Dispatch board audit"), "audit.pdf", "application/pdf", "Dispatch board audit"),
        ("司机,线路\n王师傅,嘉定-昆山\n".encode("gb18030"), "排班.csv", "text/csv", "王师傅"),
        ("# 驻场第一天\n多看、多聊".encode(), "notes.md", "text/markdown", "多看、多聊"),
    ]
    for data, name, expected_type, needle in cases:
        r = upload(client, stint["id"], researcher, data, filename=name)
        assert r.status_code == 201, (name, r.text)
        assert expected_type in r.json()["content_type"]
        assert r.json()["has_preview"] is False
        got = client.get(f"/api/materials/{r.json()['id']}", headers=researcher.headers).json()
        assert got["text_status"] == "done", name
        assert needle in got["extracted_text"], name
    memo = upload(client, stint["id"], researcher, wav(), filename="语音备忘.wav")
    assert memo.status_code == 201 and memo.json()["kind"] == "audio"
    assert memo.json()["text_status"] == "none"
    assert (
        client.get(f"/api/materials/{memo.json()['id']}/preview", headers=researcher.headers).status_code
        == 404
    )


def test_size_limits_are_configurable(client: TestClient, stint_team, app) -> None:
    app.state.settings = app.state.settings.model_copy(update={"max_image_bytes": 2000})
    r = upload(client, stint_team["stint"]["id"], stint_team["researcher"], photo(size=(600, 600)))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert upload(client, stint_team["stint"]["id"], stint_team["researcher"], pdf()).status_code == 201


def test_malformed_requests_are_4xx(client: TestClient, stint_team) -> None:
    url, h = f"/api/stints/{stint_team['stint']['id']}/materials", stint_team["researcher"].headers
    assert client.post(url, json={"file": "x"}, headers=h).status_code == 415
    assert (
        client.post(url, data={"caption": "no file"}, files={"other": ("a", b"b")}, headers=h).status_code
        == 422
    )
    bad = client.post(
        url,
        content=b"--xyz\r\nnot a part",
        headers={**h, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert 400 <= bad.status_code < 500
    bad_id = client.post(url, files={"file": ("a.jpg", photo())}, data={"id": "not-a-uuid"}, headers=h)
    assert bad_id.status_code == 422


def test_expected_materials_show_what_arrived(client: TestClient, stint_team) -> None:
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    obs = client.post(
        f"/api/stints/{stint['id']}/observations",
        json={"text": "调度员用白板排班，手机拍了三张", "kind": "process"},
        headers=researcher.headers,
    ).json()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    url = f"/api/observations/{obs['id']}/materials"
    r = client.put(url, json={"material_ids": ids}, headers=researcher.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["expected"], r.json()["arrived"], r.json()["complete"]) == (3, 0, False)
    upload(client, stint["id"], researcher, photo(), id=ids[0], observation_id=obs["id"])
    upload(client, stint["id"], researcher, photo(colour="green"), id=ids[2], observation_id=obs["id"])
    status = client.get(url, headers=stint_team["viewer"].headers).json()
    assert (status["expected"], status["arrived"], status["missing"]) == (3, 2, [ids[1]])
    assert [i["arrived"] for i in status["items"]] == [True, False, True]
    assert (
        client.put(url, json={"material_ids": ids}, headers=stint_team["viewer"].headers).status_code == 403
    )
    assert client.get(url, headers=stint_team["outsider"].headers).status_code == 404
    # A photo deleted on purpose is no longer awaited; the one still to come is.
    assert client.delete(f"/api/materials/{ids[2]}", headers=researcher.headers).status_code == 204
    status = client.get(url, headers=researcher.headers).json()
    assert (status["arrived"], status["missing"], status["deleted"]) == (1, [ids[1]], [ids[2]])
    assert [(i["arrived"], i["deleted"]) for i in status["items"]] == [
        (True, False),
        (False, False),
        (False, True),
    ]
    upload(client, stint["id"], researcher, photo(colour="blue"), id=ids[1], observation_id=obs["id"])
    status = client.get(url, headers=researcher.headers).json()
    assert (status["arrived"], status["missing"], status["complete"]) == (2, [], True)


def test_gc_removes_only_what_nothing_needs(client: TestClient, stint_team, app, settings: Settings) -> None:
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    kept = upload(client, stint["id"], researcher, photo()).json()
    gone = upload(client, stint["id"], researcher, pdf("obsolete")).json()
    shared = upload(client, stint["id"], researcher, pdf("shared")).json()
    twin = upload(client, stint["id"], researcher, pdf("shared")).json()
    for m in (gone, twin):
        assert client.delete(f"/api/materials/{m['id']}", headers=researcher.headers).status_code == 204
    store = make_store(None, settings.data_dir)
    stray = settings.data_dir / "staging" / "upload-crashed.part"
    stray.write_bytes(b"half")
    report = collect(app.state.engine, store, settings, timedelta(0))
    assert report.blobs_removed == 1 and report.stray_files_removed == 1
    assert not stray.exists()
    assert not store.exists(gone["sha256"])
    for digest in (kept["sha256"], shared["sha256"]):
        assert store.exists(digest)
    r = client.get(f"/api/materials/{kept['id']}/preview", headers=researcher.headers)
    assert r.status_code == 200
    # Within the grace period even unreferenced blobs stay (an upload may be about to commit).
    client.delete(f"/api/materials/{kept['id']}", headers=researcher.headers)
    assert collect(app.state.engine, store, settings, timedelta(hours=1)).blobs_removed == 0


def test_previews_decode(client: TestClient, stint_team) -> None:
    m = upload(client, stint_team["stint"]["id"], stint_team["researcher"], photo(size=(3000, 2000))).json()
    r = client.get(f"/api/materials/{m['id']}/preview", headers=stint_team["researcher"].headers)
    img = Image.open(io.BytesIO(r.content), formats=["JPEG"])
    assert img.size == (1600, 1067)


def _simplified_chinese_font():  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    for path in sorted(Path("/usr/share/fonts").rglob("NotoSansCJK-Regular.ttc")):
        for index in range(10):
            try:
                font = ImageFont.truetype(str(path), 48, index=index)
            except OSError:
                break
            if font.getname()[0].endswith(" SC"):
                return font
    return None


def _text_picture(lines: list[tuple[str, object]]) -> bytes:
    from PIL import ImageDraw, ImageFont

    img = Image.new("RGB", (1400, 120 * len(lines) + 80), "white")
    draw = ImageDraw.Draw(img)
    for n, (text, font) in enumerate(lines):
        draw.text((40, 40 + 120 * n), text, fill="black", font=font or ImageFont.load_default(size=48))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.mark.skipif(ocr_languages() is None, reason="tesseract is not installed (CI installs it)")
def test_photos_are_ocred_in_the_background(client: TestClient, stint_team, app) -> None:
    app.state.settings = app.state.settings.model_copy(update={"ocr": True})
    chinese = _simplified_chinese_font()  # rendered when the machine has a CJK font
    lines: list[tuple[str, object]] = [("DISPATCH BOARD 2026", None)]
    if chinese is not None:
        lines.append(("调度员每天早上核对车辆", chinese))
    r = upload(
        client, stint_team["stint"]["id"], stint_team["researcher"], _text_picture(lines), filename="白板.png"
    )
    assert r.status_code == 201
    assert r.json()["text_status"] == "pending"  # answered before any OCR ran
    got = client.get(f"/api/materials/{r.json()['id']}", headers=stint_team["researcher"].headers).json()
    assert got["text_status"] == "done"
    assert "DISPATCH BOARD" in got["extracted_text"]
    if chinese is not None:
        assert "调度员每天早上核对车辆" in "".join(got["extracted_text"].split())


def test_without_ocr_photos_have_no_text(client: TestClient, stint_team) -> None:
    r = upload(client, stint_team["stint"]["id"], stint_team["researcher"], photo())
    assert r.json()["text_status"] == "none"


def test_what_leaves_the_members_carries_no_gps(client: TestClient, stint_team, app, db: Session) -> None:
    from api.debrief_media import material_previews, preview_bytes
    from api.ingest import blob_store
    from api.materials import material_out

    m = upload(client, stint_team["stint"]["id"], stint_team["researcher"], photo()).json()
    mid = uuid.UUID(m["id"])
    row = db.get(Material, mid)
    assert row is not None and row.gps_lat is not None
    assert material_out(row, with_gps=False).gps is None

    class _Request:
        def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
            self.app = app

    store = blob_store(_Request(app))  # type: ignore[arg-type]
    jpeg = preview_bytes(store, material_previews(db, {mid})[mid])  # what debriefs and share links embed
    assert jpeg is not None
    assert_no_metadata(jpeg)


def test_gc_command_and_missing_blob_check(
    client: TestClient, stint_team, app, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import app as cli
    from api.store_check import missing_blobs

    kept = upload(client, stint_team["stint"]["id"], stint_team["researcher"], pdf("keep")).json()
    gone = upload(client, stint_team["stint"]["id"], stint_team["researcher"], pdf("drop")).json()
    client.delete(f"/api/materials/{gone['id']}", headers=stint_team["researcher"].headers)
    monkeypatch.setenv("FIELDBOOK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIELDBOOK_DATABASE_URL", settings.sqlalchemy_url)
    result = CliRunner().invoke(cli, ["gc", "--grace-minutes", "0"])
    assert result.exit_code == 0, result.output
    store = make_store(None, settings.data_dir)
    assert store.exists(kept["sha256"]) and not store.exists(gone["sha256"])
    assert missing_blobs(app.state.engine, store) == []
    store.delete(kept["sha256"])
    problems = missing_blobs(app.state.engine, store)
    assert len(problems) == 1 and kept["id"] in problems[0]


def test_text_left_pending_by_a_crash_is_extracted_later(
    client: TestClient, stint_team, app, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import app as cli

    m = upload(
        client,
        stint_team["stint"]["id"],
        stint_team["researcher"],
        docx(["客户桌子上的信息"]),
        filename="a.docx",
    )
    with Session(app.state.engine) as writer:  # the app's write engine: `db` only reads
        row = writer.get(Material, uuid.UUID(m.json()["id"]))
        assert row is not None and row.text_status == "done"
        row.text_status, row.extracted_text = "pending", None  # as if the server died before extracting
        writer.add(row)
        writer.commit()
    monkeypatch.setenv("FIELDBOOK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIELDBOOK_DATABASE_URL", settings.sqlalchemy_url)
    result = CliRunner().invoke(cli, ["extract-text"])
    assert result.exit_code == 0, result.output
    got = client.get(f"/api/materials/{m.json()['id']}", headers=stint_team["researcher"].headers).json()
    assert got["text_status"] == "done" and "客户桌子上的信息" in got["extracted_text"]


def test_caption_limit_counts_characters_not_bytes(client: TestClient, stint_team) -> None:
    """Up to 2,000 characters of any script (as PATCH allows), more is 422 caption_too_long."""
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    chinese = ("白板上写着本周的排班和异常件处理流程，" * 120)[:2000]  # 6,000 bytes in UTF-8
    emoji = "📦" * 2000  # 8,000 bytes
    for i, caption in enumerate((chinese, emoji, f"  {chinese}\n")):
        r = upload(
            client, stint["id"], researcher, photo(colour=("navy", "teal", "olive")[i]), caption=caption
        )
        assert r.status_code == 201, r.text[:300]
        assert r.json()["caption"] == caption.strip()
        patched = client.patch(
            f"/api/materials/{r.json()['id']}",
            json={"caption": caption.strip()},
            headers={**researcher.headers, "If-Match": f'"{r.json()["version"]}"'},
        )
        assert patched.status_code == 200, patched.text[:300]
    for caption in (chinese + "。", "x" * 2001, emoji + "📦", "长" * 20_000):
        r = upload(client, stint["id"], researcher, photo(colour="maroon"), caption=caption)
        assert r.status_code == 422, r.text[:300]
        assert r.json()["error"]["code"] == "caption_too_long"
    # Other text fields keep their small limit.
    r = upload(client, stint["id"], researcher, photo(colour="maroon"), id="x" * 5000)
    assert r.status_code == 400 and r.json()["error"]["code"] == "field_too_long"


def test_a_large_upload_is_kept_whole_and_leaves_no_thread_behind(
    client: TestClient, stint_team, settings: Settings
) -> None:
    """Over the write-behind step (the disk is told to start writing every 8 MB while bytes still
    arrive): every byte kept in order, and the writer and write-behind threads end with the request."""
    from array import array

    from api.spool import WRITE_BEHIND

    size = 2 * WRITE_BEHIND + 4 * 12345  # not a multiple of any chunk size
    header = bytearray(wav(0)[:44])
    header[4:8] = (36 + size).to_bytes(4, "little")
    header[40:44] = size.to_bytes(4, "little")
    data = bytes(header) + array("I", range(size // 4)).tobytes()  # every word differs: a lost byte shows
    stint, researcher = stint_team["stint"], stint_team["researcher"]
    r = upload(client, stint["id"], researcher, data, filename="memo.wav")
    assert r.status_code == 201, r.text[:300]
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest() and r.json()["size"] == len(data)
    got = client.get(f"/api/materials/{r.json()['id']}/content", headers=researcher.headers)
    assert got.content == data
    assert not list((settings.data_dir / "staging").glob("upload-*"))
    names = [t.name for t in threading.enumerate()]
    assert "fieldbook-spool" not in names and "fieldbook-writeback" not in names


def test_slides_are_read_in_order_whatever_their_names(tmp_path: Path) -> None:
    """Slides sort by the ASCII digits in their names; "²" is a digit to str.isdigit() but not to
    int(), and a slide named with it stopped the whole text extraction."""
    zipped = zipfile.ZipFile(io.BytesIO(pptx(["第一页", "第二页", "第十页"])))
    path = tmp_path / "deck.pptx"
    with zipfile.ZipFile(path, "w") as out:
        for name in zipped.namelist():
            renamed = {
                "ppt/slides/slide2.xml": "ppt/slides/slide².xml",
                "ppt/slides/slide3.xml": "ppt/slides/slide10.xml",
            }
            out.writestr(renamed.get(name, name), zipped.read(name))
    lines = _ooxml(path, PPTX).splitlines()
    assert sorted(lines) == sorted(["第一页", "第二页", "第十页"])
    assert lines.index("第一页") < lines.index("第十页")  # slide1 before slide10: by number
