"""``fieldbook backup`` / ``fieldbook restore`` run as real processes: a restore drill on a realistic
stint, a backup taken while a real server writes, and damaged or misplaced input."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from click.testing import Result
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from api import migrations
from api.cli import app as cli
from api.config import Settings
from api.db import make_engine
from api.main import create_app
from api.material_tables import Material
from api.materials import live_blob_digests
from api.models import Observation, ObservationTag
from api.search_docs import SearchTask
from storage import make_store
from tests import test_storage
from tests.conftest import PASSWORD, PG_URL, STINT
from tests.live_server import FIELDBOOK, add_account, fresh_postgres_database, live_server
from tests.material_files import pdf, photo

SEEDS = Path("/work/shared/seeds")
HEAD = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
WAIT = 60.0  # generous: only how long a failing test takes to say so

Target = Callable[[str], Settings]
# moto's S3 server on loopback, a bucket in it and the credentials to reach it
s3_endpoint, bucket, aws_env = test_storage.s3_endpoint, test_storage.bucket, test_storage.aws_env


def fieldbook(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FIELDBOOK_DATA_DIR": str(settings.data_dir),
        "FIELDBOOK_DATABASE_URL": settings.sqlalchemy_url,
        "COLUMNS": "400",  # rich: one message, one line
    }
    env.pop("FIELDBOOK_STORAGE_URL", None)
    if settings.storage_url:
        env["FIELDBOOK_STORAGE_URL"] = settings.storage_url
    return subprocess.run([FIELDBOOK, *args], env=env, capture_output=True, text=True, timeout=300)


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    """Factory: a new, empty place to restore into (data directory plus database)."""
    made: list[str] = []

    def make(name: str) -> Settings:
        data_dir = tmp_path / name
        if not PG_URL:
            return Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'fieldbook.db'}")
        database = f"fb_backup_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        made.append(database)
        return Settings(data_dir=data_dir, database_url=fresh_postgres_database(PG_URL, database))

    yield make
    if made:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for database in made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


def wait_for(probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {WAIT}s")
        time.sleep(0.05)
    return value


def quiet(engine: sa.Engine) -> bool:
    """No text extraction pending and every index task applied: nothing changes by itself any more."""
    with Session(engine) as session:
        pending = session.exec(select(Material.id).where(Material.text_status == "pending")).first()
        tasks = session.exec(select(SearchTask.id)).first()
    return pending is None and tasks is None


def row_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                n: conn.execute(sa.select(sa.func.count()).select_from(sa.table(n))).scalar_one()
                for n in names
            }
    finally:
        engine.dispose()


def blob_sums(settings: Settings) -> dict[str, str]:
    """Every live material's blob: its name and the SHA-256 of the bytes the store gives back."""
    engine = make_engine(settings.sqlalchemy_url)
    with Session(engine) as session:
        digests = live_blob_digests(session)
    engine.dispose()
    store = make_store(None, settings.data_dir)
    return {d: hashlib.sha256(b"".join(store.read(d))).hexdigest() for d in digests}


def seed_paragraphs(limit: int = 3) -> list[str]:
    out: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        lines = [line.strip() for line in path.read_text().splitlines() if 40 <= len(line.strip()) <= 2000]
        out += lines[:limit]
    return out


QUERIES = [
    "沉浸式调研",
    "最佳实践",
    "标准化",
    "客户",
    "调度白板",
    "dispatchers",
    "audit",
    "reconcile invoices",
]


