"""Group commit of observation creates on SQLite (api/create_group.py): the creates that wait while
another is written share one transaction, and each still gets its own answer."""

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from api import create_group as create_group_module
from api.create_group import CreateGroup, create_group
from api.db import make_engine, utcnow
from api.models import Observation, ObservationTag, Stint
from api.observation_schemas import ObservationCreate
from api.observation_writes import NewObservation, insert_observations, new_observation
from tests.conftest import STINT


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    if not database_url.startswith("sqlite"):
        pytest.skip("group commit is SQLite's: PostgreSQL commits concurrent transactions side by side")
    engine = make_engine(database_url)  # not the app's: its indexer thread commits on that one
    yield engine
    engine.dispose()


@pytest.fixture
def make(client, person, engine) -> Callable[..., NewObservation]:  # type: ignore[no-untyped-def]
    author = person("李研究员")
    stint_id = client.post("/api/stints", json=STINT, headers=author.headers).json()["id"]
    with Session(engine, expire_on_commit=False) as session:
        stint = session.get(Stint, uuid.UUID(stint_id))
        session.commit()
    assert stint is not None

    def new(text: str, obs_id: uuid.UUID | None = None) -> NewObservation:
        body = ObservationCreate(text=text, tags=["排队"])
        return new_observation(stint, author.user.id, body, obs_id or uuid.uuid4(), utcnow())

    return new


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _batched(
    engine: sa.Engine, group: CreateGroup, items: list[NewObservation]
) -> tuple[dict[int, Any], int]:
    """``items`` written while another connection holds the write lock (so the first to arrive
    waits for the lock, and the rest queue behind it); each one's answer or exception, and the
    COMMITs."""
    commits = []
    sa.event.listen(engine, "commit", lambda _conn: commits.append(1))
    answers: dict[int, Any] = {}

    def write(key: int, item: NewObservation) -> None:
        try:
            answers[key] = group.write(item)
        except Exception as exc:  # the answer under test
            answers[key] = exc

    blocker = sqlite3.connect(engine.url.database or "", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    threads = [threading.Thread(target=write, args=(n, item)) for n, item in enumerate(items)]
    for thread in threads:
        thread.start()
    # The group's writer waits for the lock; every create is still queued.
    _wait_for(lambda: len(group._waiting) == len(items))
    blocker.execute("COMMIT")
    blocker.close()
    for thread in threads:
        thread.join(30)
    return answers, len(commits)


def test_the_creates_that_wait_share_one_commit(engine, make, db):
    group = CreateGroup(engine)
    items = [make(f"司机排队 {n}") for n in range(8)]
    answers, commits = _batched(engine, group, items)
    assert answers == dict.fromkeys(range(8), True)
    # One: the batch is taken once the lock is held, so the writer's own create and those that
    # arrived while it waited for the lock (another process's COMMIT) go together.
    assert commits == 1
    ids = {item.id for item in items}
    assert set(db.exec(select(Observation.id).where(Observation.id.in_(ids))).all()) == ids  # type: ignore[attr-defined]
    tags = db.exec(select(ObservationTag.observation_id).where(ObservationTag.observation_id.in_(ids))).all()  # type: ignore[attr-defined]
    assert sorted(tags) == sorted(ids)


def test_each_create_in_a_batch_gets_its_own_answer(engine, make, db):
    group = CreateGroup(engine)
    taken = make("已经保存过的")
    assert group.write(taken) is True
    twice = uuid.uuid4()
    stray = make("不存在的驻场")
    stray.values["stint_id"] = uuid.uuid4()  # fails its foreign key: that create's failure only
    items = [
        make("第一条"),
        make("一样的", twice),
        make("一样的", twice),
        make("已经保存过的", taken.id),
        stray,
    ]
    answers, commits = _batched(engine, group, [*items, make("新的")])
    assert answers[0] is True
    assert sorted([answers[1], answers[2]]) == [False, True]  # the same id twice: written once
    assert answers[3] is False  # taken: nothing written
    assert isinstance(answers[4], sa.exc.IntegrityError)
    assert answers[5] is True
    # The batch of six failed as a whole, then each went alone (six transactions: one refused).
    assert commits == 5
    saved = db.exec(select(Observation.text).where(Observation.stint_id == taken.values["stint_id"])).all()
    assert sorted(saved) == sorted(["已经保存过的", "一样的", "第一条", "新的"])


def test_a_database_error_is_every_waiting_creates_answer(engine, make):
    group = CreateGroup(engine)
    sa.event.listen(engine, "begin", _fail_begin)
    try:
        with pytest.raises(sa.exc.OperationalError):
            group.write(make("写不进去"))
    finally:
        sa.event.remove(engine, "begin", _fail_begin)
    assert group.write(make("又能写了")) is True  # the group is not left stuck


def _fail_begin(_conn: sa.Connection) -> None:
    raise sa.exc.OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_an_idle_writer_ends_and_the_next_create_starts_one(engine, make, monkeypatch):
    monkeypatch.setattr(create_group_module, "WRITER_IDLE_SECONDS", 0.05)
    group = CreateGroup(engine)
    assert group.write(make("第一条")) is True
    first = group._writer
    _wait_for(lambda: group._writer is None)
    assert first is not None and not first.is_alive()
    assert group.write(make("第二条")) is True
    assert group._writer is not None and group._writer is not first


def test_a_create_from_the_event_loop_is_answered_there(engine, make, db):
    group = CreateGroup(engine)
    item = make("从事件循环来的")

    async def both() -> list[bool]:
        return list(await asyncio.gather(group.submit(item), group.submit(make("另一条"))))

    assert asyncio.run(both()) == [True, True]
    assert db.get(Observation, item.id) is not None
    assert asyncio.run(group.submit(item)) is False  # taken


def test_only_sqlite_engines_have_a_group(engine):
    assert create_group(engine) is create_group(engine)
    assert create_group(sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")) is None


def test_a_grouped_create_writes_the_rows_the_session_path_writes(engine, make):
    """The group's writer builds its rows without an ORM session (new_observation_rows): the same
    rows, table by table, as insert_observations through a session (the sync push's path)."""
    tasks: list[Any] = []

    def seen(conn, cursor, sql, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT INTO search_task"):
            tasks.extend(params if executemany else [params])

    grouped, alone = make("一组写的", None), make("会话写的", None)
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        assert CreateGroup(engine).write(grouped) is True
        with Session(engine) as session:
            insert_observations(session, [alone])
            session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)

    def rows(table: str, key: str, value: str) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT * FROM {table} WHERE {key} = :v"), {"v": value})
            return [dict(row._mapping) for row in found]

    differ = {"id", "observation_id", "entity_id", "seq", "text", "create_hash", "changed_at", "received_at"}
    differ |= {"updated_at", "observed_at", "day"}
    for table, key, fmt in (
        ("observation", "id", lambda o: o.id.hex),
        ("observation_tag", "observation_id", lambda o: o.id.hex),
        ("sync_change", "entity_id", lambda o: str(o.id)),
    ):
        mine, theirs = rows(table, key, fmt(grouped)), rows(table, key, fmt(alone))
        assert len(mine) == len(theirs) > 0, table
        assert [{k: v for k, v in r.items() if k not in differ} for r in mine] == [
            {k: v for k, v in r.items() if k not in differ} for r in theirs
        ], table
    assert [(t[0], len(t)) for t in tasks] == [("observation", 3), ("observation", 3)]
    assert {t[1] for t in tasks} == {str(grouped.id), str(alone.id)}
