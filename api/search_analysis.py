"""Text analysis for mixed Chinese/English notes, shared by indexing, querying and snippets.

* NFKC then case folding: ｅｘｃｅｌ, Excel and EXCEL are one word; full-width digits are digits.
  CJK radicals that PDF extraction yields for ordinary characters are read as those characters
  (很⻓ is 很长; ``api.search_radicals``). Traditional characters are read as simplified
  (資料庫 is 资料库; ``api.search_traditional``).
* Runs of CJK characters become overlapping bigrams (北京大学 → 北京 京大 大学) with consecutive
  positions, so any substring of two or more characters is a phrase query over bigrams: recall
  1.0 without a dictionary (jieba misses unfamiliar names and cuts across words; measured in
  ``/work/shared/notes/search.md``). A run of one character is indexed as itself.
* The last character of each run is also indexed, at the position of the run's last bigram, so
  every occurrence of a character is the start of a token: a query of one character is a prefix
  query (all tokens starting with it), with recall 1.0, at the cost of one token per run (a
  separate unigram field doubled the postings and halved indexing speed).
* Other words (Latin letters, digits, Malay…) are Porter-stemmed when purely a–z. A word mixing
  letters and digits (500kg, excel2016, iphone15) is indexed whole and, at the same position,
  as its letter and digit runs: kg, excel and iphone find it, 500kg still finds only it.
"""

import html
import re
import unicodedata
from array import array
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, pairwise
from typing import Any

from whoosh.analysis import Analyzer, Token
from whoosh.formats import Positions
from whoosh.lang.porter import stem
from whoosh.system import _INT_SIZE, pack_uint

from api.search_radicals import fold_radicals
from api.search_traditional import fold_traditional

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_TOKENS = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")
_CJK_CHARS = re.compile(f"[{_CJK}]")
_ASCII_WORD = re.compile(r"[a-z]+")
_WORD_PARTS = re.compile(r"\d+|[^\W\d_]+")
FIELD_SEPARATOR = "\u2029"
_FIELD_GAP = 16  # positions between two texts of a record: no phrase spans them


def normalise(text: str) -> str:
    return fold_traditional(unicodedata.normalize("NFKC", fold_radicals(text))).casefold()


@lru_cache(maxsize=200_000)
def _word(word: str) -> str:
    return stem(word) if _ASCII_WORD.fullmatch(word) else word


@lru_cache(maxsize=200_000)
def _word_parts(word: str) -> tuple[tuple[str, int, int], ...]:
    """A word of letters and digits together (500kg, excel2016, iphone15): its letter and digit
    runs (stemmed) with their offsets, each indexed at the word's position beside the whole word,
    so kg, excel and iphone find it. Empty for any other word."""
    runs = list(_WORD_PARTS.finditer(word))
    if len(runs) < 2:
        return ()
    seen: dict[str, tuple[int, int]] = {}
    for m in runs:
        seen.setdefault(_word(m.group()), (m.start(), m.end()))
    return tuple((part, start, end) for part, (start, end) in seen.items())


def tokens(normalised: str, parts: bool = False) -> Iterator[tuple[str, int, int, int]]:
    """``(token, position, start, end)`` for already normalised text; with ``parts``, also the
    letter and digit runs of mixed words (what the index holds; a query looks up whole words)."""
    pos = 0
    for chunk_start, chunk in _chunks(normalised):
        for m in _TOKENS.finditer(chunk):
            start = chunk_start + m.start()
            run = m.group(1)
            if run is None:
                word = m.group(2)
                yield _word(word), pos, start, chunk_start + m.end()
                if parts:
                    for part, part_start, part_end in _word_parts(word):
                        yield part, pos, start + part_start, start + part_end
                pos += 1
            elif len(run) == 1:
                yield run, pos, start, start + 1
                pos += 1
            else:
                for i in range(len(run) - 1):
                    yield run[i : i + 2], pos, start + i, start + i + 2
                    pos += 1
                yield run[-1], pos - 1, start + len(run) - 1, start + len(run)
        pos += _FIELD_GAP


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    start = 0
    for part in text.split(FIELD_SEPARATOR):
        yield start, part
        start += len(part) + 1


class MixedAnalyzer(Analyzer):  # type: ignore[misc]
    """Whoosh analyzer for the main text field (pickled into the index schema by name)."""

    def __call__(
        self, value: str, positions: bool = False, chars: bool = False, **kwargs: Any
    ) -> Iterator[Token]:
        t = Token(positions, chars, removestops=False, mode=kwargs.get("mode", ""))
        for text, pos, start, end in tokens(normalise(value), parts=True):
            t.text, t.pos, t.startchar, t.endchar, t.boost, t.stopped = text, pos, start, end, 1.0, False
            yield t


