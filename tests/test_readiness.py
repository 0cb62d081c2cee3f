"""``/readyz``: ready on a migrated database with a working blob store and search index; 503 naming
the failing check when the schema is behind, the blob area takes no write or the index is missing."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import migrations
from api.config import Settings
from api.db import make_engine

CHECKS = ["database", "schema", "blob_store", "search_index"]


def _failing(client: TestClient) -> list[str]:
    r = client.get("/readyz")
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "not_ready"
    assert [c["name"] for c in error["details"]["checks"]] == CHECKS
    return [c["name"] for c in error["details"]["checks"] if not c["ok"]]


def _ready(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
    assert [(c["name"], c["ok"]) for c in r.json()["checks"]] == [(name, True) for name in CHECKS]


def test_ready_on_a_migrated_database(client: TestClient) -> None:
    _ready(client)
    _ready(client)  # the blob probe leaves nothing behind that would fail the next one


def test_not_ready_while_the_schema_is_behind(client: TestClient, settings: Settings) -> None:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        migrations.downgrade(engine, "-1")
        try:
            assert _failing(client) == ["schema"]
        finally:
            migrations.upgrade(engine)  # other tests on PostgreSQL share this database
        _ready(client)
    finally:
        engine.dispose()


@contextmanager
def _blob_area_replaced_by_a_file(blobs: Path) -> Iterator[None]:
    """The blob directory gone and a file in its place (a volume that did not mount, say)."""
    aside = blobs.with_name("blobs.aside")
    blobs.rename(aside)
    blobs.write_bytes(b"")
    try:
        yield
    finally:
        blobs.unlink()
        aside.rename(blobs)


def test_not_ready_when_the_blob_area_is_not_a_directory(client: TestClient, settings: Settings) -> None:
    _ready(client)  # the store exists and has made its directory
    with _blob_area_replaced_by_a_file(settings.data_dir / "blobs"):
        assert _failing(client) == ["blob_store"]
    _ready(client)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any mode bits")
def test_not_ready_when_the_blob_area_is_read_only(client: TestClient, settings: Settings) -> None:
    blobs = settings.data_dir / "blobs"
    _ready(client)
    blobs.chmod(0o500)
    try:
        assert _failing(client) == ["blob_store"]
    finally:
        blobs.chmod(0o750)
    _ready(client)


def test_not_ready_until_the_search_index_exists(app) -> None:
    # No lifespan, so no indexer has built an index yet: what a process sees before its first build.
    client = TestClient(app, raise_server_exceptions=False)
    assert _failing(client) == ["search_index"]


def test_a_probe_writes_no_migration_log_lines(client, caplog):
    # Probes come every few seconds: alembic's context said which dialect it uses at INFO each time.
    caplog.set_level(logging.INFO)
    _ready(client)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
