"""Crash safety (issue #8): a real ``fieldbook serve`` (two workers) is SIGKILLed at random moments
while clients push, upload (multipart and tus) and post; after each restart the clients retry what
was not acknowledged, with the same ids, keys and upload URLs. At the end every acknowledged write is
there exactly once with the acknowledged content, no blob is partial or orphaned, search has caught
up and ``fieldbook check --deep`` finds nothing.

``FIELDBOOK_CRASH_SEED`` replays a run's choices (the seed is printed; the kill instants are real
time, so a replay is close, not identical); ``FIELDBOOK_CRASH_ROUNDS`` runs more kills (default 3)."""

import hashlib
import os
import random
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from api.cli import app as cli
from api.config import Settings
from api.db import make_engine
from api.material_tables import Material, Upload
from api.materials import live_blob_digests
from api.models import Observation, User
from api.search_docs import SearchTask
from api.store_check import remove_temp_files
from storage import make_store
from storage.local import LocalBlobStore
from tests.conftest import PG_URL, STINT
from tests.crash_clients import Client, Obs, Poster, Pusher, TusUploader, Uploader
from tests.crash_clients import Material as Sent
from tests.live_server import FIELDBOOK, LiveServer, add_account, fresh_postgres_database
from tests.material_files import pdf

SEED = int(os.environ.get("FIELDBOOK_CRASH_SEED") or secrets.randbits(32))
ROUNDS = int(os.environ.get("FIELDBOOK_CRASH_ROUNDS") or 3)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        (tmp_path / "data").mkdir()
        yield f"sqlite:///{tmp_path / 'data' / 'fieldbook.db'}"
        return
    name = f"fieldbook_crash_{os.getpid()}"
    yield fresh_postgres_database(PG_URL, name)
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def blob_files(root: Path) -> tuple[dict[str, Path], list[Path]]:
    """(blobs by name, temp files) of the local store."""
    blobs, temps = {}, []
    for path in root.glob("??/??/*"):
        if path.name.startswith("."):
            temps.append(path)
        else:
            blobs[path.name] = path
    return blobs, temps


def assert_no_partial_blob(root: Path) -> int:
    """Every file under a digest's name holds exactly those bytes; returns the temp files seen."""
    blobs, temps = blob_files(root)
    for name, path in blobs.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name, f"partial or corrupt blob {path}"
    return len(temps)


def assert_nothing_left_over(data: Path) -> None:
    """Right after a start, before any request: the start removed what the killed server left."""
    _, temps = blob_files(data / "blobs")
    temps += list((data / "blobs").glob(".probe-*"))
    staged = list((data / "staging").glob("*")) if (data / "staging").exists() else []
    assert temps == [] and staged == [], (temps, staged)


def plant_leftovers(data: Path) -> None:
    digest = hashlib.sha256(b"whole").hexdigest()
    half = data / "blobs" / digest[:2] / digest[2:4] / f".{digest}.4242.tmp"
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(b"who")
    (data / "staging").mkdir(exist_ok=True)
    (data / "staging" / "upload-killed.part").write_bytes(b"--b\r\nContent-Disposition")
    (data / "blobs" / ".probe-4242-1").write_bytes(b"o")  # a /readyz write cut off


def start_clients(
    clients: list[Client], stop: threading.Event, *, drain: bool = False
) -> list[threading.Thread]:
    threads = [threading.Thread(target=c.run, args=(stop, drain)) for c in clients]
    for t in threads:
        t.start()
    return threads


def fieldbook(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIELDBOOK, *args], env=server.environment(), capture_output=True, text=True, timeout=300
    )


def feed(server: LiveServer, headers: dict[str, str], kind: str) -> dict[str, dict[str, Any]]:
    """The sync feed's latest change per record of ``kind``: what every phone would pull."""
    latest: dict[str, dict[str, Any]] = {}
    since: str | None = None
    while True:
        params = {"limit": 1000, **({"since": since} if since else {})}
        page = httpx.get(f"{server.url}/api/sync/changes", params=params, headers=headers).json()
        latest |= {c["id"]: c for c in page["changes"] if c["type"] == kind}
        since = page["cursor"]
        if not page["has_more"]:
            return latest


def check_observations(
    server: LiveServer, headers: dict[str, str], engine: sa.Engine, sent: dict[str, Obs]
) -> None:
    pulled = feed(server, headers, "observation")
    assert sorted(pulled) == sorted(sent)
    for oid, obs in sent.items():
        change = pulled[oid]
        assert (change["version"], change["deleted"]) == (obs.version, obs.deleted), oid
        assert obs.deleted or change["data"]["text"] == obs.text, oid
    with Session(engine) as session:
        rows = session.exec(select(Observation.id, Observation.deleted_at)).all()
    # Every create carried a client id and every one was retried until acknowledged: the rows are
    # exactly those ids (a retry applied twice would show as a second row or a higher version).
    assert sorted(str(i) for i, _ in rows) == sorted(sent)
    assert {str(i) for i, d in rows if d is not None} == {i for i, o in sent.items() if o.deleted}


