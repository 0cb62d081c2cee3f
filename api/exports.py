"""Downloads of a stint: the debrief as Markdown or as one self-contained, print-ready HTML file
(photos embedded), the action plan as CSV or XLSX, and the whole stint as a streamed ZIP."""

import base64
import csv
import io
import re
import uuid
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from sqlmodel import Session

from api.access import StintDep
from api.action_views import ActionOut
from api.archive import stream_stint_zip
from api.db import SessionDep
from api.debrief import Debrief, build_debrief
from api.debrief_media import material_previews, preview_bytes
from api.debrief_page import pick_language, render, text_for
from api.errors import responses
from api.ingest import StoreDep
from api.models import Role
from storage import BlobStore

router = APIRouter(prefix="/api", tags=["exports"])


class Format(StrEnum):
    md = "md"
    html = "html"
    zip = "zip"
    csv = "csv"
    xlsx = "xlsx"


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filename(debrief: Debrief, suffix: str, ext: str) -> str:
    title = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", debrief.stint.title).strip() or "stint"
    return f"{title}-{suffix}.{ext}"


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


def to_markdown(d: Debrief, lang: str) -> str:
    def t(key: str) -> str:
        return text_for(lang, key)

    def kind(code: str) -> str:
        """An observation kind in words; a code this version does not know, as it is."""
        try:
            return t(f"kind_{code}")
        except KeyError:
            return _md_escape(code)

    s = d.stint
    lines = [
        f"# {_md_escape(s.title)}",
        "",
        f"- {t('customer')}: {_md_escape(s.customer)}",
        *([f"- {t('site')}: {_md_escape(s.site)}"] if s.site else []),
        f"- {t('period')}: {s.start_date} – {s.end_date}",
        f"- {t('purpose')}: {t(s.purpose)}",
        "",
    ]
    if s.goals:
        lines += [f"## {t('goals')}", "", _md_escape(s.goals), ""]
    if d.hypotheses:
        lines += [f"## {t('hypotheses')}", ""]
        lines += [
            f"- {_md_escape(h.statement)} ({t('supports')} {h.supporting_observations} · "
            f"{t('refutes')} {h.refuting_observations} {t('evidence_obs')})"
            for h in d.hypotheses
        ]
        lines.append("")
    c = d.coverage
    gaps = ", ".join(str(g.start) if g.days == 1 else f"{g.start} – {g.end}" for g in c.gap_ranges)
    lines += [
        f"## {t('coverage')}",
        "",
        f"- {t('days_logged')}: {c.days_logged} / {c.stint_days}",
        f"- {t('gaps')}: {gaps or t('none')}",
        f"- {t('by_dimension')}: " + ", ".join(f"{t(k)} {n}" for k, n in c.by_dimension.items()),
        f"- {t('by_kind')}: " + ", ".join(f"{kind(k)} {n}" for k, n in c.by_kind.items()),
        f"- {t('quotes_by_role')}: "
        + (
            ", ".join(
                f"{_md_escape(r.speaker_role or t('unspecified'))} {r.quotes}"
                for r in c.quotes_by_speaker_role
            )
            or t("none")
        ),
        "",
        f"## {t('insights')}",
        "",
    ]
    themes = {th.id: th.name for th in d.themes}
    for i in d.insights:
        theme = f" · {_md_escape(themes[i.theme_id])}" if i.theme_id in themes else ""
        lines += [f"### {_md_escape(i.title)}{theme}", ""]
        if i.draft:
            lines += [f"*{t('draft')}*", ""]
        lines += [_md_escape(i.statement), ""]
        for v in i.verdicts:
            lines.append(f"- {t(v.verdict.value)}: {_md_escape(v.statement)}")
        for e in i.evidence:
            if e.observation_id:
                lines.append(f"- {_md_escape(e.text or '')} ({e.day})")
                if e.quote:
                    who = e.speaker_role or t("unspecified")
                    lines.append(f"  > 「{_md_escape(e.quote)}」 — {_md_escape(who)}")
            else:
                lines.append(f"- 🖼 {_md_escape(e.caption or str(e.material_id))}")
        lines.append("")
    if d.actions:
        lines += [
            f"## {t('actions')}",
            "",
            f"| {t('priority')} | {t('action')} | {t('owner')} | {t('due')} | {t('status')} |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {t(a.priority)} | {_md_escape(a.title)} | {_md_escape(a.owner_name or '')} | {a.due_date or ''} | {t(a.status.value)} |"
            for a in d.actions
        ]
        lines.append("")
    return "\n".join(lines)


def embedded_images(session: Session, store: BlobStore, d: Debrief) -> dict[uuid.UUID, str]:
    """data: URIs of the metadata-free previews of every photo used as evidence."""
    ids = {e.material_id for i in d.insights for e in i.evidence if e.material_id}
    out = {}
    for mid, info in material_previews(session, ids).items():
        data = preview_bytes(store, info)
        if data is not None:
            out[mid] = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    return out


