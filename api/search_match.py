"""Answering a query from the index: our own evaluation over Whoosh's postings, with per-segment
metadata columns cached across queries (filters, facets and sorts never touch stored fields).

Whoosh's generic matchers cost most of a query's time (a phrase was matched once to count and again
to score). Here each clause is evaluated once, a segment at a time: posting blocks are read whole,
document sets are intersected with Python sets, phrase positions are checked only for documents
that hold every bigram, and BM25 is computed only for the documents that pass the filters. Posting
blocks are read through ``W3LeafMatcher``'s block attributes: ``whoosh`` is pinned exactly, and the
tests exercise every path.
"""

import heapq
import json
import math
import threading
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from api.search_analysis import Clause, MixedPositions, Part, contains_sequence

META_SEP, META_LIST = "\x1f", "\x1e"
FACETS = ("types", "kinds", "tags", "authors", "stints", "days")
FACET_SIZE = 50
FIELD = "text"
K1, B = 1.2, 0.75
_DECODE = MixedPositions().decode_positions


# --- per-segment metadata, shared by all threads -------------------------------------------

_ORDS: dict[str, int] = {"": 0}
_NAMES: list[str] = [""]
_INTERN_LOCK = threading.Lock()


def _ord(value: str) -> int:
    found = _ORDS.get(value)
    if found is not None:
        return found
    with _INTERN_LOCK:
        if value not in _ORDS:
            _ORDS[value] = len(_NAMES)
            _NAMES.append(value)
        return _ORDS[value]


@dataclass
class _Columns:
    """Per document number: ordinals of type, stint, kind, author, dimension; day as yyyymmdd;
    time in ms; tag and hypothesis ordinals."""

    type: list[int] = field(default_factory=list)
    stint: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    author: list[int] = field(default_factory=list)
    dim: list[int] = field(default_factory=list)
    day: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    tags: list[tuple[int, ...]] = field(default_factory=list)
    hyps: list[tuple[int, ...]] = field(default_factory=list)
    length: list[int] = field(default_factory=list)  # tokens in the text field (BM25)

    def extend(self, other: "_Columns") -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def _segment_columns(leaf: Any) -> _Columns:
    out = _Columns()
    reader = leaf.column_reader("meta")
    for i in range(leaf.doc_count_all()):
        raw = reader[i]
        if not raw:
            t, s, k, a, d, day, ts, tags, hyps = "", "", "", "", "", "0", "0", "", ""
        else:
            t, s, k, a, d, day, ts, tags, hyps = raw.decode().split(META_SEP)
        out.type.append(_ord(t))
        out.stint.append(_ord(s))
        out.kind.append(_ord(k))
        out.author.append(_ord(a))
        out.dim.append(_ord(d))
        out.day.append(int(day))
        out.ts.append(int(ts))
        out.tags.append(tuple(_ord(x) for x in tags.split(META_LIST)) if tags else ())
        out.hyps.append(tuple(_ord(x) for x in hyps.split(META_LIST)) if hyps else ())
        out.length.append(leaf.doc_field_length(i, "text", 0) or 1)
    return out


@dataclass
class _View:
    cols: _Columns
    live: list[int]
    deleted: frozenset[int]
    leaves: list[tuple[Any, int]]
    avg_length: float
    by_stints: dict[frozenset[int], frozenset[int]] = field(default_factory=dict)
    _norms: list[float] | None = None

    def norms(self) -> list[float]:
        """BM25's length normalisation per document, ``k1 * (1 - b + b * length / average)``."""
        if self._norms is None:
            avg = self.avg_length or 1.0
            self._norms = [K1 * (1 - B + B * n / avg) for n in self.cols.length]
        return self._norms

    def docs_of(self, stints: frozenset[int]) -> frozenset[int]:
        """Live documents of these stints (cached for this index generation)."""
        found = self.by_stints.get(stints)
        if found is None:
            stint_col = self.cols.stint
            found = frozenset(d for d in self.live if stint_col[d] in stints)
            if len(self.by_stints) > 64:
                self.by_stints.clear()
            self.by_stints[stints] = found
        return found


_SEGMENTS: dict[tuple[str, str], _Columns] = {}
_VIEWS: dict[tuple[Any, ...], _View] = {}
_CACHE_LOCK = threading.Lock()


def _leaves(searcher: Any) -> list[tuple[Any, int]]:
    reader = searcher.reader()
    if reader.doc_count_all() == 0:
        return []
    return list(reader.leaf_readers())


