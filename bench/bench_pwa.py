"""The PWA's app shell: bytes sent for a first visit, and time to interactive on loopback.

A real server (uvicorn subprocess, temp data dir) and Debian's headless Chromium through Playwright.
Time to interactive is from navigation start to the `fieldbook-interactive` mark the app sets when its
first screen (today's capture form, signed in) is rendered and wired. Cold: a fresh browser profile
(no cache, no service worker). Warm: the shell from the service worker. The byte figures are what the
browser received (Resource Timing transferSize: the server sends the files uncompressed) and what they
come to gzip-compressed, as a compressing proxy or CDN-less nginx would send them."""

import gzip
import statistics
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.figures import Figure
from tests.e2e_support import PASSWORD, browser_missing, chromium, live_server, shell_files

EMAIL = "bench@example.com"
AREA = "pwa"
TTI_TARGET_MS = 1000.0
SIZE_TARGET = 150 * 1024

_TTI_JS = "() => performance.getEntriesByName('fieldbook-interactive')[0]?.startTime ?? null"
_BYTES_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').filter(r => !r.name.includes('/api/'));
  return {
    transfer: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),
    urls: [nav.name, ...res.map(r => r.name)],
  };
}"""


def _gzip_size(base: str, urls: list[str]) -> int:
    total = 0
    with httpx.Client(base_url=base) as client:
        for url in urls:
            r = client.get(url)
            r.raise_for_status()
            total += len(gzip.compress(r.content, 9))
    return total


def _interactive(page: Any) -> float:
    page.wait_for_selector("body[data-ready='1'] form.capture")
    value = page.evaluate(_TTI_JS)
    assert value is not None, "the app never marked itself interactive"
    return float(value)


def run(quick: bool) -> list[Figure]:
    missing = browser_missing()
    if missing:
        print(f"  bench_pwa skipped: {missing}")
        return []
    runs = 3 if quick else 7
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data", [(EMAIL, "Bench")]) as srv:
        headers = srv.token(EMAIL)
        today = date.today()
        r = srv.api(
            "POST",
            "/api/stints",
            headers,
            json={
                "title": "基准驻场",
                "customer": "Bench Co",
                "purpose": "product",
                "start_date": (today - timedelta(days=1)).isoformat(),
                "end_date": (today + timedelta(days=10)).isoformat(),
                "timezone": "Asia/Shanghai",
            },
        )
        r.raise_for_status()
        with chromium() as browser:
            cold: list[float] = []
            warm: list[float] = []
            transfer = 0
            urls: list[str] = []
            for _ in range(runs):
                ctx = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN")
                # Sign in through the API the app uses, so the cookie is set before the first visit.
                resp = ctx.request.post(
                    srv.url + "/api/auth/session", data={"email": EMAIL, "password": PASSWORD}
                )
                assert resp.ok, resp.text()
                page = ctx.new_page()
                page.goto(srv.url + "/")
                cold.append(_interactive(page))
                seen = page.evaluate(_BYTES_JS)
                transfer, urls = int(seen["transfer"]), list(seen["urls"])
                page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15000)
                page.reload()
                warm.append(_interactive(page))
                ctx.close()
        compressed = _gzip_size(srv.url, shell_files())
    cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
    print(f"  first visit loaded: {', '.join(u.split('/', 3)[-1] or '/' for u in urls)}")
    return [
        Figure(
            AREA,
            "app shell, gzip-compressed (all precached files)",
            compressed / 1024,
            "KiB",
            target="< 150 KiB",
            met=compressed < SIZE_TARGET,
        ),
        Figure(
            AREA,
            "first visit, bytes transferred (uncompressed)",
            transfer / 1024,
            "KiB",
            target="< 150 KiB",
            met=transfer < SIZE_TARGET,
        ),
        Figure(
            AREA,
            f"time to interactive, cold (median of {runs})",
            cold_ms,
            "ms",
            target="< 1000 ms",
            met=cold_ms < TTI_TARGET_MS,
        ),
        Figure(
            AREA,
            f"time to interactive, from the service worker (median of {runs})",
            warm_ms,
            "ms",
            baseline=cold_ms,
            baseline_name="cold",
            target="< 1000 ms",
            met=warm_ms < TTI_TARGET_MS,
        ),
    ]
