"""Text field types for request bodies and queries: length limits and no NUL characters
(PostgreSQL cannot store them, and no keyboard types them)."""

import functools
import hashlib
import json
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text contains a NUL character")
    return value


def blank(text: str) -> bool:
    """Nothing visible: only spaces and invisible format characters (zero-width space, BOM, word
    joiner...), which input methods and text copied from web pages leave and ``str.strip`` keeps."""
    for c in text:  # noqa: SIM110 (a loop is twice as fast as all() on a genexpr, and runs per note)
        if not c.isspace() and unicodedata.category(c) != "Cf":
            return False
    return True


def _visible(value: str) -> str:
    if blank(value):
        raise ValueError("text has no visible characters")
    return value


def Text(max_length: int, *, min_length: int = 0) -> type[str]:
    """A stripped string of bounded length without NUL characters; when required (``min_length``),
    with something visible in it."""
    checks = [AfterValidator(_no_nul), *([AfterValidator(_visible)] if min_length else [])]
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        *checks,
    ]


MAX_TAG_LENGTH = 40
MAX_TAGS = 20


# A team uses a few dozen tags, over and over: a sync push of a thousand notes normalises each once.
@functools.lru_cache(maxsize=4096)
def normalise_tag(raw: str) -> str:
    """``#Pain Point`` and ``ｐａｉｎ　point`` are the same tag: NFKC, case-folded, spaces folded."""
    tag = " ".join(unicodedata.normalize("NFKC", _no_nul(raw)).split()).lstrip("#").strip().casefold()
    if blank(tag):
        raise ValueError("a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a tag has at most {MAX_TAG_LENGTH} characters")
    return tag


def _tags(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(normalise_tag(value), None)
    if len(seen) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return list(seen)


Tags = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100), AfterValidator(_tags)]


# json.dumps with these options builds a new encoder per call; the stored fingerprints stay the same.
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def fingerprint(body: dict[str, Any]) -> str:
    """SHA-256 of a request body in canonical JSON: a retry of the same create is recognised by it."""
    return hashlib.sha256(_FINGERPRINT_JSON.encode(body).encode()).hexdigest()