def _view(directory: Path, searcher: Any) -> _View:
    leaves = _leaves(searcher)
    key = (str(directory), *((leaf.segment().segment_id(), leaf.doc_count()) for leaf, _ in leaves))
    found = _VIEWS.get(key)
    if found is not None:
        return found
    cols, live, deleted = _Columns(), list[int](), set[int]()
    for leaf, offset in leaves:
        segkey = (str(directory), leaf.segment().segment_id())
        seg = _SEGMENTS.get(segkey)
        if seg is None:
            seg = _SEGMENTS[segkey] = _segment_columns(leaf)
        cols.extend(seg)
        n = leaf.doc_count_all()
        if leaf.has_deletions():
            gone = {offset + i for i in range(n) if leaf.is_deleted(i)}
            deleted |= gone
            live.extend(d for d in range(offset, offset + n) if d not in gone)
        else:
            live.extend(range(offset, offset + n))
    total_length = sum(cols.length[d] for d in live)
    view = _View(cols, live, frozenset(deleted), leaves, total_length / len(live) if live else 1.0)
    with _CACHE_LOCK:
        if len(_VIEWS) > 8:
            _VIEWS.clear()
        _VIEWS[key] = view
        wanted = {(str(directory), leaf.segment().segment_id()) for leaf, _ in leaves}
        if len(_SEGMENTS) > 4 * len(wanted) + 16:
            for stale in [k for k in _SEGMENTS if k not in wanted]:
                _SEGMENTS.pop(stale, None)
    return view


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


def _ords(values: set[str]) -> set[int]:
    return {_ORDS[v] for v in values if v in _ORDS}


def _select(docs: Iterable[int], cols: _Columns, f: Filters) -> list[int]:
    """The documents passing every filter, in one pass over the candidates."""
    stints = _ords(f.stints)
    checks: list[Callable[[int], bool]] = []
    if f.types:
        types, type_col = _ords(f.types), cols.type
        checks.append(lambda d: type_col[d] in types)
    if f.kinds:
        kinds, kind_col = _ords(f.kinds), cols.kind
        checks.append(lambda d: kind_col[d] in kinds)
    if f.not_kinds:
        not_kinds, kind_col = _ords(f.not_kinds), cols.kind
        checks.append(lambda d: kind_col[d] not in not_kinds)
    if f.authors is not None:
        authors, author_col = _ords(f.authors), cols.author
        checks.append(lambda d: author_col[d] in authors)
    if f.dimensions:
        dims, dim_col = _ords(f.dimensions), cols.dim
        checks.append(lambda d: dim_col[d] in dims)
    if f.tags:
        tags, tag_col = _ords(f.tags), cols.tags
        if len(tags) < len(f.tags):
            return []
        checks.append(lambda d: tags.issubset(tag_col[d]))
    if f.not_tags:
        not_tags, tag_col = _ords(f.not_tags), cols.tags
        checks.append(lambda d: not not_tags.intersection(tag_col[d]))
    if f.hypotheses:
        hyps, hyp_col = _ords(f.hypotheses), cols.hyps
        checks.append(lambda d: not hyps.isdisjoint(hyp_col[d]))
    if f.day_from or f.day_to:
        low, high, day_col = f.day_from, f.day_to or 99991231, cols.day
        checks.append(lambda d: low <= day_col[d] <= high)
    stint_col = cols.stint
    selected = [d for d in docs if stint_col[d] in stints]
    for check in checks:
        selected = [d for d in selected if check(d)]
    return selected


def _facets(docs: list[int], cols: _Columns) -> dict[str, list[tuple[str, int]]]:
    def top(counts: Counter[int], by_value: bool = False) -> list[tuple[str, int]]:
        counts.pop(0, None)
        items = [(_NAMES[o], n) for o, n in counts.items()]
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


_Postings = tuple[list[int], list[float], list[bytes]]
_CACHE: "OrderedDict[tuple[str, bytes], _Postings]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_cached_postings = 0
CACHE_MIN_DOCS = 1_000  # posting lists this long are kept decoded...
CACHE_MAX_POSTINGS = 600_000  # ...up to this many postings per process (roughly 60 MB)


def _postings(leaf: Any, token: str | bytes, values: bool, wanted: list[int] | None = None) -> _Postings:
    """Postings of ``token`` in one segment (deleted documents included): ids, weights (term
    frequencies) and, when asked, the encoded positions. With ``wanted`` (sorted local ids),
    blocks that cannot hold any of them are skipped without being read. Long posting lists
    (the common bigrams most queries contain) are kept decoded in a small per-process cache;
    segments never change, so entries never go stale."""
    global _cached_postings
    tbytes = token if isinstance(token, bytes) else token.encode("utf-8")
    df = leaf.doc_frequency(FIELD, tbytes)
    if df == 0:
        return [], [], []
    if df < CACHE_MIN_DOCS:
        return _read_postings(leaf, tbytes, values, wanted)
    key = (leaf.segment().segment_id(), tbytes)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    found = _read_postings(leaf, tbytes, True, None)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = found
            _cached_postings += len(found[0])
            while _cached_postings > CACHE_MAX_POSTINGS and len(_CACHE) > 1:
                _, dropped = _CACHE.popitem(last=False)
                _cached_postings -= len(dropped[0])
    return found


