"""Bad input gets a clear 4xx in one JSON shape, never a 500; the OpenAPI spec declares it."""

import json

import pytest


def assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_malformed_json_and_wrong_types(client, stint_team):
    t = stint_team
    url, h = f"/api/stints/{t['stint']['id']}/observations", t["researcher"].headers
    assert_error(
        client.post(
            url, content=b'{"text": "unterminated', headers={**h, "Content-Type": "application/json"}
        ),
        422,
        "validation_error",
    )
    assert_error(
        client.post(url, content=b"\xff\xfe not utf-8", headers={**h, "Content-Type": "application/json"}),
        422,
    )
    assert_error(client.post(url, content=b"[1, 2]", headers={**h, "Content-Type": "application/json"}), 422)
    assert_error(
        client.post(
            url, content=b"text=hi", headers={**h, "Content-Type": "application/x-www-form-urlencoded"}
        ),
        422,
    )
    assert_error(client.post(url, json=["text"], headers=h), 422)
    assert_error(client.post(url, json={"text": {"nested": 1}}, headers=h), 422)


def test_bad_ids_in_paths(client, stint_team):
    h = stint_team["researcher"].headers
    assert_error(client.get("/api/stints/not-a-uuid", headers=h), 422, "validation_error")
    assert_error(client.get("/api/observations/123", headers=h), 422)
    assert_error(
        client.get("/api/stints/00000000-0000-0000-0000-000000000000", headers=h), 404, "stint_not_found"
    )
    assert_error(client.get("/api/observations/00000000-0000-0000-0000-000000000000", headers=h), 404)


def test_unknown_route_and_method(client, stint_team):
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(
        client.put("/api/stints", json={}, headers=stint_team["manager"].headers), 405, "method_not_allowed"
    )


def test_body_over_the_limit_is_413(client, stint_team, settings):
    t = stint_team
    url, h = f"/api/stints/{t['stint']['id']}/observations", t["researcher"].headers
    big = json.dumps({"text": "观" * settings.max_body_bytes}).encode()
    assert_error(
        client.post(url, content=big, headers={**h, "Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(settings.max_body_bytes // 1000 + 2):
            yield b" " * 1000

    assert_error(client.post(url, content=chunks(), headers={**h, "Content-Type": "application/json"}), 413)
    assert client.get(url, headers=h).json()["items"] == []


def test_security_headers_on_every_answer(client, stint_team):
    for r in (client.get("/healthz"), client.get("/api/me"), client.get("/")):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_openapi_declares_error_answers(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert "422" in codes, (method, path)
            schema = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)
            needs_auth = (
                path.startswith("/api/")
                and path not in ("/api/auth/token",)
                and not path.startswith("/api/public/")
            )
            if needs_auth and method != "options":  # tus discovery is public by protocol
                assert "401" in codes, (method, path)
            if "{stint_id}" in path or "{observation_id}" in path or "{hypothesis_id}" in path:
                assert "404" in codes, (method, path)


@pytest.mark.parametrize("query", ["%00", "a%00b", "a%00@example.com"])
def test_nul_in_query_is_a_4xx(client, stint_team, query):
    t = stint_team
    r = client.get(
        f"/api/stints/{t['stint']['id']}/observations?tag={query}&author={query}",
        headers=t["researcher"].headers,
    )
    assert 400 <= r.status_code < 500
    r = client.post("/api/auth/token", data={"username": "a\x00@example.com", "password": "x"})
    assert r.status_code == 401


def test_a_record_of_another_stint_answers_as_no_record(client, stint_team):
    """A non-member learns nothing from an id: a real observation, hypothesis, material or theme of a
    stint they are not in gets the very answer an id that exists nowhere gets."""
    t = stint_team
    sid, researcher, outsider = t["stint"]["id"], t["researcher"].headers, t["outsider"].headers
    made = {
        "observations": client.post(
            f"/api/stints/{sid}/observations", json={"text": "门卫处排队"}, headers=researcher
        ),
        "hypotheses": client.post(
            f"/api/stints/{sid}/hypotheses", json={"statement": "排班靠经验"}, headers=researcher
        ),
        "materials": client.post(
            f"/api/stints/{sid}/materials",
            files={"file": ("记录.txt", "手写单据".encode())},
            headers=researcher,
        ),
        "themes": client.post(f"/api/stints/{sid}/themes", json={"name": "排班"}, headers=researcher),
        "insights": client.post(
            f"/api/stints/{sid}/insights",
            json={"title": "排班全靠经验", "statement": "调度员凭经验排班"},
            headers=researcher,
        ),
        "actions": client.post(
            f"/api/stints/{sid}/actions", json={"title": "试点智能排班"}, headers=researcher
        ),
    }
    for kind, r in made.items():
        assert r.status_code == 201, (kind, r.text)
        real = client.get(f"/api/{kind}/{r.json()['id']}", headers=outsider)
        nowhere = client.get(f"/api/{kind}/00000000-0000-4000-8000-000000000000", headers=outsider)
        if kind == "themes":  # no GET of one theme: a PATCH answers the same way
            real = client.patch(f"/api/themes/{r.json()['id']}", json={"name": "x"}, headers=outsider)
            nowhere = client.patch(
                "/api/themes/00000000-0000-4000-8000-000000000000", json={"name": "x"}, headers=outsider
            )
        assert real.status_code == nowhere.status_code == 404, kind
        assert real.json() == nowhere.json(), kind
