"""The assembled debrief, its figures checked on a known log."""

from datetime import date, timedelta

import pytest

# (who, observed_at with offset, kind, dimension, quote, speaker_role, stance on the hypothesis)
LOG = [
    ("researcher", "2026-03-02T09:00:00+08:00", "note", "scene", None, None, "supports"),
    (
        "researcher",
        "2026-03-01T16:30:00+00:00",
        "quote",
        "words_actions",
        "排班还得靠人",
        "调度员",
        "supports",
    ),
    (
        "researcher",
        "2026-03-03T23:50:00+08:00",
        "quote",
        "organisation",
        "预算是老板拍板的",
        "财务",
        "refutes",
    ),
    ("manager", "2026-03-05T10:00:00+08:00", "pain_point", None, "系统太慢", "调度员", None),
    ("manager", "2026-03-27T18:00:00+08:00", "process", "scene", None, None, None),
    ("manager", "2026-03-28T09:00:00+08:00", "idea", "scene", "要是能自动排就好了", None, None),
]


@pytest.fixture
def known(client, stint_team):
    t = stint_team
    sid = t["stint"]["id"]
    h = client.post(
        f"/api/stints/{sid}/hypotheses",
        json={"statement": "调度员愿意用系统排班"},
        headers=t["manager"].headers,
    ).json()
    ids = []
    for who, at, kind, dimension, quote, role, stance in LOG:
        body = {"text": f"{kind} {at}", "observed_at": at, "kind": kind, "dimension": dimension}
        if quote:
            body |= {"quote": quote, "speaker_role": role, "speaker_name": "张三"}
        if stance:
            body["hypothesis_links"] = [{"hypothesis_id": h["id"], "stance": stance}]
        r = client.post(f"/api/stints/{sid}/observations", json=body, headers=t[who].headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    # Deleted observations count for nothing.
    gone = client.post(
        f"/api/stints/{sid}/observations",
        json={
            "text": "删掉的",
            "observed_at": "2026-03-10T10:00:00+08:00",
            "quote": "x",
            "speaker_role": "老板",
            "hypothesis_ids": [h["id"]],
        },
        headers=t["researcher"].headers,
    ).json()
    assert (
        client.delete(f"/api/observations/{gone['id']}", headers=t["researcher"].headers).status_code == 204
    )
    insight = client.post(
        f"/api/stints/{sid}/insights",
        json={
            "title": "排班靠人",
            "statement": "经验在人脑里",
            "evidence": [{"observation_id": ids[1]}],
            "verdicts": [{"hypothesis_id": h["id"], "verdict": "refutes"}],
        },
        headers=t["researcher"].headers,
    ).json()
    action = client.post(
        f"/api/stints/{sid}/actions",
        json={"title": "排班模板", "impact": "high", "effort": "low"},
        headers=t["researcher"].headers,
    ).json()
    return {**t, "sid": sid, "hypothesis": h, "ids": ids, "insight": insight, "action": action}


def test_debrief_figures_on_a_known_log(client, known):
    r = client.get(f"/api/stints/{known['sid']}/debrief", headers=known["viewer"].headers)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["stint"]["purpose"] == "product" and d["stint"]["customer"] == "顺达物流"
    c = d["coverage"]
    # 2026-03-02 … 2026-03-27: 26 days; logged on the 2nd (twice, once at 00:30 local), 3rd, 5th and 27th.
    assert c["stint_days"] == 26 and c["days_so_far"] == 26
    assert c["days_logged"] == 4
    expected_gaps = [date(2026, 3, 4)] + [date(2026, 3, 6) + timedelta(days=n) for n in range(21)]
    assert c["gaps"] == [g.isoformat() for g in expected_gaps]
    assert c["gap_ranges"] == [
        {"start": "2026-03-04", "end": "2026-03-04", "days": 1},
        {"start": "2026-03-06", "end": "2026-03-26", "days": 21},
    ]
    assert c["days_outside_stint"] == ["2026-03-28"]
    assert c["observations"] == 6
    assert c["by_dimension"] == {"scene": 3, "words_actions": 1, "organisation": 1, "unassigned": 1}
    assert c["by_kind"] == {
        "note": 1,
        "quote": 2,
        "behaviour": 0,
        "process": 1,
        "pain_point": 1,
        "idea": 1,
        "question": 0,
    }
    by = {r["name"]: (r["observations"], r["days_logged"]) for r in c["by_researcher"]}
    assert by == {"李研究员": (3, 2), "王经理": (3, 3)}
    assert c["quotes"] == 4
    assert c["quotes_by_speaker_role"] == [
        {"speaker_role": "调度员", "quotes": 2},
        {"speaker_role": "财务", "quotes": 1},
        {"speaker_role": None, "quotes": 1},
    ]
    [h] = d["hypotheses"]
    assert (h["supporting_observations"], h["refuting_observations"]) == (2, 1)
    assert (h["supporting_insights"], h["refuting_insights"]) == (0, 1)
    [i] = d["insights"]
    assert i["evidence"][0]["quote"] == "排班还得靠人" and i["evidence"][0]["speaker_role"] == "调度员"
    assert [a["title"] for a in d["actions"]] == ["排班模板"]
    assert d["actions"][0]["priority"] == "high"


def test_debrief_is_for_members_only(client, known):
    assert (
        client.get(f"/api/stints/{known['sid']}/debrief", headers=known["outsider"].headers).status_code
        == 404
    )
    # A global admin still needs membership to read a stint.
    assert (
        client.get(f"/api/stints/{known['sid']}/debrief", headers=known["admin"].headers).status_code == 404
    )
    assert client.get(f"/api/stints/{known['sid']}/debrief").status_code == 401
    assert client.get("/api/stints/not-a-uuid/debrief", headers=known["viewer"].headers).status_code == 422


def test_ongoing_stint_counts_gaps_only_up_to_today(client, stint_team):
    today = date.today()
    stint = client.post(
        "/api/stints",
        json={
            "title": "进行中",
            "customer": "客户",
            "purpose": "customer_success",
            "start_date": (today - timedelta(days=3)).isoformat(),
            "end_date": (today + timedelta(days=10)).isoformat(),
            "timezone": "UTC",
        },
        headers=stint_team["manager"].headers,
    ).json()
    c = client.get(f"/api/stints/{stint['id']}/debrief", headers=stint_team["manager"].headers).json()[
        "coverage"
    ]
    assert c["stint_days"] == 14 and c["days_so_far"] == 4 and len(c["gaps"]) == 4
