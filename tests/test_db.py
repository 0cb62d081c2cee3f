"""The database layer's shortcuts store exactly what SQLAlchemy's own paths store."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from api.db import UTCDateTime, insert_many
from api.models import Observation, ObservationTag
from tests.conftest import STINT
from tests.test_search import wait_for

SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 2, 23, 50, 7, 123456, tzinfo=SHANGHAI),
        datetime(2026, 3, 2, 1, 0, tzinfo=UTC),  # no microseconds: still written with ".000000"
        datetime(999, 1, 1, 0, 0, 1, 5, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_utc_datetime_on_sqlite_is_sqlalchemys_text(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(value) == theirs(value.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(value.replace(tzinfo=None))


RECEIVED = datetime(2026, 3, 2, 9, 0, 0, 250, tzinfo=UTC)


def _observation(stint_id: uuid.UUID, author_id: uuid.UUID, n: int) -> dict[str, object]:
    at = datetime(2026, 3, 2, 15, 50, n, 1000 * n if n % 2 else 0, tzinfo=SHANGHAI)
    return {
        "id": uuid.uuid4(),
        "stint_id": stint_id,
        "author_id": author_id,
        "text": f"调度员每天早上 7 点手工排班 ({n})",
        "kind": "quote" if n % 2 else "note",
        "quote": "我们就先手写" if n % 2 else None,
        "speaker_role": "调度员",
        "speaker_name": None,
        "dimension": None,
        "observed_at": at,
        # One moment for every row, as a push stamps them, given in two time zones: converted once.
        "received_at": RECEIVED if n % 2 else RECEIVED.astimezone(SHANGHAI),
        "updated_at": at + timedelta(hours=1),
        "day": date(2026, 3, 2),
        "version": 1,
        "create_hash": f"{n:064x}",
        "deleted_at": None if n % 3 else at + timedelta(days=1),
    }


def test_insert_many_stores_what_sqlalchemy_stores(client, person, app) -> None:  # type: ignore[no-untyped-def]
    author = person("李研究员")
    stint = client.post("/api/stints", json=STINT, headers=author.headers).json()
    stint_id, author_id = uuid.UUID(stint["id"]), author.user.id
    theirs = [_observation(stint_id, author_id, n) for n in range(6)]
    ours = [{**row, "id": uuid.uuid4()} for row in theirs]
    table = Observation.__table__  # type: ignore[attr-defined]
    tags = ObservationTag.__table__  # type: ignore[attr-defined]
    with Session(app.state.engine) as session:
        session.execute(sa.insert(table), theirs)
        session.execute(sa.insert(tags), [{"observation_id": r["id"], "tag": "排班"} for r in theirs])
        insert_many(session, table, ours)
        insert_many(session, tags, [{"observation_id": r["id"], "tag": "排班"} for r in ours])
        insert_many(session, tags, [])  # nothing to insert: no statement
        session.commit()
    columns = [c.name for c in table.columns if c.name != "id"]
    select = f"SELECT {', '.join(columns)} FROM observation WHERE id = {{}}"
    with app.state.engine.connect() as conn:
        id_text = conn.dialect.name == "sqlite"  # stored as 32 hex digits there, as uuid on PostgreSQL
        for mine, reference in zip(ours, theirs, strict=True):
            stored = [
                conn.exec_driver_sql(
                    select.format("?" if id_text else "%s"), (row["id"].hex if id_text else row["id"],)
                ).one()  # type: ignore[union-attr]
                for row in (mine, reference)
            ]
            assert stored[0] == stored[1]
        assert conn.exec_driver_sql("SELECT count(*) FROM observation_tag").scalar() == 12
    # Read back through the ORM: the same values as were given.
    with Session(app.state.engine) as session:
        for row in ours:
            obs = session.get(Observation, row["id"])
            assert obs is not None
            assert obs.observed_at == row["observed_at"]
            assert obs.deleted_at == row["deleted_at"]
            assert obs.day == row["day"]


def _scratch_table(tmp_path: Path, *columns: sa.Column[Any]) -> tuple[sa.Engine, sa.Table]:
    """A table of its own in a SQLite file of its own."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    metadata = sa.MetaData()
    table = sa.Table("scratch", metadata, sa.Column("id", sa.Integer, primary_key=True), *columns)
    metadata.create_all(engine)
    return engine, table


def test_insert_many_needs_every_defaulted_column(tmp_path: Path) -> None:
    engine, table = _scratch_table(tmp_path, sa.Column("n", sa.Integer, default=5))
    with Session(engine) as session:
        with pytest.raises(ValueError, match="no value for"):
            insert_many(session, table, [{"id": 1}])
        insert_many(session, table, [{"id": 1, "n": 7}, {"id": 2, "n": 8}])
        session.commit()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id, n FROM scratch ORDER BY id").all() == [(1, 7), (2, 8)]
    engine.dispose()


def test_insert_many_statements_follow_the_rows_keys(tmp_path: Path) -> None:
    """Statements are kept per table and set of keys: rows with a column more, or in another order,
    get their own."""
    engine, table = _scratch_table(
        tmp_path, sa.Column("note", sa.String, nullable=True), sa.Column("at", UTCDateTime, nullable=True)
    )
    at = datetime(2026, 3, 2, 23, 50, tzinfo=SHANGHAI)
    with Session(engine) as session:
        insert_many(session, table, [{"id": 1}])
        insert_many(session, table, [{"id": 2, "note": "白板照片"}])
        insert_many(
            session, table, [{"note": "手写单据", "id": 3, "at": at}, {"note": None, "id": 4, "at": None}]
        )
        insert_many(session, table, [{"at": at, "id": 5}])
        session.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.select(table).order_by(table.c.id)).all() == [
            (1, None, None),
            (2, "白板照片", None),
            (3, "手写单据", at.astimezone(UTC)),
            (4, None, None),
            (5, None, at.astimezone(UTC)),
        ]
    engine.dispose()


def test_request_sessions_give_their_connections_back(client, person, app) -> None:  # type: ignore[no-untyped-def]
    """The request's session closes on the event loop when it holds no connection, else in the
    threadpool (a read left open, a write that failed mid-transaction): either way every connection
    is back in the pool once answered, and a failed write leaves no lock behind."""
    me = person("李研究员")
    stint = client.post("/api/stints", json=STINT, headers=me.headers).json()
    path = f"/api/stints/{stint['id']}/observations"
    unknown = {"text": "扫码枪没电", "hypothesis_ids": [str(uuid.uuid4())]}
    for method, body, status in [
        ("GET", None, 200),  # reads: its transaction is still open when the route returns
        ("POST", {"text": "门卫处排队"}, 201),
        ("POST", unknown, 422),  # refused inside the route's write transaction
        ("POST", {"text": "之后的写入不等锁"}, 201),
    ]:
        r = client.request(method, path, json=body, headers=me.headers)
        assert r.status_code == status, r.text
        # The app's search indexer thread shares the pool and may hold a connection for a moment
        # (a write queues it a task): a leaked one never comes back.
        wait_for(lambda: app.state.engine.pool.checkedout() == 0)
