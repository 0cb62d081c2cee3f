"""Fingerprints are stored (an observation's create_hash, an Idempotency-Key's request hash) and
compared with a retry's, possibly weeks later and after an upgrade: their values must never change.
The expected values were computed by the first implementation (json.dumps, then SHA-256)."""

from api import fields, idempotency

BODY = {
    "text": "调度员每天早上 7 点手工排班",
    "kind": "quote",
    "tags": ["排班", "excel"],
    "observed_at": "2026-03-02T23:50:00+08:00",
    "links": [],
    "quote": None,
    "n": 1.5,
}


def test_create_fingerprint_is_stable() -> None:
    expected = "2aa219536490fb0cdfe6d44132432458040b0330fb9bc438702c557d2928c722"
    assert fields.fingerprint(BODY) == expected
    assert fields.fingerprint(dict(reversed(BODY.items()))) == expected  # key order does not matter


def test_request_fingerprint_is_stable() -> None:
    expected = "a6e8ae2643667327dcef4f3fd0e94167bfdfac5b6b9905ae1ad0461cac3164b2"
    assert idempotency.fingerprint({"ops": [BODY]}) == expected
