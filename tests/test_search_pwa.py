"""Search results in the PWA (real headless Chromium against a real server): every record type is
named in the user's language, and each hit opens its record, in the hit's stint."""

import io
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from PIL import Image

from tests.e2e_support import PASSWORD, LiveServer, browser_scenarios, chromium, live_server, new_stint

pytestmark = browser_scenarios()

RESEARCHER = "chen.jing@example.com"
MANAGER = "wang.lei@example.com"
PHONE = {"width": 360, "height": 640}
TYPES_ZH = {
    "observation": "痛点",
    "day": "当日小结",
    "material": "素材",
    "insight": "洞见",
    "action": "改善行动",
}
TYPES_EN = {
    "observation": "Pain point",
    "day": "Day summary",
    "material": "Material",
    "insight": "Insight",
    "action": "Action",
}


# Scrolled into view, not under the sticky header or the bottom navigation.
VISIBLE = """el => { const r = el.getBoundingClientRect();
  const at = document.elementFromPoint(r.left + 8, r.top + Math.min(r.height / 2, 12));
  return !!at && el.contains(at); }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("e2e-search") / "data", [(RESEARCHER, "陈静"), (MANAGER, "王磊")]
    ) as srv:
        yield srv


def _stint(server: LiveServer, mgr: dict[str, str], title: str) -> str:
    sid: str = new_stint(server, mgr, title, researchers=(RESEARCHER,), days_before=40)["id"]
    return sid


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 90)).save(out, "JPEG")
    return out.getvalue()


def test_hits_are_named_and_open_their_records(server: LiveServer) -> None:
    mgr, res = server.token(MANAGER), server.token(RESEARCHER)
    home = _stint(server, mgr, "华南仓驻场")
    other = _stint(server, mgr, "华东物流调度驻场")
    today = date.today()
    # Many days in the log, so the day of the hit is far down the page.
    for n in range(30):
        day = today - timedelta(days=35 - n)
        r = server.api("PUT", f"/api/stints/{other}/days/{day}", res, json={"summary": f"第{n}天：例行巡检"})
        assert r.status_code == 200, r.text
    summary_day = (today - timedelta(days=33)).isoformat()
    r = server.api(
        "PUT", f"/api/stints/{other}/days/{summary_day}", res, json={"summary": "叉车充电排队最久"}
    )
    assert r.status_code == 200, r.text
    r = server.api(
        "POST",
        f"/api/stints/{other}/observations",
        res,
        json={"text": "叉车司机等充电桩", "kind": "pain_point"},
    )
    assert r.status_code == 201, r.text
    obs = r.json()
    r = server.api(
        "POST",
        f"/api/stints/{other}/materials",
        res,
        files={"file": ("IMG_9.jpg", _jpeg(), "image/jpeg")},
        data={"caption": "叉车充电区"},
    )
    assert r.status_code == 201, r.text
    material = r.json()
    insights = []
    for title in ("仓库布局需要重排", "夜班交接靠口头", "叉车调度靠老师傅经验"):
        r = server.api("POST", f"/api/stints/{other}/insights", mgr, json={"title": title, "statement": "—"})
        assert r.status_code == 201, r.text
        insights.append(r.json())
    r = server.api("POST", f"/api/stints/{other}/actions", mgr, json={"title": "试点叉车排班看板"})
    assert r.status_code == 201, r.text
    action = r.json()

    with chromium() as browser:
        ctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        form = page.locator("form.signin")
        form.get_by_label("邮箱").fill(MANAGER)
        form.get_by_label("密码").fill(PASSWORD)
        form.get_by_role("button", name="登录").click()
        page.wait_for_selector("main[data-route]:not([data-route=signin])")
        page.goto(server.url + "/#/stints")
        page.locator(f"button.stint[data-id='{home}']").click()
        page.wait_for_selector("form.capture")

        def search() -> None:
            deadline = time.monotonic() + 30
            while True:
                page.goto(server.url + "/#/search?q=叉车")
                page.wait_for_selector(".results p.count, .results p.error, .results p.empty")
                if page.locator("ol.hits li.hit").count() >= 5 or time.monotonic() > deadline:
                    return
                time.sleep(0.5)

        def label(kind: str) -> str:
            return page.locator(f"li.hit[data-type={kind}] .meta .kind").inner_text()

        search()
        assert {kind: label(kind) for kind in TYPES_ZH} == TYPES_ZH

        def open_hit(kind: str) -> Any:
            page.locator(f"li.hit[data-type={kind}] a").click()
            return page.locator("[aria-current=true]")

        target = open_hit("insight")
        page.wait_for_selector("main[data-route=debrief] article.insight[aria-current=true]")
        assert "叉车调度靠老师傅经验" in target.inner_text()
        assert "华东物流调度驻场" in page.locator("main h1").inner_text()  # switched to the hit's stint
        assert target.evaluate(VISIBLE)
        assert insights[-1]["id"] in page.url

        search()
        target = open_hit("action")
        page.wait_for_selector("main[data-route=actions] article.action[aria-current=true]")
        assert "试点叉车排班看板" in target.inner_text() and action["id"] in page.url

        search()
        target = open_hit("day")
        page.wait_for_selector("main[data-route=timeline] h2.day[aria-current=true]")
        assert target.inner_text().startswith(summary_day)
        assert target.evaluate(VISIBLE)

        search()
        open_hit("observation")
        page.wait_for_selector("main[data-route=obs] p.text")
        assert page.locator("main p.text").inner_text() == obs["text"]
        search()
        href = page.locator("li.hit[data-type=material] a").get_attribute("href")
        assert href == f"/api/materials/{material['id']}/content"

        page.evaluate("localStorage.setItem('fieldbook.lang', 'en')")
        page.reload()
        search()
        assert {kind: label(kind) for kind in TYPES_EN} == TYPES_EN
        assert errors == []
        ctx.close()