def check_materials(
    server: LiveServer,
    headers: dict[str, str],
    engine: sa.Engine,
    sent: dict[str, Sent],
    abandoned: dict[str, Sent],
    rng: random.Random,
) -> None:
    """Every acknowledged material, and of those given up after a kill only whole ones."""
    pulled = feed(server, headers, "material")
    assert set(sent) <= set(pulled) <= set(sent) | set(abandoned)
    for mid, change in pulled.items():
        m = sent.get(mid) or abandoned[mid]
        assert not change["deleted"], mid
        assert (change["data"]["sha256"], change["data"]["size"]) == (m.sha256, len(m.data)), mid
    # The store's bytes are checked against their names below; a few downloads check the way out.
    for mid in rng.sample(sorted(sent), min(8, len(sent))):
        content = httpx.get(f"{server.url}/api/materials/{mid}/content", headers=headers)
        assert hashlib.sha256(content.content).hexdigest() == sent[mid].sha256, mid
    with Session(engine) as session:
        ids = session.exec(select(Material.id).where(col(Material.deleted_at).is_(None))).all()
    assert sorted(str(i) for i in ids) == sorted(pulled)


def live_digests(engine: sa.Engine) -> set[str]:
    with Session(engine) as session:
        return live_blob_digests(session)


def wait_for_search(server: LiveServer, headers: dict[str, str], sid: str, sent: dict[str, Obs]) -> None:
    """Poll until every live observation is found by its word and no deleted one is: the indexer
    picks up the tasks the killed workers left. Generous deadline; not a timing assertion."""
    wanted = {o.text.split()[1]: oid for oid, o in sent.items()}
    deadline = time.monotonic() + 180
    while wanted:
        for word, oid in list(wanted.items()):
            r = httpx.get(f"{server.url}/api/search", params={"q": word, "stint_id": sid}, headers=headers)
            assert r.status_code in (200, 503), r.text
            found = r.status_code == 200 and oid in {h["id"] for h in r.json()["hits"]}
            if found != sent[oid].deleted:
                del wanted[word]
        assert time.monotonic() < deadline, f"search did not catch up: {len(wanted)} left"
        if wanted:
            time.sleep(0.5)


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, database: str) -> None:
    print(f"\ncrash run: FIELDBOOK_CRASH_SEED={SEED} FIELDBOOK_CRASH_ROUNDS={ROUNDS}")
    rng = random.Random(SEED)
    data = tmp_path / "data"
    token = add_account(database, "crash@example.com", "Crash Run", secrets.token_hex(8))
    headers = {"Authorization": f"Bearer {token}"}
    server = LiveServer(data_dir=data, database_url=database, env={"FIELDBOOK_OCR": "0"})
    engine = make_engine(database)
    server.start()
    try:
        sid = httpx.post(f"{server.url}/api/stints", json=STINT, headers=headers).json()["id"]
        kinds: list[type[Client]] = [Pusher, Pusher, Poster, Uploader, TusUploader, TusUploader]
        clients = [k(server.url, headers, sid, random.Random(rng.getrandbits(64))) for k in kinds]
        temps_at_kill = 0
        for n in range(ROUNDS):
            if n:
                server.start()
                assert_nothing_left_over(data)
            stop = threading.Event()
            threads = start_clients(clients, stop)
            time.sleep(rng.uniform(0.5, 3.0))
            server.kill()  # mid-traffic, every process of the server at once
            stop.set()
            for t in threads:
                t.join()
            temps_at_kill += assert_no_partial_blob(data / "blobs")
        plant_leftovers(data)  # what a kill in the middle of a write leaves (a real kill rarely hits it)
        server.start()
        assert_nothing_left_over(data)
        for t in start_clients(clients, threading.Event(), drain=True):  # retry what is pending
            t.join()
        assert not any(c.has_pending() for c in clients)
        failures = [f for c in clients for f in c.failures]
        assert failures == [], failures
        observations = {k: v for c in clients if isinstance(c, Pusher | Poster) for k, v in c.obs.items()}
        materials = {
            k: v for c in clients if isinstance(c, Uploader | TusUploader) for k, v in c.materials.items()
        }
        check_observations(server, headers, engine, observations)
        abandoned = {k: v for c in clients if isinstance(c, Uploader) for k, v in c.abandoned.items()}
        check_materials(server, headers, engine, materials, abandoned, rng)
        wait_for_search(server, headers, sid, observations)
    finally:
        server.stop()
    counts: dict[str, int] = {}
    for c in clients:
        for what, k in c.counts.items():
            counts[what] = counts.get(what, 0) + k
    print(
        f"{ROUNDS} kill(s); {len(observations)} observations and {len(materials)} materials checked; "
        f"{temps_at_kill} blob temp file(s) found after the kills; {counts}"
    )
    # Blobs stored by a request the kill cut off before its row was committed are unreferenced:
    # `fieldbook gc` frees them, after which the store holds exactly what live materials need.
    orphans = set(blob_files(data / "blobs")[0]) - live_digests(engine)
    if orphans:
        before = fieldbook(server, "check", "--deep", "--grace-minutes", "0")
        said = " ".join(before.stderr.split())  # rich wraps lines at 80 columns
        assert before.returncode == 1 and f"{len(orphans)} blob(s) no live material needs" in said
    print(f"{len(orphans)} unreferenced blob(s) before gc")
    collected = fieldbook(server, "gc", "--grace-minutes", "0")
    assert collected.returncode == 0, collected.stderr
    after = fieldbook(server, "check", "--deep", "--grace-minutes", "0")
    assert after.returncode == 0, after.stdout + after.stderr
    blobs, temps = blob_files(data / "blobs")
    assert temps == []
    assert set(blobs) == live_digests(engine)
    with Session(engine) as session:
        open_uploads = {f"{u.hex}.part" for u in session.exec(select(Upload.id)).all()}
    assert_no_partial_blob(data / "blobs")
    assert {p.name for p in (data / "uploads").glob("*")} <= open_uploads
    engine.dispose()


