"""The push's sign-in on the event loop (api/sync_request.py's ``_pusher``, api/loop_sign_in.py's
``signed_in_user``): it answers only the everyday case, with the user as the usual sign-in loads it,
and everything else goes the usual way (api.auth)."""

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlmodel import Session

import api.auth
from api.auth import TOUCH_EVERY
from api.db import utcnow
from api.loop_sign_in import signed_in_user
from api.models import AuthSession, User
from api.sync_request import _pusher
from tests.conftest import create_op


@pytest.fixture
def sqlite_only(app):
    if app.state.engine.dialect.name != "sqlite":
        pytest.skip("the sign-in on the event loop is SQLite's")


@pytest.fixture
def usual_sign_ins(monkeypatch):
    """How many pushes signed in the usual way (api.auth's threadpool check)."""
    calls: list[str] = []
    check = api.auth._check

    def counted(request, session, token):  # type: ignore[no-untyped-def]
        calls.append(token)
        return check(request, session, token)

    monkeypatch.setattr(api.auth, "_check", counted)
    return calls


def push(client, headers, stint_id):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/sync/push",
        json={"ops": [create_op(stint_id, "司机在门卫处排队领单", tags=["等待"])]},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )


def changed(db: Session, table, who, **values) -> None:  # type: ignore[no-untyped-def]
    key = AuthSession.user_id if table is AuthSession else User.id
    db.execute(sa.update(table).where(key == who.user.id).values(**values))
    db.commit()


def test_the_loop_reads_the_user_as_the_usual_sign_in_loads_it(app, stint_team, db, sqlite_only):
    researcher = stint_team["researcher"]
    found = signed_in_user(app.state.engine, researcher.token)
    assert found is not None
    loaded = db.get(User, researcher.user.id)
    assert loaded is not None
    assert found == loaded.model_dump()
    assert {type(v) for v in found.values()} == {type(v) for v in loaded.model_dump().values()}


def test_everything_else_is_left_to_the_usual_sign_in(app, stint_team, db, sqlite_only):
    t = stint_team
    engine = app.state.engine
    researcher, manager, viewer = t["researcher"], t["manager"], t["viewer"]
    assert signed_in_user(engine, "not-a-token") is None
    changed(db, AuthSession, researcher, last_used_at=utcnow() - TOUCH_EVERY - timedelta(seconds=1))
    assert signed_in_user(engine, researcher.token) is None  # "last seen" is due: the usual way writes it
    changed(db, AuthSession, researcher, last_used_at=utcnow())
    assert signed_in_user(engine, researcher.token) is not None
    changed(db, AuthSession, researcher, revoked_at=utcnow())
    assert signed_in_user(engine, researcher.token) is None
    changed(db, AuthSession, manager, expires_at=utcnow() - timedelta(seconds=1))
    assert signed_in_user(engine, manager.token) is None
    changed(db, User, viewer, is_active=False)
    assert signed_in_user(engine, viewer.token) is None


def test_postgresql_always_signs_in_the_usual_way(app, stint_team):
    if app.state.engine.dialect.name == "sqlite":
        pytest.skip("PostgreSQL's behaviour")
    assert signed_in_user(app.state.engine, stint_team["researcher"].token) is None


def test_a_push_signs_in_on_the_loop_and_falls_back_to_note_the_device_seen(
    app, client, stint_team, db, usual_sign_ins, sqlite_only
):
    t = stint_team
    sid, researcher = t["stint"]["id"], t["researcher"]
    r = push(client, researcher.headers, sid)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied"
    assert usual_sign_ins == []
    long_ago = utcnow() - TOUCH_EVERY - timedelta(minutes=1)
    changed(db, AuthSession, researcher, last_used_at=long_ago)
    r = push(client, researcher.headers, sid)
    assert r.status_code == 200, r.text
    assert usual_sign_ins == [researcher.token]  # the usual way, which notes it
    db.expire_all()
    seen = db.exec(
        sa.select(AuthSession.last_used_at).where(AuthSession.user_id == researcher.user.id)
    ).one()[0]
    assert seen > long_ago + timedelta(minutes=1)
    assert push(client, researcher.headers, sid).status_code == 200
    assert usual_sign_ins == [researcher.token]


@pytest.mark.parametrize("case", ["unknown", "revoked", "expired", "inactive"])
def test_a_push_without_a_live_session_gets_the_usual_401(app, client, stint_team, db, case):
    t = stint_team
    sid, researcher = t["stint"]["id"], t["researcher"]
    headers = researcher.headers
    if case == "unknown":
        headers = {"Authorization": "Bearer not-a-token"}
    elif case == "revoked":
        changed(db, AuthSession, researcher, revoked_at=utcnow())
    elif case == "expired":
        changed(db, AuthSession, researcher, expires_at=utcnow() - timedelta(seconds=1))
    else:
        changed(db, User, researcher, is_active=False)
    r = push(client, headers, sid)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == ("invalid_token" if case == "unknown" else "session_ended")
    # Authentication comes before the body: a body that is no push gets the same 401.
    bad = client.post(
        "/api/sync/push", json={"nope": 1}, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (r.status_code, r.json()["error"]["code"])


def test_the_user_signed_in_on_the_loop_is_the_sessions_own(app, stint_team, sqlite_only):
    """As a loaded one: persistent in the request's session, nothing to write, read again after a
    rollback (a push whose first run the database refused rolls back and runs op by op)."""
    researcher = stint_team["researcher"]
    request = SimpleNamespace(app=app)
    with Session(app.state.engine, expire_on_commit=False) as session:
        user = asyncio.run(_pusher(request, session, researcher.token))  # type: ignore[arg-type]
        state = sa.inspect(user)
        assert state.persistent and user in session
        assert not session.dirty and not session.new
        assert session.get(User, researcher.user.id) is user  # no second copy
        assert user.model_dump() == researcher.user.model_dump()
        session.rollback()
        assert user.email == researcher.user.email
