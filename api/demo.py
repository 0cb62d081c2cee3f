"""``fieldbook demo``: a realistic demo stint, loaded through the public API so it obeys every rule a
real one does (validation, versions, the sync feed, the search index)."""

import io
import secrets
import uuid
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlmodel import Session, select

from api.auth import open_session
from api.config import Settings
from api.db import utcnow
from api.main import create_app
from api.models import AuthSession, User
from api.users import create_user

COLLEAGUE = ("demo.researcher@fieldbook.local", "李研究员（演示）")

HYPOTHESES = [
    ("调度员愿意在手机上完成排班，而不是用 Excel", "usage"),
    ("采购决策由财务总监主导，IT 只提技术要求", "buying"),
    ("客户希望供应商每月来现场复盘一次", "relationship"),
]

# (day offset, local time, author: 0 owner / 1 colleague, body)
OBSERVATIONS: list[tuple[int, str, int, dict[str, Any]]] = [
    (
        0,
        "07:40",
        1,
        {
            "text": "早班调度在白板上手工排车，Excel 只用来存档。",
            "kind": "behaviour",
            "dimension": "scene",
            "tags": ["排班", "白板"],
            "hyp": [(0, "refutes")],
        },
    ),
    (
        0,
        "08:15",
        1,
        {
            "text": "调度主管说排班全靠经验，系统里的司机状态不准。",
            "kind": "quote",
            "quote": "系统里的数据我们不敢信，还是得打电话问。",
            "speaker_role": "调度主管",
            "speaker_name": "王主管",
            "dimension": "words_actions",
            "tags": ["排班", "数据质量"],
        },
    ),
    (
        0,
        "10:30",
        0,
        {
            "text": "Dispatch board is rebuilt every morning; drivers call in sick by WeChat.",
            "kind": "process",
            "dimension": "scene",
            "tags": ["排班", "微信"],
        },
    ),
    (
        0,
        "16:20",
        0,
        {
            "text": "财务每月底要花两天对运费账单，差异主要来自临时加车。",
            "kind": "pain_point",
            "dimension": "organisation",
            "tags": ["对账", "运费"],
        },
    ),
    (
        1,
        "09:05",
        1,
        {
            "text": "司机到仓后要在三个地方签到：门卫、调度、仓库。",
            "kind": "pain_point",
            "dimension": "scene",
            "tags": ["签到", "司机"],
        },
    ),
    (
        1,
        "11:40",
        0,
        {
            "text": "财务总监：“预算是我批的，但用不用是调度说了算。”",
            "kind": "quote",
            "quote": "预算是我批的，但用不用是调度说了算。",
            "speaker_role": "财务总监",
            "dimension": "organisation",
            "tags": ["采购", "决策链"],
            "hyp": [(1, "supports")],
        },
    ),
    (
        1,
        "14:00",
        0,
        {
            "text": "IT only cares about SSO and where the data is stored (must stay in 华东 region).",
            "kind": "note",
            "quote": "Data must stay in our own cloud region.",
            "speaker_role": "IT manager",
            "dimension": "words_actions",
            "tags": ["采购", "安全"],
            "hyp": [(1, "supports")],
        },
    ),
    (
        2,
        "08:30",
        1,
        {
            "text": "临时加车时调度在微信群里抢单，没有记录。",
            "kind": "behaviour",
            "dimension": "words_actions",
            "tags": ["微信", "加车"],
        },
    ),
    (
        2,
        "13:15",
        1,
        {
            "text": "可以把司机签到做成一个二维码，三处共用。",
            "kind": "idea",
            "dimension": "scene",
            "tags": ["签到", "改进"],
        },
    ),
    (
        2,
        "23:50",
        0,
        {
            "text": "夜班交接：白班的排班表拍照发群里，夜班再手抄一遍。",
            "kind": "process",
            "dimension": "scene",
            "tags": ["交接", "排班"],
        },
    ),
    (
        4,
        "09:00",
        0,
        {
            "text": "Ops director asks: can we see yesterday's on-time rate before the 9am meeting?",
            "kind": "question",
            "speaker_role": "运营总监",
            "dimension": "organisation",
            "tags": ["报表", "准时率"],
            "hyp": [(2, "supports")],
        },
    ),
    (
        4,
        "15:30",
        1,
        {
            "text": "调度员试用了手机排班原型，十分钟就上手，但担心网络不好时丢数据。",
            "kind": "behaviour",
            "dimension": "words_actions",
            "tags": ["排班", "离线"],
            "hyp": [(0, "supports")],
        },
    ),
]

SUMMARIES = {
    0: "第一天跟早班调度。排班靠白板和电话，系统数据不被信任。",
    1: "重点看了签到和采购决策链：财务批预算，调度决定用不用。",
}


