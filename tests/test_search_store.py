"""IndexStore.apply on its own: a batch replaces what the index holds for its keys, however often it
is applied (the indexer re-applies a batch when it crashed between the index commit and deleting
the batch's task rows)."""

import uuid
from datetime import UTC, datetime
from pathlib import Path

from api.search_docs import SearchDoc
from api.search_index import IndexStore

STINT = uuid.uuid4()


def _doc(doc_id: str, text: str) -> SearchDoc:
    return SearchDoc(
        doc_type="observation",
        doc_id=doc_id,
        stint_id=STINT,
        texts={"text": text},
        at=datetime(2026, 3, 27, 9, 30, tzinfo=UTC),
    )


def _store(tmp_path: Path) -> IndexStore:
    store = IndexStore(tmp_path / "search")
    store.swap(store.build([]))
    return store


def _indexed(store: IndexStore) -> dict[str, str]:
    return store.stored_fingerprints()


def test_reapplied_batch_leaves_one_document_per_key(tmp_path: Path) -> None:
    store = _store(tmp_path)
    docs = [_doc("a", "调度员手工排班"), _doc("b", "司机排队领单")]
    store.apply(docs, [])
    store.apply(docs, [])  # the same tasks again, as after a crash
    store.apply([_doc("a", "调度员用 Excel 排班")], [])  # an edit
    ix = store.open_for_write()
    try:
        assert ix.doc_count() == 2
    finally:
        ix.close()
    assert _indexed(store) == {
        "observation:a": _doc("a", "调度员用 Excel 排班").fingerprint(),
        "observation:b": docs[1].fingerprint(),
    }


def test_deletes_and_upserts_in_one_batch(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.apply([_doc("a", "便利贴"), _doc("b", "对账")], [])
    store.apply([_doc("c", "打印表格")], ["observation:a", "observation:missing"])
    assert set(_indexed(store)) == {"observation:b", "observation:c"}
