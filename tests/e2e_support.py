"""Shared by the browser tests and ``bench/bench_pwa.py``: a real uvicorn server on loopback with a
temp data dir, and Debian's Chromium driven by Playwright (no browser download)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from api import migrations
from api.db import make_engine
from api.users import create_user

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("FIELDBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "long password 1"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)"
    return None


def browser_scenarios() -> list[pytest.MarkDecorator]:
    """A browser test module's marks, at its top, before it imports Playwright:
    ``pytestmark = browser_scenarios()``. ``make test`` runs the modules marked ``browser`` on their
    own first (a phone's timeouts made them flaky beside the PostgreSQL leg). Skips the module
    without a browser (an error in CI, which must run them), and in the PostgreSQL leg (each module
    starts its own server on its own SQLite database, so the scenarios run once)."""
    missing = browser_missing()
    if missing and os.environ.get("CI"):
        raise RuntimeError(f"CI must run the browser tests: {missing}")
    if missing:
        pytest.skip(missing, allow_module_level=True)
    if os.environ.get("FIELDBOOK_TEST_DATABASE_URL"):
        pytest.skip("the browser scenarios run once, in the SQLite leg", allow_module_level=True)
    return [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path

    def token(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        r = httpx.post(f"{self.url}/api/auth/token", data={"username": email, "password": password})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def api(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@contextmanager
def live_server(
    data_dir: Path, users: list[tuple[str, str]], frontend: Path | None = None
) -> Iterator[LiveServer]:
    """Migrate a fresh SQLite database in ``data_dir``, add ``users`` (email, name), serve it (and the
    PWA from ``frontend``, by default the repository's)."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    url = f"sqlite:///{data_dir / 'fieldbook.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    with Session(engine) as session:
        for email, name in users:
            create_user(session, email, PASSWORD, name=name)
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "FIELDBOOK_DATA_DIR": str(data_dir),
        "FIELDBOOK_DATABASE_URL": url,
        "FIELDBOOK_FRONTEND_DIR": str(frontend or ROOT / "frontend"),
    }
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(data_dir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 30 s")
            time.sleep(0.2)
        yield LiveServer(url=base, data_dir=data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def new_stint(
    server: LiveServer,
    manager: dict[str, str],
    title: str,
    *,
    researchers: tuple[str, ...] = (),
    days_before: int = 3,
    **fields: Any,
) -> dict[str, Any]:
    """A stint run by ``manager`` (auth headers), around today, with these researchers (e-mails) on it."""
    today = date.today()
    body = {
        "title": title,
        "customer": "顺达物流",
        "purpose": "product",
        "start_date": (today - timedelta(days=days_before)).isoformat(),
        "end_date": (today + timedelta(days=20)).isoformat(),
        "timezone": "Asia/Shanghai",
        **fields,
    }
    r = server.api("POST", "/api/stints", manager, json=body)
    assert r.status_code == 201, r.text
    stint: dict[str, Any] = r.json()
    for email in researchers:
        added = server.api(
            "POST", f"/api/stints/{stint['id']}/members", manager, json={"email": email, "role": "researcher"}
        )
        assert added.status_code == 201, added.text
    return stint


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


FRONTEND = ROOT / "frontend"
VERSION_RE = r"const VERSION = 'fieldbook-shell-([0-9a-f]+)';"


def shell_files() -> list[str]:
    """The paths the service worker precaches, as listed in frontend/sw.js."""
    sw = (FRONTEND / "sw.js").read_text()
    start = sw.index("const SHELL = [")
    body = sw[start : sw.index("];", start)]
    return [line.strip().strip(",").strip("'") for line in body.splitlines()[1:] if line.strip()]


def shell_version() -> str:
    """A digest of every precached file: the service worker's cache name must change with any of
    them, or phones keep the old shell."""
    import hashlib

    digest = hashlib.sha256()
    for path in shell_files():
        if path == "/":
            continue  # index.html
        digest.update(path.encode() + b"\0" + (FRONTEND / path.lstrip("/")).read_bytes())
    return digest.hexdigest()[:12]


def stamp_shell_version() -> str:
    """Write the current digest into frontend/sw.js (``python -m tests.e2e_support``)."""
    import re

    sw_path = FRONTEND / "sw.js"
    version = shell_version()
    text, n = re.subn(VERSION_RE, f"const VERSION = 'fieldbook-shell-{version}';", sw_path.read_text())
    assert n == 1, "frontend/sw.js has no VERSION line"
    sw_path.write_text(text)
    return version


if __name__ == "__main__":
    print(f"frontend/sw.js: fieldbook-shell-{stamp_shell_version()}")
