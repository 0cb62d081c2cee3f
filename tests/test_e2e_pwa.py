"""The PWA in real headless Chromium against a real server: a researcher on a 360×640 phone goes
offline, captures five Chinese observations and a photo, reloads with no network, comes back online,
and everything arrives exactly once; the team searches it; a manager approves an action.

Screenshots of the main screens go to tests/e2e_screenshots/ (git-ignored)."""

import hashlib
import io
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from tests.e2e_support import PASSWORD, LiveServer, browser_scenarios, live_server, new_stint

pytestmark = browser_scenarios()

SHOTS = Path(__file__).resolve().parent / "e2e_screenshots"
SHOTS.mkdir(exist_ok=True)
RESEARCHER = "li.wei@example.com"
MANAGER = "zhang.min@example.com"
PHONE = {"width": 360, "height": 640}

NOTES = [
    "调度员每天早上七点手工排班，用Excel表格核对司机名单",
    "仓库主管说旺季时临时工的排班最让人头疼",
    "财务每月底要把运费对账单打印出来签字，再扫描上传",
    "司机在微信群里报到，调度员一条一条复制到系统里",
    "白板上贴着本周异常件清单，按客户分颜色标记",
]


def _photo() -> bytes:
    img = Image.new("RGB", (320, 240), (30, 120, 90))
    for x in range(0, 320, 20):
        for y in range(0, 240, 20):
            img.putpixel((x, y), (250, 250, 250))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("e2e") / "data", [(RESEARCHER, "李伟"), (MANAGER, "张敏")]
    ) as srv:
        yield srv


@pytest.fixture
def stint(server: LiveServer) -> dict[str, Any]:
    """A stint run by the manager, with the researcher on it and one hypothesis."""
    mgr = server.token(MANAGER)
    stint = new_stint(server, mgr, "华东物流调度驻场", researchers=(RESEARCHER,), site="上海嘉定仓")
    r = server.api(
        "POST",
        f"/api/stints/{stint['id']}/hypotheses",
        mgr,
        json={"statement": "调度员愿意放弃Excel排班", "dimension": "usage"},
    )
    assert r.status_code == 201, r.text
    return {**stint, "manager": mgr, "researcher": server.token(RESEARCHER)}


def _sign_in(page: Any, email: str) -> None:
    form = page.locator("form.signin")
    form.get_by_label(re.compile("邮箱|E-mail")).fill(email)
    form.get_by_label(re.compile("密码|Password")).fill(PASSWORD)
    form.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()
    page.wait_for_selector("main[data-route]:not([data-route=signin])")


def _open_stint(
    server: LiveServer, browser: Any, stint: dict[str, Any], email: str = RESEARCHER, **context: Any
) -> tuple[Any, Any]:
    """A phone-sized Chinese browser context, signed in as ``email``, on the stint's capture screen."""
    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1, **context)
    page = ctx.new_page()
    page.goto(server.url + "/")
    _sign_in(page, email)
    page.goto(server.url + "/#/stints")
    page.locator(f"button.stint[data-id='{stint['id']}']").click()
    page.wait_for_selector("form.capture")
    return ctx, page


def _pending(page: Any) -> int:
    return int(page.get_attribute("#sync-badge", "data-pending") or "-1")


def _capture_with_photo(page: Any, text: str, name: str, photo: bytes) -> None:
    """Save an observation with one photo from the capture form (online or not)."""
    page.get_by_label(re.compile("^观察内容")).fill(text)
    page.set_input_files("#photo-input", files=[{"name": name, "mimeType": "image/jpeg", "buffer": photo}])
    page.get_by_role("button", name="保存").click()


def _wait_pending(page: Any, n: int, timeout: float = 30) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#sync-badge')?.dataset.pending === '{n}'",
        timeout=timeout * 1000,
    )


def _sync_now(page: Any, button: str = "立即同步") -> None:
    """Press "sync now" on the account screen and wait until that run has finished."""
    page.goto(page.url.split("#")[0] + "#/me")
    before = page.get_attribute("#sync-badge", "data-last-sync")
    page.get_by_role("button", name=button).click()
    page.wait_for_function(
        f"() => (document.querySelector('#sync-badge').dataset.lastSync || '') > '{before}'", timeout=30000
    )


