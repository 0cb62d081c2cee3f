"""The debrief as one HTML page, in zh-CN or English: the shared page (``/s/{token}``) and the
self-contained, print-ready HTML export. Everything user-written is escaped."""

import base64
import hashlib
import uuid
from collections.abc import Callable
from html import escape

from api.debrief import Debrief
from api.insight_views import InsightOut

_TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "debrief": "复盘",
        "customer": "客户",
        "site": "地点",
        "period": "驻场时间",
        "purpose": "调研目的",
        "goals": "目标",
        "hypotheses": "假设",
        "supports": "支持",
        "refutes": "反驳",
        "evidence_obs": "观察证据",
        "coverage": "记录覆盖",
        "coverage_whole": "记录覆盖（整个调研日志，不仅是此处展示的内容）",
        "days_logged": "已记录天数",
        "gaps": "未记录的日子",
        "none": "无",
        "by_dimension": "按维度",
        "by_kind": "按类型",
        "quotes_by_role": "按说话人角色的原话",
        "insights": "洞见",
        "draft": "草稿：尚无证据",
        "evidence": "证据",
        "verdicts": "对假设的判断",
        "actions": "改善行动计划",
        "action": "行动",
        "owner": "负责人",
        "due": "截止",
        "priority": "优先级",
        "status": "状态",
        "unthemed": "其他",
        "shared_until": "此链接有效期至",
        "link_gone": "此链接不存在、已过期或已被撤销。",
        "too_many": "访问太频繁，请稍后再试。",
        "observations": "条观察",
        "unspecified": "未注明",
        "product": "实际使用场景与体验",
        "benchmark": "先进的业务方法论",
        "customer_success": "客户桌子上的信息",
        "other": "其他",
        "scene": "场景",
        "words_actions": "客户的言行",
        "organisation": "客户的组织",
        "unassigned": "未归类",
        "kind_note": "笔记",
        "kind_quote": "原话",
        "kind_behaviour": "行为",
        "kind_process": "流程",
        "kind_pain_point": "痛点",
        "kind_idea": "想法",
        "kind_question": "问题",
        "proposed": "待审批",
        "approved": "已批准",
        "in_progress": "进行中",
        "done": "已完成",
        "rejected": "已驳回",
        "high": "高",
        "medium": "中",
        "low": "低",
    },
    "en": {
        "debrief": "Debrief",
        "customer": "Customer",
        "site": "Site",
        "period": "On site",
        "purpose": "Purpose",
        "goals": "Goals",
        "hypotheses": "Hypotheses",
        "supports": "supports",
        "refutes": "refutes",
        "evidence_obs": "observations as evidence",
        "coverage": "Coverage of the log",
        "coverage_whole": "Coverage of the whole log (all observations, not only those shown here)",
        "days_logged": "Days logged",
        "gaps": "Days without entries",
        "none": "none",
        "by_dimension": "By dimension",
        "by_kind": "By kind",
        "quotes_by_role": "Quotes by speaker role",
        "insights": "Insights",
        "draft": "Draft: no evidence yet",
        "evidence": "Evidence",
        "verdicts": "Verdicts on hypotheses",
        "actions": "Improvement action plan",
        "action": "Action",
        "owner": "Owner",
        "due": "Due",
        "priority": "Priority",
        "status": "Status",
        "unthemed": "Other",
        "shared_until": "This link works until",
        "link_gone": "This link does not exist, has expired or was revoked.",
        "too_many": "Too many requests; please wait a moment and try again.",
        "observations": "observations",
        "unspecified": "unspecified",
        "product": "Real usage scenarios and experience",
        "benchmark": "Advanced business methodology",
        "customer_success": "Information on the customer's desk",
        "other": "Other",
        "scene": "Scene",
        "words_actions": "Words and actions",
        "organisation": "Organisation",
        "unassigned": "Unassigned",
        "kind_note": "Note",
        "kind_quote": "Quote",
        "kind_behaviour": "Behaviour",
        "kind_process": "Process",
        "kind_pain_point": "Pain point",
        "kind_idea": "Idea",
        "kind_question": "Question",
        "proposed": "Proposed",
        "approved": "Approved",
        "in_progress": "In progress",
        "done": "Done",
        "rejected": "Rejected",
        "high": "High",
        "medium": "Medium",
        "low": "Low",
    },
}

