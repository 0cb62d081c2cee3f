"""Reading a term's postings from one Whoosh segment, whole blocks at a time, with a small
per-process cache of the long posting lists most queries share.

Blocks are read through ``W3LeafMatcher``'s block attributes: ``whoosh`` is pinned exactly, and the
search tests exercise every path."""

import threading
from bisect import bisect_right
from collections import OrderedDict
from typing import Any

FIELD = "text"

Postings = tuple[list[int], list[float], list[bytes]]
_CACHE: "OrderedDict[tuple[str, bytes], Postings]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_cached_postings = 0
CACHE_MIN_DOCS = 1_000  # posting lists this long are kept decoded...
CACHE_MAX_POSTINGS = 600_000  # ...up to this many postings per process (roughly 60 MB)


def postings(leaf: Any, token: str | bytes, values: bool, wanted: list[int] | None = None) -> Postings:
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
        return _read(leaf, tbytes, values, wanted)
    key = (leaf.segment().segment_id(), tbytes)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    found = _read(leaf, tbytes, True, None)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = found
            _cached_postings += len(found[0])
            while _cached_postings > CACHE_MAX_POSTINGS and len(_CACHE) > 1:
                _, dropped = _CACHE.popitem(last=False)
                _cached_postings -= len(dropped[0])
    return found


def _read(leaf: Any, tbytes: bytes, values: bool, wanted: list[int] | None) -> Postings:
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
