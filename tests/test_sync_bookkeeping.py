"""The change log's and index tasks' bookkeeping for a batch (api/changelog.py record_new_rows,
api/search_docs.py record_index_tasks): the same as a call per record, in the same order."""

import uuid

import sqlalchemy as sa
from sqlmodel import Session, col

from api.changelog import _PENDING as CHANGES
from api.changelog import (
    ChangeType,
    SyncChange,
    new_record_rows,
    record_change,
    record_new_rows,
)
from api.db import utcnow
from api.search_docs import _PENDING as TASKS
from api.search_docs import SearchTask, new_task_rows, record_index_task, record_index_tasks, record_task_rows


def test_new_changes_in_one_call_are_noted_as_a_call_each(app):
    stint = uuid.uuid4()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    other = uuid.uuid4()

    def before(session: Session) -> None:
        # Earlier changes in the same transaction: one of a record not new, one of a new one.
        record_change(session, ChangeType.observation, ids[1], stint_id=other, version=3)
        record_change(session, ChangeType.observation, ids[3], stint_id=other, version=1, new=True)
        record_change(session, ChangeType.daily_summary, ids[0], stint_id=other, version=2)

    engine = app.state.engine
    with Session(engine) as one_each, Session(engine) as batched, Session(engine) as built:
        before(one_each)
        for text in ids:
            record_change(one_each, ChangeType.observation, text, stint_id=stint, version=1, new=True)
        before(batched)
        record_new_rows(
            batched, new_record_rows(ChangeType.observation, [(text, stint) for text in ids], utcnow())
        )
        before(built)
        record_new_rows(
            built, new_record_rows(ChangeType.observation, [(text, stint) for text in ids], utcnow())
        )
        expected = one_each.info[CHANGES]

        def without_time(session: Session) -> list:
            return [
                (key, new, {**row, "changed_at": None}) for key, (new, row) in session.info[CHANGES].items()
            ]

        assert without_time(batched) == without_time(built) == without_time(one_each)
        # Each record once, at its latest change; new only if every change of it in the transaction was.
        assert list(expected) == [("daily_summary", ids[0])] + [("observation", text) for text in ids]
        assert [new for new, _row in expected.values()] == [False, True, False, True, True, True]
        assert expected[("observation", ids[1])][1]["stint_id"] == stint

    with Session(app.state.engine) as fresh:
        record_new_rows(fresh, new_record_rows(ChangeType.observation, [(ids[0], stint)], utcnow()))
        new, row = fresh.info[CHANGES][("observation", ids[0])]
        assert new and {**row, "changed_at": None} == {
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
        expected = list(one_each.info[TASKS])
        assert batched.info[TASKS] == expected
        assert [(t["doc_type"], t["doc_id"]) for t in batched.info[TASKS][1:]] == [
            ("observation", str(doc_id)) for doc_id in ids
        ]
        assert batched.info["search_tasks_added"] is True
    with Session(app.state.engine) as built:
        record_index_task(built, "day", "a:b:2026-03-02")
        record_task_rows(built, new_task_rows("observation", [str(doc_id) for doc_id in ids], utcnow()))
        assert [{**t, "created_at": None} for t in built.info[TASKS]] == expected

    with Session(app.state.engine) as untouched:
        record_index_tasks(untouched, "observation", [])
        assert not untouched.in_transaction()
        assert TASKS not in untouched.info and "search_tasks_added" not in untouched.info
    with Session(app.state.engine) as begun:
        record_index_tasks(begun, "observation", ids)
        assert begun.in_transaction()  # as record_index_task: a rollback from here drops the tasks
        begun.rollback()
        assert TASKS not in begun.info


def test_rows_noted_as_built_are_written_at_commit_with_its_time(app):
    engine = app.state.engine
    stint, ids = uuid.uuid4(), [str(uuid.uuid4()) for _ in range(3)]
    long_ago = utcnow().replace(year=2000)
    with Session(engine) as session:
        record_new_rows(session, new_record_rows(ChangeType.observation, [(i, stint) for i in ids], long_ago))
        record_task_rows(session, new_task_rows("observation", ids, long_ago))
        committing = utcnow()
        session.commit()
    with Session(engine) as session:
        changes = session.execute(
            sa.select(SyncChange.entity_id, SyncChange.changed_at).where(col(SyncChange.entity_id).in_(ids))
        ).all()
        tasks = session.execute(
            sa.select(SearchTask.doc_id, SearchTask.created_at).where(col(SearchTask.doc_id).in_(ids))
        ).all()
    assert sorted(c[0] for c in changes) == sorted(t[0] for t in tasks) == sorted(ids)
    assert all(at >= committing for _, at in changes + tasks)
