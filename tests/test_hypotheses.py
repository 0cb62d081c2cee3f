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


def test_a_deleted_hypothesis_never_blocks_link_changes(client, stint_team, db):
    """Links to a deleted hypothesis stay on record but are not shown; sending one (a stale read, a
    device that linked offline) is ignored, never a 422; links to live hypotheses change as usual."""
    import uuid

    import sqlalchemy as sa

    from api.models import ObservationHypothesis
    from tests.test_sync import create_op, push

    t = stint_team
    sid, me, other = t["stint"]["id"], t["researcher"], t["manager"]
    h1, h2 = (
        client.post(f"/api/stints/{sid}/hypotheses", json={"statement": s}, headers=me.headers).json()["id"]
        for s in ("调度靠经验", "财务主导采购")
    )
    links = [{"hypothesis_id": h1, "stance": "refutes"}, {"hypothesis_id": h2, "stance": "supports"}]
    obs = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "主管说了算", "hypothesis_links": links},
        headers=me.headers,
    ).json()
    url = f"/api/observations/{obs['id']}"
    assert client.delete(f"/api/hypotheses/{h2}", headers=other.headers).status_code == 204

    read = client.get(url, headers=me.headers).json()
    assert read["hypothesis_links"] == [{"hypothesis_id": h1, "stance": "refutes"}] and read["version"] == 1
    # Nor does the list's hypothesis filter find it by the link it does not show.
    listed = f"/api/stints/{sid}/observations"
    assert client.get(listed, params={"hypothesis": h2}, headers=me.headers).json()["items"] == []
    assert [
        o["id"] for o in client.get(listed, params={"hypothesis": h1}, headers=me.headers).json()["items"]
    ] == [obs["id"]]
    # An edit that sends the links as read before the deletion, flipping h1 only: accepted.
    r = client.patch(
        url,
        json={"hypothesis_links": [{**links[0], "stance": "supports"}, links[1]]},
        headers={**me.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["hypothesis_links"] == [{"hypothesis_id": h1, "stance": "supports"}]
    assert r.json()["version"] == 2
    # A sync link op on that observation works; one naming the deleted hypothesis changes nothing.
    link = {"op_id": uuid.uuid4().hex, "type": "hypothesis_link", "id": obs["id"], "op": "upsert"}
    results = push(
        client,
        me,
        [
            {**link, "data": {"hypothesis_id": h1, "stance": "refutes"}},
            {**link, "op_id": uuid.uuid4().hex, "data": {"hypothesis_id": h2, "stance": "refutes"}},
            {**link, "op_id": uuid.uuid4().hex, "op": "delete", "data": {"hypothesis_id": h2}},
        ],
    ).json()["results"]
    assert [(x["status"], x["version"]) for x in results] == [("applied", 3)] * 3
    assert client.get(url, headers=me.headers).json()["hypothesis_links"] == [
        {"hypothesis_id": h1, "stance": "refutes"}
    ]
    # The evidence h2 had is kept in the database (not shown while h2 is deleted).
    rows = db.execute(
        sa.select(ObservationHypothesis.hypothesis_id, ObservationHypothesis.stance).where(
            ObservationHypothesis.observation_id == uuid.UUID(obs["id"])
        )
    ).all()
    assert sorted((str(h), s) for h, s in rows) == sorted([(h1, "refutes"), (h2, "supports")])
    # New observations linking the deleted hypothesis (made offline before the phone knew): saved
    # without that link, REST and sync alike.
    created = client.post(
        f"/api/stints/{sid}/observations",
        json={"text": "离线写的", "hypothesis_ids": [h2, h1]},
        headers=me.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["hypothesis_links"] == [{"hypothesis_id": h1, "stance": "supports"}]
    op = create_op(sid, "也是离线写的", hypothesis_ids=[h2])
    assert push(client, me, [op]).json()["results"][0]["status"] == "applied"
    assert client.get(f"/api/observations/{op['id']}", headers=me.headers).json()["hypothesis_links"] == []
    # A hypothesis this stint never had is still refused.
    r = client.patch(
        url,
        json={"hypothesis_ids": [str(uuid.uuid4())]},
        headers={**me.headers, "If-Match": '"3"'},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_hypothesis"