def index_tasks(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(SearchTask)).scalar_one())


def test_check_and_gc_find_what_a_crash_leaves(
    client: TestClient, stint_team: dict[str, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fieldbook check`` reports leftovers older than its grace period, ``--deep`` corrupt blobs;
    the clean-up of ``fieldbook serve`` and ``fieldbook gc`` remove them."""
    sid, who = stint_team["stint"]["id"], stint_team["researcher"]
    kept = client.post(
        f"/api/stints/{sid}/materials",
        files={"file": ("a.pdf", pdf("kept"), "application/pdf")},
        headers=who.headers,
    )
    assert kept.status_code == 201, kept.text
    data = settings.data_dir
    # The app's indexer idle first: a check racing it can see a record neither indexed nor queued.
    deadline = time.monotonic() + 60
    while index_tasks(client.app.state.engine):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    plant_leftovers(data)
    orphan = hashlib.sha256(b"stored, then the server died before the row").hexdigest()
    (data / "blobs" / orphan[:2] / orphan[2:4]).mkdir(parents=True, exist_ok=True)
    (data / "blobs" / orphan[:2] / orphan[2:4] / orphan).write_bytes(
        b"stored, then the server died before the row"
    )
    (data / "uploads").mkdir(exist_ok=True)
    (data / "uploads" / f"{uuid.uuid4().hex}.part").write_bytes(
        b"created, then the server died before the row"
    )
    monkeypatch.setenv("FIELDBOOK_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDBOOK_DATABASE_URL", settings.sqlalchemy_url)

    def check(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["check", *args])
        return result.exit_code, " ".join(result.output.split())

    assert check()[0] == 0  # all younger than the default grace period: maybe in flight
    code, said = check("--grace-minutes", "0")
    assert code == 1 and "1 blob(s) no live material needs" in said and said.count("left over") == 4
    store = make_store(None, data)
    assert isinstance(store, LocalBlobStore)
    assert remove_temp_files(settings, store) == 3  # at `fieldbook serve` start: not the tus part
    assert check("--grace-minutes", "0")[1].count("left over") == 1
    assert CliRunner().invoke(cli, ["gc", "--grace-minutes", "0"]).exit_code == 0
    assert check("--deep", "--grace-minutes", "0")[0] == 0
    blob = next(p for p in (data / "blobs").glob("??/??/*") if p.name == kept.json()["sha256"])
    blob.write_bytes(pdf("changed on disk"))
    code, said = check("--deep")
    assert code == 1 and f"{blob.name} does not hash to its name" in said
    assert check()[0] == 0  # without --deep the bytes are not read


def test_a_killed_servers_push_claims_are_released_at_start(tmp_path: Path, database: str) -> None:
    """A push cut off by a kill leaves its Idempotency-Key claimed; the phone retries with the same
    key after the restart and must be answered, not told 409 until the claim times out."""
    from api import idempotency

    token = add_account(database, "claim@example.com", "李研究员", "pw-long-enough")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"ops": []}
    engine = make_engine(database)
    with Session(engine) as session:
        user_id = session.exec(select(User.id).where(User.email == "claim@example.com")).one()
        # What the killed server left: claimed, never completed, still inside its timeout.
        assert (
            idempotency.claim(session, user_id, "k-1", "POST /api/sync/push", idempotency.fingerprint(body))
            is None
        )
    engine.dispose()
    server = LiveServer(data_dir=tmp_path / "data", database_url=database, workers=1)
    server.start()
    try:
        r = httpx.post(
            f"{server.url}/api/sync/push", json=body, headers={**headers, "Idempotency-Key": "k-1"}
        )
        assert r.status_code == 200, r.text
    finally:
        server.kill()
