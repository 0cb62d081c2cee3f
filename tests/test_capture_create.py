"""A capture request's answers where the one-query sign-in and the create without an existence check
first could differ from the checks they replaced (api/access.py, api/observations.py)."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa

from api.changelog import SyncChange
from api.db import utcnow
from api.models import AuthSession
from tests.conftest import STINT

OBS = {"text": "司机在门卫处排队领单，平均 20 分钟", "tags": ["排队", "现场"]}


def post(client, sid, headers, **body):
    return client.post(f"/api/stints/{sid}/observations", json=body, headers=headers)


def changes(db):
    # Not the index tasks: the app's indexer thread takes those away as it goes.
    return db.exec(sa.select(sa.func.count()).select_from(SyncChange)).one()[0]


def test_a_taken_id_is_200_or_409_before_its_links_are_checked(client, stint_team, db):
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    oid = str(uuid.uuid4())
    assert post(client, sid, h, id=oid, **OBS).status_code == 201
    before = changes(db)
    assert post(client, sid, h, id=oid, **OBS).status_code == 200
    unknown = {"hypothesis_ids": [str(uuid.uuid4())]}
    r = post(client, sid, h, id=oid, **OBS, **unknown)
    assert r.status_code == 409 and r.json()["error"]["code"] == "id_conflict"
    assert changes(db) == before  # a retry writes nothing
    r = post(client, sid, h, id=str(uuid.uuid4()), **OBS, **unknown)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_hypothesis"


def test_an_id_taken_in_another_stint_is_409(client, stint_team):
    t = stint_team
    sid, h = t["stint"]["id"], t["manager"].headers
    other = client.post("/api/stints", json={**STINT, "title": "另一个驻场"}, headers=h)
    oid = str(uuid.uuid4())
    assert post(client, sid, h, id=oid, **OBS).status_code == 201
    assert post(client, other.json()["id"], h, id=oid, **OBS).status_code == 409


def test_sign_in_is_refused_before_the_stint_is_looked_at(client, stint_team, db):
    t = stint_team
    sid, researcher = t["stint"]["id"], t["researcher"]
    nowhere = str(uuid.uuid4())
    assert post(client, nowhere, researcher.headers, **OBS).status_code == 404
    assert post(client, sid, t["outsider"].headers, **OBS).status_code == 404
    assert post(client, sid, t["viewer"].headers, **OBS).status_code == 403
    assert (
        post(client, sid, {"Authorization": "Bearer nope"}, **OBS).json()["error"]["code"] == "invalid_token"
    )
    db.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == researcher.user.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.commit()
    for stint_id in (sid, nowhere):
        r = post(client, stint_id, researcher.headers, **OBS)
        assert r.status_code == 401 and r.json()["error"]["code"] == "session_ended"


def test_a_deleted_stint_is_404_to_its_members(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    assert client.delete(f"/api/stints/{sid}", headers=t["manager"].headers).status_code == 204
    r = post(client, sid, t["researcher"].headers, **OBS)
    assert r.status_code == 404 and r.json()["error"]["code"] == "stint_not_found"


def test_a_retry_meets_its_taken_id_without_a_database_error(client, stint_team, app):
    # PostgreSQL logs every unique violation: a retry (the phone's usual case) must not cause one.
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    oid = str(uuid.uuid4())
    assert post(client, sid, h, id=oid, **OBS).status_code == 201
    errors: list[BaseException] = []

    def failed(context: sa.engine.ExceptionContext) -> None:
        errors.append(context.original_exception)

    sa.event.listen(app.state.engine, "handle_error", failed)
    try:
        assert post(client, sid, h, id=oid, **OBS).status_code == 200
        assert post(client, sid, h, id=oid, **{**OBS, "text": "另一段话"}).status_code == 409
    finally:
        sa.event.remove(app.state.engine, "handle_error", failed)
    assert errors == []


def test_the_same_create_sent_at_once_from_many_threads_saves_one_observation(client, stint_team, db):
    # On PostgreSQL the INSERTs run side by side: ON CONFLICT waits for the first and skips.
    t = stint_team
    sid, h = t["stint"]["id"], t["researcher"].headers
    oid = str(uuid.uuid4())
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(client, sid, h, id=oid, **OBS), range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["received_at"] for r in answers}) == 1
    listed = client.get(f"/api/stints/{sid}/observations", headers=h).json()["items"]
    assert [o["id"] for o in listed] == [oid]
