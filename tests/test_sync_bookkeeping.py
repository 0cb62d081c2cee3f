"""The change log's and index tasks' bookkeeping for a batch (api/changelog.py record_new_changes,
api/search_docs.py record_index_tasks): the same as a call per record, in the same order."""

import uuid

from sqlmodel import Session

from api.changelog import _PENDING as CHANGES
from api.changelog import ChangeType, record_change, record_new_changes
from api.search_docs import _PENDING as TASKS
from api.search_docs import record_index_task, record_index_tasks


def test_new_changes_in_one_call_are_noted_as_a_call_each(app):
    stint = uuid.uuid4()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    other = uuid.uuid4()

    def before(session: Session) -> None:
        # Earlier changes in the same transaction: one of a record not new, one of a new one.
        record_change(session, ChangeType.observation, ids[1], stint_id=other, version=3)
        record_change(session, ChangeType.observation, ids[3], stint_id=other, version=1, new=True)
        record_change(session, ChangeType.daily_summary, ids[0], stint_id=other, version=2)

    with Session(app.state.engine) as one_each, Session(app.state.engine) as batched:
        before(one_each)
        for text in ids:
            record_change(one_each, ChangeType.observation, text, stint_id=stint, version=1, new=True)
        before(batched)
        record_new_changes(batched, ChangeType.observation, [(text, stint) for text in ids])
        expected = one_each.info[CHANGES]
        assert list(batched.info[CHANGES].items()) == list(expected.items())
        # Each record once, at its latest change; new only if every change of it in the transaction was.
        assert list(expected) == [("daily_summary", ids[0])] + [("observation", text) for text in ids]
        assert [new for new, _row in expected.values()] == [False, True, False, True, True, True]
        assert expected[("observation", ids[1])][1]["stint_id"] == stint

    with Session(app.state.engine) as fresh:
        record_new_changes(fresh, ChangeType.observation, [(ids[0], stint)])
        new, row = fresh.info[CHANGES][("observation", ids[0])]
        assert new and row == {
            "type": "observation",
            "entity_id": ids[0],
            "stint_id": stint,
            "user_id": None,
            "version": 1,
            "deleted": False,
            "changed_at": None,
        }


def test_index_tasks_in_one_call_are_noted_as_a_call_each(app):
    ids = [uuid.uuid4(), str(uuid.uuid4()), uuid.uuid4()]
    with Session(app.state.engine) as one_each, Session(app.state.engine) as batched:
        record_index_task(one_each, "day", "a:b:2026-03-02")
        record_index_task(batched, "day", "a:b:2026-03-02")
        for doc_id in ids:
            record_index_task(one_each, "observation", doc_id)
        record_index_tasks(batched, "observation", iter(ids))
        assert batched.info[TASKS] == one_each.info[TASKS]
        assert batched.info[TASKS][1:] == [("observation", str(doc_id)) for doc_id in ids]
        assert batched.info["search_tasks_added"] is True

    with Session(app.state.engine) as untouched:
        record_index_tasks(untouched, "observation", [])
        assert not untouched.in_transaction()
        assert TASKS not in untouched.info and "search_tasks_added" not in untouched.info
    with Session(app.state.engine) as begun:
        record_index_tasks(begun, "observation", ids)
        assert begun.in_transaction()  # as record_index_task: a rollback from here drops the tasks
        begun.rollback()
        assert TASKS not in begun.info
