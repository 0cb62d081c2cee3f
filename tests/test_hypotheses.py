def test_hypotheses_lifecycle(client, stint_team):
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"].headers
    created = client.post(
        f"/api/stints/{sid}/hypotheses",
        json={"statement": "客户的采购决策由财务主导", "dimension": "buying"},
        headers=r,
    )
    assert created.status_code == 201, created.text
    h = created.json()
    assert h["status"] == "open" and h["dimension"] == "buying" and created.headers["ETag"] == '"1"'
    url = f"/api/hypotheses/{h['id']}"
    upd = client.patch(url, json={"status": "refuted"}, headers={**r, "If-Match": '"1"'})
    assert upd.status_code == 200 and upd.json()["status"] == "refuted" and upd.json()["version"] == 2
    assert (
        client.patch(url, json={"status": "supported"}, headers={**r, "If-Match": '"1"'}).status_code == 412
    )
    assert client.patch(url, json={"status": "maybe"}, headers=r).status_code == 422
    assert client.patch(url, json={"statement": None}, headers=r).status_code == 422
    assert client.patch(url, json={"status": "open"}, headers=t["viewer"].headers).status_code == 403
    listed = client.get(f"/api/stints/{sid}/hypotheses", headers=t["viewer"].headers).json()
    assert [x["id"] for x in listed] == [h["id"]]
    assert client.delete(url, headers=r).status_code == 204
    assert client.get(url, headers=r).status_code == 410
    assert client.get(f"/api/stints/{sid}/hypotheses", headers=r).json() == []
    bad = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "x", "dimension": "mood"}, headers=r
    )
    assert bad.status_code == 422