def index_terms(normalised: str) -> dict[str, list[int]]:
    """Every token of :func:`tokens` with its positions (the indexing fast path)."""
    poses: dict[str, list[int]] = {}
    pos = 0
    for chunk in normalised.split(FIELD_SEPARATOR):
        for m in _TOKENS.finditer(chunk):
            run = m.group(1)
            if run is None:
                word = m.group(2)
                poses.setdefault(_word(word), []).append(pos)
                for part, _, _ in _word_parts(word):
                    poses.setdefault(part, []).append(pos)
                pos += 1
            elif len(run) == 1:
                poses.setdefault(run, []).append(pos)
                pos += 1
            else:
                for i in range(len(run) - 1):
                    poses.setdefault(run[i : i + 2], []).append(pos + i)
                pos += len(run) - 1
                poses.setdefault(run[-1], []).append(pos - 1)
        pos += _FIELD_GAP
    return poses


class MixedPositions(Positions):  # type: ignore[misc]
    """Whoosh's ``Positions`` format fed straight from :func:`index_terms` (no ``Token`` object
    per token) and with position deltas packed as bytes instead of pickled lists: indexing and
    phrase matching spend their time in Whoosh's own code, not in ours."""

    def word_values(
        self, value: str, analyzer: Any, **kwargs: Any
    ) -> Iterator[tuple[str, int, float, bytes]]:
        boost = self.field_boost
        for word, plist in index_terms(normalise(value)).items():
            yield word, len(plist), len(plist) * boost, self.encode(plist)

    def encode(self, poslist: list[int]) -> bytes:
        deltas = [poslist[0], *(b - a for a, b in pairwise(poslist))]
        head: bytes = pack_uint(len(deltas))
        if max(deltas) < 256:
            return head + b"\x01" + bytes(deltas)
        return head + b"\x04" + array("I", deltas).tobytes()

    def decode_positions(self, valuestring: bytes) -> list[int]:
        if valuestring[_INT_SIZE] == 1:
            return list(accumulate(valuestring[_INT_SIZE + 1 :]))
        return list(accumulate(array("I", valuestring[_INT_SIZE + 1 :])))


@dataclass(frozen=True)
class Part:
    """One piece of a query clause: consecutive tokens (a phrase when there are several), or
    one CJK character (``unigram``: any token starting with it).

    ``bridges`` (empty, or one entry per pair of neighbouring tokens): where a phrase was typed
    with whitespace between two runs of CJK characters ("手工 排班"), the bigram that joins them
    (工排). The record may hold the two tokens one after the other (手工 排班, 手工，排班) or with
    that bigram between them (手工排班): Chinese text has no spaces, but people type them between
    words."""

    tokens: tuple[str, ...]
    unigram: bool = False
    bridges: tuple[str | None, ...] = ()


def _is_cjk_bigram(token: str) -> bool:
    return len(token) == 2 and _CJK_CHARS.match(token) is not None and _CJK_CHARS.match(token, 1) is not None


def _part(current: list[str], bridges: list[str | None]) -> Part:
    return Part(tuple(current), bridges=tuple(bridges) if any(bridges) else ())


def clause_parts(text: str) -> list[Part]:
    """How a word or phrase typed by the user is looked up. A lone CJK character inside a longer
    clause may sit inside a longer run in the record, so it is matched on its own. Whitespace
    between two CJK runs of a phrase may be absent from the record (see :class:`Part`)."""
    norm = normalise(text)
    parts: list[Part] = []
    current: list[str] = []
    bridges: list[str | None] = []
    last_pos, last_end = -1, 0
    for token, pos, start, end in tokens(norm):
        single_cjk = end - start == 1 and _CJK_CHARS.match(token) is not None
        if single_cjk and pos == last_pos and current:
            continue  # the extra end-of-run token: already covered by the run's bigrams
        if current and (single_cjk or pos != last_pos + 1):
            parts.append(_part(current, bridges))
            current, bridges = [], []
        if single_cjk:
            parts.append(Part((token,), unigram=True))
        else:
            if current:
                gap = norm[last_end:start]
                joined = gap.isspace() and _is_cjk_bigram(current[-1]) and _is_cjk_bigram(token)
                bridges.append(current[-1][1] + token[0] if joined else None)
            current.append(token)
        last_pos, last_end = pos, end
    if current:
        parts.append(_part(current, bridges))
    return parts


def phrase_ends(held: Container[tuple[str, int]], part: Part, start: int) -> set[int]:
    """The positions where ``part`` ends when its first token is at ``start`` (``held``: the
    record's ``(token, position)`` pairs): each next token directly after the previous one or,
    where the part has a bridge, after the bridge."""
    ends = {start}
    for k in range(1, len(part.tokens)):
        token = part.tokens[k]
        bridge = part.bridges[k - 1] if part.bridges else None
        following = {p + 1 for p in ends if (token, p + 1) in held}
        if bridge is not None:
            following.update(p + 2 for p in ends if (bridge, p + 1) in held and (token, p + 2) in held)
        ends = following
        if not ends:
            break
    return ends


