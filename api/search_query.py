"""The query language people type into the search box, read by our own parser (Whoosh's parser
never fails and silently misreads things like ``tag:`` or ``AND``).

    调度 排班            every word must occur (Chinese words match as substrings)
    "手工 排班"           an exact phrase (also “…” and 「…」); a space between Chinese words
                         matches 手工排班 as well as 手工 排班 and 手工，排班
    -Excel  -"系统上线"    exclusion
    tag:痛点  kind:quote  author:wang@example.com  type:day  dim:scene
    date:2026-03-02..2026-03-10   date:>=2026-03-05   date:2026-03   after:… before:…

Chinese field names work too (标签: 类型: 作者: 日期:); full-width forms are read as half-width.
Text is read leniently (an unclosed quote runs to the end, a lone ``-`` is ignored, unknown
``foo:bar`` is searched as text); a filter with a value that cannot mean anything (``kind:xyz``,
``date:yesterdayish``) raises :class:`QueryError`, which the API answers with 400.
"""

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, get_args

from api.fields import normalise_tag
from api.models import ObservationDimension, ObservationKind

MAX_CLAUSES = 32

DocType = Literal["observation", "day", "material", "insight", "action"]
DOC_TYPES: tuple[str, ...] = get_args(DocType)

_FIELDS = {
    "tag": "tag",
    "tags": "tag",
    "标签": "tag",
    "kind": "kind",
    "类型": "kind",
    "author": "author",
    "by": "author",
    "作者": "author",
    "type": "type",
    "dim": "dimension",
    "dimension": "dimension",
    "维度": "dimension",
    "date": "date",
    "day": "date",
    "日期": "date",
    "from": "after",
    "after": "after",
    "since": "after",
    "to": "before",
    "until": "before",
    "before": "before",
}
_QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』", "”": "”"}
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?$")


class QueryError(ValueError):
    """The query names a filter value that cannot match anything meaningful."""


@dataclass(frozen=True)
class TextClause:
    text: str
    negated: bool = False
    phrase: bool = False  # typed in quotes


@dataclass
class ParsedQuery:
    clauses: list[TextClause] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    not_kinds: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None

    @property
    def positive(self) -> list[TextClause]:
        return [c for c in self.clauses if not c.negated]

    @property
    def negative(self) -> list[TextClause]:
        return [c for c in self.clauses if c.negated]

    def narrow_dates(self, start: date | None, end: date | None) -> None:
        if start is not None and (self.date_from is None or start > self.date_from):
            self.date_from = start
        if end is not None and (self.date_to is None or end < self.date_to):
            self.date_to = end


def _parse_day(raw: str, *, end: bool) -> date:
    m = _DATE.match(raw.strip())
    if not m:
        raise QueryError(f"{raw!r} is not a date; write it as 2026-03-05 (or 2026-03 for a month).")
    year, month = int(m[1]), int(m[2])
    try:
        if m[3] is not None:
            return date(year, month, int(m[3]))
        return date(year, month, calendar.monthrange(year, month)[1] if end else 1)
    except ValueError:
        raise QueryError(f"{raw!r} is not a real date.") from None


def _date_range(raw: str) -> tuple[date | None, date | None]:
    raw = raw.strip()
    if ".." in raw:
        low, _, high = raw.partition("..")
        return (
            _parse_day(low, end=False) if low.strip() else None,
            _parse_day(high, end=True) if high.strip() else None,
        )
    for op in (">=", "<=", ">", "<"):
        if raw.startswith(op):
            value = raw[len(op) :]
            if op == ">=":
                return _parse_day(value, end=False), None
            if op == ">":
                last = _parse_day(value, end=True)
                if last == date.max:
                    raise QueryError(f"No day comes after {last.isoformat()}.")
                return last + timedelta(days=1), None
            if op == "<=":
                return None, _parse_day(value, end=True)
            first = _parse_day(value, end=False)
            if first == date.min:
                raise QueryError(f"No day comes before {first.isoformat()}.")
            return None, first - timedelta(days=1)
    return _parse_day(raw, end=False), _parse_day(raw, end=True)


def _apply_filter(parsed: ParsedQuery, name: str, value: str, negated: bool) -> None:
    value = value.strip()
    if not value:
        raise QueryError(f"{name}: needs a value, e.g. {name}:…")
    if name == "tag":
        try:
            tag = normalise_tag(value)
        except ValueError as exc:
            raise QueryError(f"tag: {exc}") from None
        (parsed.not_tags if negated else parsed.tags).append(tag)
    elif name == "kind":
        kinds = [k.value for k in ObservationKind]
        if value.lower() not in kinds:
            raise QueryError(f"kind:{value} is not a kind; use one of {', '.join(kinds)}.")
        (parsed.not_kinds if negated else parsed.kinds).append(value.lower())
    elif negated:
        raise QueryError(f"-{name}: cannot be excluded; only tag: and kind: can.")
    elif name == "author":
        parsed.authors.append(value)
    elif name == "type":
        if value.lower() not in DOC_TYPES:
            raise QueryError(f"type:{value} is not a type; use one of {', '.join(DOC_TYPES)}.")
        parsed.types.append(value.lower())
    elif name == "dimension":
        dims = [d.value for d in ObservationDimension]
        if value.lower() not in dims:
            raise QueryError(f"dim:{value} is not a dimension; use one of {', '.join(dims)}.")
        parsed.dimensions.append(value.lower())
    elif name == "date":
        parsed.narrow_dates(*_date_range(value))
    elif name == "after":
        parsed.narrow_dates(_parse_day(value, end=False), None)
    elif name == "before":
        parsed.narrow_dates(None, _parse_day(value, end=True))


def _read_quoted(q: str, i: int) -> tuple[str, int]:
    """``q[i]`` is an opening quote: the quoted text and the index after the closing quote
    (an unclosed quote runs to the end of the query)."""
    close = _QUOTES[q[i]]
    j = q.find(close, i + 1)
    if j < 0:
        return q[i + 1 :], len(q)
    return q[i + 1 : j], j + 1


def parse_query(raw: str) -> ParsedQuery:
    q = unicodedata.normalize("NFKC", raw.replace("\x00", " "))
    parsed = ParsedQuery()
    i, n = 0, len(q)
    while i < n:
        if q[i].isspace():
            i += 1
            continue
        negated = False
        if q[i] == "-" and i + 1 < n and not q[i + 1].isspace():
            negated, i = True, i + 1
        if q[i] in _QUOTES:
            text, i = _read_quoted(q, i)
            if text.strip():
                parsed.clauses.append(TextClause(text.strip(), negated=negated, phrase=True))
            continue
        j = i
        while j < n and not q[j].isspace() and q[j] not in _QUOTES:
            j += 1
        word = q[i:j]
        name, colon, value = word.partition(":")
        fieldname = _FIELDS.get(name.lower()) if colon else None
        if fieldname is not None:
            if not value and j < n and q[j] in _QUOTES:
                value, j = _read_quoted(q, j)
            _apply_filter(parsed, fieldname, value, negated)
        elif word and word.upper() not in ("AND", "&&") and word != "-":
            parsed.clauses.append(TextClause(word, negated=negated))
        i = j
    if len(parsed.clauses) > MAX_CLAUSES:
        raise QueryError(f"A query has at most {MAX_CLAUSES} words or phrases.")
    if parsed.date_from and parsed.date_to and parsed.date_from > parsed.date_to:
        raise QueryError("The date range ends before it starts.")
    return parsed
