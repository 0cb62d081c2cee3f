"""A realistic synthetic field journal: mixed Chinese/English observations across stints, built
from the domain seed texts (``/work/shared/seeds`` or ``FIELDBOOK_SEEDS``) plus field-note
templates (roles, systems, processes, customer quotes). Deterministic for a given seed."""

import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from api.search_docs import SearchDoc

SEEDS_DIR = Path(os.environ.get("FIELDBOOK_SEEDS", "/work/shared/seeds"))

_FALLBACK = (
    "沉浸式调研是到客户现场工作两到十二周，帮助客户完成一个真实项目。研究员要多看多聊，像写日记一样记录观察日志。"
    "好的观察把场景、客户的言行和客户的组织联系在一起。回来以后和研究团队分享，得出洞见和改善行动计划，并让改善落地。"
)

ROLES = [
    "调度员",
    "仓库主管",
    "财务经理",
    "老板",
    "IT负责人",
    "司机",
    "客服专员",
    "采购经理",
    "销售总监",
    "dispatcher",
    "finance lead",
    "warehouse supervisor",
    "plant manager",
    "CFO",
]
SYSTEMS = [
    "Excel",
    "ERP",
    "WMS",
    "TMS",
    "SAP",
    "Kingdee",
    "WeChat",
    "DingTalk",
    "SaaS",
    "Power BI",
    "Salesforce",
    "Oracle",
    "PDA",
    "barcode scanner",
    "dashboard",
    "API",
]
ACTIVITIES = [
    "早会",
    "排班",
    "对账",
    "盘点",
    "出库",
    "入库",
    "审批",
    "月结",
    "报销",
    "派车",
    "质检",
    "补货",
    "客户回访",
    "报价",
    "开票",
    "培训新人",
]
ENGLISH = [
    "The dispatcher rebuilds the schedule by hand every morning because the {sys} export is always late.",
    "Finance reconciles invoices twice: once in {sys} and once in a personal spreadsheet.",
    "Nobody trusts the forecast; the supervisor keeps a paper checklist next to the {sys} terminal.",
    "Approval workflows stall when the manager travels; people forward screenshots over {sys}.",
    "Drivers call the control room instead of updating the {sys} app, which loses signal in the warehouse.",
    "The boss reads one dashboard on Monday mornings and asks for the exceptions only.",
    "Onboarding takes three weeks because the SOP lives in people's heads, not in {sys}.",
    "Customer success here means fewer escalations, not more features.",
]
TEMPLATES = [
    "{act}的时候，{role}一直在用{sys}，{sent}",
    "今天跟{role}聊{act}流程，{sent}",
    "{role}说他们每周都要手工整理{sys}数据，{sent}",
    "现场观察：{act}环节有三次返工。{sent}",
    "{sent}{role}补充：{act}最怕的是系统和纸质单据对不上。",
    "{eng} {sent}",
    "{sent} ({role}: {eng})",
]
QUOTES = [
    "这个报表我每天要做两个小时",
    "系统里的数据我们不太信",
    "老板只看结果，不看过程",
    "{sys}太慢了，我们还是用纸",
    "We just need it to work offline",
    "能不能一键导出给财务",
    "月底对账最痛苦",
    "新人三个月才能上手",
]
TAGS = [
    "痛点",
    "排班",
    "对账",
    "决策链",
    "excel",
    "workaround",
    "quote",
    "kpi",
    "离线",
    "审批",
    "客户语言",
    "机会",
]
KINDS = ["note", "quote", "behaviour", "process", "pain_point", "idea", "question"]
DIMENSIONS = ["scene", "words_actions", "organisation", None]


def _sentences() -> list[str]:
    texts = [p.read_text(encoding="utf-8", errors="ignore") for p in sorted(SEEDS_DIR.glob("*.txt"))]
    if not texts:
        texts = [_FALLBACK]
    out = []
    for text in texts:
        for s in re.split(r"(?<=[。！？!?\n])", text):
            s = " ".join(s.split())
            if 8 <= len(s) <= 90:
                out.append(s)
    return out


@dataclass(frozen=True)
class Corpus:
    docs: list[SearchDoc]
    stints: list[uuid.UUID]
    authors: dict[uuid.UUID, list[uuid.UUID]]  # per stint


def make_corpus(n: int, stints: int = 20, seed: int = 7) -> Corpus:
    rnd = random.Random(seed)
    sentences = _sentences()
    stint_ids = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(stints)]
    authors = {s: [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(rnd.randint(2, 5))] for s in stint_ids}
    starts = {s: date(2026, 1, 5) + timedelta(days=rnd.randint(0, 300)) for s in stint_ids}
    docs = []
    for i in range(n):
        stint = stint_ids[i % stints]
        day = starts[stint] + timedelta(days=rnd.randint(0, 27))
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
            minutes=rnd.randint(0, 24 * 60 - 1)
        )
        parts = [
            rnd.choice(TEMPLATES).format(
                act=rnd.choice(ACTIVITIES),
                role=rnd.choice(ROLES),
                sys=rnd.choice(SYSTEMS),
                sent=rnd.choice(sentences),
                eng=rnd.choice(ENGLISH).format(sys=rnd.choice(SYSTEMS)),
            )
        ]
        while rnd.random() < 0.45:
            parts.append(rnd.choice(sentences))
        kind = rnd.choice(KINDS)
        quote = (
            rnd.choice(QUOTES).format(sys=rnd.choice(SYSTEMS))
            if kind == "quote" or rnd.random() < 0.15
            else ""
        )
        docs.append(
            SearchDoc(
                doc_type="observation",
                doc_id=str(uuid.UUID(int=rnd.getrandbits(128))),
                stint_id=stint,
                texts={
                    "text": "".join(parts),
                    "quote": quote,
                    "speaker_role": rnd.choice(ROLES) if quote else "",
                },
                at=at,
                day=day,
                kind=kind,
                tags=sorted(set(rnd.sample(TAGS, rnd.randint(0, 3)))),
                author_id=rnd.choice(authors[stint]),
                dimension=rnd.choice(DIMENSIONS),
            )
        )
    return Corpus(docs, stint_ids, authors)


def batches(docs: list[SearchDoc], size: int = 1000) -> Iterator[list[SearchDoc]]:
    for i in range(0, len(docs), size):
        yield docs[i : i + size]