STYLE = """
:root{color-scheme:light;--ink:#1d2433;--muted:#5b6475;--line:#dde2ea;--accent:#0b6e69}
*{box-sizing:border-box}
body{margin:0;font:16px/1.6 -apple-system,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:var(--ink);background:#fff}
main{max-width:46rem;margin:0 auto;padding:1rem 1rem 3rem}
h1{font-size:1.5rem;line-height:1.3;margin:.5rem 0}
h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:2px solid var(--accent);padding-bottom:.2rem}
h3{font-size:1.05rem;margin:1.2rem 0 .3rem}
.meta,.muted{color:var(--muted);font-size:.9rem}
.card{border:1px solid var(--line);border-radius:.5rem;padding:.8rem 1rem;margin:.8rem 0;break-inside:avoid}
.draft{color:#9a5b00;font-size:.85rem}
blockquote{margin:.4rem 0;padding:.2rem .8rem;border-left:3px solid var(--accent);background:#f5f8f8}
figure{margin:.6rem 0}
img{max-width:100%;height:auto;border-radius:.3rem}
figcaption{color:var(--muted);font-size:.85rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:.3rem .4rem;text-align:left;vertical-align:top}
ul{padding-left:1.2rem}
@media print{main{max-width:none;padding:0}h2{break-after:avoid}a{color:inherit}}
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def pick_language(accept_language: str | None, override: str | None = None) -> str:
    """zh-CN or en from ``?lang=`` or the Accept-Language header (by q-value); zh-CN by default."""
    if override:
        return "en" if override.lower().startswith("en") else "zh-CN"
    best: tuple[float, str] | None = None
    for index, part in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        tag = tag.strip().lower()
        lang = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang and q > 0 and (best is None or q > best[0]):
            best = (q - index * 1e-6, lang)
    return best[1] if best else "zh-CN"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _para(text: str | None) -> str:
    return "".join(f"<p>{_e(line)}</p>" for line in (text or "").splitlines() if line.strip())


def _insight(insight: InsightOut, t: dict[str, str], image_src: Callable[[uuid.UUID], str | None]) -> str:
    parts = [f'<article class="card"><h3>{_e(insight.title)}</h3>']
    if insight.draft:
        parts.append(f'<div class="draft">{_e(t["draft"])}</div>')
    parts.append(_para(insight.statement))
    if insight.verdicts:
        parts.append(f'<div class="muted">{_e(t["verdicts"])}</div><ul>')
        parts += [f"<li>{_e(t[v.verdict.value])}: {_e(v.statement)}</li>" for v in insight.verdicts]
        parts.append("</ul>")
    if insight.evidence:
        parts.append(f'<div class="muted">{_e(t["evidence"])}</div>')
    for ev in insight.evidence:
        if ev.observation_id:
            parts.append(f"<div>{_e(ev.text)} <span class='muted'>({_e(ev.day)})</span></div>")
            if ev.quote:
                # Roles only, never names: pages and files travel further than the team.
                who = ev.speaker_role or t["unspecified"]
                parts.append(
                    f"<blockquote>「{_e(ev.quote)}」<br><span class='muted'>— {_e(who)}</span></blockquote>"
                )
        elif ev.material_id and (src := image_src(ev.material_id)):
            parts.append(f'<figure><img src="{_e(src)}" alt="{_e(ev.caption or "")}" loading="lazy">')
            if ev.caption:
                parts.append(f"<figcaption>{_e(ev.caption)}</figcaption>")
            parts.append("</figure>")
    parts.append("</article>")
    return "".join(parts)


def render(
    debrief: Debrief,
    lang: str,
    *,
    image_src: Callable[[uuid.UUID], str | None],
    redacted: bool,
    footer: str | None = None,
) -> str:
    """The whole page. Quotes carry the speaker's role, never a name; ``redacted`` (share links) also
    leaves out the action plan."""
    t = _TEXT[lang if lang in _TEXT else "zh-CN"]
    s = debrief.stint
    out = [
        f'<!doctype html><html lang="{_e(lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex, nofollow"><meta name="referrer" content="no-referrer">',
        f"<title>{_e(s.title)} · {_e(t['debrief'])}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{_e(s.title)}</h1>",
        f'<div class="meta">{_e(t["customer"])}: {_e(s.customer)}'
        + (f" · {_e(t['site'])}: {_e(s.site)}" if s.site else "")
        + f" · {_e(t['period'])}: {_e(s.start_date)} – {_e(s.end_date)}</div>",
        f"<p><strong>{_e(t['purpose'])}:</strong> {_e(t.get(s.purpose, s.purpose))}</p>",
    ]
    if s.goals:
        out.append(f"<h2>{_e(t['goals'])}</h2>{_para(s.goals)}")
    if debrief.hypotheses:
        out.append(f"<h2>{_e(t['hypotheses'])}</h2><ul>")
        for h in debrief.hypotheses:
            out.append(
                f"<li>{_e(h.statement)} <span class='muted'>({_e(t['supports'])} {h.supporting_observations}"
                f" · {_e(t['refutes'])} {h.refuting_observations} {_e(t['evidence_obs'])})</span></li>"
            )
        out.append("</ul>")
    c = debrief.coverage
    gaps = (
        ", ".join(str(g.start) if g.days == 1 else f"{g.start} – {g.end}" for g in c.gap_ranges) or t["none"]
    )
    out.append(
        f"<h2>{_e(t['coverage_whole' if redacted else 'coverage'])}</h2>"
        f"<p>{_e(t['days_logged'])}: {c.days_logged} / {c.stint_days}"
        f" · {c.observations} {_e(t['observations'])}</p><p class='muted'>{_e(t['gaps'])}: {_e(gaps)}</p>"
    )
    out.append(f"<h3>{_e(t['by_dimension'])}</h3><table>")
    out += [f"<tr><td>{_e(t.get(k, k))}</td><td>{n}</td></tr>" for k, n in c.by_dimension.items()]
    out.append("</table>")
    if c.quotes_by_speaker_role:
        out.append(f"<h3>{_e(t['quotes_by_role'])}</h3><table>")
        out += [
            f"<tr><td>{_e(r.speaker_role or t['unspecified'])}</td><td>{r.quotes}</td></tr>"
            for r in c.quotes_by_speaker_role
        ]
        out.append("</table>")
    out.append(f"<h2>{_e(t['insights'])}</h2>")
    themes = {th.id: th.name for th in debrief.themes}
    current: object = object()
    for insight in debrief.insights:
        if insight.theme_id != current and themes:
            current = insight.theme_id
            name = themes.get(insight.theme_id, t["unthemed"]) if insight.theme_id else t["unthemed"]
            out.append(f"<h3>{_e(name)}</h3>")
        out.append(_insight(insight, t, image_src))
    if debrief.actions and not redacted:
        out.append(
            f"<h2>{_e(t['actions'])}</h2><table><tr><th>{_e(t['priority'])}</th><th>{_e(t['action'])}</th>"
            f"<th>{_e(t['owner'])}</th><th>{_e(t['due'])}</th><th>{_e(t['status'])}</th></tr>"
        )
        for a in debrief.actions:
            out.append(
                f"<tr><td>{_e(t[a.priority])}</td><td>{_e(a.title)}</td><td>{_e(a.owner_name or '')}</td>"
                f"<td>{_e(a.due_date or '')}</td><td>{_e(t[a.status.value])}</td></tr>"
            )
        out.append("</table>")
    if footer:
        out.append(f'<p class="muted">{_e(footer)}</p>')
    out.append("</main></body></html>")
    return "".join(out)


def text_for(lang: str, key: str) -> str:
    return _TEXT[lang if lang in _TEXT else "zh-CN"][key]
