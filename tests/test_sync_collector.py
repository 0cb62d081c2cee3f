"""A push runs with the cyclic garbage collector paused (see ``api.sync_request.PushRoute``),
and leaves it as it found it, also when the push fails."""

import gc
import uuid

from api import sync
from tests.test_sync import create_op, push


def test_a_push_pauses_the_collector_and_resumes_it(client, stint_team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    seen: list[bool] = []
    run_batch = sync.run_batch

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return run_batch(*args, **kwargs)

    monkeypatch.setattr(sync, "run_batch", watched)
    assert gc.isenabled()
    r = push(client, who, [create_op(sid, "一条")], uuid.uuid4().hex)
    assert r.status_code == 200, r.text
    assert seen == [False]
    assert gc.isenabled()


def test_a_failed_push_resumes_the_collector(client, stint_team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the batch broke")

    monkeypatch.setattr(sync, "run_batch", broken)
    r = push(client, who, [create_op(sid, "一条")], uuid.uuid4().hex)
    assert r.status_code == 500
    assert gc.isenabled()


def test_a_paused_collector_stays_paused(client, stint_team) -> None:  # type: ignore[no-untyped-def]
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    gc.disable()
    try:
        r = push(client, who, [create_op(sid, "一条")], uuid.uuid4().hex)
        assert r.status_code == 200, r.text
        assert not gc.isenabled()
    finally:
        gc.enable()
