"""Every route × every kind of caller, with the status each must get.

Non-members (an admin included) get 404 inside a stint, members lacking the role 403, anonymous 401.
A route added without a row here fails ``test_every_route_has_a_row``."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from api.main import create_app
from tests.conftest import PASSWORD, STINT

ROLES = ("anonymous", "outsider", "admin", "viewer", "researcher", "manager")


@dataclass
class Ctx:
    sid: str
    hypothesis: str
    observation: str
    extra_member: str
    caller: Any  # the Person making the request, None when anonymous
    session_id: str | None


Build = Callable[[Ctx], dict[str, Any]]


def signed_in(ok: int) -> dict[str, int]:
    return {"anonymous": 401} | {r: ok for r in ROLES[1:]}


def admin_only(ok: int) -> dict[str, int]:
    return {"anonymous": 401, "outsider": 403, "viewer": 403, "researcher": 403, "manager": 403, "admin": ok}


def members(ok: int) -> dict[str, int]:
    return {"anonymous": 401, "outsider": 404, "admin": 404, "viewer": ok, "researcher": ok, "manager": ok}


def writers(ok: int) -> dict[str, int]:
    return members(ok) | {"viewer": 403}


def managers(ok: int) -> dict[str, int]:
    return members(ok) | {"viewer": 403, "researcher": 403}


OBS_BODY = {
    "text": "仓库主管说：系统里的库存数据每天要人工核对两遍。",
    "kind": "quote",
    "speaker_role": "仓库主管",
}

# (method, path template) -> (request builder, expected status per role)
MATRIX: dict[tuple[str, str], tuple[Build, dict[str, int]]] = {
    ("GET", "/healthz"): (lambda c: {}, dict.fromkeys(ROLES, 200)),
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
        lambda c: {"json": {"email": c.outsider_email, "role": "viewer"}},  # type: ignore[attr-defined]
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
}


def _api_routes(settings) -> set[tuple[str, str]]:
    spec = create_app(settings).openapi()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_route_has_a_row(settings):
    routes = _api_routes(settings)
    assert routes - set(MATRIX) == set(), "add these routes to the permission matrix"
    assert set(MATRIX) - routes == set(), "the matrix names routes that no longer exist"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_permission(route, role, client, stint_team, person):
    method, template = route
    build, expected = MATRIX[route]
    t = stint_team
    sid = t["stint"]["id"]
    m = t["manager"].headers
    extra = person("临时成员")
    client.post(f"/api/stints/{sid}/members", json={"email": extra.email, "role": "researcher"}, headers=m)
    hyp = client.post(f"/api/stints/{sid}/hypotheses", json={"statement": "假设"}, headers=m).json()
    obs = client.post(
        f"/api/stints/{sid}/observations", json=OBS_BODY, headers=t["researcher"].headers
    ).json()
    caller = None if role == "anonymous" else t[role]
    session_id = None
    if caller is not None:
        listed = client.get("/api/auth/sessions", headers=caller.headers).json()
        session_id = listed[0]["id"]
    ctx = Ctx(
        sid=sid,
        hypothesis=hyp["id"],
        observation=obs["id"],
        extra_member=extra.id,
        caller=caller,
        session_id=session_id,
    )
    ctx.outsider_email = person("被邀请者").email  # type: ignore[attr-defined]
    spec = build(ctx)
    path = spec.pop("path", None) or (
        template.replace("{stint_id}", sid)
        .replace("{hypothesis_id}", hyp["id"])
        .replace("{observation_id}", obs["id"])
        .replace("{day}", "2026-03-03")
    )
    headers = {**(caller.headers if caller else {}), **spec.pop("headers", {})}
    r = client.request(method, path, headers=headers, **spec)
    assert r.status_code == expected[role], f"{method} {path} as {role}: {r.status_code} {r.text[:200]}"
    if r.status_code >= 400:
        assert set(r.json()) == {"error"} and r.json()["error"]["code"]
