"""Every route × every kind of caller, with the status each must get.

Non-members (an admin included) get 404 inside a stint, members lacking the role 403, anonymous 401.
A share-link holder has the link's token and no account: they present it as a bearer token everywhere,
get 401 on every member route and 200 on the public routes for what the link shows; anything outside
the link is the public routes' one 404 (``test_permissions_share.py`` runs that column).
A route added without a row (or a row without a column) fails ``test_every_route_has_a_row``."""

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.config import Settings
from api.main import create_app
from tests.conftest import PASSWORD, STINT
from tests.material_files import photo

ROLES = ("anonymous", "outsider", "admin", "viewer", "researcher", "manager")
HOLDER = "share_holder"
COLUMNS = (*ROLES, HOLDER)


@dataclass
class Ctx:
    sid: str
    hypothesis: str
    observation: str
    extra_member: str
    caller: Any  # the Person making the request, None when anonymous
    session_id: str | None
    outsider_email: str  # an account that is not a member yet
    debrief: Any  # insights, actions, shares made for this case
    materials: Any  # materials made for this case


Build = Callable[[Ctx], dict[str, Any]]


def everyone(ok: int) -> dict[str, int]:
    return dict.fromkeys(COLUMNS, ok)


def signed_in(ok: int) -> dict[str, int]:
    return {"anonymous": 401, HOLDER: 401} | {r: ok for r in ROLES[1:]}


def admin_only(ok: int) -> dict[str, int]:
    return signed_in(403) | {"admin": ok}


def members(ok: int) -> dict[str, int]:
    return signed_in(ok) | {"outsider": 404, "admin": 404}


def writers(ok: int) -> dict[str, int]:
    return members(ok) | {"viewer": 403}


def managers(ok: int) -> dict[str, int]:
    return members(ok) | {"viewer": 403, "researcher": 403}


OBS_BODY = {
    "text": "仓库主管说：系统里的库存数据每天要人工核对两遍。",
    "kind": "quote",
    "speaker_role": "仓库主管",
}

