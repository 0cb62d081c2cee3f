def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_create_stint_and_observation(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    r = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "调度员每天早上手工排班，用 Excel"},
        headers=t["researcher"].headers,
    )
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"1"'
