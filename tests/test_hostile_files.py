"""Hostile files: each gets a 4xx with a clear code, no material row, and no file left behind."""

import base64
import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from api.config import Settings
from api.material_tables import Material
from tests.material_files import docx_bomb, photo, pixel_flood

SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>fetch("/api/me")</script></svg>'
HTML = "<!DOCTYPE html><html><body><script>alert('驻场')</script></body></html>".encode()
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 200
    + b"This program cannot be run in DOS mode"
)


def _zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return out.getvalue()


def _jpeg_with_comment(comment: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(out, "JPEG", comment=comment)
    return out.getvalue()


HOSTILE = {
    # name: (bytes, client file name, expected status, expected error code)
    "executable named .jpg": (EXE, "photo.jpg", 415, "unsupported_media_type"),
    "svg with script": (SVG, "diagram.svg", 415, "unsupported_media_type"),
    "svg named .txt": (SVG, "notes.txt", 415, "unsupported_media_type"),
    "html named .md": (HTML, "readme.md", 415, "unsupported_media_type"),
    "jpeg + zip polyglot": (photo() + _zip({"evil.html": HTML}), "photo.jpg", 415, "polyglot"),
    "jpeg carrying script": (_jpeg_with_comment(b"<script>alert(1)</script>"), "photo.jpg", 415, "polyglot"),
    "pdf + zip polyglot": (b"%PDF-1.4\n%%EOF\n" + _zip({"a.txt": b"x"}), "report.pdf", 415, "polyglot"),
    "plain zip": (_zip({"a.txt": b"x"}), "archive.docx", 415, "unsupported_media_type"),
    "zip bomb in a docx": (docx_bomb(), "流程.docx", 422, "decompression_bomb"),
    "pixel flood png": (pixel_flood(), "flood.png", 422, "image_too_large"),
    "truncated jpeg": (photo()[:300], "cut.jpg", 422, "invalid_image"),
    "zero bytes": (b"", "empty.jpg", 422, "empty_file"),
    "binary junk": (bytes(range(256)) * 64, "data.csv", 415, "unsupported_media_type"),
    "path traversal name": (photo(), "../../../etc/cron.d/evil.jpg", 422, "invalid_filename"),
    "windows path name": (photo(), "..\\..\\boot.ini.jpg", 422, "invalid_filename"),
    "control characters in name": (photo(), "a\x1b[31mred.jpg", 422, "invalid_filename"),
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, ocr=False, max_image_bytes=200_000)


def _files(settings: Settings) -> set[Path]:
    return {p for p in settings.data_dir.rglob("*") if p.is_file() and "search" not in p.parts}


def _assert_nothing_kept(settings: Settings, db: Session) -> None:
    """No staging file, partial upload, blob or preview remains (other areas' files aside)."""
    assert _files(settings) == set()
    db.expire_all()
    assert db.exec(select(Material)).all() == []


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_multipart_upload(
    client: TestClient, stint_team, settings: Settings, db: Session, case: str
) -> None:
    data, name, status, code = HOSTILE[case]
    r = client.post(
        f"/api/stints/{stint_team['stint']['id']}/materials",
        files={"file": (name, data, "image/jpeg")},
        headers=stint_team["researcher"].headers,
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]
    _assert_nothing_kept(settings, db)


def test_oversize_upload_is_413_streamed_or_declared(client: TestClient, stint_team, settings, db) -> None:
    url, h = f"/api/stints/{stint_team['stint']['id']}/materials", stint_team["researcher"].headers
    big = photo(size=(1200, 1200)) + b"\0" * 300_000  # over the image limit, under the others
    r = client.post(url, files={"file": ("big.jpg", big)}, headers=h)
    assert r.status_code == 413
    # Over every kind's limit: refused while streaming, whatever Content-Length says (chunked here).
    huge = iter(
        [b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n']
        + [b"\0" * 2**20] * 1100
    )
    r = client.post(url, content=huge, headers={**h, "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    _assert_nothing_kept(settings, db)


def test_hostile_tus_upload_is_refused_at_the_last_byte(client: TestClient, stint_team, settings, db) -> None:
    h = {**stint_team["researcher"].headers, "Tus-Resumable": "1.0.0"}
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"stint_id": stint_team["stint"]["id"], "filename": "diagram.svg"}.items()
    )
    created = client.post(
        "/api/uploads", headers={**h, "Upload-Length": str(len(SVG)), "Upload-Metadata": meta}
    )
    assert created.status_code == 201
    url = created.headers["location"]
    r = client.patch(
        url,
        content=SVG,
        headers={**h, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert r.status_code == 415
    assert r.headers["tus-resumable"] == "1.0.0"
    assert client.head(url, headers=h).status_code == 410  # refused for good: the client stops retrying
    _assert_nothing_kept(settings, db)


def test_multipart_without_its_closing_boundary_is_refused(
    client: TestClient, stint_team, settings, db
) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + "司机,线路\n".encode()
    )
    r = client.post(
        f"/api/stints/{stint_team['stint']['id']}/materials",
        content=body,
        headers={**stint_team["researcher"].headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_multipart"
    _assert_nothing_kept(settings, db)
