"""Answering a query from the index: our own evaluation over Whoosh's postings, with per-segment
metadata columns cached across queries (filters, facets and sorts never touch stored fields).

Whoosh's generic matchers cost most of a query's time (a phrase was matched once to count and again
to score). Here each clause is evaluated once, a segment at a time: posting blocks are read whole,
document sets are intersected with Python sets, phrase positions are checked only for documents
that hold every bigram, and BM25 is computed only for the documents that pass the filters. Posting
blocks are read whole, and long lists cached, by ``api/search_postings.py``.
"""

import heapq
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from api import search_columns
from api.search_analysis import Clause, MixedPositions, Part, contains_sequence, phrase_ends
from api.search_columns import K1, NAMES, Columns, View, ordinals, variants
from api.search_postings import FIELD, postings

FACETS = ("types", "kinds", "tags", "authors", "stints", "days")
FACET_SIZE = 50
_DECODE = MixedPositions().decode_positions


# --- filters and facets --------------------------------------------------------------------------------


@dataclass
class Filters:
    """Every set is of string values; ``None`` or empty means no restriction, except
    ``stints``, the stints the caller may read (always applied)."""

    stints: set[str]
    types: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    not_kinds: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)  # all of them
    not_tags: set[str] = field(default_factory=set)
    authors: set[str] | None = None  # None: anyone; empty: nobody
    dimensions: set[str] = field(default_factory=set)
    hypotheses: set[str] = field(default_factory=set)
    day_from: int = 0  # yyyymmdd
    day_to: int = 0


@dataclass
class Hit:
    body: dict[str, Any]
    score: float | None


@dataclass
class Outcome:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]


def _has_one_of(wanted: set[int], column: list[tuple[int, ...]]) -> Callable[[int], bool]:
    return lambda d: not wanted.isdisjoint(column[d])


def _select(docs: Iterable[int], cols: Columns, f: Filters) -> list[int]:
    """The documents passing every filter, in one pass over the candidates."""
    stints = ordinals(f.stints)
    checks: list[Callable[[int], bool]] = []
    if f.types:
        types, type_col = ordinals(f.types), cols.type
        checks.append(lambda d: type_col[d] in types)
    if f.kinds:
        kinds, kind_col = ordinals(f.kinds), cols.kind
        checks.append(lambda d: kind_col[d] in kinds)
    if f.not_kinds:
        not_kinds, kind_col = ordinals(f.not_kinds), cols.kind
        checks.append(lambda d: kind_col[d] not in not_kinds)
    if f.authors is not None:
        authors, author_col = ordinals(f.authors), cols.author
        checks.append(lambda d: author_col[d] in authors)
    if f.dimensions:
        dims, dim_col = ordinals(f.dimensions), cols.dim
        checks.append(lambda d: dim_col[d] in dims)
    if f.tags:
        # Each tag asked for, in traditional or simplified characters (see search_columns.variants).
        wanted, tag_col = [variants(tag) for tag in f.tags], cols.tags
        if not all(wanted):
            return []
        checks += [_has_one_of(each, tag_col) for each in wanted]
    if f.not_tags:
        not_tags, tag_col = set().union(*map(variants, f.not_tags)), cols.tags
        checks.append(lambda d: not not_tags.intersection(tag_col[d]))
    if f.hypotheses:
        hyps, hyp_col = ordinals(f.hypotheses), cols.hyps
        checks.append(lambda d: not hyps.isdisjoint(hyp_col[d]))
    if f.day_from or f.day_to:
        low, high, day_col = f.day_from, f.day_to or 99991231, cols.day
        checks.append(lambda d: low <= day_col[d] <= high)
    stint_col = cols.stint
    selected = [d for d in docs if stint_col[d] in stints]
    for check in checks:
        selected = [d for d in selected if check(d)]
    return selected


