"""Authentication before input validation: a caller without a valid session learns nothing about a
route's inputs (401, however malformed its path); a signed-in caller gets 422 for them, as before."""

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import STINT, Person

WRONG = {"Authorization": "Bearer wrong"}
ROUTES = [
    ("GET", "/api/stints/not-a-uuid"),
    ("PATCH", "/api/stints/not-a-uuid"),
    ("POST", "/api/stints/not-a-uuid/observations"),
    ("GET", "/api/stints/not-a-uuid/days/not-a-date"),
    ("DELETE", "/api/stints/not-a-uuid/members/not-a-uuid"),
    ("GET", "/api/observations/not-a-uuid"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_valid_session_and_a_malformed_id_is_401(client: TestClient, method: str, path: str) -> None:
    for headers in ({}, WRONG):
        r = client.request(method, path, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] in {"not_authenticated", "invalid_token"}
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_an_ended_session_and_a_malformed_id_is_401(client: TestClient, person: Any) -> None:
    p: Person = person()
    assert client.post("/api/auth/logout", headers=p.headers).status_code == 204
    r = client.get("/api/stints/not-a-uuid", headers=p.headers)
    assert r.status_code == 401, r.text


def test_signed_in_a_malformed_id_is_still_422(client: TestClient, person: Any) -> None:
    """FastAPI's own answer, unchanged: every invalid input of the request is listed."""
    p: Person = person()
    for method, path in ROUTES:
        r = client.request(method, path, headers=p.headers)
        assert r.status_code == 422, (method, path, r.text)
        first = r.json()["error"]["details"][0]
        assert first["loc"][0] == "path" and first["type"] == "uuid_parsing", r.text
    msg = "Input should be a valid UUID, invalid character: found `n` at 0"
    r = client.get("/api/stints/not-a-uuid", headers=p.headers)
    assert r.json() == {
        "error": {
            "code": "validation_error",
            "message": f"path.stint_id: {msg}",
            "details": [{"loc": ["path", "stint_id"], "msg": msg, "type": "uuid_parsing"}],
        }
    }
    r = client.get("/api/stints/not-a-uuid/days/not-a-date", headers=p.headers)
    assert [d["loc"] for d in r.json()["error"]["details"]] == [["path", "stint_id"], ["path", "day"]]


def test_signed_in_a_well_formed_id_still_reaches_the_stint(client: TestClient, person: Any) -> None:
    p: Person = person()
    stint = client.post("/api/stints", json=STINT, headers=p.headers).json()
    assert client.get(f"/api/stints/{stint['id']}", headers=p.headers).status_code == 200
    assert client.get(f"/api/stints/{stint['id']}", headers=WRONG).status_code == 401
    upper = stint["id"].upper()  # any spelling the uuid type accepts, as before
    assert client.get(f"/api/stints/{upper}", headers=p.headers).status_code == 200
    assert client.get(f"/api/stints/{stint['id']}", headers=person().headers).status_code == 404


def test_every_signed_in_route_authenticates_before_it_reads_its_path(
    app: FastAPI, client: TestClient
) -> None:
    """Every operation the spec marks as needing a session, with each path parameter malformed."""
    spec = app.openapi()
    checked = 0
    for path, operations in spec["paths"].items():
        if "{" not in path:
            continue
        for method, operation in operations.items():
            if not operation.get("security"):
                continue
            url = re.sub(r"\{[^}]+\}", "not-a-uuid", path)
            # tus answers a request without its protocol version 412 before anything else.
            r = client.request(method.upper(), url, headers={**WRONG, "Tus-Resumable": "1.0.0"})
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            checked += 1
    assert checked > 40


UNREADABLE = b'{"text": "\xe7\x8e\xb0\xe5\x9c\xba'  # cut off in the middle of the value: not JSON


def _json_bodied(app: FastAPI) -> list[tuple[str, str]]:
    """The operations that need a session and take a JSON body, with every path id well formed."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if operation.get("security") and "application/json" in content:
                found.append(
                    (method.upper(), re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path))
                )
    return found


def test_no_valid_session_and_a_body_that_is_not_json_is_401(app: FastAPI, client: TestClient) -> None:
    """FastAPI reads the body before any dependency: its 422 would come before the session check."""
    routes = _json_bodied(app)
    assert len(routes) > 20
    for method, url in routes:
        for headers in ({}, WRONG):
            r = client.request(
                method, url, content=UNREADABLE, headers={**headers, "Content-Type": "application/json"}
            )
            assert r.status_code == 401, (method, url, r.status_code, r.text)
            assert r.headers["WWW-Authenticate"] == "Bearer"


def test_an_ended_session_and_a_body_that_is_not_json_is_401(client: TestClient, person: Any) -> None:
    p: Person = person()
    assert client.post("/api/auth/logout", headers=p.headers).status_code == 204
    r = client.post(
        "/api/stints", content=UNREADABLE, headers={**p.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "session_ended"


def test_signed_in_a_body_that_is_not_json_is_still_422(
    app: FastAPI, client: TestClient, person: Any
) -> None:
    p: Person = person()
    stint = client.post("/api/stints", json=STINT, headers=p.headers).json()
    for url in ("/api/stints", f"/api/stints/{stint['id']}/observations", "/api/sync/push"):
        headers = {**p.headers, "Content-Type": "application/json", "Idempotency-Key": "k1"}
        r = client.post(url, content=UNREADABLE, headers=headers)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"]["details"][0]["type"] == "json_invalid"


def test_a_cookie_signed_write_without_its_header_is_403_before_the_body(
    client: TestClient, person: Any
) -> None:
    p: Person = person()
    token = p.headers["Authorization"].removeprefix("Bearer ")
    client.cookies.set("fieldbook_session", token)
    try:
        r = client.post("/api/stints", content=UNREADABLE, headers={"Content-Type": "application/json"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_required", r.text
    finally:
        client.cookies.clear()


def test_public_routes_still_answer_422_for_a_body_that_is_not_json(client: TestClient) -> None:
    r = client.post("/api/auth/token", content=UNREADABLE, headers={"Content-Type": "application/json"})
    assert r.status_code in {400, 422}, r.text