def test_restore_drill_gives_back_the_same_rows_files_search_and_sign_in(
    client, stint_team, app, settings, target
):
    t = stint_team
    sid, r, m, viewer = t["stint"]["id"], t["researcher"], t["manager"], t["viewer"]
    texts = [*seed_paragraphs(), "The dispatchers reconcile invoices twice, once in SAP and once in Excel."]
    for n, text in enumerate(texts):
        res = client.post(
            f"/api/stints/{sid}/observations",
            json={"id": str(uuid.uuid4()), "text": text, "tags": ["种子" if n % 2 else "访谈"]},
            headers=(r if n % 3 else m).headers,
        )
        assert res.status_code == 201, res.text
    uploaded: dict[str, str] = {}  # material id: SHA-256 of the bytes sent
    for data, name, caption in (
        (photo(), "白板.jpg", "调度白板上的派车顺序"),
        (pdf("Dispatch board audit checklist"), "audit.pdf", None),
        ("月底对账流程:先导出 Excel,再核对发票。\n".encode(), "对账.txt", "对账笔记"),
    ):
        res = client.post(
            f"/api/stints/{sid}/materials",
            files={"file": (name, data, "application/octet-stream")},
            data={"caption": caption} if caption else {},
            headers=r.headers,
        )
        assert res.status_code == 201, res.text
        uploaded[res.json()["id"]] = hashlib.sha256(data).hexdigest()
    res = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "排班靠老员工经验", "statement": "The schedule lives in one dispatcher's head"},
        headers=r.headers,
    )
    assert res.status_code == 201, res.text
    wait_for(lambda: quiet(app.state.engine))

    def results(c: TestClient) -> dict[str, tuple[int, list[str]]]:
        found = {}
        for q in QUERIES:
            res = c.get("/api/search", params={"q": q, "per_page": 100}, headers=viewer.headers)
            assert res.status_code == 200, res.text
            found[q] = (res.json()["total"], sorted(f"{h['type']}:{h['id']}" for h in res.json()["hits"]))
        return found

    searched = results(client)
    assert all(total for total, _ in searched.values()), searched  # every query finds something
    counts, sums = row_counts(settings.sqlalchemy_url), blob_sums(settings)
    assert len(sums) >= 4 and counts["observation"] == len(texts)

    dest = settings.data_dir.parent / "backup"
    dest.mkdir()  # an existing empty directory is fine
    clock = time.monotonic()
    made = fieldbook(settings, "backup", str(dest))
    assert made.returncode == 0, made.stderr
    print(f"\nbackup ({time.monotonic() - clock:.1f}s with process start):", said(made))
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["database"]["rows"] == counts
    assert {b["sha256"] for b in manifest["blobs"]} == set(sums)
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in dest.rglob("*") if p.is_file()} == {"0o600"}

    restored = target("restored")
    clock = time.monotonic()
    back = fieldbook(restored, "restore", str(dest))
    assert back.returncode == 0, back.stderr
    print(f"restore ({time.monotonic() - clock:.1f}s with process start):", said(back))
    assert row_counts(restored.sqlalchemy_url) == counts
    assert blob_sums(restored) == sums
    again = create_app(restored)
    with TestClient(again, raise_server_exceptions=False) as c:
        assert results(c) == searched  # the same ids, found with the sessions the backup holds
        token = c.post("/api/auth/token", data={"username": m.email, "password": PASSWORD})
        assert token.status_code == 200, token.text
        me = c.get("/api/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert me.json()["email"] == m.email
        for mid, digest in uploaded.items():  # served from the restored store, byte for byte
            content = c.get(f"/api/materials/{mid}/content", headers=viewer.headers)
            assert content.status_code == 200 and hashlib.sha256(content.content).hexdigest() == digest
    again.state.engine.dispose()


def test_backup_while_a_server_writes_is_consistent(tmp_path, target):
    source = target("live")
    source.data_dir.mkdir(parents=True)
    token = add_account(source.sqlalchemy_url, "writer@example.com", "写入者", PASSWORD, admin=True)
    headers = {"Authorization": f"Bearer {token}"}
    acked: dict[uuid.UUID, str] = {}
    failures: list[str] = []
    stop = threading.Event()

    with live_server(source.data_dir, source.sqlalchemy_url) as server:
        stint = httpx.post(f"{server.url}/api/stints", json=STINT, headers=headers, timeout=30).json()

        def write() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                n = 0
                while not stop.is_set():
                    oid, text = uuid.uuid4(), f"并发写入第{n}条:调度员核对装车顺序 backup drill {n}"
                    res = http.post(
                        f"/api/stints/{stint['id']}/observations",
                        json={"id": str(oid), "text": text, "tags": ["并发", f"批{n % 5}"]},
                    )
                    if res.status_code != 201:
                        failures.append(res.text)
                        return
                    acked[oid] = text
                    n += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            wait_for(lambda: len(acked) >= 10 or failures)
            before = set(acked)  # committed before the backup began: it must hold them
            made = fieldbook(source, "backup", str(tmp_path / "backup"))
            after = len(acked)
            wait_for(lambda: len(acked) >= after + 10 or failures)  # still writing after it ended
        finally:
            stop.set()
            writer.join()
    assert made.returncode == 0, made.stderr
    assert not failures, failures[:3]

    if not PG_URL:
        with sqlite3.connect(tmp_path / "backup" / "fieldbook.db") as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert copy.execute("PRAGMA foreign_key_check").fetchall() == []
    restored = target("restored")
    back = fieldbook(restored, "restore", str(tmp_path / "backup"))
    assert back.returncode == 0, back.stderr
    engine = make_engine(restored.sqlalchemy_url)
    with Session(engine) as session:
        held = {o.id: o.text for o in session.exec(select(Observation)).all()}
        tags: dict[uuid.UUID, set[str]] = {}
        for tag in session.exec(select(ObservationTag)).all():
            tags.setdefault(tag.observation_id, set()).add(tag.tag)
    engine.dispose()
    assert before <= set(held) <= set(acked)
    assert all(held[i] == acked[i] for i in held)  # each one whole, as written
    assert all(len(tags.get(i, ())) == 2 for i in held)  # with both its tags
    checked = in_process(restored, "check")
    assert checked.exit_code == 0, checked.output


@pytest.fixture
def small_backup(client, person, settings, app, tmp_path) -> tuple[Settings, Path]:
    manager = person("王经理")
    stint = client.post("/api/stints", json=STINT, headers=manager.headers).json()
    res = client.post(
        f"/api/stints/{stint['id']}/materials",
        files={"file": ("笔记.txt", "仓库早班七点开始。\n".encode(), "text/plain")},
        headers=manager.headers,
    )
    assert res.status_code == 201, res.text
    wait_for(lambda: quiet(app.state.engine))
    made = fieldbook(settings, "backup", str(tmp_path / "backup"))
    assert made.returncode == 0, made.stderr
    return settings, tmp_path / "backup"


def nothing_there(settings: Settings) -> bool:
    """Neither a database with tables nor any stored file."""
    blobs = settings.data_dir / "blobs"
    if blobs.exists() and any(p.is_file() for p in blobs.rglob("*")):
        return False
    if not PG_URL:
        return not Path(sa.make_url(settings.sqlalchemy_url).database or "").exists()
    engine = sa.create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
    engine.dispose()
    return tables == []


def in_process(settings: Settings, *args: str) -> Result:
    """The command in this process (quick), for the answers that must come before anything is done."""
    env = {"FIELDBOOK_DATA_DIR": str(settings.data_dir), "FIELDBOOK_DATABASE_URL": settings.sqlalchemy_url}
    return CliRunner().invoke(cli, list(args), env={**env, "COLUMNS": "400"})


def test_refusals_leave_everything_as_it_was(small_backup, tmp_path, target):
    settings, backup = small_backup
    before = sorted(str(p) for p in backup.rglob("*"))
    res = in_process(settings, "backup", str(backup))
    assert res.exit_code == 1 and "not an empty directory" in res.output, res.output
    assert sorted(str(p) for p in backup.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]

    manifest = json.loads((backup / "manifest.json").read_text())
    blob = backup / "blobs" / manifest["blobs"][0]["sha256"]
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    data = bytearray(blob.read_bytes())
    data[0] ^= 1  # same size, one bit flipped
    (damaged / "blobs" / blob.name).write_bytes(bytes(data))
    place = target("restored")
    res = in_process(place, "restore", str(damaged))
    assert res.exit_code == 1 and "does not match the manifest" in res.output, res.output
    assert nothing_there(place)
    (damaged / "blobs" / blob.name).write_bytes(blob.read_bytes())
    (damaged / "manifest.json").unlink()  # what an interrupted backup would look like
    res = in_process(place, "restore", str(damaged))
    assert res.exit_code == 1 and "not a Fieldbook backup" in res.output, res.output
    assert nothing_there(place)

    first = fieldbook(place, "restore", str(backup))
    assert first.returncode == 0, first.stderr
    counts = row_counts(place.sqlalchemy_url)
    res = in_process(place, "restore", str(backup))  # the database now holds data
    assert res.exit_code == 1 and "--force" in res.output, res.output
    forced = fieldbook(place, "restore", "--force", str(backup))
    assert forced.returncode == 0, forced.stderr
    assert row_counts(place.sqlalchemy_url) == counts


def test_a_backup_of_an_older_schema_is_upgraded_on_restore(tmp_path, target):
    old = target("old")
    old.data_dir.mkdir(parents=True)
    engine = make_engine(old.sqlalchemy_url)
    migrations.upgrade(engine, "0004")
    engine.dispose()
    made = fieldbook(old, "backup", str(tmp_path / "backup"))
    assert made.returncode == 0, made.stderr
    assert (
        json.loads((tmp_path / "backup" / "manifest.json").read_text())["database"]["alembic_revision"]
        == "0004"
    )
    new = target("new")
    back = fieldbook(new, "restore", str(tmp_path / "backup"))
    assert back.returncode == 0, back.stderr
    assert f"0004 → {HEAD}" in said(back)
    engine = make_engine(new.sqlalchemy_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    engine.dispose()


@pytest.mark.skipif(bool(PG_URL), reason="the blob store does not depend on the database: SQLite leg only")
def test_blobs_go_to_and_come_from_an_s3_store(small_backup, s3_endpoint, bucket, tmp_path, target):
    _, backup = small_backup
    s3 = target("s3").model_copy(
        update={"storage_url": f"s3://{bucket}/blobs?endpoint_url={s3_endpoint}&region=us-east-1"}
    )
    back = fieldbook(s3, "restore", str(backup))
    assert back.returncode == 0, back.stderr
    assert not (s3.data_dir / "blobs").exists()  # the files went to the bucket
    again = fieldbook(s3, "backup", str(tmp_path / "from-s3"))  # read back through the S3 store
    assert again.returncode == 0, again.stderr
    first, second = (json.loads((d / "manifest.json").read_text()) for d in (backup, tmp_path / "from-s3"))
    assert second["blobs"] == first["blobs"] and first["blobs"]
    for blob in first["blobs"]:
        assert (tmp_path / "from-s3" / "blobs" / blob["sha256"]).read_bytes() == (
            backup / "blobs" / blob["sha256"]
        ).read_bytes()
