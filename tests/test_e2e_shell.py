"""Static checks of the PWA shell (no browser): what the service worker caches exists and is
versioned, nothing is loaded from another origin, and no inline script or style needs a CSP hole."""

import json
import re

from tests.e2e_support import FRONTEND, VERSION_RE, shell_files, shell_version


def test_service_worker_cache_name_follows_the_shell() -> None:
    found = re.search(VERSION_RE, (FRONTEND / "sw.js").read_text())
    assert found is not None
    assert found.group(1) == shell_version(), (
        "a shell file changed but the service worker's cache name did not: phones would keep the old "
        "app. Run `.venv/bin/python -m tests.e2e_support` to restamp frontend/sw.js."
    )


def test_every_precached_file_exists_and_every_module_is_precached() -> None:
    listed = shell_files()
    for path in listed:
        assert path == "/" or (FRONTEND / path.lstrip("/")).is_file(), path
    modules = {f"/js/{p.name}" for p in (FRONTEND / "js").glob("*.js")}
    assert modules <= set(listed), modules - set(listed)
    assert {"/", "/index.html", "/style.css", "/manifest.webmanifest"} <= set(listed)


def test_manifest_makes_it_installable() -> None:
    manifest = json.loads((FRONTEND / "manifest.webmanifest").read_text())
    assert manifest["display"] == "standalone"
    assert manifest["start_url"].startswith("/")
    assert manifest["name"] and manifest["short_name"] and manifest["theme_color"]
    sizes = {icon["sizes"] for icon in manifest["icons"] if icon["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert (FRONTEND / icon["src"].lstrip("/")).is_file()


def test_no_remote_resources_and_no_inline_code() -> None:
    for path in FRONTEND.rglob("*"):
        if path.suffix not in {".html", ".js", ".css", ".webmanifest"} or "node_modules" in path.parts:
            continue
        text = path.read_text()
        remote = re.findall(r"""(?:src|href|url|import|fetch)\s*[=(]\s*['"]?(?:https?:)?//""", text)
        assert not remote, f"{path.name} loads something from another origin: {remote}"
    html = (FRONTEND / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> (CSP forbids it)"
    assert "<style" not in html and " style=" not in html, "inline style (CSP forbids it)"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler (CSP forbids it)"