_PLAN_HEADERS = {
    "zh-CN": (
        "优先级",
        "行动",
        "说明",
        "负责人",
        "负责人邮箱",
        "截止日期",
        "状态",
        "进度(%)",
        "影响",
        "投入",
        "已逾期",
        "关联洞见",
        "最近审批意见",
    ),
    "en": (
        "Priority",
        "Action",
        "Description",
        "Owner",
        "Owner e-mail",
        "Due date",
        "Status",
        "Progress (%)",
        "Impact",
        "Effort",
        "Overdue",
        "Insights",
        "Last review",
    ),
}


def _plan_rows(d: Debrief, lang: str) -> Iterable[list[str | int | date | None]]:
    titles = {i.id: i.title for i in d.insights}
    for a in d.actions:
        yield _plan_row(a, lang, titles)


def _plan_row(a: ActionOut, lang: str, titles: dict[uuid.UUID, str]) -> list[str | int | date | None]:
    def t(key: str) -> str:
        return text_for(lang, key)

    review = a.last_review
    return [
        t(a.priority),
        a.title,
        a.description or "",
        a.owner_name or "",
        a.owner_email or "",
        a.due_date,
        t(a.status.value),
        a.progress,
        t(a.impact.value),
        t(a.effort.value),
        ("是" if lang == "zh-CN" else "yes") if a.overdue else "",
        "; ".join(titles.get(i, "") for i in a.insight_ids),
        f"{review.actor_name}: {review.comment}" if review and review.comment else "",
    ]


def _cell(value: str | int | date | None) -> str | int | date | None:
    """Text that a spreadsheet would run as a formula is kept as text (CSV/formula injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(d: Debrief, lang: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_PLAN_HEADERS[lang])
    for row in _plan_rows(d, lang):
        writer.writerow(["" if v is None else _cell(v) for v in row])
    # A byte-order mark, so Excel opens Chinese text as UTF-8.
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def to_xlsx(d: Debrief, lang: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "改善行动计划" if lang == "zh-CN" else "Action plan"
    sheet.append(list(_PLAN_HEADERS[lang]))
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="0B6E69")
    for row in _plan_rows(d, lang):
        # XML cannot hold C0 controls but tab and newlines (openpyxl raises); text may carry them.
        sheet.append([_cell(ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v) for v in row])
    for column, width in zip("ABCDEFGHIJKLM", (8, 36, 48, 12, 24, 12, 10, 10, 8, 8, 8, 36, 40), strict=True):
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        row[5].number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@router.get(
    "/stints/{stint_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "A download",
            "content": {
                "text/markdown": {},
                "text/html": {},
                "text/csv": {},
                _XLSX: {},
                "application/zip": {},
            },
        },
        **responses(401, 403, 404, 422),
    },
)
def export_stint(
    request: Request,
    session: SessionDep,
    access: StintDep,
    store: StoreDep,
    format: Annotated[
        Format, Query(description="md, html (debrief); csv, xlsx (action plan); zip (everything)")
    ],
    lang: Annotated[
        str | None, Query(max_length=10, description="zh-CN or en; default from Accept-Language")
    ] = None,
) -> Response:
    """Download the debrief (md, html), the action plan (csv, xlsx) or, for managers, the whole stint as
    a ZIP (JSON data, materials, a manifest of SHA-256 sums) that `fieldbook import-stint` brings back."""
    language = pick_language(request.headers.get("accept-language"), lang)
    if format is Format.zip:
        access.require(Role.manager)
        stream, name = stream_stint_zip(session, store, access.stint)
        session.close()  # the rows are read; only the blob store is read while streaming
        return StreamingResponse(
            stream,
            media_type="application/zip",
            headers={"Content-Disposition": _disposition(name), "Cache-Control": "no-store"},
        )
    d = build_debrief(session, access.stint)
    headers = {"Cache-Control": "no-store"}
    if format is Format.md:
        body, media, name = (
            to_markdown(d, language).encode(),
            "text/markdown; charset=utf-8",
            _filename(d, "debrief", "md"),
        )
    elif format is Format.html:
        images = embedded_images(session, store, d)
        body = render(d, language, image_src=images.get, redacted=False).encode()
        media, name = "text/html; charset=utf-8", _filename(d, "debrief", "html")
    elif format is Format.csv:
        body, media, name = to_csv(d, language), "text/csv; charset=utf-8", _filename(d, "action-plan", "csv")
    else:
        body, media, name = to_xlsx(d, language), _XLSX, _filename(d, "action-plan", "xlsx")
    headers["Content-Disposition"] = _disposition(name)
    return Response(body, media_type=media, headers=headers)