def _fits_phone(page: Any) -> None:
    """No horizontal scroll, and every visible control is at least 44 px tall and wide."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal scroll: {width}px"
    small = page.evaluate(
        """() => [...document.querySelectorAll('button, a, select, input:not([type=radio]):not([type=checkbox]):not([type=file]), textarea, .seg, summary')]
          .filter(el => el.offsetParent !== null && !el.closest('.visually-hidden') && !el.classList.contains('skip')
                  && !el.closest('.obs-link .tags'))
          .map(el => [el.tagName + '.' + el.className + ':' + (el.textContent || el.name || '').trim().slice(0, 20), el.getBoundingClientRect()])
          .filter(([, r]) => r.height < 44 || r.width < 44)
          .map(([name, r]) => `${name} ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert small == [], small
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
          .filter(el => el.offsetParent !== null || el.type === 'file')
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !(el.tagName === 'BUTTON' && el.textContent.trim()))
          .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == [], unlabelled


def _server_observations(server: LiveServer, stint: dict[str, Any]) -> list[dict[str, Any]]:
    r = server.api("GET", f"/api/stints/{stint['id']}/observations?limit=100", stint["manager"])
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _server_materials(server: LiveServer, stint: dict[str, Any]) -> list[dict[str, Any]]:
    r = server.api("GET", f"/api/stints/{stint['id']}/materials", stint["manager"])
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_offline_capture_sync_search_approve(server: LiveServer, browser: Any, stint: dict[str, Any]) -> None:
    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1, has_touch=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    _sign_in(page, RESEARCHER)
    page.wait_for_selector("form.capture")
    # The service worker controls the page (the shell is cached) before the network goes.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15000)
    assert page.locator("#nav a[data-nav=capture] span").inner_text() == "记录"
    _fits_phone(page)
    page.screenshot(path=str(SHOTS / "01-capture-zh.png"), full_page=True)

    # ---- offline: five observations and a photo
    ctx.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    assert page.evaluate("fetch('/healthz').then(() => 'answered', () => 'no network')") == "no network"
    for i, note in enumerate(NOTES):
        page.get_by_label(re.compile("^观察内容")).fill(note)
        if i == 0:
            page.locator("form.capture details.more summary").click()
            page.get_by_label("类型").select_option("pain_point")
            page.get_by_label("客户原话").fill("旺季一到，排班表每天要改三遍")
            page.get_by_label("说话人角色").fill("调度员")
            page.locator(".seg", has_text="客户的言行").click()
            page.get_by_label(re.compile("^标签")).fill("排班, Excel")
            page.locator("form.capture details.links summary", has_text="关联假设").click()
            page.get_by_label("调度员愿意放弃Excel排班").select_option(label="✗ 反驳")
        if i == 4:
            page.set_input_files(
                "#photo-input", files=[{"name": "白板.jpg", "mimeType": "image/jpeg", "buffer": _photo()}]
            )
            page.wait_for_selector("form.capture .thumbs img")
        page.get_by_role("button", name="保存").click()
        page.wait_for_function(
            f"() => document.querySelectorAll('ol.observations li.obs').length === {i + 1}", timeout=20000
        )
    _wait_pending(page, 6)  # five observations and one photo
    assert page.locator("li.obs.pending").count() == 5
    assert "离线" in page.inner_text("#sync-badge")
    _fits_phone(page)
    page.screenshot(path=str(SHOTS / "02-offline-five-pending.png"), full_page=True)
    assert _server_observations(server, stint) == []

    # ---- reload with no network: the shell comes from the service worker, the outbox from IndexedDB
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.wait_for_selector("body[data-ready='1'] form.capture")
    _wait_pending(page, 6)
    assert page.locator("li.obs.pending").count() == 5
    assert page.locator("li.obs .thumbs img.pending").count() == 1
    page.screenshot(path=str(SHOTS / "03-reloaded-offline.png"), full_page=True)
    # Search works offline too, on what this device holds.
    page.goto(server.url + "/#/search?q=" + "白板")
    page.wait_for_selector(".results ol.hits mark")
    assert page.locator(".results ol.hits li").count() == 1
    assert page.locator(".results ol.hits mark").all_inner_texts() == ["白板"]
    # Typed in traditional characters (a customer's colleague from Taipei): read as simplified.
    page.goto(server.url + "/#/search?q=" + "異常件清單")
    page.wait_for_selector(".results ol.hits mark")
    assert page.locator(".results ol.hits mark").all_inner_texts() == ["异常件清单"]
    page.goto(server.url + "/#/capture")
    page.wait_for_selector("form.capture")

    # ---- back online: it syncs by itself, exactly once
    ctx.set_offline(False)
    _wait_pending(page, 0, timeout=60)
    page.wait_for_function("() => document.querySelectorAll('li.obs.pending').length === 0")
    observations = _server_observations(server, stint)
    assert sorted(o["text"] for o in observations) == sorted(NOTES)
    first = next(o for o in observations if o["text"] == NOTES[0])
    assert first["kind"] == "pain_point" and first["quote"] == "旺季一到，排班表每天要改三遍"
    assert first["speaker_role"] == "调度员" and first["dimension"] == "words_actions"
    assert sorted(tag.lower() for tag in first["tags"]) == ["excel", "排班"]  # the server folds case
    assert [link["stance"] for link in first["hypothesis_links"]] == ["refutes"]
    assert re.search(r"[+-]\d\d:\d\d$|Z$", first["observed_at"])
    materials = _server_materials(server, stint)
    assert len(materials) == 1
    photo_obs = next(o for o in observations if o["text"] == NOTES[4])
    assert materials[0]["observation_id"] == photo_obs["id"]
    assert materials[0]["content_type"] == "image/jpeg"

    # A second sync (on demand) changes nothing on the server.
    _sync_now(page)
    assert len(_server_observations(server, stint)) == 5
    assert len(_server_materials(server, stint)) == 1
    page.screenshot(path=str(SHOTS / "04-synced-me.png"), full_page=True)

    page.goto(server.url + "/#/timeline")
    page.wait_for_selector("li.obs .thumbs img:not(.pending)")
    _fits_phone(page)
    page.screenshot(path=str(SHOTS / "05-timeline.png"), full_page=True)

    # ---- search: a Chinese word, highlighted (the index is built in the background: retry a while)
    deadline = time.monotonic() + 30
    while True:
        page.goto(server.url + "/#/search?q=" + "排班")
        page.wait_for_selector(".results p.count, .results p.error, .results p.empty")
        if page.locator("ol.hits mark").count() or time.monotonic() > deadline:
            break
        time.sleep(1)
    marks = page.locator("ol.hits mark").all_inner_texts()
    assert marks and all("排班" in m or m in "排班" for m in marks), marks
    assert page.locator("ol.hits li.hit").count() >= 2
    _fits_phone(page)
    page.screenshot(path=str(SHOTS / "06-search.png"), full_page=True)

    # ---- the researcher proposes an action; a manager approves it
    page.goto(server.url + "/#/actions")
    page.locator("summary", has_text="新建改善行动").click()
    page.get_by_label("标题").fill("排班表模板化，减少每日手工核对")
    page.get_by_label("负责人").fill(RESEARCHER)
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector("article.action[data-status=proposed]")
    assert errors == []
    ctx.close()

    mctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1)
    mpage = mctx.new_page()
    mpage.goto(server.url + "/#/actions")
    _sign_in(mpage, MANAGER)
    mpage.goto(server.url + "/#/actions")
    card = mpage.locator("article.action[data-status=proposed]")
    card.get_by_label("评论").fill("同意，先在嘉定仓试点")
    mpage.screenshot(path=str(SHOTS / "07-actions-manager.png"), full_page=True)
    card.get_by_role("button", name="批准").click()
    mpage.wait_for_selector("article.action[data-status=approved]")
    r = server.api("GET", f"/api/stints/{stint['id']}/actions", stint["manager"])
    actions = r.json()
    assert [a["status"] for a in actions] == ["approved"]
    assert actions[0]["last_review"]["comment"] == "同意，先在嘉定仓试点"
    mpage.screenshot(path=str(SHOTS / "08-action-approved.png"), full_page=True)
    mpage.get_by_role("button", name="更新状态: 进行中").click()
    mpage.wait_for_selector("article.action[data-status=in_progress]")
    r = server.api("GET", f"/api/stints/{stint['id']}/actions", stint["manager"])
    assert [a["status"] for a in r.json()] == ["in_progress"]

    # English, switchable, remembered.
    mpage.goto(server.url + "/#/me")
    mpage.get_by_role("button", name="English").click()
    mpage.wait_for_selector("#nav a[data-nav=capture] span:text-is('Capture')")
    mpage.reload()
    mpage.wait_for_selector("body[data-ready='1']")
    assert mpage.locator("#nav a[data-nav=search] span").inner_text() == "Search"
    mpage.screenshot(path=str(SHOTS / "09-me-en.png"), full_page=True)
    mctx.close()


def test_expired_session_keeps_the_outbox(server: LiveServer, browser: Any, stint: dict[str, Any]) -> None:
    """A 401 while syncing keeps everything pending and asks to sign in; after that it syncs."""
    ctx = browser.new_context(viewport=PHONE, locale="en-US", device_scale_factor=1)
    page = ctx.new_page()
    page.goto(server.url + "/")
    _sign_in(page, RESEARCHER)
    assert page.locator("#nav a[data-nav=capture] span").inner_text() == "Capture"
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15000)
    ctx.set_offline(True)
    page.get_by_label(re.compile("^Observation")).fill(
        "The dispatcher keeps a paper copy of every route sheet"
    )
    page.get_by_role("button", name="Save").click()
    _wait_pending(page, 1)
    # The session ends elsewhere (a password change, an admin, a lost-phone revoke).
    mine = server.token(RESEARCHER)
    for s in server.api("GET", "/api/auth/sessions", mine).json():
        if not s["current"]:
            server.api("DELETE", f"/api/auth/sessions/{s['id']}", mine)
    ctx.set_offline(False)
    page.wait_for_selector("#signin-banner:not([hidden])", timeout=30000)
    assert _pending(page) == 1
    page.screenshot(path=str(SHOTS / "10-session-ended.png"), full_page=True)
    page.locator("#signin-banner button").click()
    _sign_in(page, RESEARCHER)
    _wait_pending(page, 0, timeout=30)
    texts = [o["text"] for o in _server_observations(server, stint)]
    assert texts.count("The dispatcher keeps a paper copy of every route sheet") == 1

    # Signing out ends the session on the server and leaves no customer data on the device.
    page.goto(server.url + "/#/me")
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_selector("main[data-route=signin] form.signin")
    records = page.evaluate(
        """() => new Promise(done => { const q = indexedDB.open('fieldbook'); q.onsuccess = () => {
             const g = q.result.transaction('records').objectStore('records').count(); g.onsuccess = () => done(g.result); }; })"""
    )
    assert records == 0
    assert page.evaluate("() => fetch('/api/me').then(r => r.status)") == 401
    ctx.close()


def test_conflict_shown_side_by_side(server: LiveServer, browser: Any, stint: dict[str, Any]) -> None:
    """An offline edit of an observation someone changed meanwhile comes back as a conflict, shown
    side by side; keeping mine pushes it against the server's version."""
    r = server.api(
        "POST",
        f"/api/stints/{stint['id']}/observations",
        stint["researcher"],
        json={"text": "叉车司机午休时在车上休息", "kind": "behaviour"},
    )
    assert r.status_code == 201, r.text
    obs, etag = r.json(), r.headers["ETag"]
    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1)
    page = ctx.new_page()
    page.goto(server.url + "/")
    _sign_in(page, RESEARCHER)
    _sync_now(page)
    page.goto(server.url + f"/#/obs/{obs['id']}")
    page.wait_for_selector("article.card")
    ctx.set_offline(True)
    page.get_by_role("button", name="编辑").click()
    page.get_by_label(re.compile("^观察内容")).fill("叉车司机午休时在驾驶室里休息，因为没有休息室")
    page.get_by_role("button", name="保存").click()
    _wait_pending(page, 1)
    # Meanwhile a teammate edits the same observation on the server.
    r = server.api(
        "PATCH",
        f"/api/observations/{obs['id']}",
        {**stint["researcher"], "If-Match": etag},
        json={"text": "叉车司机午休时在车上休息（已核实）"},
    )
    assert r.status_code == 200, r.text
    ctx.set_offline(False)
    _wait_pending(page, 0, timeout=30)
    page.goto(server.url + "/#/me")
    table = page.locator("table.side-by-side")
    table.wait_for()
    assert "叉车司机午休时在车上休息（已核实）" in table.inner_text()
    assert "叉车司机午休时在驾驶室里休息，因为没有休息室" in table.inner_text()
    _fits_phone(page)
    page.screenshot(path=str(SHOTS / "11-conflict.png"), full_page=True)
    page.get_by_role("button", name="保留我的").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = server.api("GET", f"/api/observations/{obs['id']}", stint["researcher"]).json()
        if got["text"] == "叉车司机午休时在驾驶室里休息，因为没有休息室":
            break
        time.sleep(0.5)
    assert got["text"] == "叉车司机午休时在驾驶室里休息，因为没有休息室"
    ctx.close()


def test_debrief_insights_and_share_links(server: LiveServer, browser: Any, stint: dict[str, Any]) -> None:
    """A manager sees the insights with their evidence, creates a share link, copies it, sees its
    views, and revokes it (the link stops working at once)."""
    r = server.api(
        "POST",
        f"/api/stints/{stint['id']}/observations",
        stint["researcher"],
        json={"text": "调度员把异常件写在白板上，每小时拍照发群", "kind": "behaviour", "quote": "拍下来最快"},
    )
    assert r.status_code == 201, r.text
    r = server.api(
        "POST",
        f"/api/stints/{stint['id']}/insights",
        stint["manager"],
        json={
            "title": "白板是真正的调度系统",
            "statement": "异常处理靠白板和微信群，系统只做记账",
            "evidence": [{"observation_id": r.json()["id"]}],
        },
    )
    assert r.status_code == 201, r.text
    ctx, page = _open_stint(
        server, browser, stint, MANAGER, permissions=["clipboard-read", "clipboard-write"]
    )
    page.goto(server.url + "/#/debrief")
    insight = page.locator("article.insight", has_text="白板是真正的调度系统")
    insight.wait_for()
    assert "调度员把异常件写在白板上" in insight.inner_text()

    page.get_by_label("有效天数").fill("7")
    page.get_by_role("button", name="创建分享链接").click()
    link = page.locator(".shares input[readonly]")
    link.wait_for()
    url = link.input_value()
    assert "/s/" in url
    page.get_by_role("button", name="复制").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == url
    assert server.api("GET", "/api/public/" + url.rsplit("/", 1)[1], {}).status_code == 200

    page.reload()
    views = page.get_by_role("button", name="1 次查看")
    views.wait_for()
    views.click()
    page.wait_for_selector(".accesses li")
    assert "复盘" in page.locator(".accesses li.access-debrief").inner_text()  # what was opened
    _fits_phone(page)
    page.screenshot(path=str(SHOTS / "12-debrief-shares.png"), full_page=True)
    page.get_by_role("button", name="撤销").click()
    page.wait_for_selector(".share-list li.inactive")
    assert server.api("GET", "/api/public/" + url.rsplit("/", 1)[1], {}).status_code == 404
    ctx.close()


def test_photo_upload_resumes_after_a_dropped_connection(
    server: LiveServer, browser: Any, stint: dict[str, Any]
) -> None:
    """A photo larger than one tus chunk; the connection drops on the second PATCH. The next sync
    asks the server for its offset (HEAD) and continues the same upload: one upload, one material,
    identical bytes."""
    img = Image.frombytes("RGB", (1200, 1200), os.urandom(1200 * 1200 * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95)
    photo = out.getvalue()
    assert len(photo) > 1024 * 1024 + 1  # more than one chunk

    ctx, page = _open_stint(server, browser, stint)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(f"{r.method} {r.url.split('/api/')[-1].split('/')[0]}"))
    patches = {"n": 0}

    def drop_second_patch(route: Any) -> None:
        if route.request.method == "PATCH":
            patches["n"] += 1
            if patches["n"] == 2:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/api/uploads/*", drop_second_patch)
    ctx.set_offline(True)
    _capture_with_photo(page, "月台上的纸质交接单，司机和仓管各签一次", "交接单.jpg", photo)
    _wait_pending(page, 2)
    ctx.set_offline(False)
    _wait_pending(page, 1, timeout=30)  # the observation went; the photo did not
    page.wait_for_function("() => !document.querySelector('#sync-badge').textContent.includes('同步中')")
    assert patches["n"] == 2 and seen.count("POST uploads") == 1
    assert _server_materials(server, stint) == []

    _sync_now(page)  # the next sync resumes the same upload
    _wait_pending(page, 0)
    assert seen.count("POST uploads") == 1, seen  # no second upload was started
    assert seen.count("HEAD uploads") >= 1, seen  # it asked the server how much it holds
    materials = _server_materials(server, stint)
    assert len(materials) == 1
    assert materials[0]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert materials[0]["size"] == len(photo)
    ctx.close()


def _eventually(check: Any, timeout: float = 30) -> Any:
    """Poll the server until ``check()`` is truthy (the app syncs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_edit_and_delete_go_through_the_outbox(
    server: LiveServer, browser: Any, stint: dict[str, Any]
) -> None:
    ctx, page = _open_stint(server, browser, stint)

    def mine() -> list[dict[str, Any]]:
        return [o for o in _server_observations(server, stint) if o["text"].startswith("客服主管")]

    page.get_by_label(re.compile("^观察内容")).fill("客服主管每周一开会复盘投诉")
    page.get_by_role("button", name="保存").click()
    (obs,) = _eventually(mine)
    page.wait_for_selector("li.obs:not(.pending) a:has-text('客服主管每周一开会复盘投诉')")
    page.locator("li.obs a", has_text="客服主管每周一开会复盘投诉").click()
    page.get_by_role("button", name="编辑").click()
    page.get_by_label(re.compile("^观察内容")).fill("客服主管每周一上午开会复盘上周投诉")
    page.get_by_label("类型").select_option("process")
    page.get_by_role("button", name="保存").click()
    (obs,) = _eventually(lambda: [o for o in mine() if o["version"] == 2])
    assert obs["text"] == "客服主管每周一上午开会复盘上周投诉" and obs["kind"] == "process"
    _wait_pending(page, 0)
    page.goto(server.url + f"/#/obs/{obs['id']}")
    page.wait_for_selector("article.card:has-text('上午开会')")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="删除").click()
    page.wait_for_selector("main[data-route=timeline]")
    assert _eventually(lambda: not mine()), "the delete did not reach the server"
    _wait_pending(page, 0)
    assert page.locator("li.obs", has_text="客服主管").count() == 0

    # The day's summary goes through the outbox too (written offline here).
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    ctx.set_offline(True)
    page.get_by_label("当日小结").first.fill("今天主要跟调度和客服，排班与投诉复盘是两条主线")
    page.locator("form.summary-form").first.get_by_role("button", name="保存").click()
    _wait_pending(page, 1)
    ctx.set_offline(False)

    def summaries() -> list[str]:
        r = server.api("GET", f"/api/stints/{stint['id']}/days/{day}", stint["researcher"])
        return [x["summary"] for x in r.json()["summaries"]]

    assert _eventually(summaries) == ["今天主要跟调度和客服，排班与投诉复盘是两条主线"]
    _wait_pending(page, 0)
    page.screenshot(path=str(SHOTS / "13-timeline-summary.png"), full_page=True)
    ctx.close()


def test_caption_edit_and_material_delete_go_through_the_outbox(
    server: LiveServer, browser: Any, stint: dict[str, Any]
) -> None:
    """The uploader fixes a photo's caption online, then deletes it offline: both reach the server
    through the outbox, and the page shows them at once."""
    r = server.api(
        "POST",
        f"/api/stints/{stint['id']}/observations",
        stint["researcher"],
        json={"text": "叉车充电区旁边堆着待签收的回单"},
    )
    assert r.status_code == 201, r.text
    obs = r.json()
    r = server.api(
        "POST",
        f"/api/stints/{stint['id']}/materials",
        stint["researcher"],
        files={"file": ("回单.jpg", _photo(), "image/jpeg")},
        data={"observation_id": obs["id"], "caption": "回单"},
    )
    assert r.status_code == 201, r.text
    material = r.json()

    def on_server() -> dict[str, Any] | None:
        found = server.api("GET", f"/api/materials/{material['id']}", stint["manager"])
        return found.json() if found.status_code == 200 else None

    ctx, page = _open_stint(server, browser, stint)
    page.goto(server.url + f"/#/obs/{obs['id']}")
    tile = page.locator(f"figure.material[data-id='{material['id']}']")
    tile.wait_for()
    page.once("dialog", lambda d: d.accept("回单：司机签字后放在充电区"))
    tile.get_by_role("button", name="改说明").click()
    page.wait_for_selector("figure.material:has-text('司机签字后放在充电区')")
    assert _eventually(lambda: (on_server() or {}).get("caption") == "回单：司机签字后放在充电区")
    _wait_pending(page, 0)
    _fits_phone(page)

    ctx.set_offline(True)
    page.once("dialog", lambda d: d.accept())
    tile.get_by_role("button", name="删除").click()
    _wait_pending(page, 1)
    assert page.locator(f"figure.material[data-id='{material['id']}']").count() == 0
    assert on_server() is not None  # still offline: nothing sent yet
    ctx.set_offline(False)
    assert _eventually(lambda: on_server() is None), "the delete did not reach the server"
    _wait_pending(page, 0)
    ctx.close()


def test_a_new_version_is_offered_not_forced(browser: Any, tmp_path: Path) -> None:
    """A deployed update installs in the background and waits; the open page keeps working on the
    version it loaded until the user taps reload, then runs the new one."""
    import shutil

    from tests.e2e_support import FRONTEND

    frontend = tmp_path / "frontend"
    shutil.copytree(FRONTEND, frontend)
    with live_server(tmp_path / "data", [(RESEARCHER, "李伟")], frontend=frontend) as srv:
        ctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1)
        page = ctx.new_page()
        page.goto(srv.url + "/")
        _sign_in(page, RESEARCHER)
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15000)
        # Deploy: a changed stylesheet, so a new shell digest.
        (frontend / "style.css").write_text(
            (frontend / "style.css").read_text() + "\n.updated-marker { order: 1; }\n"
        )
        sw = (frontend / "sw.js").read_text()
        (frontend / "sw.js").write_text(
            re.sub(r"fieldbook-shell-[0-9a-f]+", "fieldbook-shell-0000feed0000", sw)
        )
        page.evaluate("() => navigator.serviceWorker.getRegistration().then(r => r.update())")
        banner = page.locator("#update-banner")
        banner.wait_for(state="visible", timeout=15000)
        assert "新版本" in banner.inner_text()
        # Not forced: the page still runs the old shell.
        old_css = page.evaluate("() => fetch('/style.css').then(r => r.text())")
        assert "updated-marker" not in old_css
        page.screenshot(path=str(SHOTS / "14-update-offered.png"))
        with page.expect_navigation(timeout=15000):  # the page reloads itself onto the new version
            banner.get_by_role("button").click()
        page.wait_for_selector("body[data-ready='1'] main[data-route=stints]")  # no stint yet: choose one
        assert page.evaluate(
            "() => [...document.styleSheets].some(s => [...s.cssRules].some(r => r.selectorText === '.updated-marker'))"
        )
        assert page.locator("#update-banner").is_hidden()
        ctx.close()