PHOTO = photo()
TUS = {"Tus-Resumable": "1.0.0"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def UPLOAD_OWNER(ok: int) -> dict[str, int]:
    return dict.fromkeys(COLUMNS, 404) | {"anonymous": 401, HOLDER: 401, "researcher": ok}


# (method, path template) -> (request builder, expected status per role)
MATRIX: dict[tuple[str, str], tuple[Build, dict[str, int]]] = {
    ("GET", "/healthz"): (lambda c: {}, everyone(200)),
    ("GET", "/readyz"): (lambda c: {}, everyone(200)),
    ("POST", "/api/auth/token"): (
        lambda c: {
            "data": {"username": c.caller.email if c.caller else "nobody@example.com", "password": PASSWORD}
        },
        signed_in(200),
    ),
    ("POST", "/api/auth/session"): (
        lambda c: {
            "json": {"email": c.caller.email if c.caller else "nobody@example.com", "password": PASSWORD}
        },
        signed_in(200),
    ),
    ("POST", "/api/auth/logout"): (lambda c: {}, signed_in(204)),
    ("GET", "/api/auth/sessions"): (lambda c: {}, signed_in(200)),
    ("DELETE", "/api/auth/sessions/{session_id}"): (
        lambda c: {"path": f"/api/auth/sessions/{c.session_id or '00000000-0000-0000-0000-000000000000'}"},
        signed_in(204),
    ),
    ("GET", "/api/me"): (lambda c: {}, signed_in(200)),
    ("POST", "/api/me/password"): (
        lambda c: {"json": {"current_password": PASSWORD, "new_password": "another long password"}},
        signed_in(204),
    ),
    ("GET", "/api/users"): (lambda c: {}, admin_only(200)),
    ("POST", "/api/users"): (
        lambda c: {"json": {"email": "new.colleague@example.com", "password": "long enough pw"}},
        admin_only(201),
    ),
    ("PATCH", "/api/users/{user_id}"): (
        lambda c: {"path": f"/api/users/{c.extra_member}", "json": {"name": "新名字"}},
        admin_only(200),
    ),
    ("POST", "/api/stints"): (lambda c: {"json": STINT}, signed_in(201)),
    ("GET", "/api/stints"): (lambda c: {}, signed_in(200)),
    ("GET", "/api/stints/{stint_id}"): (lambda c: {}, members(200)),
    ("PATCH", "/api/stints/{stint_id}"): (lambda c: {"json": {"goals": "看清排班流程"}}, managers(200)),
    ("DELETE", "/api/stints/{stint_id}"): (lambda c: {}, managers(204)),
    ("GET", "/api/stints/{stint_id}/members"): (lambda c: {}, members(200)),
    ("POST", "/api/stints/{stint_id}/members"): (
        lambda c: {"json": {"email": c.outsider_email, "role": "viewer"}},
        managers(201),
    ),
    ("PATCH", "/api/stints/{stint_id}/members/{user_id}"): (
        lambda c: {"path": f"/api/stints/{c.sid}/members/{c.extra_member}", "json": {"role": "viewer"}},
        managers(200),
    ),
    ("DELETE", "/api/stints/{stint_id}/members/{user_id}"): (
        lambda c: {"path": f"/api/stints/{c.sid}/members/{c.extra_member}"},
        managers(204),
    ),
    ("POST", "/api/stints/{stint_id}/hypotheses"): (
        lambda c: {"json": {"statement": "调度员会用手机"}},
        writers(201),
    ),
    ("GET", "/api/stints/{stint_id}/hypotheses"): (lambda c: {}, members(200)),
    ("GET", "/api/hypotheses/{hypothesis_id}"): (lambda c: {}, members(200)),
    ("PATCH", "/api/hypotheses/{hypothesis_id}"): (lambda c: {"json": {"status": "supported"}}, writers(200)),
    ("DELETE", "/api/hypotheses/{hypothesis_id}"): (lambda c: {}, writers(204)),
    ("POST", "/api/stints/{stint_id}/observations"): (lambda c: {"json": OBS_BODY}, writers(201)),
    ("GET", "/api/stints/{stint_id}/observations"): (lambda c: {}, members(200)),
    ("GET", "/api/observations/{observation_id}"): (lambda c: {}, members(200)),
    ("PATCH", "/api/observations/{observation_id}"): (
        lambda c: {"json": {"text": "改"}, "headers": {"If-Match": '"1"'}},
        writers(200),
    ),
    ("DELETE", "/api/observations/{observation_id}"): (lambda c: {}, writers(204)),
    ("GET", "/api/stints/{stint_id}/days"): (lambda c: {}, members(200)),
    ("GET", "/api/stints/{stint_id}/days/{day}"): (lambda c: {}, members(200)),
    ("PUT", "/api/stints/{stint_id}/days/{day}"): (
        lambda c: {"json": {"summary": "今天跟了早班。"}},
        writers(200),
    ),
    # Without stint_id any signed-in user may search (and sees only their stints); naming a stint takes membership.
    ("GET", "/api/search"): (lambda c: {"params": {"q": "库存 kind:quote", "stint_id": c.sid}}, members(200)),
    # Sync answers per op (a non-member's op is rejected inside a 200); the feed shows only what is visible.
    ("POST", "/api/sync/push"): (
        lambda c: {"json": {"ops": []}, "headers": {"Idempotency-Key": "permission-matrix"}},
        signed_in(200),
    ),
    ("GET", "/api/sync/changes"): (lambda c: {}, signed_in(200)),
    # Debrief: insights, themes, actions, review, debrief, exports, share links (records made in _debrief_records).
    ("POST", "/api/stints/{stint_id}/insights"): (
        lambda c: {"json": {"title": "洞见", "statement": "陈述"}},
        writers(201),
    ),
    ("GET", "/api/stints/{stint_id}/insights"): (lambda c: {}, members(200)),
    ("PUT", "/api/stints/{stint_id}/insights/order"): (lambda c: {"json": {"insight_ids": []}}, writers(200)),
    ("GET", "/api/insights/{insight_id}"): (
        lambda c: {"path": f"/api/insights/{c.debrief['insight']}"},
        members(200),
    ),
    ("PATCH", "/api/insights/{insight_id}"): (
        lambda c: {"path": f"/api/insights/{c.debrief['insight']}", "json": {"title": "改"}},
        writers(200),
    ),
    ("DELETE", "/api/insights/{insight_id}"): (
        lambda c: {"path": f"/api/insights/{c.debrief['insight']}"},
        writers(204),
    ),
    ("POST", "/api/stints/{stint_id}/themes"): (lambda c: {"json": {"name": "排班"}}, writers(201)),
    ("GET", "/api/stints/{stint_id}/themes"): (lambda c: {}, members(200)),
    ("PATCH", "/api/themes/{theme_id}"): (
        lambda c: {"path": f"/api/themes/{c.debrief['theme']}", "json": {"name": "采购"}},
        writers(200),
    ),
    ("DELETE", "/api/themes/{theme_id}"): (
        lambda c: {"path": f"/api/themes/{c.debrief['theme']}"},
        writers(204),
    ),
    ("POST", "/api/stints/{stint_id}/actions"): (lambda c: {"json": {"title": "排班模板"}}, writers(201)),
    ("GET", "/api/stints/{stint_id}/actions"): (lambda c: {}, members(200)),
    ("GET", "/api/actions"): (lambda c: {}, signed_in(200)),
    ("GET", "/api/actions/{action_id}"): (
        lambda c: {"path": f"/api/actions/{c.debrief['action']}"},
        members(200),
    ),
    ("PATCH", "/api/actions/{action_id}"): (
        lambda c: {"path": f"/api/actions/{c.debrief['action']}", "json": {"title": "改"}},
        writers(200),
    ),
    # The researcher wrote the action: its author may withdraw it while it is proposed.
    ("DELETE", "/api/actions/{action_id}"): (
        lambda c: {"path": f"/api/actions/{c.debrief['action']}"},
        writers(204),
    ),
    ("POST", "/api/actions/{action_id}/review"): (
        lambda c: {
            "path": f"/api/actions/{c.debrief['action']}/review",
            "json": {"decision": "approve", "comment": "同意"},
        },
        managers(200),
    ),
    ("GET", "/api/stints/{stint_id}/debrief"): (lambda c: {}, members(200)),
    ("GET", "/api/stints/{stint_id}/export"): (lambda c: {"params": {"format": "md"}}, members(200)),
    ("POST", "/api/stints/{stint_id}/shares"): (lambda c: {"json": {}}, managers(201)),
    ("GET", "/api/stints/{stint_id}/shares"): (lambda c: {}, managers(200)),
    ("GET", "/api/shares/{share_id}/accesses"): (
        lambda c: {"path": f"/api/shares/{c.debrief['share']}/accesses"},
        managers(200),
    ),
    ("DELETE", "/api/shares/{share_id}"): (
        lambda c: {"path": f"/api/shares/{c.debrief['share']}"},
        managers(204),
    ),
    # Materials (records made in _material_records: a photo, an observation's list, a tus upload, by the researcher).
    ("POST", "/api/stints/{stint_id}/materials"): (
        lambda c: {"files": {"file": ("白板.jpg", PHOTO, "image/jpeg")}},
        writers(201),
    ),
    ("GET", "/api/stints/{stint_id}/materials"): (lambda c: {}, members(200)),
    ("GET", "/api/materials/{material_id}"): (
        lambda c: {"path": f"/api/materials/{c.materials['material']}"},
        members(200),
    ),
    ("GET", "/api/materials/{material_id}/content"): (
        lambda c: {"path": f"/api/materials/{c.materials['material']}/content"},
        members(200),
    ),
    ("GET", "/api/materials/{material_id}/preview"): (
        lambda c: {"path": f"/api/materials/{c.materials['material']}/preview"},
        members(200),
    ),
    ("PATCH", "/api/materials/{material_id}"): (
        lambda c: {
            "path": f"/api/materials/{c.materials['material']}",
            "json": {"caption": "白板照片"},
            "headers": {"If-Match": '"1"'},
        },
        writers(200),
    ),
    ("DELETE", "/api/materials/{material_id}"): (
        lambda c: {"path": f"/api/materials/{c.materials['material']}"},
        writers(204),
    ),
    ("GET", "/api/observations/{observation_id}/materials"): (lambda c: {}, members(200)),
    ("PUT", "/api/observations/{observation_id}/materials"): (
        lambda c: {"json": {"material_ids": [c.materials["material"]]}},
        writers(200),
    ),
    # tus: discovery is public by protocol; an upload belongs to whoever created it (others: 404).
    ("OPTIONS", "/api/uploads"): (lambda c: {}, everyone(204)),
    ("POST", "/api/uploads"): (
        lambda c: {"headers": {**TUS, "Upload-Length": "10", "Upload-Metadata": f"stint_id {_b64(c.sid)}"}},
        writers(201),
    ),
    ("HEAD", "/api/uploads/{upload_id}"): (
        lambda c: {"path": f"/api/uploads/{c.materials['upload']}", "headers": TUS},
        UPLOAD_OWNER(200),
    ),
    ("PATCH", "/api/uploads/{upload_id}"): (
        lambda c: {
            "path": f"/api/uploads/{c.materials['upload']}",
            "headers": {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            "content": "司机".encode(),
        },
        UPLOAD_OWNER(204),
    ),
    ("DELETE", "/api/uploads/{upload_id}"): (
        lambda c: {"path": f"/api/uploads/{c.materials['upload']}", "headers": TUS},
        UPLOAD_OWNER(204),
    ),
    # Share links are public: the token is the permission (outside the link: test_permissions_share.py).
    ("GET", "/api/public/{token}"): (lambda c: {"path": f"/api/public/{c.debrief['token']}"}, everyone(200)),
    ("GET", "/s/{token}"): (lambda c: {"path": f"/s/{c.debrief['token']}"}, everyone(200)),
    ("GET", "/api/public/{token}/materials/{material_id}"): (
        lambda c: {"path": f"/api/public/{c.debrief['token']}/materials/{c.materials['material']}"},
        everyone(200),
    ),
}


def _material_records(client, sid: str, t: dict[str, Any]) -> dict[str, str]:
    """A photo and a started tus upload (30 bytes of a CSV), both the researcher's."""
    r = t["researcher"].headers
    material = client.post(f"/api/stints/{sid}/materials", files={"file": ("仓库.jpg", PHOTO)}, headers=r)
    upload = client.post(
        "/api/uploads",
        headers={
            **r,
            **TUS,
            "Upload-Length": "30",
            "Upload-Metadata": f"stint_id {_b64(sid)},filename {_b64('a.csv')}",
        },
    )
    return {"material": material.json()["id"], "upload": upload.headers["location"].rsplit("/", 1)[-1]}


def _debrief_records(client, sid: str, t: dict[str, Any], obs: str, photo: str) -> dict[str, str]:
    """An insight with the observation and the photo as evidence, a theme and an action (by the
    researcher) and a share link with photos, for the debrief rows."""
    r = t["researcher"].headers
    evidence = [{"observation_id": obs}, {"material_id": photo}]
    insight = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "洞见", "statement": "陈述", "evidence": evidence},
        headers=r,
    )
    theme = client.post(f"/api/stints/{sid}/themes", json={"name": "主题"}, headers=r)
    action = client.post(f"/api/stints/{sid}/actions", json={"title": "行动"}, headers=r)
    share = client.post(
        f"/api/stints/{sid}/shares", json={"include_photos": True}, headers=t["manager"].headers
    ).json()
    return {
        "insight": insight.json()["id"],
        "theme": theme.json()["id"],
        "action": action.json()["id"],
        "share": share["id"],
        "token": share["token"],
    }


