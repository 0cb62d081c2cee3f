"""orjson stands in for json where it writes the same bytes: the op hashes and request fingerprints
built from them are stored, so any value it would write otherwise must go through json."""

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import idempotency

_JSON_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_JSON_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

# Every control character, the characters json escapes, line separators, a lone surrogate, and
# characters either side of the surrogate range (orjson sorts keys as UTF-8, json as code points).
_TRICKY = "".join(map(chr, range(0x20))) + '"\\/\x7f\u2028\u2029\ud7ff\ue000\uffff\U00010000\U0010ffff'
_texts = st.text(alphabet=st.sampled_from(_TRICKY) | st.characters(), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _texts
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=20,
)


def _canonical_by_json(value: Any) -> bytes | None:
    try:
        return _JSON_CANONICAL.encode(value).encode()
    except UnicodeEncodeError:  # a lone surrogate: the caller hashes it its own way
        return None


@settings(max_examples=400)
@given(st.lists(_values, max_size=5))
def test_canonical_bytes_are_json_s_or_none(values: list[Any]) -> None:
    found = idempotency.canonical_bytes(values)
    if found is not None:
        assert found == [_canonical_by_json(v) for v in values]


@settings(max_examples=400)
@given(_values)
def test_compact_json_is_json_s(value: Any) -> None:
    assert idempotency.compact_json(value) == _JSON_COMPACT.encode(value)


@pytest.mark.parametrize(
    "value",
    [
        1e-05,  # orjson: 0.00001
        1e16,  # orjson: 1e+16, as json: still a float
        math.nan,  # orjson: null
        2**64,  # orjson refuses
        "\ud800",  # not UTF-8
        {1: "a"},  # json writes the key as a string, orjson refuses
        uuid.UUID(int=1),  # json refuses, orjson writes it
        ("a", 1),  # a tuple: json writes a list
    ],
)
def test_values_orjson_writes_otherwise_go_through_json(value: Any) -> None:
    assert idempotency.canonical_bytes([{"v": value}]) is None
    try:
        expected = _JSON_COMPACT.encode({"v": value})
    except TypeError:
        with pytest.raises(TypeError):
            idempotency.compact_json({"v": value})
    else:
        assert idempotency.compact_json({"v": value}) == expected


def test_a_push_s_ops_go_through_orjson() -> None:
    op = {
        "op_id": "a1",
        "type": "observation",
        "id": str(uuid.UUID(int=7)),
        "op": "upsert",
        "base_version": None,
        "data": {"text": '调度员 "说"\n', "tags": ["排班", "excel"], "kind": "note", "n": 3, "ok": True},
    }
    assert idempotency.canonical_bytes([op, op]) == [_JSON_CANONICAL.encode(op).encode()] * 2