@dataclass(frozen=True)
class Clause:
    """A word or phrase as looked up in the index. ``exact`` is set when the index lookup is
    looser than the clause (a lone CJK character next to other tokens is matched on its own):
    the candidates are then checked against the record's text, character by character."""

    parts: tuple[Part, ...]
    exact: tuple[str, ...] | None = None


def fine_tokens(text: str) -> list[str]:
    """Words (stemmed) and single CJK characters, in order: what ``exact`` is checked against."""
    out: list[str] = []
    for m in _TOKENS.finditer(normalise(text)):
        run = m.group(1)
        if run is None:
            out.append(_word(m.group(2)))
        else:
            out.extend(run)
    return out


def contains_sequence(texts: Iterable[str], seq: Sequence[str]) -> bool:
    n = len(seq)
    first = seq[0]
    for text in texts:
        toks = fine_tokens(text)
        for i in range(len(toks) - n + 1):
            if toks[i] == first and tuple(toks[i : i + n]) == tuple(seq):
                return True
    return False


def analyse_clause(text: str) -> Clause:
    parts = clause_parts(text)
    loose = len(parts) > 1 and any(p.unigram for p in parts)
    return Clause(tuple(parts), tuple(fine_tokens(text)) if loose else None)


def _normalise_with_origins(text: str) -> tuple[str, Sequence[int]]:
    """The normalised text and, for each of its characters, where it came from in ``text``."""
    folded = normalise(text)
    if len(folded) == len(text):  # full-width forms, case: one character for one
        return folded, range(len(text))
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        n = normalise(ch)
        out.append(n)
        origin.extend([i] * len(n))
    return "".join(out), origin


def _cjk_substring(part: Part) -> str | None:
    """The text a part of CJK bigrams stands for (北京 京大 大学 → 北京大学), else None."""
    toks = part.tokens
    if part.bridges:
        return None
    if not all(len(t) == 2 and _CJK_CHARS.fullmatch(t[0]) and _CJK_CHARS.fullmatch(t[1]) for t in toks):
        return None
    if any(a[1] != b[0] for a, b in pairwise(toks)):
        return None
    return toks[0] + "".join(t[1] for t in toks[1:])


def mark_spans(text: str, parts: Sequence[Part]) -> list[tuple[int, int]]:
    """Character spans of ``text`` (original, not normalised) where the query parts occur."""
    if not parts or not text:
        return []
    norm, origin = _normalise_with_origins(text)
    at: dict[tuple[str, int], tuple[int, int]] | None = None
    spans: list[tuple[int, int]] = []
    for part in parts:
        needle = part.tokens[0] if part.unigram else _cjk_substring(part)
        if needle is not None:  # plain substring search: the common, fast case
            i = norm.find(needle)
            while i >= 0:
                spans.append((origin[i], origin[i + len(needle) - 1] + 1))
                i = norm.find(needle, i + 1)
            continue
        if at is None:
            at = {}
            for token, pos, start, end in tokens(norm, parts=True):
                at.setdefault((token, pos), (start, end))
        first = part.tokens[0]
        for (token, pos), (start, _) in at.items():
            if token != first:
                continue
            ends = phrase_ends(at, part, pos)
            if ends:
                last = at[(part.tokens[-1], max(ends))]
                spans.append((origin[start], origin[last[1] - 1] + 1))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def snippet(texts: Mapping[str, str], parts: Sequence[Part], width: int = 160) -> tuple[str, str]:
    """The best-matching text of a record, cut to about ``width`` characters around its matches,
    HTML-escaped with ``<mark>`` around every match. Answers ``(field name, html)``."""
    best_name, best_text = "", ""
    best_spans: list[tuple[int, int]] = []
    for name, text in texts.items():
        if not text:
            continue
        spans = mark_spans(text, parts)
        if not best_name or len(spans) > len(best_spans):
            best_name, best_text, best_spans = name, text, spans
    if not best_name:
        return "", ""
    start = 0
    if best_spans and len(best_text) > width:
        start = max(0, best_spans[0][0] - width // 4)
    end = min(len(best_text), start + width)
    start = max(0, min(start, end - width))
    out = ["…" if start > 0 else ""]
    cursor = start
    for s, e in best_spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(html.escape(best_text[cursor:s]))
        out.append(f"<mark>{html.escape(best_text[s:e])}</mark>")
        cursor = e
    out.append(html.escape(best_text[cursor:end]))
    out.append("…" if end < len(best_text) else "")
    return best_name, "".join(out)
