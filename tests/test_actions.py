"""The action plan: priority from impact and effort, the review workflow and who may drive it,
owners recording progress, the history of every change, the cross-stint view."""

import uuid
from datetime import date, timedelta

import pytest


@pytest.fixture
def plan(client, stint_team, person):
    t = stint_team
    sid = t["stint"]["id"]
    owner = person("陈负责人")
    r = client.post(
        f"/api/stints/{sid}/members",
        json={"email": owner.email, "role": "viewer"},
        headers=t["manager"].headers,
    )
    assert r.status_code == 201
    insight = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "排班靠经验", "statement": "…"},
        headers=t["researcher"].headers,
    ).json()
    r = client.post(
        f"/api/stints/{sid}/actions",
        json={
            "title": "把排班规则做成可配置模板",
            "description": "先在顺达试点",
            "owner_email": owner.email,
            "due_date": "2026-12-31",
            "impact": "high",
            "effort": "medium",
            "insight_ids": [insight["id"]],
        },
        headers=t["researcher"].headers,
    )
    assert r.status_code == 201, r.text
    return {**t, "sid": sid, "owner": owner, "action": r.json(), "insight": insight}


def _review(client, action_id, who, decision, comment="好"):
    return client.post(
        f"/api/actions/{action_id}/review",
        json={"decision": decision, "comment": comment},
        headers=who.headers,
    )


@pytest.mark.parametrize(
    ("impact", "effort", "label", "score"),
    [
        ("high", "low", "high", 7),
        ("high", "high", "medium", 5),
        ("medium", "low", "medium", 5),
        ("medium", "high", "low", 3),
        ("low", "high", "low", 1),
        ("high", "medium", "high", 6),
    ],
)
def test_priority_is_derived_from_impact_and_effort(client, stint_team, impact, effort, label, score):
    r = client.post(
        f"/api/stints/{stint_team['stint']['id']}/actions",
        json={"title": "t", "impact": impact, "effort": effort},
        headers=stint_team["researcher"].headers,
    )
    assert r.status_code == 201
    assert (r.json()["priority"], r.json()["priority_score"]) == (label, score)


def test_new_action_is_proposed_with_a_history(client, plan):
    a = plan["action"]
    assert a["status"] == "proposed" and a["owner_name"] == "陈负责人"
    assert a["insight_ids"] == [plan["insight"]["id"]]
    assert [e["kind"] for e in a["history"]] == ["created"]
    assert a["history"][0]["actor_name"] == "李研究员"
    assert a["history"][0]["changes"]["title"] == [None, "把排班规则做成可配置模板"]


def test_only_managers_review_and_a_comment_is_required(client, plan):
    aid = plan["action"]["id"]
    for who in ("researcher", "viewer", "owner"):
        assert _review(client, aid, plan[who], "approve").status_code == 403
    assert _review(client, aid, plan["outsider"], "approve").status_code == 404
    assert _review(client, aid, plan["manager"], "approve", comment="").status_code == 422
    assert _review(client, aid, plan["manager"], "maybe").status_code == 422
    r = _review(client, aid, plan["manager"], "approve", comment="同意，先做华东区")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert r.json()["last_review"]["comment"] == "同意，先做华东区"
    assert r.json()["last_review"]["actor_name"] == "王经理"
    # Approving twice is not a transition.
    assert _review(client, aid, plan["manager"], "approve").status_code == 409


