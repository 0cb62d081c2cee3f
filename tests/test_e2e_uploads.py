"""Photo uploads in real headless Chromium against a real server, on a link that stalls rather than
drops (the Wi-Fi says "connected" but nothing moves): a tus request that never answers is given up
after its time limit, the rest of the sync run goes on, and the next run resumes the upload from the
server's offset with a smaller chunk."""

import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e_support import LiveServer, browser_scenarios, live_server

pytestmark = browser_scenarios()

from PIL import Image  # noqa: E402

from tests.test_e2e_pwa import (  # noqa: E402 - after the skips: importing it needs the browser too
    MANAGER,
    RESEARCHER,
    _capture_with_photo,
    _eventually,
    _open_stint,
    _server_materials,
    _sync_now,
    _wait_pending,
)
from tests.test_e2e_sync import _new_stint, _observe, _server_texts  # noqa: E402

CHUNK = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("e2e-uploads") / "data", [(RESEARCHER, "李伟"), (MANAGER, "张敏")]
    ) as srv:
        yield srv


def _idb_all(page: Any, store: str) -> list[Any]:
    return page.evaluate(
        """(store) => new Promise(done => { const q = indexedDB.open('fieldbook'); q.onsuccess = () => {
             const g = q.result.transaction(store).objectStore(store).getAll();
             g.onsuccess = () => done(g.result.map(r => ({ ...r, blob: r.blob ? r.blob.size : null }))); }; })""",
        store,
    )


def test_a_stalled_patch_is_given_up_and_resumed_next_sync(server: LiveServer, browser: Any) -> None:
    """Back online after capturing a note and a three-chunk photo, the first PATCH never answers: it
    is given up after its (test-sized) limit, the run still pulls the manager's new note, and the
    photo waits on the phone. Once the link works, the next sync asks the server's offset and sends
    the photo in a half-size chunk, then larger ones: one upload, one material, the same bytes."""
    stint = _new_stint(server, "华东冷链仓驻场")
    img = Image.frombytes("RGB", (1500, 1500), os.urandom(1500 * 1500 * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95)
    photo = out.getvalue()
    assert len(photo) > 2 * CHUNK  # three chunks or more

    ctx, page = _open_stint(server, browser, stint)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(f"{r.method} {r.url.split('/api/')[-1].split('/')[0]}"))
    offsets: list[int] = []  # the Upload-Offset of every PATCH that reached the server
    stalled: list[Any] = []
    stalled_now = {"on": True}

    def stall_patches(route: Any) -> None:
        if route.request.method == "PATCH":
            stalled.append(route)  # never answered: the link stalls
            return
        route.continue_()

    def on_request(request: Any) -> None:
        if request.method == "PATCH" and "/api/uploads/" in request.url and not stalled_now["on"]:
            offsets.append(int(request.headers["upload-offset"]))

    page.on("request", on_request)
    page.route("**/api/uploads/*", stall_patches)
    # Tiny limits for a PATCH (the override tus.js reads for tests); HEAD and POST keep theirs.
    page.evaluate("() => { globalThis.__fieldbookTusTimeouts = { patch: 1500, per8k: 0 }; }")

    ctx.set_offline(True)
    _capture_with_photo(page, "冷库门口的温度记录表每两小时手写一次", "温度记录表.jpg", photo)
    _wait_pending(page, 2)
    # Meanwhile the manager writes on the server: the pull after the stalled upload brings it.
    note = "经理补充：质检员下午三点换班"
    _observe(server, stint["id"], stint["manager"], note)
    synced_before = page.get_attribute("#sync-badge", "data-last-sync")
    ctx.set_offline(False)  # back online: a sync starts

    # The run finishes without the photo: the observation went, the pull came, the photo waits.
    _wait_pending(page, 1, timeout=30)
    assert _eventually(lambda: note in [(r["data"] or {}).get("text") for r in _idb_all(page, "records")])
    page.wait_for_function("() => !document.querySelector('#sync-badge').textContent.includes('同步中')")
    patched = seen.index("PATCH uploads")
    assert "GET sync" in seen[patched:], seen  # the pull ran after the upload was given up
    assert stalled, seen
    assert _server_texts(server, stint).count("冷库门口的温度记录表每两小时手写一次") == 1
    assert _server_materials(server, stint) == []
    waiting = _idb_all(page, "uploads")
    assert len(waiting) == 1 and waiting[0]["blob"] == len(photo) and waiting[0]["upload_url"], waiting
    assert seen.count("POST uploads") == 1, seen
    # That run did not send everything: it is not the "last sync", and the phone says a photo waits.
    badge = page.locator("#sync-badge")
    assert badge.get_attribute("data-last-sync") == synced_before
    assert badge.get_attribute("data-photos-waiting") == "1"
    assert "1 张照片未上传" in (badge.text_content() or "")
    page.goto(page.url.split("#")[0] + "#/me")
    assert "上传超时" in page.locator(".sync-panel .photos-waiting").text_content()

    # The link recovers: the next sync resumes the same upload (HEAD), in smaller chunks at first.
    tries = len(stalled)  # each timed-out PATCH halved this upload's chunk
    stalled_now["on"] = False
    page.unroute("**/api/uploads/*")
    page.evaluate("() => { delete globalThis.__fieldbookTusTimeouts; }")
    _sync_now(page)  # waits for "last sync" to move: this run sent everything
    _wait_pending(page, 0)
    assert badge.get_attribute("data-photos-waiting") == "0"
    assert "未上传" not in (badge.text_content() or "")
    assert seen.count("POST uploads") == 1, seen  # no second upload was started
    assert seen.count("HEAD uploads") >= 1, seen  # it asked the server how much it holds
    patches = [b - a for a, b in zip(offsets, [*offsets[1:], len(photo)], strict=True)]  # chunk sizes
    assert offsets[0] == 0, offsets  # nothing of the stalled chunk had arrived
    first = max(64 * 1024, CHUNK >> tries)
    assert patches[0] == first, patches
    assert patches[1] == min(CHUNK, 2 * first), patches  # a quick chunk: the next one is larger
    materials = _eventually(lambda: _server_materials(server, stint))
    assert len(materials) == 1
    assert materials[0]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert materials[0]["size"] == len(photo)
    ctx.close()