def _read_postings(leaf: Any, tbytes: bytes, values: bool, wanted: list[int] | None) -> _Postings:
    m = leaf._terms.matcher(FIELD, tbytes, leaf.schema[FIELD].format)
    ids: list[int] = []
    weights: list[float] = []
    vals: list[bytes] = []
    if hasattr(m, "_read_ids"):  # W3LeafMatcher: whole blocks at a time
        previous_max = -1
        while m.is_active():
            block_max = m._maxid
            if wanted is not None:
                i = bisect_right(wanted, previous_max)
                if i == len(wanted):
                    break
                if wanted[i] > block_max:  # the block spans (previous_max, block_max]
                    previous_max = block_max
                    m._next_block()
                    continue
            m._read_ids()
            m._read_weights()
            ids.extend(m._ids)
            weights.extend(m._weights)
            if values:
                m._read_values()
                vals.extend(m._values)
            previous_max = block_max
            m._next_block()
    else:  # inlined postings (a term in one document): the public matcher interface
        while m.is_active():
            ids.append(m.id())
            weights.append(m.weight())
            if values:
                vals.append(m.value())
            m.next()
    return ids, weights, vals


def _phrase_counts(
    leaf: Any, tokens: Sequence[str], wanted: list[int] | None, allowed: Set[int] | None, offset: int
) -> dict[int, float]:
    """Per document of one segment: how many times ``tokens`` occur at consecutive positions.
    The rarest token is read first; each next one only where the documents so far could match
    (``wanted``, local ids); positions are checked only for ``allowed`` documents (global ids)."""
    order = sorted(range(len(tokens)), key=lambda k: leaf.doc_frequency(FIELD, tokens[k]))
    values: dict[int, dict[int, bytes]] = {}
    candidates: set[int] | None = set(wanted) if wanted is not None else None
    for k in order:
        ids, _weights, vals = _postings(
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
    # Start positions p with token k at p + k for every k: set operations, no per-position loop.
    first = values[0]
    rest = [((-k).__add__, values[k]) for k in range(1, len(tokens))]
    counts: dict[int, float] = {}
    for d in candidates:
        starts = set(_DECODE(first[d])).intersection(*(map(shift, _DECODE(v[d])) for shift, v in rest))
        if starts:
            counts[d] = float(len(starts))
    return counts


def _part_counts(view: _View, part: Part, wanted: Set[int] | None) -> dict[int, float]:
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
                ids, weights, _ = _postings(leaf, term, values=False, wanted=local_wanted)
                for d, w in zip(ids, weights, strict=True):
                    local[d] = local.get(d, 0.0) + w
        elif len(part.tokens) == 1:
            ids, weights, _ = _postings(leaf, part.tokens[0], values=False, wanted=local_wanted)
            local = dict(zip(ids, weights, strict=True))
        else:
            local = _phrase_counts(leaf, part.tokens, local_wanted, wanted, offset)
        if offset:
            out.update((d + offset, w) for d, w in local.items())
        else:
            out.update(local)
    for d in view.deleted.intersection(out):
        del out[d]
    return out


def _estimate(view: _View, part: Part) -> int:
    """How many documents a part may match (the rarest token bounds a phrase)."""
    if part.unigram:
        return len(view.live)
    return sum(min(leaf.doc_frequency(FIELD, t) for t in part.tokens) for leaf, _ in view.leaves)


def _texts(searcher: Any, docnum: int) -> list[str]:
    body = json.loads(searcher.stored_fields(docnum)["body"])
    return [*body["texts"].values(), " ".join(body["tags"])]


def _match(
    searcher: Any, view: _View, clauses: Sequence[Clause], wanted: Set[int] | None
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


def _bm25(docs: list[int], parts: list[tuple[dict[int, float], int]], view: _View) -> list[float]:
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
) -> Outcome:
    view = _view(directory, searcher)
    cols = view.cols
    clauses = [c for c in positive if c.parts]
    if positive and not clauses:  # only punctuation was typed: nothing can match
        return Outcome(0, [], {name: [] for name in FACETS} if facets else {})
    parts: list[tuple[dict[int, float], int]] = []
    readable = view.docs_of(frozenset(_ords(filters.stints)))
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
        if newest or not clauses:
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
