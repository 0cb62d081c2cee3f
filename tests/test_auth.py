"""Signing in, sessions per device, throttling, and what ends a session."""

import hashlib

from sqlmodel import select

from api.models import AuthSession
from tests.conftest import PASSWORD


def sign_in(client, email, password=PASSWORD, agent="test-phone"):
    return client.post(
        "/api/auth/token", data={"username": email, "password": password}, headers={"User-Agent": agent}
    )


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_sign_in_returns_opaque_token_stored_only_as_hash(client, person, db):
    p = person("李伟")
    r = sign_in(client, p.email.upper())  # e-mail is case-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_at"]
    token = body["access_token"]
    assert len(token) >= 43  # 32 random bytes, base64url: 256 bits
    stored = db.exec(select(AuthSession.token_hash)).all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored
    me = client.get("/api/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["name"] == "李伟"
    assert "password_hash" not in me.json()


def test_unknown_email_and_wrong_password_answer_the_same(client, person):
    p = person()
    wrong = sign_in(client, p.email, "not the password")
    unknown = sign_in(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_repeated_failures_are_refused_with_retry_after(client, person, settings):
    p = person()
    for _ in range(settings.login_max_failures):
        assert sign_in(client, p.email, "wrong-password").status_code == 401
    locked = sign_in(client, p.email, PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert locked.json()["error"]["code"] == "too_many_requests"
    # Another account is not affected.
    other = person()
    assert sign_in(client, other.email).status_code == 200


def test_success_resets_the_failure_count(client, person, settings):
    p = person()
    for _ in range(settings.login_max_failures - 1):
        sign_in(client, p.email, "wrong-password")
    assert sign_in(client, p.email).status_code == 200
    for _ in range(settings.login_max_failures - 1):
        sign_in(client, p.email, "wrong-password")
    assert sign_in(client, p.email).status_code == 200


def test_missing_or_bad_token_is_401(client):
    assert client.get("/api/me").status_code == 401
    r = client.get("/api/me", headers=bearer("x" * 43))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_sessions_are_listed_and_revoked_one_device_at_a_time(client, person):
    p = person()
    phone = sign_in(client, p.email, agent="iPhone Safari").json()
    laptop = sign_in(client, p.email, agent="Firefox").json()
    listed = client.get("/api/auth/sessions", headers=bearer(laptop["access_token"])).json()
    agents = {s["user_agent"]: s for s in listed}
    assert {"iPhone Safari", "Firefox"} <= set(agents)
    assert agents["Firefox"]["current"] is True and agents["iPhone Safari"]["current"] is False

    # The phone was lost: revoke it from the laptop.
    r = client.delete(f"/api/auth/sessions/{phone['session_id']}", headers=bearer(laptop["access_token"]))
    assert r.status_code == 204
    gone = client.get("/api/me", headers=bearer(phone["access_token"]))
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "session_ended"
    assert client.get("/api/me", headers=bearer(laptop["access_token"])).status_code == 200
    # Revoking twice, or someone else's session, is 404.
    assert (
        client.delete(
            f"/api/auth/sessions/{phone['session_id']}", headers=bearer(laptop["access_token"])
        ).status_code
        == 404
    )
    other = person()
    assert (
        client.delete(f"/api/auth/sessions/{laptop['session_id']}", headers=other.headers).status_code == 404
    )


def test_logout_ends_only_this_device(client, person):
    p = person()
    a = sign_in(client, p.email).json()["access_token"]
    b = sign_in(client, p.email).json()["access_token"]
    assert client.post("/api/auth/logout", headers=bearer(a)).status_code == 204
    assert client.get("/api/me", headers=bearer(a)).status_code == 401
    assert client.get("/api/me", headers=bearer(b)).status_code == 200


def test_password_change_ends_other_sessions(client, person):
    p = person()
    here = sign_in(client, p.email).json()["access_token"]
    elsewhere = sign_in(client, p.email).json()["access_token"]
    wrong = client.post(
        "/api/me/password",
        json={"current_password": "nope", "new_password": "a new long pass"},
        headers=bearer(here),
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "wrong_password"
    r = client.post(
        "/api/me/password",
        json={"current_password": PASSWORD, "new_password": "a new long pass"},
        headers=bearer(here),
    )
    assert r.status_code == 204
    assert client.get("/api/me", headers=bearer(elsewhere)).status_code == 401
    assert client.get("/api/me", headers=bearer(here)).status_code == 200
    assert sign_in(client, p.email).status_code == 401
    assert sign_in(client, p.email, "a new long pass").status_code == 200


def test_short_new_password_is_422(client, person):
    p = person()
    r = client.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "short"}, headers=p.headers
    )
    assert r.status_code == 422


def test_admin_disables_user_and_their_sessions_end(client, person):
    admin, p = person(admin=True), person()
    token = sign_in(client, p.email).json()["access_token"]
    r = client.patch(f"/api/users/{p.id}", json={"is_active": False}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get("/api/me", headers=bearer(token)).status_code == 401
    assert client.get("/api/me", headers=p.headers).status_code == 401
    assert sign_in(client, p.email).status_code == 401
    # Re-enabled, the account signs in again.
    client.patch(f"/api/users/{p.id}", json={"is_active": True}, headers=admin.headers)
    assert sign_in(client, p.email).status_code == 200


def test_admin_password_reset_ends_all_sessions(client, person):
    admin, p = person(admin=True), person()
    r = client.patch(f"/api/users/{p.id}", json={"password": "reset by admin 1"}, headers=admin.headers)
    assert r.status_code == 200
    assert client.get("/api/me", headers=p.headers).status_code == 401
    assert sign_in(client, p.email, "reset by admin 1").status_code == 200


def test_account_management_is_for_admins(client, person):
    admin, p = person(admin=True), person()
    assert client.get("/api/users", headers=p.headers).status_code == 403
    assert (
        client.post(
            "/api/users", json={"email": "x@example.com", "password": "long enough"}, headers=p.headers
        ).status_code
        == 403
    )
    r = client.post(
        "/api/users",
        json={"email": "New.Person@Example.com", "name": "新同事", "password": "long enough"},
        headers=admin.headers,
    )
    assert r.status_code == 201 and r.json()["email"] == "new.person@example.com"
    dup = client.post(
        "/api/users",
        json={"email": "new.person@example.com", "password": "long enough"},
        headers=admin.headers,
    )
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "email_taken"
    bad = client.post(
        "/api/users", json={"email": "not-an-email", "password": "long enough"}, headers=admin.headers
    )
    assert bad.status_code == 422
    assert (
        client.patch(f"/api/users/{admin.id}", json={"is_active": False}, headers=admin.headers).status_code
        == 409
    )
    assert sign_in(client, "new.person@example.com", "long enough").status_code == 200


def test_browser_session_lives_in_an_httponly_cookie_with_csrf_header(client, person):
    p = person("手机用户")
    r = client.post("/api/auth/session", json={"email": p.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert "access_token" not in r.json() and r.json()["user"]["email"] == p.email
    cookie = r.headers["set-cookie"]
    assert (
        "fieldbook_session=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie.replace("Strict", "strict")
    )
    # The cookie alone reads...
    assert client.get("/api/me").status_code == 200
    # ...but a write needs the CSRF header, which a cross-site form cannot send.
    from tests.conftest import STINT

    blocked = client.post("/api/stints", json=STINT)
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "csrf_required"
    assert client.post("/api/stints", json=STINT, headers={"X-Fieldbook-CSRF": "1"}).status_code == 201
    out = client.post("/api/auth/logout", headers={"X-Fieldbook-CSRF": "1"})
    assert out.status_code == 204
    client.cookies.clear()
    assert (
        client.get(
            "/api/me", cookies={"fieldbook_session": cookie.split("=", 1)[1].split(";")[0]}
        ).status_code
        == 401
    )


def test_browser_sign_in_failures_match_the_token_endpoint(client, person):
    p = person()
    wrong = client.post("/api/auth/session", json={"email": p.email, "password": "wrong password"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    assert "set-cookie" not in wrong.headers
    assert client.post("/api/auth/session", json={"email": p.email}).status_code == 422


def test_one_address_cannot_try_many_accounts(client, person, settings):
    accounts = [person() for _ in range(15)]  # 15 x 4 attempts > 10 x 5 allowed per address
    attempts = 0
    for p in accounts:
        for _ in range(settings.login_max_failures - 1):  # under each account's own limit
            r = sign_in(client, p.email, "wrong-password")
            attempts += 1
            if r.status_code == 429:
                break
        if r.status_code == 429:
            break
    assert r.status_code == 429
    assert attempts <= settings.login_max_failures * 10 + 1


def test_stint_routes_check_the_session_on_every_request(client, person):
    """Sign-in and the stint role are checked together (one threadpool call): a revoked session is
    refused at once there too, and a request without credentials is 401 before anything else."""
    from tests.conftest import STINT

    p = person()
    laptop = sign_in(client, p.email).json()
    phone = sign_in(client, p.email).json()
    stint = client.post("/api/stints", json=STINT, headers=bearer(laptop["access_token"])).json()
    path = f"/api/stints/{stint['id']}/observations"
    r = client.post(path, json={"text": "门卫处排队领单"}, headers=bearer(phone["access_token"]))
    assert r.status_code == 201, r.text
    revoked = client.delete(
        f"/api/auth/sessions/{phone['session_id']}", headers=bearer(laptop["access_token"])
    )
    assert revoked.status_code == 204
    for method in ("GET", "POST"):
        r = client.request(method, path, json={"text": "再来一条"}, headers=bearer(phone["access_token"]))
        assert r.status_code == 401 and r.json()["error"]["code"] == "session_ended", r.text
    assert client.get(path, headers=bearer(laptop["access_token"])).status_code == 200
    assert client.get(path).status_code == 401
    assert client.get("/api/stints/not-a-uuid/observations").status_code == 401
    bad = client.get("/api/stints/not-a-uuid/observations", headers=bearer(laptop["access_token"]))
    assert bad.status_code == 422


def test_sign_in_is_looked_up_once_per_request(app, client, person):
    """A route asking for both a stint role and the current user reads the session once."""
    import sqlalchemy as sa
    from fastapi import APIRouter

    from api.access import StintDep
    from api.auth import CurrentUser
    from tests.conftest import STINT

    router = APIRouter()

    @router.get("/api/test/both/{stint_id}")
    def both(access: StintDep, user: CurrentUser) -> dict[str, str]:
        return {"role": access.role.value, "user": user.name}

    @router.get("/api/test/user-first/{stint_id}")
    def user_first(user: CurrentUser, access: StintDep) -> dict[str, str]:
        return {"role": access.role.value, "user": user.name}

    app.include_router(router)
    app.router.routes.insert(0, app.router.routes.pop())  # before the PWA's catch-all mount at /

    p = person("李研究员")
    stint = client.post("/api/stints", json=STINT, headers=p.headers).json()
    lookups: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if "auth_session" in statement and statement.lstrip().upper().startswith("SELECT"):
            lookups.append(statement)

    sa.event.listen(app.state.engine, "before_cursor_execute", count)
    try:
        for route in ("both", "user-first"):
            lookups.clear()
            r = client.get(f"/api/test/{route}/{stint['id']}", headers=p.headers)
            assert r.status_code == 200 and r.json() == {"role": "manager", "user": "李研究员"}, r.text
            assert len(lookups) == 1, lookups
        r = client.get(f"/api/test/both/{stint['id']}", headers=person().headers)
        assert r.status_code == 404  # not a member
    finally:
        sa.event.remove(app.state.engine, "before_cursor_execute", count)