def test_full_workflow_with_history(client, plan):
    aid, m, o = plan["action"]["id"], plan["manager"], plan["owner"]
    r = _review(client, aid, m, "request_changes", comment="写清楚试点范围")
    assert r.json()["status"] == "proposed"
    # Owners cannot skip the review.
    r = client.patch(f"/api/actions/{aid}", json={"status": "in_progress"}, headers=o.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    r = client.patch(
        f"/api/actions/{aid}",
        json={"description": "试点：嘉定仓两个班组"},
        headers=plan["researcher"].headers,
    )
    assert r.status_code == 200
    assert _review(client, aid, m, "approve", comment="可以").json()["status"] == "approved"
    r = client.patch(
        f"/api/actions/{aid}",
        json={"status": "in_progress", "progress": 30, "progress_note": "模板初稿"},
        headers=o.headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "in_progress" and r.json()["progress"] == 30
    # The owner is a viewer: progress yes, the substance no.
    assert client.patch(f"/api/actions/{aid}", json={"title": "改名"}, headers=o.headers).status_code == 403
    # Other members cannot record progress.
    assert (
        client.patch(
            f"/api/actions/{aid}", json={"progress": 90}, headers=plan["researcher"].headers
        ).status_code
        == 403
    )
    assert (
        client.patch(f"/api/actions/{aid}", json={"progress": 90}, headers=plan["viewer"].headers).status_code
        == 403
    )
    r = client.patch(f"/api/actions/{aid}", json={"status": "done"}, headers=o.headers)
    assert r.json()["status"] == "done" and r.json()["progress"] == 100
    assert _review(client, aid, m, "approve").status_code == 409
    history = client.get(f"/api/actions/{aid}", headers=plan["viewer"].headers).json()["history"]
    assert [(e["kind"], e["decision"]) for e in history] == [
        ("created", None),
        ("review", "request_changes"),
        ("updated", None),
        ("review", "approve"),
        ("updated", None),
        ("updated", None),
    ]
    assert history[1]["comment"] == "写清楚试点范围"
    assert history[2]["changes"] == {"description": ["先在顺达试点", "试点：嘉定仓两个班组"]}
    assert history[3]["changes"] == {"status": ["proposed", "approved"]}
    assert history[4]["changes"]["status"] == ["approved", "in_progress"]
    assert history[4]["actor_name"] == "陈负责人"
    assert history[5]["changes"] == {"status": ["in_progress", "done"], "progress": [30, 100]}


def test_reject_and_editing_an_approved_action_needs_a_new_review(client, plan):
    aid, m = plan["action"]["id"], plan["manager"]
    _review(client, aid, m, "approve")
    r = client.patch(f"/api/actions/{aid}", json={"impact": "low"}, headers=plan["researcher"].headers)
    assert r.json()["status"] == "proposed"
    assert r.json()["history"][-1]["changes"]["status"] == ["approved", "proposed"]
    r = _review(client, aid, m, "reject", comment="投入产出不划算")
    assert r.json()["status"] == "rejected"
    assert (
        client.patch(
            f"/api/actions/{aid}", json={"status": "in_progress"}, headers=plan["owner"].headers
        ).status_code
        == 409
    )
    # A manager may reopen it for a new review, nobody else.
    assert _review(client, aid, plan["researcher"], "request_changes").status_code == 403
    r = _review(client, aid, m, "request_changes", comment="补充数据后再议")
    assert r.status_code == 200 and r.json()["status"] == "proposed"


def test_owner_must_be_a_member_and_bad_input_loses_nothing(client, plan, person):
    sid, h = plan["sid"], plan["researcher"].headers
    stranger = person("外人")
    r = client.post(
        f"/api/stints/{sid}/actions", json={"title": "t", "owner_email": stranger.email}, headers=h
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "owner_not_member"
    for bad in (
        {"title": ""},
        {"title": "t", "impact": "huge"},
        {"title": "t", "due_date": "明天"},
        {"title": "t", "insight_ids": [str(uuid.uuid4())]},
    ):
        assert client.post(f"/api/stints/{sid}/actions", json=bad, headers=h).status_code == 422
    assert len(client.get(f"/api/stints/{sid}/actions", headers=h).json()) == 1
    assert (
        client.post(
            f"/api/stints/{sid}/actions", json={"title": "t"}, headers=plan["viewer"].headers
        ).status_code
        == 403
    )
    # A retry with the same id does not make a second action.
    body = {"id": str(uuid.uuid4()), "title": "重试"}
    assert client.post(f"/api/stints/{sid}/actions", json=body, headers=h).status_code == 201
    assert client.post(f"/api/stints/{sid}/actions", json=body, headers=h).status_code == 200
    assert len(client.get(f"/api/stints/{sid}/actions", headers=h).json()) == 2


def test_stale_if_match_is_refused(client, plan):
    aid = plan["action"]["id"]
    r = client.patch(
        f"/api/actions/{aid}", json={"title": "新"}, headers={**plan["researcher"].headers, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = client.patch(
        f"/api/actions/{aid}", json={"title": "再新"}, headers={**plan["manager"].headers, "If-Match": '"1"'}
    )
    assert r.status_code == 412


def test_my_actions_across_stints_with_filters(client, plan, person):
    m, o = plan["manager"], plan["owner"]
    # A second stint where the owner is a member but not a manager, and the manager is not a member.
    other = client.post(
        "/api/stints",
        json={
            "title": "第二个驻场",
            "customer": "华北制造",
            "purpose": "benchmark",
            "start_date": "2026-01-05",
            "end_date": "2026-01-30",
        },
        headers=plan["researcher"].headers,
    ).json()
    client.post(
        f"/api/stints/{other['id']}/members",
        json={"email": o.email, "role": "viewer"},
        headers=plan["researcher"].headers,
    )
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    late = client.post(
        f"/api/stints/{other['id']}/actions",
        json={"title": "补齐采购流程图", "owner_email": o.email, "due_date": yesterday},
        headers=plan["researcher"].headers,
    ).json()
    client.post(
        f"/api/stints/{other['id']}/actions", json={"title": "别人的事"}, headers=plan["researcher"].headers
    )
    mine = client.get("/api/actions", headers=o.headers).json()
    assert {a["id"] for a in mine} == {plan["action"]["id"], late["id"]}
    assert mine[0]["id"] == late["id"] and mine[0]["overdue"] is True  # overdue first
    assert [a["id"] for a in client.get("/api/actions?overdue=true", headers=o.headers).json()] == [
        late["id"]
    ]
    # The manager sees his stint's actions, not the other stint's.
    managed = client.get("/api/actions", headers=m.headers).json()
    assert {a["id"] for a in managed} == {plan["action"]["id"]}
    assert managed[0]["stint_title"] == "华东物流调度驻场"
    # The researcher manages the second stint (its creator).
    r = client.get(f"/api/actions?owner={o.email}&status=proposed", headers=plan["researcher"].headers).json()
    assert {a["id"] for a in r} == {late["id"]}
    assert client.get("/api/actions?status=approved", headers=o.headers).json() == []
    assert client.get("/api/actions?status=bogus", headers=o.headers).status_code == 422
    assert client.get("/api/actions?owner=not-an-id", headers=o.headers).status_code == 422
    # Viewers read a stint's plan; outsiders get 404.
    assert len(client.get(f"/api/stints/{plan['sid']}/actions", headers=plan["viewer"].headers).json()) == 1
    assert (
        client.get(f"/api/actions/{plan['action']['id']}", headers=plan["outsider"].headers).status_code
        == 404
    )


def test_delete_rules(client, plan):
    aid = plan["action"]["id"]
    assert client.delete(f"/api/actions/{aid}", headers=plan["viewer"].headers).status_code == 403
    _review(client, aid, plan["manager"], "approve")
    # The author may withdraw only while it is proposed.
    assert client.delete(f"/api/actions/{aid}", headers=plan["researcher"].headers).status_code == 403
    assert client.delete(f"/api/actions/{aid}", headers=plan["manager"].headers).status_code == 204
    assert client.get(f"/api/actions/{aid}", headers=plan["manager"].headers).status_code == 410
    assert client.get(f"/api/stints/{plan['sid']}/actions", headers=plan["manager"].headers).json() == []


def _to_status(client, plan, status):
    """Bring the plan's action to ``status`` the way the team would: review, then the owner's progress."""
    aid, o = plan["action"]["id"], plan["owner"]
    assert _review(client, aid, plan["manager"], "approve", comment="同意，5万以内").status_code == 200
    for step in {"approved": [], "in_progress": ["in_progress"], "done": ["in_progress", "done"]}[status]:
        r = client.patch(f"/api/actions/{aid}", json={"status": step}, headers=o.headers)
        assert r.status_code == 200 and r.json()["status"] == step, r.text
    return aid


def _other_insight(client, plan):
    return client.post(
        f"/api/stints/{plan['sid']}/insights",
        json={"title": "司机不信系统", "statement": "…"},
        headers=plan["researcher"].headers,
    ).json()["id"]


# Everything a manager approved: what (title, description), why (insights), how much (impact, effort),
# who and by when (owner, due date). Progress and its note are the owner's to record.
_SUBSTANCE_EDITS = {
    "title": lambda c, p: {"title": "全国推广"},
    "description": lambda c, p: {"description": "预算500万"},
    "insight_ids": lambda c, p: {"insight_ids": [_other_insight(c, p)]},
    "impact": lambda c, p: {"impact": "low"},
    "effort": lambda c, p: {"effort": "high"},
    "owner": lambda c, p: {"owner_email": p["researcher"].email},
    "due_date": lambda c, p: {"due_date": "2027-12-31"},
}


@pytest.mark.parametrize("status", ["approved", "in_progress", "done"])
@pytest.mark.parametrize("field", sorted(_SUBSTANCE_EDITS))
def test_any_substance_edit_after_approval_needs_a_new_review(client, plan, status, field):
    aid = _to_status(client, plan, status)
    r = client.patch(
        f"/api/actions/{aid}", json=_SUBSTANCE_EDITS[field](client, plan), headers=plan["researcher"].headers
    )
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["status"] == "proposed"
    last = a["history"][-1]
    assert last["kind"] == "updated" and last["changes"]["status"] == [status, "proposed"]
    assert {"owner": "owner_id"}.get(field, field) in last["changes"]
    # The owner cannot carry on until a manager has reviewed the new version.
    owner = plan["researcher"] if field == "owner" else plan["owner"]
    r = client.patch(f"/api/actions/{aid}", json={"status": "in_progress"}, headers=owner.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"


@pytest.mark.parametrize("start", ["approved", "in_progress"])
def test_a_status_change_cannot_carry_new_substance_past_the_review(client, plan, start):
    """QA: PATCH {status: in_progress, title, description} on an approved action kept it in progress."""
    aid = _to_status(client, plan, start)
    # The researcher owns it now (a manager's edit: the status stays).
    r = client.patch(
        f"/api/actions/{aid}", json={"owner_email": plan["researcher"].email}, headers=plan["manager"].headers
    )
    assert r.json()["status"] == start
    step = {"approved": "in_progress", "in_progress": "done"}[start]
    r = client.patch(
        f"/api/actions/{aid}",
        json={"status": step, "title": "全国推广智能排班", "description": "预算500万"},
        headers=plan["researcher"].headers,
    )
    assert r.status_code == 200, r.text
    a = r.json()
    assert (a["status"], a["title"], a["description"]) == ("proposed", "全国推广智能排班", "预算500万")
    assert a["progress"] == 0  # "done" was not recorded: there is nothing approved to be done
    assert a["history"][-1]["changes"]["status"] == [start, "proposed"]
    # The export shows it waiting for review, not approved with the old comment as if it applied.
    rows = client.get(f"/api/stints/{plan['sid']}/export?format=csv", headers=plan["manager"].headers)
    assert "全国推广智能排班" in rows.text and "待审批" in rows.text and "已批准" not in rows.text
    # An invalid transition is still refused, with nothing saved.
    r = client.patch(
        f"/api/actions/{aid}", json={"status": "done", "title": "再改"}, headers=plan["researcher"].headers
    )
    assert r.status_code == 409
    assert (
        client.get(f"/api/actions/{aid}", headers=plan["manager"].headers).json()["title"]
        == "全国推广智能排班"
    )


def test_progress_and_unchanged_values_keep_the_approval(client, plan):
    aid = _to_status(client, plan, "in_progress")
    o = plan["owner"]
    r = client.patch(
        f"/api/actions/{aid}", json={"progress": 60, "progress_note": "两个班组已用上"}, headers=o.headers
    )
    assert r.json()["status"] == "in_progress"
    # Sending the approved values again changes nothing.
    same = {k: plan["action"][k] for k in ("title", "description", "due_date", "impact", "effort")}
    r = client.patch(
        f"/api/actions/{aid}",
        json={**same, "owner_email": o.email, "insight_ids": [plan["insight"]["id"]]},
        headers=plan["researcher"].headers,
    )
    assert r.json()["status"] == "in_progress" and r.json()["version"] == plan["action"]["version"] + 3


@pytest.mark.parametrize("status", ["approved", "in_progress", "done"])
def test_a_managers_own_edit_keeps_the_status(client, plan, status):
    aid = _to_status(client, plan, status)
    r = client.patch(
        f"/api/actions/{aid}",
        json={"title": "模板先做华东区", "due_date": "2027-03-31"},
        headers=plan["manager"].headers,
    )
    assert r.status_code == 200 and r.json()["status"] == status
    assert "status" not in r.json()["history"][-1]["changes"]


def test_an_owner_nobody_has_matches_nothing(client, plan, person):
    """QA: ?owner=<unknown e-mail> answered every unowned action (owner_id IS NULL)."""
    m, sid = plan["manager"], plan["sid"]
    unowned = client.post(f"/api/stints/{sid}/actions", json={"title": "没有负责人的行动"}, headers=m.headers)
    assert unowned.status_code == 201
    assert len(client.get("/api/actions", headers=m.headers).json()) == 2
    stranger = person("外人")  # an account, but it owns nothing here
    for owner in ("nobody@nowhere.example", stranger.email, str(uuid.uuid4()), stranger.id):
        r = client.get("/api/actions", params={"owner": owner}, headers=m.headers)
        assert r.status_code == 200 and r.json() == [], owner
    # Known owners still match, whatever the case of the e-mail.
    o = plan["owner"]
    for owner in (o.email.upper(), f" {o.email} ", o.id):
        r = client.get("/api/actions", params={"owner": owner}, headers=m.headers)
        assert [a["id"] for a in r.json()] == [plan["action"]["id"]], owner
    assert [a["id"] for a in client.get("/api/actions?owner=me", headers=o.headers).json()] == [
        plan["action"]["id"]
    ]
