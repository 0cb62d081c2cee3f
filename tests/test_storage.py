"""Blob stores: the same behaviour from local files and from S3 (moto's standalone server on loopback)."""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from storage import BlobNotFound, BlobStore, make_store
from storage.local import LocalBlobStore
from tests.material_files import assert_no_metadata, photo

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "fieldbook-test",
    "AWS_SECRET_ACCESS_KEY": "fieldbook-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None, request: pytest.FixtureRequest) -> str:
    name = f"fieldbook-{abs(hash(request.node.nodeid)) % 10**8}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return make_store(f"file://{tmp_path / 'blobs'}", tmp_path)
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("bucket")
    return make_store(f"s3://{bucket}/fieldbook/blobs?endpoint_url={endpoint}&region=us-east-1", tmp_path)


def _staged(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / f"staged-{hashlib.sha256(data).hexdigest()[:8]}"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_put_read_ranges_dedupe_delete(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20 + 17)
    path, digest = _staged(tmp_path, data)
    assert not store.exists(digest)
    store.put_file(path, digest)
    assert not path.exists()  # consumed
    assert store.exists(digest) and store.size(digest) == len(data)
    assert b"".join(store.read(digest)) == data
    assert b"".join(store.read(digest, 10, 20)) == data[10:20]
    assert b"".join(store.read(digest, len(data) - 5)) == data[-5:]
    again, _ = _staged(tmp_path, data)
    store.put_file(again, digest)  # the same bytes twice: stored once
    assert not again.exists()
    assert [d for d, _ in store.list()] == [digest]
    store.delete(digest)
    assert not store.exists(digest)
    with pytest.raises(BlobNotFound):
        b"".join(store.read(digest))
    with pytest.raises(BlobNotFound):
        store.size(digest)


def test_the_same_bytes_stored_at_once_by_many_threads(store: BlobStore, tmp_path: Path) -> None:
    """Two uploads of one photo make the same previews at the same moment (seen under load: one
    thread's temp file was renamed away under the other): each put succeeds, one blob remains."""
    data = os.urandom(64 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    for attempt in range(20):
        staged = []
        for n in range(6):
            path = tmp_path / f"staged-{attempt}-{n}"
            path.write_bytes(data)
            staged.append(path)
        start = threading.Barrier(len(staged))
        failures: list[BaseException] = []

        def put(path: Path) -> None:
            start.wait()
            try:
                store.put_file(path, digest)
            except BaseException as exc:  # collected for the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=put, args=(path,)) for path in staged]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], failures
        assert b"".join(store.read(digest)) == data
        store.delete(digest)


def test_probe_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    path, digest = _staged(tmp_path, b"probe neighbours")
    store.put_file(path, digest)
    store.probe()
    store.probe()
    assert [d for d, _ in store.list()] == [digest]


def test_probe_fails_without_a_place_to_write(s3_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    local = make_store(f"file://{tmp_path / 'blobs'}", tmp_path)
    (tmp_path / "blobs").rmdir()
    (tmp_path / "blobs").write_bytes(b"")  # a file where the directory was
    with pytest.raises(OSError):
        local.probe()
    s3 = make_store(f"s3://no-such-bucket/blobs?endpoint_url={s3_endpoint}&region=us-east-1", tmp_path)
    with pytest.raises(ClientError):
        s3.probe()


@pytest.mark.parametrize("name", ["../../etc/passwd", "A" * 64, "0" * 63, "../" + "0" * 61, ""])
def test_blob_names_cannot_be_paths(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.exists(name)


def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    path, digest = _staged(tmp_path, b"field notes " * 1000)
    store.put_file(path, digest)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [digest]
    assert files[0].relative_to(tmp_path / "blobs").parts[:2] == (digest[:2], digest[2:4])


def test_materials_api_on_s3(
    s3_endpoint: str, bucket: str, database_url: str, tmp_path: Path, person
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        ocr=False,
        storage_url=f"s3://{bucket}/materials?endpoint_url={s3_endpoint}",
    )
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            who = person("李研究员")
            stint = client.post(
                "/api/stints",
                json={
                    "title": "华东物流调度驻场",
                    "customer": "顺达物流",
                    "purpose": "product",
                    "start_date": "2026-03-02",
                    "end_date": "2026-03-27",
                },
                headers=who.headers,
            ).json()
            data = photo()
            r = client.post(
                f"/api/stints/{stint['id']}/materials",
                files={"file": ("仓库.jpg", data)},
                headers=who.headers,
            )
            assert r.status_code == 201, r.text
            m = r.json()
            keys = {
                o["Key"]
                for o in boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
                .list_objects_v2(Bucket=bucket)
                .get("Contents", [])
            }
            assert f"materials/{m['sha256'][:2]}/{m['sha256'][2:4]}/{m['sha256']}" in keys
            assert len(keys) == 3  # original + two previews
            content = client.get(
                f"/api/materials/{m['id']}/content", headers={**who.headers, "Range": "bytes=2-9"}
            )
            assert content.status_code == 206 and content.content == data[2:10]
            preview = client.get(f"/api/materials/{m['id']}/preview", headers=who.headers)
            assert_no_metadata(preview.content)
            assert not (settings.data_dir / "blobs").exists()  # nothing kept locally
    finally:
        app.state.engine.dispose()
