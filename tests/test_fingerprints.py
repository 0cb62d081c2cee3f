"""Fingerprints are stored (an observation's create_hash, an Idempotency-Key's request hash) and
compared with a retry's, possibly weeks later and after an upgrade: their values must never change.
The expected values were computed by the first implementation (json.dumps, then SHA-256)."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api import fields, idempotency
from api.models import ObservationDimension, ObservationKind, Stance
from api.observation_schemas import LEGACY_TAG_ORDERS, ObservationCreate

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


# An observation's create: the values the first implementation stored (tags in the order sent).
CREATE = {
    "text": "调度员每天早上 7 点手工排班",
    "kind": "quote",
    "observed_at": "2026-03-02T23:50:00+08:00",
    "hypothesis_links": [{"hypothesis_id": "00000000-0000-4000-8000-000000000001", "stance": "refutes"}],
}
STORED_SORTED = "0ec1eba5208b8490277be7f19d3f121dc58394a37691b976a3fd8ba9415de84e"  # tags excel, 排班, 白板
STORED_AS_SENT = "8552a1f1e7bf474e7435404a516e50ac3eb3cfbd66a05f6388a0e25c03da3afc"  # 排班, Excel, #白板


def _create(**extra: object) -> ObservationCreate:
    return ObservationCreate.model_validate({**CREATE, **extra})


def test_observation_create_fingerprint_is_stable() -> None:
    """Tags are now hashed sorted: a create whose tags came sorted (or with one tag, or none) keeps
    the value stored before."""
    assert _create(tags=["excel", "排班", "白板"]).fingerprint() == STORED_SORTED
    assert _create().fingerprint() == "03c49b85c7891ee931ebbc670a3d3b9c391f644f30efa5632781948b58971d5a"
    assert ObservationCreate(text="x").fingerprint() == (
        "3a29bf23196d6ba2fefb963b98a805b28bdae13ae854f3550b0e442f00efd349"
    )


def test_tags_in_any_order_are_the_same_create() -> None:
    orders = [["排班", "Excel", "#白板"], ["白板", "excel", "排班"], ["EXCEL", "白板", "排班", "excel"]]
    assert {_create(tags=tags).fingerprint() for tags in orders} == {STORED_SORTED}
    for tags in orders:
        # A create stored before tags were sorted, retried in another order.
        assert _create(tags=tags).is_create_of(STORED_AS_SENT), tags
        assert _create(tags=tags).is_create_of(STORED_SORTED), tags
    assert not _create(tags=["排班", "excel"]).is_create_of(STORED_AS_SENT)  # a tag less
    assert not _create(tags=orders[0], text="别的").is_create_of(STORED_AS_SENT)
    assert not _create(tags=orders[0], observed_at="2026-03-02T15:50:00Z").is_create_of(STORED_AS_SENT)


def test_many_tags_stored_before_match_in_the_order_sent() -> None:
    tags = ["f", "e", "d", "c", "b", "a"]  # more than LEGACY_TAG_ORDERS: not every order is tried
    assert len(tags) > LEGACY_TAG_ORDERS
    create = _create(tags=tags)
    # As the first implementation computed it.
    body = create.model_dump(mode="json", exclude={"id", "hypothesis_ids", "hypothesis_links"})
    old = fields.fingerprint(
        {**body, "links": [link.model_dump(mode="json") for link in create.links() or []]}
    )
    assert old != create.fingerprint()
    assert create.is_create_of(old)
    assert not _create(tags=sorted(tags)).is_create_of(old)
    assert _create(tags=list(reversed(tags))).fingerprint() == _create(tags=tags).fingerprint()


def _reference_fingerprint(create: ObservationCreate) -> str:
    """The create's fingerprint as first computed: the model dumped, tags sorted, json.dumps."""
    body = create.model_dump(mode="json", exclude={"id", "hypothesis_ids", "hypothesis_links"})
    body["links"] = [link.model_dump(mode="json") for link in create.links() or []]
    if body["tags"] is not None:
        body["tags"] = sorted(body["tags"])
    return fields.fingerprint(body)


# Any text the field types accept: quotes, backslashes, control characters, emoji, CJK.
_texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
).filter(str.strip)
_instants = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2199, 12, 30),
    timezones=st.sampled_from(
        [
            UTC,
            timezone(timedelta(hours=8)),
            timezone(timedelta(hours=-3, minutes=-30)),
            timezone(timedelta(hours=5, minutes=45)),
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    text=_texts,
    kind=st.none() | st.sampled_from(list(ObservationKind)),
    dimension=st.none() | st.sampled_from(list(ObservationDimension)),
    observed_at=st.none() | _instants,
    quote=st.none() | _texts,
    speaker_role=st.none() | _texts,
    speaker_name=st.none() | _texts,
    tags=st.none() | st.lists(_texts, max_size=5),
    hypothesis_ids=st.none() | st.lists(st.uuids(), max_size=3),
    links=st.none() | st.lists(st.tuples(st.uuids(), st.sampled_from(list(Stance))), max_size=3),
)
def test_fingerprint_is_the_json_of_the_dumped_create(
    text: str,
    kind: ObservationKind | None,
    dimension: ObservationDimension | None,
    observed_at: datetime | None,
    quote: str | None,
    speaker_role: str | None,
    speaker_name: str | None,
    tags: list[str] | None,
    hypothesis_ids: list[uuid.UUID] | None,
    links: list[tuple[uuid.UUID, Stance]] | None,
) -> None:
    """The fingerprint is written out field by field for speed; it must be exactly the stored form."""
    body: dict[str, object] = {"text": text, "kind": kind, "dimension": dimension, "quote": quote}
    body |= {"speaker_role": speaker_role, "speaker_name": speaker_name, "tags": tags}
    body["observed_at"] = observed_at.isoformat() if observed_at else None
    body["hypothesis_ids"] = hypothesis_ids
    if links is not None:
        body["hypothesis_links"] = [{"hypothesis_id": str(h), "stance": s} for h, s in links]
    try:
        create = ObservationCreate.model_validate(body)
    except ValidationError:
        return  # a tag that normalises to nothing, and the like: refused before any fingerprint
    assert create.fingerprint() == _reference_fingerprint(create)
