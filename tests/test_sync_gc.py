"""The push pauses the cyclic garbage collector from its body's arrival to its answer
(api/sync_request.py, PushRoute) and always resumes it, whatever the answer."""

import asyncio
import gc
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import api.sync
import api.sync_request
from tests.conftest import create_op


@pytest.fixture
def seen_paused(monkeypatch):
    """Whether the collector was paused while each push signed in (between reading the body and
    the route's work) and while the route ran."""
    seen: list[tuple[str, bool]] = []

    def watch(module: Any, name: str) -> None:
        original = getattr(module, name)

        def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((name, not gc.isenabled()))
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, watched)

    watch(api.sync_request, "signed_in_user")
    watch(api.sync, "run_batch")
    return seen


def test_the_collector_is_paused_for_a_push_and_resumed_after_any_answer(client, stint_team, seen_paused):
    assert gc.isenabled()
    headers = {**stint_team["researcher"].headers, "Idempotency-Key": uuid.uuid4().hex}
    op = create_op(stint_team["stint"]["id"], "老板只看周报 PDF")
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


def test_the_collector_runs_while_a_push_body_is_still_arriving(app, stint_team):
    """Paused only once the body is in: a client sending slowly must not hold the collector off for
    every other request of the worker."""
    op = create_op(stint_team["stint"]["id"], "司机在门卫处排队领单")
    body = json.dumps({"ops": [op]}).encode()
    enabled_meanwhile: list[bool] = []

    async def slowly() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(0.01)
        enabled_meanwhile.append(gc.isenabled())  # the app has the first part and waits for more
        yield body[10:]

    async def push() -> httpx.Response:
        headers = {
            **stint_team["researcher"].headers,
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/api/sync/push", content=slowly(), headers=headers)

    r = asyncio.run(push())
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied"
    assert enabled_meanwhile == [True]
    assert gc.isenabled()
