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
