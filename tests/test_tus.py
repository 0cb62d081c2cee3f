"""tus 1.0 at /api/uploads: the protocol through the app, then resumes against a real server process
(a dropped connection resumed by tuspy, and a server SIGKILLed mid-PATCH)."""

import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from array import array
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from tusclient.client import TusClient

from api.config import Settings
from api.db import utcnow
from api.gc import collect
from api.material_tables import Upload
from storage import make_store
from tests.material_files import photo

ROOT = Path(__file__).resolve().parent.parent
OCTETS = "application/offset+octet-stream"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, ocr=False)


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def tus_headers(who) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**who.headers, "Tus-Resumable": "1.0.0"}


def create(client, who, stint_id: str, length: int, **meta: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/uploads",
        headers={
            **tus_headers(who),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(stint_id=stint_id, **meta),
        },
    )


def test_options_advertise_extensions(client: TestClient) -> None:
    r = client.options("/api/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-resumable"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "termination", "expiration", "checksum"}
    assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")
    assert int(r.headers["tus-max-size"]) > 0


def test_upload_in_pieces_becomes_a_material(client: TestClient, stint_team) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    data, mid = photo(size=(900, 700)), str(uuid.uuid4())
    r = create(client, researcher, stint["id"], len(data), filename="白板.jpg", id=mid, caption="排班白板")
    assert r.status_code == 201, r.text
    url = r.headers["location"]
    assert r.headers["fieldbook-material-id"] == mid and "upload-expires" in r.headers
    # Before the bytes arrive, the material does not exist yet.
    assert client.get(f"/api/materials/{mid}", headers=researcher.headers).status_code == 404
    h = tus_headers(researcher)
    offset = 0
    for piece in (data[:1000], data[1000:5000], data[5000:]):
        head = client.head(url, headers=h)
        assert head.status_code == 200 and head.headers["cache-control"] == "no-store"
        assert int(head.headers["upload-offset"]) == offset
        assert head.headers["upload-length"] == str(len(data))
        p = client.patch(
            url, content=piece, headers={**h, "Upload-Offset": str(offset), "Content-Type": OCTETS}
        )
        assert p.status_code == 204, p.text
        offset += len(piece)
        assert int(p.headers["upload-offset"]) == offset
    m = client.get(f"/api/materials/{mid}", headers=researcher.headers).json()
    assert m["sha256"] == hashlib.sha256(data).hexdigest()
    assert (m["filename"], m["caption"], m["content_type"]) == ("白板.jpg", "排班白板", "image/jpeg")
    # A finished upload still answers HEAD with its full length (a client that missed the answer).
    assert client.head(url, headers=h).headers["upload-offset"] == str(len(data))
    again = client.patch(
        url, content=b"", headers={**h, "Upload-Offset": str(len(data)), "Content-Type": OCTETS}
    )
    assert again.status_code == 204


