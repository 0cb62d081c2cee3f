"""A create answers from what it inserted, without reading it back: that answer must be exactly what
reading the observation answers (the retry of the same create, a GET, the day's page)."""

import uuid

from tests.conftest import STINT


def test_create_answer_is_what_a_read_answers(client, stint_team):
    t = stint_team
    sid, h, m = t["stint"]["id"], t["researcher"].headers, t["manager"].headers
    first = client.post(f"/api/stints/{sid}/hypotheses", json={"statement": "排班靠经验"}, headers=m).json()
    second = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "系统数据不准"}, headers=m
    ).json()
    bodies = [
        {"text": "最少的字段"},
        {
            "id": str(uuid.uuid4()),
            "text": "调度员每天早上手工排班",
            "kind": "quote",
            "observed_at": "2026-03-03T23:50:00+08:00",
            "quote": "我们全靠经验",
            "speaker_role": "调度主管",
            "speaker_name": "王",
            "dimension": "words_actions",
            "tags": ["#排班", "Excel", "excel", "现场"],
            "hypothesis_ids": [second["id"]],
            "hypothesis_links": [{"hypothesis_id": first["id"], "stance": "refutes"}],
        },
    ]
    for body in bodies:
        created = client.post(f"/api/stints/{sid}/observations", json=body, headers=h)
        assert created.status_code == 201, created.text
        read = client.get(f"/api/observations/{created.json()['id']}", headers=h)
        assert read.status_code == 200
        assert created.json() == read.json()
        assert created.headers["ETag"] == read.headers["ETag"]
        if "id" in body:
            retry = client.post(f"/api/stints/{sid}/observations", json=body, headers=h)
            assert retry.status_code == 200 and retry.json() == created.json()


def test_create_answer_names_the_author_as_stored(client, stint_team):
    t = stint_team
    other = client.post(
        "/api/stints", json={**STINT, "title": "另一个项目"}, headers=t["manager"].headers
    ).json()
    created = client.post(
        f"/api/stints/{other['id']}/observations", json={"text": "经理自己记的"}, headers=t["manager"].headers
    ).json()
    read = client.get(f"/api/observations/{created['id']}", headers=t["manager"].headers).json()
    assert created["author_name"] == read["author_name"] != ""
