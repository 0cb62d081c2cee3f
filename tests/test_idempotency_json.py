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


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types throughout (1 is not 1.0 here) and NaN equal to itself."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=400)
@given(_values, st.booleans())
def test_read_json_reads_what_json_reads(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    found, plain = idempotency.read_json(body)
    assert _same(found, json.loads(body))
    if plain:
        assert idempotency.canonical_bytes([found]) is not None


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 18446744073709551616}',  # orjson: a float
        b'{"n": -9223372036854775809}',
        b'{"n": 1e400}',  # orjson refuses; json: inf
        b'{"n": NaN, "m": -Infinity}',
        b'"\\ud800"',  # a lone surrogate, escaped
        b'"\xed\xa0\x80"',  # and as bytes
        b'\xef\xbb\xbf{"a": 1}',  # a byte order mark
        '{"a": "调度"}'.encode("utf-16"),
        b'{"a": 1, "a": 2}',
    ],
)
def test_read_json_reads_what_orjson_would_not_as_json_does(body: bytes) -> None:
    found, plain = idempotency.read_json(body)
    assert _same(found, json.loads(body))
    assert not plain or body == b'{"a": 1, "a": 2}'


@pytest.mark.parametrize("body", [b'{"ops": [', b"{'ops': []}", b'{"a": 1} x', b"\xff"])
def test_a_body_that_is_no_json_fails_as_with_json(body: bytes) -> None:
    with pytest.raises(ValueError) as ours:
        idempotency.read_json(body)
    with pytest.raises(ValueError) as theirs:
        json.loads(body)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
