"""The capture route's sign-in on the event loop (api/loop_sign_in.py): it answers only the everyday
case, and everything else goes the usual way, whose answers tests/test_capture_create.py checks."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.auth import TOUCH_EVERY
from api.db import utcnow
from api.loop_sign_in import capturer
from api.models import AuthSession, Role, Stint, User

OBS = {"text": "仓库主管说：系统慢的时候我们就先手写，晚上再补录", "tags": ["手写"]}


@pytest.fixture
def sqlite_only(app):
    if app.state.engine.dialect.name != "sqlite":
        pytest.skip("the sign-in on the event loop is SQLite's")


def ask(app, who, stint_id, role=Role.researcher):
    return capturer(app.state.engine, who.token, uuid.UUID(stint_id), role)


def test_members_with_the_role_are_answered_from_one_read(app, stint_team, sqlite_only):
    t = stint_team
    sid = t["stint"]["id"]
    found = ask(app, t["researcher"], sid)
    assert found is not None
    assert (found.user_id, found.user_name, str(found.stint.id)) == (t["researcher"].user.id, "李研究员", sid)
    assert (found.stint.timezone, found.role) == ("Asia/Shanghai", Role.researcher)
    assert ask(app, t["manager"], sid).role is Role.manager
    assert ask(app, t["viewer"], sid, Role.viewer).role is Role.viewer


def test_everything_else_is_left_to_the_usual_sign_in(app, stint_team, db, sqlite_only):
    t = stint_team
    sid = t["stint"]["id"]
    assert ask(app, t["viewer"], sid) is None  # a role too low: the usual way answers 403
    assert ask(app, t["outsider"], sid) is None
    assert ask(app, t["researcher"], str(uuid.uuid4())) is None
    nobody = type(t["researcher"])(user=t["researcher"].user, token="not-a-token")
    assert ask(app, nobody, sid) is None

    def changed(table, who, **values):
        key = AuthSession.user_id if table is AuthSession else User.id
        db.execute(sa.update(table).where(key == who.user.id).values(**values))
        db.commit()

    researcher, manager, viewer = t["researcher"], t["manager"], t["viewer"]
    changed(AuthSession, researcher, last_used_at=utcnow() - TOUCH_EVERY - timedelta(seconds=1))
    assert ask(app, researcher, sid) is None  # "last seen" is due: the usual way writes it
    changed(AuthSession, researcher, last_used_at=utcnow())
    assert ask(app, researcher, sid) is not None
    changed(AuthSession, researcher, revoked_at=utcnow())
    assert ask(app, researcher, sid) is None
    changed(AuthSession, manager, expires_at=utcnow() - timedelta(seconds=1))
    assert ask(app, manager, sid) is None
    changed(User, viewer, is_active=False)
    assert ask(app, viewer, sid, Role.viewer) is None


def test_a_deleted_stint_is_left_to_the_usual_sign_in(app, client, stint_team, db, sqlite_only):
    t = stint_team
    sid = t["stint"]["id"]
    db.execute(sa.update(Stint).where(Stint.id == uuid.UUID(sid)).values(deleted_at=utcnow()))
    db.commit()
    assert ask(app, t["researcher"], sid) is None


def test_postgresql_always_signs_in_the_usual_way(app, stint_team):
    if app.state.engine.dialect.name == "sqlite":
        pytest.skip("PostgreSQL's behaviour")
    assert ask(app, stint_team["researcher"], stint_team["stint"]["id"]) is None


def sign_in_queries(app, client, sid, headers) -> list[str]:
    """The statements about sessions a create sends through the app's engine."""
    seen: list[str] = []

    def statement(conn, cursor, sql, *args) -> None:  # type: ignore[no-untyped-def]
        if "auth_session" in sql:
            seen.append(sql)

    sa.event.listen(app.state.engine, "before_cursor_execute", statement)
    try:
        r = client.post(f"/api/stints/{sid}/observations", json=OBS, headers=headers)
        assert r.status_code == 201, r.text
    finally:
        sa.event.remove(app.state.engine, "before_cursor_execute", statement)
    return seen


def test_a_capture_signs_in_on_the_loop_and_falls_back_to_note_the_device_seen(
    app, client, stint_team, db, sqlite_only
):
    t = stint_team
    sid, researcher = t["stint"]["id"], t["researcher"]
    assert sign_in_queries(app, client, sid, researcher.headers) == []
    long_ago = utcnow() - TOUCH_EVERY - timedelta(minutes=1)
    db.execute(
        sa.update(AuthSession).where(AuthSession.user_id == researcher.user.id).values(last_used_at=long_ago)
    )
    db.commit()
    assert sign_in_queries(app, client, sid, researcher.headers) != []  # the usual way, which notes it
    db.expire_all()
    seen = db.exec(
        sa.select(AuthSession.last_used_at).where(AuthSession.user_id == researcher.user.id)
    ).one()[0]
    assert seen > long_ago + timedelta(minutes=1)
    assert sign_in_queries(app, client, sid, researcher.headers) == []
