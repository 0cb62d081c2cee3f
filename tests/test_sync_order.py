"""The changes feed never skips a committed change, even when concurrent writers commit in another
order than they started (PostgreSQL: ids handed out before commit can commit out of order)."""

import random
import threading
import time
import uuid

import pytest
from sqlmodel import Session

from api.changelog import SyncChange
from api.db import utcnow
from api.models import Stint
from api.observation_schemas import ObservationCreate
from api.observation_writes import insert_observations, new_observation
from tests.conftest import PG_URL

pg_only = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (FIELDBOOK_TEST_DATABASE_URL)")


def _write(engine, stint_id, author_id, text, *, slow: threading.Event | None = None) -> uuid.UUID:
    """One transaction adding one observation, as the REST route and the push do."""
    with Session(engine, expire_on_commit=False) as session:
        stint = session.get(Stint, stint_id)
        assert stint is not None
        new = new_observation(stint, author_id, ObservationCreate(text=text), uuid.uuid4(), utcnow())
        insert_observations(session, [new])
        if slow is not None:
            session.info["test_pause"] = slow
        session.commit()
        return new.id


def _follow(client, who, since):
    seen = []
    while True:
        r = client.get("/api/sync/changes", params={"since": since, "limit": 7}, headers=who.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [c["id"] for c in page["changes"] if c["type"] == "observation"]
        since = page["cursor"]
        if not page["has_more"]:
            return seen, since


@pytest.fixture
def pause_in_commit():
    """Holds a transaction between writing its change-log rows and COMMIT, when the session asks to."""
    from sqlalchemy import event

    inside = threading.Event()

    def pause(session):
        release = session.info.pop("test_pause", None)
        if release is not None:
            inside.set()
            release.wait(10)

    event.listen(Session, "before_commit", pause)  # runs after the change log's own hook
    yield inside
    event.remove(Session, "before_commit", pause)


@pg_only
def test_a_writer_that_commits_late_is_not_skipped(app, client, stint_team, pause_in_commit):
    t = stint_team
    engine = app.state.engine
    sid, author = uuid.UUID(t["stint"]["id"]), t["researcher"].user.id
    _, cursor = _follow(client, t["viewer"], None)
    release = threading.Event()
    ids: dict[str, uuid.UUID] = {}
    slow = threading.Thread(
        target=lambda: ids.update(a=_write(engine, sid, author, "慢的事务", slow=release))
    )
    slow.start()
    assert pause_in_commit.wait(10)  # A has its change row, not yet committed
    fast = threading.Thread(target=lambda: ids.update(b=_write(engine, sid, author, "快的事务")))
    fast.start()
    time.sleep(0.3)  # B would commit now if nothing held it back
    seen, cursor = _follow(client, t["viewer"], cursor)
    seen_during = list(seen)
    release.set()
    slow.join(10)
    fast.join(10)
    more, _ = _follow(client, t["viewer"], cursor)
    seen += more
    assert sorted(seen) == sorted(str(i) for i in ids.values())
    assert seen_during == []  # B's commit waited for A's: nothing was readable out of order
    with Session(engine) as session:
        seq = {
            k: session.exec(SyncChange.__table__.select().where(SyncChange.entity_id == str(v))).one().seq
            for k, v in ids.items()
        }  # type: ignore[attr-defined]
    assert seq["a"] < seq["b"]


def test_concurrent_writers_and_a_following_reader(app, client, stint_team):
    """Writers commit in a jumble while a device follows the feed page by page: once they are done
    and the device pulls from its last cursor, it has seen every record exactly once."""
    t = stint_team
    engine = app.state.engine
    sid = uuid.UUID(t["stint"]["id"])
    authors = [t["researcher"].user.id, t["manager"].user.id]
    _, cursor = _follow(client, t["viewer"], None)
    written: list[uuid.UUID] = []
    lock = threading.Lock()
    writers_done = threading.Event()
    errors: list[BaseException] = []
    per_writer = 15 if PG_URL else 8

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(per_writer):
                with Session(engine, expire_on_commit=False) as session:
                    stint = session.get(Stint, sid)
                    assert stint is not None
                    body = ObservationCreate(text=f"设备 {n} 的第 {i} 条记录 / device {n} note {i}")
                    new = new_observation(stint, authors[n % 2], body, uuid.uuid4(), utcnow())
                    insert_observations(session, [new])
                    time.sleep(rng.random() * 0.01)  # commit order differs from start order
                    session.commit()
                with lock:
                    written.append(new.id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    seen: list[str] = []
    while not writers_done.is_set():
        page, cursor = _follow(client, t["viewer"], cursor)
        seen += page
        if all(not th.is_alive() for th in threads):
            writers_done.set()
    page, cursor = _follow(client, t["viewer"], cursor)
    seen += page
    assert errors == []
    assert len(seen) == len(set(seen)) == len(written)
    assert set(seen) == {str(i) for i in written}


@pg_only
@pytest.mark.parametrize("own_transaction", [True, False], ids=["own transaction", "caller's transaction"])
def test_concurrent_pushes_of_the_same_record_make_one(
    app, client, stint_team, pause_in_commit, own_transaction
):
    """Two devices push the same capture at the same moment (PostgreSQL: the second insert waits for
    the first, then fails): the second batch is re-run op by op and answers duplicate; its other ops
    still apply. The batch runs in a transaction of its own (as the push route runs it: rolled back
    whole) or in one the caller began (rolled back to a savepoint)."""
    from api.models import Observation, User
    from api.sync import run_batch

    t = stint_team
    engine = app.state.engine
    sid = t["stint"]["id"]
    shared = str(uuid.uuid4())

    def op(op_id, obs_id, text):
        return {
            "op_id": op_id,
            "type": "observation",
            "id": obs_id,
            "op": "upsert",
            "base_version": None,
            "data": {"stint_id": sid, "text": text},
        }

    results: dict[str, list] = {}

    def device(name, ops, release=None):
        with Session(engine, expire_on_commit=False) as session:
            user = session.get(User, t["researcher"].user.id)
            if own_transaction:
                session.commit()
            assert session.in_transaction() is not own_transaction
            results[name] = run_batch(session, user, ops)
            if release is not None:
                session.info["test_pause"] = release
            session.commit()

    release = threading.Event()
    first = threading.Thread(target=device, args=("phone", [op("p1", shared, "仓库门口排队的司机")], release))
    first.start()
    assert pause_in_commit.wait(10)
    other = str(uuid.uuid4())
    second = threading.Thread(
        target=device,
        args=("tablet", [op("t1", shared, "仓库门口排队的司机"), op("t2", other, "平板上的另一条")]),
    )
    second.start()
    time.sleep(0.3)  # the tablet's insert now waits on the phone's uncommitted row
    release.set()
    first.join(10)
    second.join(10)
    assert [r["status"] for r in results["phone"]] == ["applied"]
    assert [r["status"] for r in results["tablet"]] == ["duplicate", "applied"]
    with Session(engine) as session:
        assert session.get(Observation, uuid.UUID(shared)) is not None
        assert session.get(Observation, uuid.UUID(other)) is not None
    seen, _ = _follow(client, t["viewer"], None)
    assert sorted(seen) == sorted([shared, other])


def test_concurrent_rest_creates_of_the_same_id_answer_as_a_retry(app, client, stint_team, pause_in_commit):
    """A phone's create and its retry arrive together: the retry waits for the first (PostgreSQL: on
    the row's unique key; SQLite: on the write lock) and answers 200 with the same observation."""
    t = stint_team
    sid, researcher = t["stint"]["id"], t["researcher"]
    obs_id = uuid.uuid4()
    body = {"id": str(obs_id), "text": "调度台的电话一上午响了四十多次"}
    release = threading.Event()

    def first():
        with Session(app.state.engine, expire_on_commit=False) as session:
            stint = session.get(Stint, uuid.UUID(sid))
            new = new_observation(stint, researcher.user.id, ObservationCreate(**body), obs_id, utcnow())
            insert_observations(session, [new])
            session.info["test_pause"] = release
            session.commit()

    writer = threading.Thread(target=first)
    writer.start()
    assert pause_in_commit.wait(10)
    answers = []
    retry = threading.Thread(
        target=lambda: answers.append(
            client.post(f"/api/stints/{sid}/observations", json=body, headers=researcher.headers)
        )
    )
    retry.start()
    time.sleep(0.3)  # the retry now waits on the first create's uncommitted row (or lock)
    release.set()
    writer.join(10)
    retry.join(30)
    assert answers and answers[0].status_code == 200, answers[0].text if answers else "no answer"
    assert answers[0].json()["id"] == str(obs_id)
