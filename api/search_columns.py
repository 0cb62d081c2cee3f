"""Per-segment metadata columns of the search index, decoded once and shared by every thread and
query: filters, facets, sorts and BM25's length norms read these lists, never stored fields."""

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.search_traditional import fold_traditional

META_SEP, META_LIST = "\x1f", "\x1e"
K1, B = 1.2, 0.75  # BM25

_ORDS: dict[str, int] = {"": 0}
NAMES: list[str] = [""]  # ordinal -> value
# A value with its traditional characters folded -> the ordinals of the values written so: a tag
# filter 報表 also finds notes tagged 报表 (tags are kept as their author typed them).
_FOLDED: dict[str, set[int]] = {"": {0}}
_INTERN_LOCK = threading.Lock()


def ordinals(values: set[str]) -> set[int]:
    """The ordinals of values seen in the index (values never seen match nothing)."""
    return {_ORDS[v] for v in values if v in _ORDS}


def variants(value: str) -> set[int]:
    """The ordinals of the values seen that are ``value`` in traditional or simplified characters
    (empty when none was seen)."""
    return set(_FOLDED.get(fold_traditional(value), ()))


def _ord(value: str) -> int:
    found = _ORDS.get(value)
    if found is not None:
        return found
    with _INTERN_LOCK:
        if value not in _ORDS:
            _ORDS[value] = len(NAMES)
            NAMES.append(value)
            _FOLDED.setdefault(fold_traditional(value), set()).add(_ORDS[value])
        return _ORDS[value]


@dataclass
class Columns:
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

    def extend(self, other: "Columns") -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def _segment_columns(leaf: Any) -> Columns:
    out = Columns()
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
class View:
    cols: Columns
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


_SEGMENTS: dict[tuple[str, str], Columns] = {}
_VIEWS: dict[tuple[Any, ...], View] = {}
_CACHE_LOCK = threading.Lock()


def _leaves(searcher: Any) -> list[tuple[Any, int]]:
    reader = searcher.reader()
    if reader.doc_count_all() == 0:
        return []
    return list(reader.leaf_readers())


def view(directory: Path, searcher: Any) -> View:
    leaves = _leaves(searcher)
    key = (str(directory), *((leaf.segment().segment_id(), leaf.doc_count()) for leaf, _ in leaves))
    found = _VIEWS.get(key)
    if found is not None:
        return found
    cols, live, deleted = Columns(), list[int](), set[int]()
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
    view = View(cols, live, frozenset(deleted), leaves, total_length / len(live) if live else 1.0)
    with _CACHE_LOCK:
        if len(_VIEWS) > 8:
            _VIEWS.clear()
        _VIEWS[key] = view
        wanted = {(str(directory), leaf.segment().segment_id()) for leaf, _ in leaves}
        if len(_SEGMENTS) > 4 * len(wanted) + 16:
            for stale in [k for k in _SEGMENTS if k not in wanted]:
                _SEGMENTS.pop(stale, None)
    return view