def _photo() -> bytes:
    """A whiteboard-like shift plan: coloured blocks, no text (no font needed)."""
    image = Image.new("RGB", (1200, 800), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for row in range(6):
        for column in range(8):
            if (row * 3 + column) % 4:
                colour = [(90, 160, 220), (240, 170, 60), (120, 190, 120)][(row + column) % 3]
                draw.rectangle(
                    [60 + column * 135, 80 + row * 115, 175 + column * 135, 170 + row * 115], fill=colour
                )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _ok(response: Any) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(f"demo step failed: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def load_demo(settings: Settings, owner_email: str) -> dict[str, Any]:
    """Create the demo stint with ``owner_email`` as its manager; returns what was made."""
    app = create_app(settings)
    engine = app.state.engine
    with Session(engine, expire_on_commit=False) as session:
        owner = session.exec(select(User).where(User.email == owner_email.strip().lower())).first()
        if owner is None:
            raise LookupError(f"no account {owner_email}; create it first with `fieldbook user add`")
        colleague = session.exec(select(User).where(User.email == COLLEAGUE[0])).first()
        if colleague is None:
            # An author for half the log; nobody knows its password until an admin resets it.
            colleague = create_user(session, COLLEAGUE[0], secrets.token_urlsafe(24), name=COLLEAGUE[1])
        sessions = [
            open_session(session, u.id, timedelta(hours=1), "fieldbook demo") for u in (owner, colleague)
        ]
    headers = [{"Authorization": f"Bearer {token}"} for token, _ in sessions]
    start = date.today() - timedelta(days=6)
    made: dict[str, Any] = {}
    try:
        with TestClient(app) as client:
            stint = _ok(
                client.post(
                    "/api/stints",
                    headers=headers[0],
                    json={
                        "title": "华东仓配调度驻场（演示）",
                        "customer": "顺达物流（演示）",
                        "purpose": "product",
                        "site": "上海嘉定中心仓",
                        "goals": "看清调度员一天的真实工作，验证手机排班的价值。",
                        "start_date": start.isoformat(),
                        "end_date": (start + timedelta(days=27)).isoformat(),
                        "timezone": "Asia/Shanghai",
                    },
                )
            )
            sid = stint["id"]
            _ok(
                client.post(
                    f"/api/stints/{sid}/members",
                    headers=headers[0],
                    json={"email": COLLEAGUE[0], "role": "researcher"},
                )
            )
            hypotheses = [
                _ok(
                    client.post(
                        f"/api/stints/{sid}/hypotheses",
                        headers=headers[0],
                        json={"statement": s, "dimension": d},
                    )
                )["id"]
                for s, d in HYPOTHESES
            ]
            observations = []
            for offset, at, author, spec in OBSERVATIONS:
                body = {k: v for k, v in spec.items() if k != "hyp"}
                body["id"] = str(uuid.uuid4())
                body["observed_at"] = f"{(start + timedelta(days=offset)).isoformat()}T{at}:00+08:00"
                body["hypothesis_links"] = [
                    {"hypothesis_id": hypotheses[i], "stance": stance} for i, stance in spec.get("hyp", [])
                ]
                observations.append(
                    _ok(client.post(f"/api/stints/{sid}/observations", headers=headers[author], json=body))[
                        "id"
                    ]
                )
            for offset, summary in SUMMARIES.items():
                day = (start + timedelta(days=offset)).isoformat()
                _ok(
                    client.put(f"/api/stints/{sid}/days/{day}", headers=headers[1], json={"summary": summary})
                )
            photo = _ok(
                client.post(
                    f"/api/stints/{sid}/materials",
                    headers=headers[1],
                    files={"file": ("白板排班.jpg", _photo(), "image/jpeg")},
                    data={"observation_id": observations[0], "caption": "早班调度的白板排班表"},
                )
            )
            insight = _ok(
                client.post(
                    f"/api/stints/{sid}/insights",
                    headers=headers[0],
                    json={
                        "title": "调度员不信任系统数据，排班回到白板和电话",
                        "statement": "司机状态更新滞后，调度员只能靠电话确认；数据可信是手机排班被采用的前提。",
                        "evidence": [
                            {"observation_id": observations[1]},
                            {"observation_id": observations[0]},
                            {"material_id": photo["id"]},
                        ],
                        "verdicts": [{"hypothesis_id": hypotheses[0], "verdict": "supports"}],
                    },
                )
            )
            second = _ok(
                client.post(
                    f"/api/stints/{sid}/insights",
                    headers=headers[0],
                    json={
                        "title": "Budget sits with finance, adoption with dispatch",
                        "statement": "财务批预算，调度决定用不用：销售要同时打动两条线。",
                        "evidence": [
                            {"observation_id": observations[5]},
                            {"observation_id": observations[6]},
                        ],
                        "verdicts": [{"hypothesis_id": hypotheses[1], "verdict": "supports"}],
                    },
                )
            )
            due = (start + timedelta(days=20)).isoformat()
            actions = [
                _ok(
                    client.post(
                        f"/api/stints/{sid}/actions",
                        headers=headers[0],
                        json={
                            "title": "司机状态实时同步（离线可用）",
                            "owner_email": COLLEAGUE[0],
                            "due_date": due,
                            "impact": "high",
                            "effort": "medium",
                            "insight_ids": [insight["id"]],
                        },
                    )
                ),
                _ok(
                    client.post(
                        f"/api/stints/{sid}/actions",
                        headers=headers[0],
                        json={
                            "title": "三处签到合并为一个二维码",
                            "impact": "medium",
                            "effort": "low",
                            "insight_ids": [insight["id"]],
                        },
                    )
                ),
                _ok(
                    client.post(
                        f"/api/stints/{sid}/actions",
                        headers=headers[0],
                        json={
                            "title": "Sales playbook: pitch finance and dispatch together",
                            "impact": "medium",
                            "effort": "medium",
                            "insight_ids": [second["id"]],
                        },
                    )
                ),
            ]
            _ok(
                client.post(
                    f"/api/actions/{actions[0]['id']}/review",
                    headers=headers[0],
                    json={"decision": "approve", "comment": "优先做，下次复盘看效果。"},
                )
            )
            made = {"stint_id": sid, "observations": len(observations), "actions": len(actions)}
    finally:
        with Session(engine) as session:
            for _, auth in sessions:
                row = session.get(AuthSession, auth.id)
                if row is not None:
                    row.revoked_at = utcnow()
                    session.add(row)
            session.commit()
        engine.dispose()
    return made