def _facets(docs: list[int], cols: Columns) -> dict[str, list[tuple[str, int]]]:
    def top(counts: Counter[int], by_value: bool = False) -> list[tuple[str, int]]:
        counts.pop(0, None)
        items = [(NAMES[o], n) for o, n in counts.items()]
        items.sort(key=(lambda i: i[0]) if by_value else (lambda i: (-i[1], i[0])), reverse=by_value)
        return items[:FACET_SIZE]

    tag_counts: Counter[int] = Counter(chain.from_iterable(map(cols.tags.__getitem__, docs)))
    day_counts = Counter(map(cols.day.__getitem__, docs))
    day_counts.pop(0, None)
    days = sorted(day_counts.items(), reverse=True)[:FACET_SIZE]
    return {
        "types": top(Counter(map(cols.type.__getitem__, docs))),
        "kinds": top(Counter(map(cols.kind.__getitem__, docs))),
        "tags": top(tag_counts),
        "authors": top(Counter(map(cols.author.__getitem__, docs))),
        "stints": top(Counter(map(cols.stint.__getitem__, docs))),
        "days": [(f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}", n) for d, n in days],
    }


# --- evaluating clauses ---------------------------------------------------------------------


def _phrase_counts(
    leaf: Any, part: Part, wanted: list[int] | None, allowed: Set[int] | None, offset: int
) -> dict[int, float]:
    """Per document of one segment: how many times the part's tokens occur at consecutive positions.
    The rarest token is read first; each next one only where the documents so far could match
    (``wanted``, local ids); positions are checked only for ``allowed`` documents (global ids)."""
    tokens = part.tokens
    order = sorted(range(len(tokens)), key=lambda k: leaf.doc_frequency(FIELD, tokens[k]))
    values: dict[int, dict[int, bytes]] = {}
    candidates: set[int] | None = set(wanted) if wanted is not None else None
    for k in order:
        ids, _weights, vals = postings(
            leaf, tokens[k], values=True, wanted=sorted(candidates) if candidates is not None else None
        )
        found = set(ids)
        candidates = found if candidates is None else candidates & found
        if not candidates:
            return {}
        values[k] = dict(zip(ids, vals, strict=True))
    assert candidates is not None
    if allowed is not None:
        candidates = {d for d in candidates if d + offset in allowed}
    if part.bridges:
        return _bridged_counts(leaf, part, values, candidates)
    # Start positions p with token k at p + k for every k: set operations, no per-position loop.
    first = values[0]
    rest = [((-k).__add__, values[k]) for k in range(1, len(tokens))]
    counts: dict[int, float] = {}
    for d in candidates:
        starts = set(_DECODE(first[d])).intersection(*(map(shift, _DECODE(v[d])) for shift, v in rest))
        if starts:
            counts[d] = float(len(starts))
    return counts


def _bridged_counts(
    leaf: Any, part: Part, values: dict[int, dict[int, bytes]], candidates: set[int]
) -> dict[int, float]:
    """:func:`_phrase_counts` for a part with bridges (optional tokens between two of its tokens):
    the bridges' postings are read for the candidates only, positions walked one token at a time."""
    wanted = sorted(candidates)
    bridges: dict[str, dict[int, bytes]] = {}
    for bridge in {b for b in part.bridges if b is not None}:
        ids, _weights, vals = postings(leaf, bridge, values=True, wanted=wanted)
        bridges[bridge] = dict(zip(ids, vals, strict=True))
    counts: dict[int, float] = {}
    for d in candidates:
        held = {(token, p) for k, token in enumerate(part.tokens) for p in _DECODE(values[k][d])}
        for bridge, by_doc in bridges.items():
            if d in by_doc:
                held.update((bridge, p) for p in _DECODE(by_doc[d]))
        found = sum(1 for p in _DECODE(values[0][d]) if phrase_ends(held, part, p))
        if found:
            counts[d] = float(found)
    return counts


def _part_counts(view: View, part: Part, wanted: Set[int] | None) -> dict[int, float]:
    """Term frequency of one query part per (global) document number, live documents only;
    with ``wanted``, at least for those of them that hold it."""
    out: dict[int, float] = {}
    for leaf, offset in view.leaves:
        local_wanted: list[int] | None = None
        n = leaf.doc_count_all()
        if wanted is not None and len(wanted) * 16 < n:  # few enough to skip posting blocks
            local_wanted = sorted(d - offset for d in wanted if offset <= d < offset + n)
            if not local_wanted:
                continue
        if part.unigram:
            local: dict[int, float] = {}
            for term in leaf.expand_prefix(FIELD, part.tokens[0]):
                ids, weights, _ = postings(leaf, term, values=False, wanted=local_wanted)
                for d, w in zip(ids, weights, strict=True):
                    local[d] = local.get(d, 0.0) + w
        elif len(part.tokens) == 1:
            ids, weights, _ = postings(leaf, part.tokens[0], values=False, wanted=local_wanted)
            local = dict(zip(ids, weights, strict=True))
        else:
            local = _phrase_counts(leaf, part, local_wanted, wanted, offset)
        if offset:
            out.update((d + offset, w) for d, w in local.items())
        else:
            out.update(local)
    for d in view.deleted.intersection(out):
        del out[d]
    return out


def _estimate(view: View, part: Part) -> int:
    """How many documents a part may match (the rarest token bounds a phrase)."""
    if part.unigram:
        return len(view.live)
    return sum(min(leaf.doc_frequency(FIELD, t) for t in part.tokens) for leaf, _ in view.leaves)


def _texts(searcher: Any, docnum: int) -> list[str]:
    body = json.loads(searcher.stored_fields(docnum)["body"])
    return [*body["texts"].values(), " ".join(body["tags"])]


def _match(
    searcher: Any, view: View, clauses: Sequence[Clause], wanted: Set[int] | None
) -> tuple[set[int], list[tuple[dict[int, float], int]]]:
    """Documents holding every clause (among ``wanted``), and each part's term frequencies
    with its document frequency.
    Parts are evaluated rarest first, each only where the documents so far could match."""
    ranked = sorted(
        ((_estimate(view, p), i, j, p) for i, c in enumerate(clauses) for j, p in enumerate(c.parts)),
        key=lambda item: item[:3],
    )
    counts: list[tuple[dict[int, float], int]] = []
    docs: Set[int] | None = wanted
    for estimate, _, _, part in ranked:
        tf = _part_counts(view, part, docs)
        # document frequency for idf: exact for a word read in full, else the rarest token's
        counts.append((tf, len(tf) if part.unigram else max(estimate, len(tf))))
        docs = set(tf) if docs is None else tf.keys() & docs
        if not docs:
            return set(), counts
    matched = set(docs or ())
    for clause in clauses:
        if clause.exact:
            matched = {d for d in matched if contains_sequence(_texts(searcher, d), clause.exact)}
    return matched, counts


def _bm25(docs: list[int], parts: list[tuple[dict[int, float], int]], view: View) -> list[float]:
    """BM25 of each of ``docs`` (every part occurs in every one of them)."""
    n = max(len(view.live), 1)
    norm = view.norms()
    scores = [0.0] * len(docs)
    for tf, df in parts:
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        gain = idf * (K1 + 1)
        scores = [
            s + gain * f / (f + norm[d])
            for s, f, d in zip(scores, map(tf.__getitem__, docs), docs, strict=True)
        ]
    return scores


def run(
    directory: Path,
    searcher: Any,
    positive: Sequence[Clause],
    negative: Sequence[Clause],
    filters: Filters,
    *,
    newest: bool,
    offset: int,
    limit: int,
    facets: bool,
    oldest: bool = False,
) -> Outcome:
    """Matching documents the filters let through: ``total``, facet counts, and one page sorted by
    relevance (ties: newest first), newest first (also when no words were typed) or oldest first."""
    view = search_columns.view(directory, searcher)
    cols = view.cols
    clauses = [c for c in positive if c.parts]
    if positive and not clauses:  # only punctuation was typed: nothing can match
        return Outcome(0, [], {name: [] for name in FACETS} if facets else {})
    parts: list[tuple[dict[int, float], int]] = []
    readable = view.docs_of(frozenset(ordinals(filters.stints)))
    if clauses:
        # Start from the documents the caller may see when that is a real restriction.
        matched, parts = _match(
            searcher, view, clauses, readable if len(readable) * 4 < len(view.live) * 3 else None
        )
        candidates: Iterable[int] = matched
    else:
        candidates = readable
    selected = _select(candidates, cols, filters)
    if selected:
        excluded: set[int] = set()
        for clause in negative:
            if clause.parts:
                excluded |= _match(searcher, view, [clause], set(selected))[0]
        if excluded:
            selected = [d for d in selected if d not in excluded]
    total = len(selected)
    facet_counts = _facets(selected, cols) if facets else {}
    end = offset + limit
    page: list[tuple[int, float | None]] = []
    if offset < total:
        if oldest:
            ts = cols.ts
            low = heapq.nsmallest(end, zip(map(ts.__getitem__, selected), selected, strict=True))
            page = [(d, None) for _, d in low[offset:end]]
        elif newest or not clauses:
            ts = cols.ts
            top = heapq.nlargest(end, zip(map(ts.__getitem__, selected), selected, strict=True))
            page = [(d, None) for _, d in top[offset:end]]
        else:
            scores = _bm25(selected, parts, view)
            ranked = heapq.nlargest(
                end, zip(scores, map(cols.ts.__getitem__, selected), selected, strict=True)
            )
            page = [(d, score) for score, _, d in ranked[offset:end]]
    hits = [Hit(json.loads(searcher.stored_fields(d)["body"]), score) for d, score in page]
    return Outcome(total, hits, facet_counts)
