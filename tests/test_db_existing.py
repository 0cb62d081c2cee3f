"""``api.db.existing``: which of many keys a table holds, through the driver on SQLite, through
SQLAlchemy on PostgreSQL; the same answers on both."""

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

import api.db
from api.db import existing, utcnow
from api.models import Observation
from api.sync import SyncOp
from tests.conftest import STINT

_OBSERVATION: sa.Table = Observation.__table__  # type: ignore[attr-defined]
_SYNC_OP: sa.Table = SyncOp.__table__  # type: ignore[attr-defined]


@pytest.fixture
def pushed(client, person) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two researchers, each with ops recorded; one of them with three observations."""
    author, other = person("李研究员"), person("王研究员")
    stint = client.post("/api/stints", json=STINT, headers=author.headers).json()
    ids = []
    for n in range(3):
        r = client.post(
            f"/api/stints/{stint['id']}/observations",
            json={"text": f"司机排队 ({n})"},
            headers=author.headers,
        )
        assert r.status_code == 201, r.text
        ids.append(uuid.UUID(r.json()["id"]))
    return {"author": author.user.id, "other": other.user.id, "observations": ids}


def _record_ops(session: Session, user_id: uuid.UUID, op_ids: list[str]) -> None:
    for op_id in op_ids:
        session.add(
            SyncOp(user_id=user_id, op_id=op_id, op_hash="0" * 64, status="applied", created_at=utcnow())
        )


def test_existing_answers_the_keys_held(app, pushed) -> None:  # type: ignore[no-untyped-def]
    held = pushed["observations"]
    unknown = [uuid.uuid4() for _ in range(5)]
    with Session(app.state.engine) as session:
        assert existing(session, _OBSERVATION.c.id, [*held[:2], *unknown]) == set(held[:2])
        assert existing(session, _OBSERVATION.c.id, unknown) == set()
        assert existing(session, _OBSERVATION.c.id, []) == set()
        # UUIDs come back as UUIDs, equal to those asked for.
        assert all(isinstance(i, uuid.UUID) for i in existing(session, _OBSERVATION.c.id, held))


def test_existing_keeps_to_the_rows_where_asks_for(app, pushed) -> None:  # type: ignore[no-untyped-def]
    with Session(app.state.engine) as session:
        _record_ops(session, pushed["author"], ["a1", "a2", "shared"])
        _record_ops(session, pushed["other"], ["o1", "shared"])
        session.commit()
        asked = {"a1", "a2", "o1", "shared", "never"}
        assert existing(session, _SYNC_OP.c.op_id, asked, {"user_id": pushed["author"]}) == {
            "a1",
            "a2",
            "shared",
        }
        assert existing(session, _SYNC_OP.c.op_id, asked, {"user_id": pushed["other"]}) == {"o1", "shared"}
        assert existing(session, _SYNC_OP.c.op_id, asked, {"user_id": uuid.uuid4()}) == set()


def test_existing_sees_what_the_session_has_not_written_yet(app, pushed) -> None:  # type: ignore[no-untyped-def]
    """As a query through the session would: pending objects are flushed first."""
    with Session(app.state.engine) as session:
        _record_ops(session, pushed["author"], ["pending"])
        assert existing(session, _SYNC_OP.c.op_id, ["pending"], {"user_id": pushed["author"]}) == {"pending"}
        session.rollback()
        assert existing(session, _SYNC_OP.c.op_id, ["pending"], {"user_id": pushed["author"]}) == set()


def test_existing_asks_in_chunks(app, pushed, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """More keys than one statement takes (SQLite's limit on parameters), in several statements."""
    monkeypatch.setattr(api.db, "_IN_CHUNK", 2)
    held = pushed["observations"]
    asked = [uuid.uuid4(), held[0], uuid.uuid4(), held[1], uuid.uuid4(), held[2], uuid.uuid4()]
    with Session(app.state.engine) as session:
        assert existing(session, _OBSERVATION.c.id, asked) == set(held)
