"""The push pauses the cyclic garbage collector for the whole request (api/sync.py, _PushRoute) and
always resumes it, whatever the answer."""

import gc
import uuid

import pytest

import api.sync


@pytest.fixture
def seen_paused(monkeypatch):
    """Whether the collector was paused while each push signed in (between reading the body and
    the route's work) and while the route ran."""
    seen: list[tuple[str, bool]] = []

    def watch(name: str) -> None:
        original = getattr(api.sync, name)

        def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((name, not gc.isenabled()))
            return original(*args, **kwargs)

        monkeypatch.setattr(api.sync, name, watched)

    watch("signed_in_user")
    watch("run_batch")
    return seen


def test_the_collector_is_paused_for_a_push_and_resumed_after_any_answer(client, stint_team, seen_paused):
    assert gc.isenabled()
    headers = {**stint_team["researcher"].headers, "Idempotency-Key": uuid.uuid4().hex}
    op = {
        "op_id": uuid.uuid4().hex,
        "type": "observation",
        "id": str(uuid.uuid4()),
        "op": "upsert",
        "base_version": None,
        "data": {"stint_id": stint_team["stint"]["id"], "text": "老板只看周报 PDF"},
    }
    r = client.post("/api/sync/push", json={"ops": [op]}, headers=headers)
    assert r.status_code == 200, r.text
    assert seen_paused == [("signed_in_user", True), ("run_batch", True)]
    assert gc.isenabled()
    replay = client.post("/api/sync/push", json={"ops": [op]}, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert gc.isenabled()
    for status, kwargs in [
        (401, {"json": {"ops": [op]}, "headers": {"Authorization": "Bearer nope", "Idempotency-Key": "k"}}),
        (400, {"json": {"ops": [op]}, "headers": stint_team["researcher"].headers}),
        (422, {"json": {"ops": "none"}, "headers": headers}),
        (422, {"content": b"{not json", "headers": {**headers, "Content-Type": "application/json"}}),
    ]:
        r = client.post("/api/sync/push", **kwargs)
        assert r.status_code == status, r.text
        assert gc.isenabled()
    assert all(paused for _name, paused in seen_paused)