def _api_routes(settings) -> set[tuple[str, str]]:
    spec = create_app(settings).openapi()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_route_has_a_row(settings):
    routes = _api_routes(settings)
    assert routes - set(MATRIX) == set(), "add these routes to the permission matrix"
    assert set(MATRIX) - routes == set(), "the matrix names routes that no longer exist"
    incomplete = {route for route, (_, expected) in MATRIX.items() if set(expected) != set(COLUMNS)}
    assert incomplete == set(), f"every row needs exactly the columns {COLUMNS}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # No OCR: each of the ~460 cases uploads a photo, and reading its text (test_materials tests it)
    # added a quarter to the matrix's time in CI.
    return Settings(data_dir=tmp_path / "data", database_url=database_url, ocr=False)


def _context(client, t: dict[str, Any], person, caller: Any) -> Ctx:
    """The records every row may need, made afresh for each case."""
    sid = t["stint"]["id"]
    m = t["manager"].headers
    extra = person("临时成员")
    client.post(f"/api/stints/{sid}/members", json={"email": extra.email, "role": "researcher"}, headers=m)
    hyp = client.post(f"/api/stints/{sid}/hypotheses", json={"statement": "假设"}, headers=m).json()
    obs = client.post(
        f"/api/stints/{sid}/observations", json=OBS_BODY, headers=t["researcher"].headers
    ).json()
    session_id = None
    if caller is not None:
        listed = client.get("/api/auth/sessions", headers=caller.headers).json()
        session_id = listed[0]["id"]
    materials = _material_records(client, sid, t)
    return Ctx(
        sid=sid,
        hypothesis=hyp["id"],
        observation=obs["id"],
        extra_member=extra.id,
        caller=caller,
        session_id=session_id,
        outsider_email=person("被邀请者").email,
        debrief=_debrief_records(client, sid, t, obs["id"], materials["material"]),
        materials=materials,
    )


def _call(client, route: tuple[str, str], ctx: Ctx, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    method, template = route
    spec = MATRIX[route][0](ctx)
    path = spec.pop("path", None) or (
        template.replace("{stint_id}", ctx.sid)
        .replace("{hypothesis_id}", ctx.hypothesis)
        .replace("{observation_id}", ctx.observation)
        .replace("{day}", "2026-03-03")
    )
    r = client.request(method, path, headers={**headers, **spec.pop("headers", {})}, **spec)
    if r.status_code >= 400 and method != "HEAD":  # a HEAD answer has no body
        assert set(r.json()) == {"error"} and r.json()["error"]["code"], f"{method} {path}: {r.text[:200]}"
    return r


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_permission(route, role, client, stint_team, person):
    caller = None if role == "anonymous" else stint_team[role]
    ctx = _context(client, stint_team, person, caller)
    r = _call(client, route, ctx, caller.headers if caller else {})
    expected = MATRIX[route][1][role]
    assert r.status_code == expected, f"{route} as {role}: {r.status_code} {r.text[:200]}"
