"""``fieldbook check``'s search part: every record the sources know against what the index holds,
with the queued tasks explaining differences still in flight."""

import contextlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, col

from api.search_docs import SearchTask, sources
from api.search_index import IndexStore
from api.search_indexer import indexer_lock


@dataclass
class CheckReport:
    indexed: int = 0
    in_database: int = 0
    pending_tasks: int = 0
    missing: list[str] = field(default_factory=list)  # in the database, not in the index
    stale: list[str] = field(default_factory=list)  # indexed content differs from the database
    extra: list[str] = field(default_factory=list)  # in the index, gone from the database
    in_flight: int = 0  # differences explained by tasks not yet applied

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.extra)

    def lines(self, examples: int = 5) -> list[str]:
        out = [
            f"search: {self.in_database} record(s) in the database, {self.indexed} in the index, "
            f"{self.pending_tasks} task(s) queued ({self.in_flight} difference(s) explained by them)"
        ]
        for name, keys in (
            ("missing from the index", self.missing),
            ("indexed with outdated content", self.stale),
            ("in the index but gone from the database", self.extra),
        ):
            if keys:
                shown = ", ".join(keys[:examples]) + (" …" if len(keys) > examples else "")
                out.append(f"search: {len(keys)} {name}: {shown}")
        return out


class IndexerBusy(Exception):
    """Another process holds the indexer's lock (a rebuild, say) longer than we waited."""


def check(
    store: IndexStore, engine: sa.Engine, *, lock: bool = True, wait_seconds: float = 60.0
) -> CheckReport:
    """Compare every record the sources know with what the index holds.

    Under the indexer's lock, so the index and the queue hold still; the queued tasks are read after
    the records, so a record written meanwhile is either seen with its task or not seen at all.
    ``lock=False``: the caller holds the lock already."""
    report = CheckReport()
    held = indexer_lock(store.lock_path, wait_seconds=wait_seconds) if lock else contextlib.nullcontext(True)
    with held as got:
        if not got:
            raise IndexerBusy("the search indexer is busy (lock held); try again later")
        indexed = store.stored_fingerprints()
        report.indexed = len(indexed)
        unmatched: list[tuple[str, bool]] = []  # key, and whether the index holds another version
        with Session(engine, expire_on_commit=False) as session:
            for src in sources():
                for batch in src.iter_all(session):
                    session.commit()
                    for doc in batch:
                        report.in_database += 1
                        fp = indexed.pop(doc.key, None)
                        if fp != doc.fingerprint():
                            unmatched.append((doc.key, fp is not None))
            pending = {
                f"{t}:{i}"
                for t, i in session.execute(sa.select(col(SearchTask.doc_type), col(SearchTask.doc_id)))
            }
    report.pending_tasks = len(pending)
    for key, stale in unmatched:
        if key in pending:
            report.in_flight += 1
        elif stale:
            report.stale.append(key)
        else:
            report.missing.append(key)
    for key in indexed:
        if key in pending:
            report.in_flight += 1
        else:
            report.extra.append(key)
    return report