def test_protocol_errors(client: TestClient, stint_team) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    h = tus_headers(researcher)
    no_version = client.post("/api/uploads", headers={**researcher.headers, "Upload-Length": "10"})
    assert no_version.status_code == 412 and no_version.headers["tus-version"] == "1.0.0"
    assert (
        client.post(
            "/api/uploads", headers={**h, "Upload-Metadata": metadata(stint_id=stint["id"])}
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/uploads", headers={**h, "Upload-Length": "10", "Upload-Metadata": "stint_id !!!"}
        ).status_code
        == 400
    )
    assert create(client, researcher, stint["id"], 10**13).status_code == 413
    assert create(client, stint_team["viewer"], stint["id"], 10).status_code == 403
    assert create(client, stint_team["outsider"], stint["id"], 10).status_code == 404
    assert create(client, researcher, str(uuid.uuid4()), 10).status_code == 404
    url = create(client, researcher, stint["id"], 10, filename="a.txt").headers["location"]
    assert client.head(url, headers=tus_headers(stint_team["manager"])).status_code == 404  # not theirs
    wrong_type = client.patch(
        url, content=b"abc", headers={**h, "Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    stale = client.patch(url, content=b"abc", headers={**h, "Upload-Offset": "3", "Content-Type": OCTETS})
    assert stale.status_code == 409 and stale.headers["upload-offset"] == "0"
    # A header is Latin-1: "\xb2" is "²", a digit to str.isdigit() that int() refuses.
    odd_offset = {**h, "Upload-Offset": b"\xb2", "Content-Type": OCTETS}
    assert client.patch(url, content=b"abc", headers=odd_offset).status_code == 400
    odd_length = {**h, "Upload-Length": b"1\xb2", "Upload-Metadata": metadata(stint_id=stint["id"])}
    assert client.post("/api/uploads", headers=odd_length).status_code == 400
    assert client.head(f"/api/uploads/{uuid.uuid4()}", headers=h).status_code == 404


def test_checksum_extension(client: TestClient, stint_team) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    h = {**tus_headers(researcher), "Content-Type": OCTETS}
    body = "司机,线路\n王师傅,嘉定-昆山\n".encode()
    url = create(client, researcher, stint["id"], len(body), filename="排班.csv").headers["location"]
    half = body[:10]
    bad = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    r = client.patch(url, content=half, headers={**h, "Upload-Offset": "0", "Upload-Checksum": f"sha1 {bad}"})
    assert r.status_code == 460
    assert client.head(url, headers=h).headers["upload-offset"] == "0"  # nothing kept
    assert (
        client.patch(
            url, content=half, headers={**h, "Upload-Offset": "0", "Upload-Checksum": "crc32 AAAA"}
        ).status_code
        == 400
    )
    good = base64.b64encode(hashlib.sha256(half).digest()).decode()
    r = client.patch(
        url, content=half, headers={**h, "Upload-Offset": "0", "Upload-Checksum": f"sha256 {good}"}
    )
    assert r.status_code == 204 and r.headers["upload-offset"] == "10"
    rest = base64.b64encode(hashlib.md5(body[10:]).digest()).decode()
    r = client.patch(
        url, content=body[10:], headers={**h, "Upload-Offset": "10", "Upload-Checksum": f"md5 {rest}"}
    )
    assert r.status_code == 204


def test_termination_and_expiration(
    client: TestClient, stint_team, app, db: Session, settings: Settings
) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    h = {**tus_headers(researcher), "Content-Type": OCTETS}
    url = create(client, researcher, stint["id"], 100, filename="a.txt").headers["location"]
    client.patch(url, content=b"x" * 40, headers={**h, "Upload-Offset": "0"})
    parts = settings.data_dir / "uploads"
    assert len(list(parts.iterdir())) == 1
    assert client.delete(url, headers=h).status_code == 204
    assert client.head(url, headers=h).status_code == 404
    assert list(parts.iterdir()) == []

    url = create(client, researcher, stint["id"], 100, filename="b.txt").headers["location"]
    client.patch(url, content=b"y" * 40, headers={**h, "Upload-Offset": "0"})
    with Session(app.state.engine) as writer:  # the app's write engine: `db` only reads
        upload = writer.get(Upload, uuid.UUID(url.rsplit("/", 1)[-1]))
        assert upload is not None
        upload.expires_at = utcnow() - timedelta(minutes=1)
        writer.add(upload)
        writer.commit()
    assert client.patch(url, content=b"y", headers={**h, "Upload-Offset": "40"}).status_code == 410
    report = collect(app.state.engine, make_store(None, settings.data_dir), settings, timedelta(0))
    assert report.uploads_removed == 1
    assert list(parts.iterdir()) == []
    assert client.head(url, headers=h).status_code == 404


def test_finish_cut_off_by_a_crash_starts_again(client: TestClient, stint_team, settings: Settings) -> None:
    """A server killed while turning the last bytes into a material (the partial file is consumed
    by then) must not answer HEAD with the full length: clients stop there, believing it done."""
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    data, mid = photo(size=(300, 200)), str(uuid.uuid4())
    h = {**tus_headers(researcher), "Content-Type": OCTETS}
    url = create(client, researcher, stint["id"], len(data), filename="a.jpg", id=mid).headers["location"]
    assert client.patch(url, content=data[:1000], headers={**h, "Upload-Offset": "0"}).status_code == 204
    (settings.data_dir / "uploads" / f"{uuid.UUID(url.rsplit('/', 1)[-1]).hex}.part").unlink()
    assert client.head(url, headers=h).status_code == 410
    again = create(client, researcher, stint["id"], len(data), filename="a.jpg", id=mid).headers["location"]
    assert client.patch(again, content=data, headers={**h, "Upload-Offset": "0"}).status_code == 204
    m = client.get(f"/api/materials/{mid}", headers=researcher.headers).json()
    assert m["sha256"] == hashlib.sha256(data).hexdigest()
    # Too many bytes: refused whole, the offset stays where it was (never the full length unfinished).
    url = create(client, researcher, stint["id"], 10, filename="b.txt").headers["location"]
    over = client.patch(url, content=b"z" * 12, headers={**h, "Upload-Offset": "0"})
    assert over.status_code == 400 and over.headers["upload-offset"] == "0"
    assert client.head(url, headers=h).headers["upload-offset"] == "0"


def test_oversized_photo_is_refused_at_its_first_bytes(client: TestClient, stint_team, app, settings) -> None:
    app.state.settings = app.state.settings.model_copy(update={"max_image_bytes": 100_000})
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    h = {**tus_headers(researcher), "Content-Type": OCTETS}
    data = photo(size=(2000, 1500)) + b"\0" * 200_000
    url = create(client, researcher, stint["id"], len(data), filename="大图.jpg").headers["location"]
    r = client.patch(url, content=data[:4096], headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert client.head(url, headers=h).status_code == 410
    assert list((settings.data_dir / "uploads").iterdir()) == []


# --- a real server process ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "FIELDBOOK_DATA_DIR": str(self.settings.data_dir),
            "FIELDBOOK_DATABASE_URL": self.settings.sqlalchemy_url,
            "FIELDBOOK_OCR": "false",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:create_app",
                "--factory",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def server(
    settings: Settings, stint_team
) -> Iterator[Server]:  # stint_team first: the schema and people exist
    s = Server(settings)
    s.start()
    yield s
    s.stop()


def _raw_patch(server: Server, path: str, token: str, offset: int, total: int, body: bytes) -> socket.socket:
    """Send a PATCH announcing ``total`` bytes but only ``body``; the caller cuts the connection."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: {OCTETS}\r\n"
        f"Content-Length: {total}\r\n\r\n"
    )
    sock.sendall(head.encode())
    for i in range(0, len(body), 2**20):
        sock.sendall(body[i : i + 2**20])
    return sock


def _wait_for(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def _twenty_mb() -> bytes:
    """A 20 MB voice memo (WAV) whose every 4-byte word differs, so a duplicated or lost byte shows."""
    from tests.material_files import wav

    size = 20 * 2**20
    header = bytearray(wav(0)[:44])
    header[4:8] = (36 + size).to_bytes(4, "little")
    header[40:44] = size.to_bytes(4, "little")
    return bytes(header) + array("I", range(size // 4)).tobytes()


def _upload_url(server: Server, who, stint_id: str, length: int, mid: str) -> str:  # type: ignore[no-untyped-def]
    r = httpx.post(
        f"{server.url}/api/uploads",
        headers={
            **tus_headers(who),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(stint_id=stint_id, filename="会议录音.wav", id=mid),
        },
    )
    assert r.status_code == 201, r.text
    return f"{server.url}{r.headers['location']}"


def _offset(url: str, who) -> int:  # type: ignore[no-untyped-def]
    return int(httpx.head(url, headers=tus_headers(who)).headers["upload-offset"])


def _resume_with_tuspy(server: Server, who, url: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    client = TusClient(f"{server.url}/api/uploads", headers=who.headers)
    uploader = client.uploader(str(path), url=url, chunk_size=4 * 2**20)
    assert uploader.get_offset() == _offset(url, who)
    uploader.upload()


@pytest.mark.slow
def test_dropped_connection_resumes_with_tuspy(server: Server, stint_team, tmp_path: Path) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    data = _twenty_mb()
    path = tmp_path / "memo.wav"
    path.write_bytes(data)
    mid = str(uuid.uuid4())
    url = _upload_url(server, researcher, stint["id"], len(data), mid)
    sock = _raw_patch(server, url.removeprefix(server.url), researcher.token, 0, len(data), data[: 7 * 2**20])
    sock.close()  # the network drops on the customer's site
    seen: list[int] = []

    def settled() -> bool:
        seen.append(_offset(url, researcher))
        return len(seen) > 3 and seen[-1] == seen[-2] == seen[-3] > 0

    _wait_for(settled)
    assert 0 < seen[-1] <= 7 * 2**20
    _resume_with_tuspy(server, researcher, url, path)
    m = httpx.get(f"{server.url}/api/materials/{mid}", headers=researcher.headers).json()
    assert m["sha256"] == hashlib.sha256(data).hexdigest() and m["size"] == len(data)
    content = httpx.get(f"{server.url}/api/materials/{mid}/content", headers=researcher.headers)
    assert hashlib.sha256(content.content).hexdigest() == m["sha256"]


@pytest.mark.slow
def test_server_killed_mid_patch_resumes_without_duplicates(
    server: Server, stint_team, settings: Settings, tmp_path: Path
) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    data = _twenty_mb()
    path = tmp_path / "memo.wav"
    path.write_bytes(data)
    mid = str(uuid.uuid4())
    url = _upload_url(server, researcher, stint["id"], len(data), mid)
    part = settings.data_dir / "uploads" / f"{uuid.UUID(url.rsplit('/', 1)[-1]).hex}.part"
    path_only = url.removeprefix(server.url)
    sock = _raw_patch(server, path_only, researcher.token, 0, len(data), data[: 9 * 2**20])
    time.sleep(1.2)  # checkpoints come every 8 MB, at most once a second
    sock.sendall(data[9 * 2**20 : 14 * 2**20])
    _wait_for(lambda: part.stat().st_size >= 14 * 2**20)
    server.kill()  # mid-PATCH: bytes written after the last fsync checkpoint are not committed
    sock.close()
    on_disk = part.stat().st_size
    server.start()
    committed = _offset(url, researcher)
    assert 9 * 2**20 <= committed < on_disk  # the fsync checkpoint, not the untrusted tail
    _resume_with_tuspy(server, researcher, url, path)
    m = httpx.get(f"{server.url}/api/materials/{mid}", headers=researcher.headers).json()
    assert m["sha256"] == hashlib.sha256(data).hexdigest() and m["size"] == len(data)


@pytest.mark.slow
def test_dropped_multipart_upload_leaves_nothing(server: Server, stint_team, settings: Settings) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    sock = socket.create_connection(("127.0.0.1", server.port))
    pre = b'--b\r\nContent-Disposition: form-data; name="file"; filename="memo.wav"\r\n\r\n'
    sock.sendall(
        (
            f"POST /api/stints/{stint['id']}/materials HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {researcher.token}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(pre) + 10 * 2**20}\r\n\r\n"
        ).encode()
        + pre
        + _twenty_mb()[: 3 * 2**20]
    )
    staging = settings.data_dir / "staging"
    _wait_for(lambda: staging.exists() and any(p.stat().st_size > 0 for p in staging.iterdir()))
    sock.close()
    _wait_for(lambda: list(staging.iterdir()) == [])
    listed = httpx.get(f"{server.url}/api/stints/{stint['id']}/materials", headers=researcher.headers)
    assert listed.json()["items"] == []


def test_caption_is_refused_above_2000_characters_not_truncated(client: TestClient, stint_team, db) -> None:
    researcher, stint = stint_team["researcher"], stint_team["stint"]
    data = photo(colour="teal")
    h = tus_headers(researcher)
    longest = ("叉车司机交接班记录，" * 200)[:2000]  # 8,000 characters of base64 by itself
    for caption in ("x" * 2000, longest, f" {'y' * 2000} ", "🦺" * 2000):
        mid = str(uuid.uuid4())
        r = create(
            client,
            researcher,
            stint["id"],
            len(data),
            filename="仓库白板照片" * 40 + ".jpg",
            id=mid,
            caption=caption,
        )
        assert r.status_code == 201, r.text
        p = client.patch(
            r.headers["location"], content=data, headers={**h, "Upload-Offset": "0", "Content-Type": OCTETS}
        )
        assert p.status_code == 204, p.text
        assert (
            client.get(f"/api/materials/{mid}", headers=researcher.headers).json()["caption"]
            == caption.strip()
        )
    before = len(db.exec(select(Upload)).all())
    for caption in ("x" * 2001, "长" * 1000 + "x" * 1001):
        r = create(client, researcher, stint["id"], len(data), filename="白板.jpg", caption=caption)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "caption_too_long"
    assert len(db.exec(select(Upload)).all()) == before  # nothing started


def test_a_member_demoted_to_viewer_cannot_finish_an_upload(client: TestClient, stint_team) -> None:
    """As with multipart (403): the role is checked on every PATCH, not only when the upload began."""
    t = stint_team
    researcher, stint, manager = t["researcher"], t["stint"], t["manager"]
    data, mid = photo(colour="olive"), str(uuid.uuid4())
    url = create(client, researcher, stint["id"], len(data), filename="白板.jpg", id=mid).headers["location"]
    h = tus_headers(researcher)
    first = client.patch(
        url, content=data[:1000], headers={**h, "Upload-Offset": "0", "Content-Type": OCTETS}
    )
    assert first.status_code == 204
    member = f"/api/stints/{stint['id']}/members/{researcher.id}"

    def set_role(role: str) -> None:
        assert client.patch(member, json={"role": role}, headers=manager.headers).status_code == 200

    set_role("viewer")
    rest = {**h, "Upload-Offset": "1000", "Content-Type": OCTETS}
    r = client.patch(url, content=data[1000:], headers=rest)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/materials/{mid}", headers=researcher.headers).status_code == 404
    assert client.head(url, headers=h).headers["upload-offset"] == "1000"  # reading it is fine
    # A new upload is refused too (as before), and so is a multipart one.
    assert create(client, researcher, stint["id"], 10, filename="a.csv").status_code == 403
    # Made researcher again, the phone finishes where it was.
    set_role("researcher")
    assert client.patch(url, content=data[1000:], headers=rest).status_code == 204
    assert (
        client.get(f"/api/materials/{mid}", headers=researcher.headers).json()["uploaded_by"] == researcher.id
    )
    # Abandoning one's own unfinished upload stays possible after a demotion: it only frees bytes.
    other = create(client, researcher, stint["id"], 10, filename="a.csv").headers["location"]
    set_role("viewer")
    assert client.delete(other, headers=h).status_code == 204
    assert client.head(other, headers=h).status_code == 404
