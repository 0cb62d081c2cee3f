"""Search benchmark: Fieldbook's Whoosh index against SQLite FTS5 (trigram tokenizer) on the same
corpus and the same queries, in the same run.

Corpus: 50,000 mixed Chinese/English observations across 20 stints (``--quick``: 5,000), built
from the domain seed texts (``bench/search_corpus.py``). The searching user belongs to 10 of the
20 stints, so every query also pays for the permission filter. Query classes:

* ``zh2``: two-character Chinese substrings taken from the corpus;
* ``zh34``: three- or four-character Chinese substrings;
* ``en``: English words (stemmed by us; FTS5 trigram matches the substring);
* ``mixed``: an English word and a Chinese substring from the same record;
* ``filter_newest``: a Chinese substring within one stint, newest first;
* ``facets``: a Chinese substring with the six facet counts.

Timed for us: query analysis, the index query (permission filter, total, page of 20, facets when
asked) and the HTML snippets of the page. For FTS5: ``MATCH`` for terms of three or more
characters, ``LIKE`` for shorter ones (trigrams cannot serve them), ``bm25`` order, a count, the
page's rows, and ``GROUP BY`` facets over a temporary table of the matches.
Recall and precision are measured on the full result sets against a substring ground truth.
"""

import os
import random
import re
import sqlite3
import statistics
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from sqlmodel import Session

from api import migrations
from api.db import make_engine
from api.models import Observation, Stint, User
from api.search_analysis import analyse_clause, snippet
from api.search_docs import SearchDoc, record_index_task
from api.search_index import Filters, IndexStore
from api.search_indexer import Indexer
from bench.figures import Figure
from bench.search_corpus import Corpus, batches, make_corpus

AREA = "search"
CLASSES = ("zh2", "zh34", "en", "mixed", "filter_newest", "facets")
EN_WORDS = [
    "dispatcher",
    "invoices",
    "spreadsheet",
    "forecast",
    "supervisor",
    "workflow",
    "screenshots",
    "onboarding",
    "dashboard",
    "escalations",
    "reconciles",
    "checklist",
    "approval",
    "offline",
]
_HAN = re.compile(r"[\u4e00-\u9fff]+")


def _content(doc: SearchDoc) -> str:
    return unicodedata.normalize("NFKC", "\n".join([*doc.texts.values(), " ".join(doc.tags)])).casefold()


class Queries:
    def __init__(self, corpus: Corpus, per_class: int, seed: int = 11) -> None:
        rnd = random.Random(seed)
        self.allowed = set(corpus.stints[:10])
        visible = [d for d in corpus.docs if d.stint_id in self.allowed]

        def han(k_choices: tuple[int, ...]) -> tuple[str, SearchDoc]:
            while True:
                doc = rnd.choice(visible)
                k = rnd.choice(k_choices)
                runs = [r for r in _HAN.findall(doc.texts["text"]) if len(r) >= k]
                if runs:
                    run = rnd.choice(runs)
                    i = rnd.randrange(len(run) - k + 1)
                    return run[i : i + k], doc

        def mixed() -> str:
            while True:
                zh, doc = han((2, 3, 4))
                words = [w for w in re.findall(r"[A-Za-z]{4,}", doc.texts["text"]) if w.isascii()]
                if words:
                    return f"{rnd.choice(words)} {zh}"

        self.by_class: dict[str, list[tuple[str, str | None]]] = {
            "zh2": [(han((2,))[0], None) for _ in range(per_class)],
            "zh34": [(han((3, 4))[0], None) for _ in range(per_class)],
            "en": [(rnd.choice(EN_WORDS), None) for _ in range(per_class)],
            "mixed": [(mixed(), None) for _ in range(per_class)],
            "filter_newest": [],
            "facets": [(han((2, 3, 4))[0], None) for _ in range(per_class)],
        }
        for _ in range(per_class):
            text, doc = han((2, 3, 4))
            self.by_class["filter_newest"].append((text, str(doc.stint_id)))


# --- Fieldbook (Whoosh) ---------------------------------------------------------------------


def _ours(store: IndexStore, allowed: set[str]) -> Callable[[str, str, str | None], int]:
    def run(cls: str, q: str, stint: str | None) -> int:
        clauses = [analyse_clause(word) for word in q.split()]
        filters = Filters(stints={stint} if stint else allowed)
        out = store.search(
            clauses, [], filters, newest=cls == "filter_newest", offset=0, limit=20, facets=cls == "facets"
        )
        parts = [p for c in clauses for p in c.parts]
        for hit in out.hits:
            snippet(hit.body["texts"], parts)
        return out.total

    return run


def _ours_all_ids(store: IndexStore, allowed: set[str], q: str) -> set[str]:
    clauses = [analyse_clause(word) for word in q.split()]
    first = store.search(clauses, [], Filters(stints=allowed), newest=True, offset=0, limit=1, facets=False)
    every = store.search(
        clauses, [], Filters(stints=allowed), newest=True, offset=0, limit=max(first.total, 1), facets=False
    )
    return {h.body["id"] for h in every.hits}


# --- SQLite FTS5 trigram baseline -----------------------------------------------------------


def _fts_build(path: Path, docs: list[SearchDoc]) -> float:
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE doc (id INTEGER PRIMARY KEY, key TEXT, stint TEXT, kind TEXT, author TEXT,
                          day TEXT, ts INTEGER, content TEXT);
        CREATE TABLE doc_tag (doc INTEGER, tag TEXT);
        CREATE INDEX doc_stint_ts ON doc (stint, ts);
        CREATE INDEX doc_tag_doc ON doc_tag (doc);
        CREATE VIRTUAL TABLE doc_fts USING fts5(content, content='doc', content_rowid='id', tokenize='trigram');
        """
    )
    for i, d in enumerate(docs, 1):
        content = _content(d)
        db.execute(
            "INSERT INTO doc VALUES (?,?,?,?,?,?,?,?)",
            (
                i,
                d.doc_id,
                str(d.stint_id),
                d.kind,
                str(d.author_id),
                d.day.isoformat() if d.day else None,
                int(d.at.timestamp()),
                content,
            ),
        )
        db.execute("INSERT INTO doc_fts (rowid, content) VALUES (?, ?)", (i, content))
        db.executemany("INSERT INTO doc_tag VALUES (?, ?)", [(i, t) for t in d.tags])
    db.commit()
    db.close()
    return time.perf_counter() - started


def _fts_where(q: str, stints: list[str]) -> tuple[str, list[str], bool]:
    """SQL conditions on ``d`` for a query; whether FTS MATCH (and so bm25) is used."""
    words = [unicodedata.normalize("NFKC", w).casefold() for w in q.split()]
    long = [w for w in words if len(w) >= 3]
    short = [w for w in words if len(w) < 3]
    # With MATCH, "+" keeps SQLite from driving the query by the stint index and probing the
    # FTS table once per row (its default plan here, 20x slower than matching first).
    conds = [f"{'+' if long else ''}d.stint IN ({','.join('?' * len(stints))})"]
    params: list[str] = list(stints)
    if long:
        conds.append("doc_fts MATCH ?")
        params.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in long))
    for w in short:
        conds.append("d.content LIKE ?")
        params.append(f"%{w}%")
    return " AND ".join(conds), params, bool(long)


def _fts(db: sqlite3.Connection, allowed: list[str]) -> Callable[[str, str, str | None], int]:
    def run(cls: str, q: str, stint: str | None) -> int:
        where, params, matched = _fts_where(q, [stint] if stint else allowed)
        src = "doc_fts JOIN doc d ON d.id = doc_fts.rowid" if matched else "doc d"
        total = db.execute(f"SELECT count(*) FROM {src} WHERE {where}", params).fetchone()[0]
        order = "d.ts DESC" if cls == "filter_newest" or not matched else "bm25(doc_fts)"
        db.execute(
            f"SELECT d.key, d.content FROM {src} WHERE {where} ORDER BY {order} LIMIT 20", params
        ).fetchall()
        if cls == "facets":
            db.execute("DELETE FROM m")
            db.execute(f"INSERT INTO m SELECT d.id FROM {src} WHERE {where}", params)
            for col in ("kind", "author", "stint", "day"):
                db.execute(
                    f"SELECT {col}, count(*) FROM doc WHERE id IN (SELECT id FROM m) GROUP BY {col}"
                ).fetchall()
            db.execute(
                "SELECT tag, count(*) FROM doc_tag WHERE doc IN (SELECT id FROM m) GROUP BY tag"
            ).fetchall()
        return int(total)

    return run


# --- measuring ------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


Runner = Callable[[str, str, str | None], int]
Times = dict[str, dict[str, list[float]]]  # system -> class -> ms


def _timings(systems: dict[str, Runner], queries: Queries) -> tuple[Times, Times]:
    """Wall-clock and CPU milliseconds per query. The systems take turns query by query, so a
    burst of load on this shared machine falls on both alike."""
    for cls in CLASSES:  # warm-up: caches, first searcher, page cache
        for q, stint in queries.by_class[cls][:3]:
            for run in systems.values():
                run(cls, q, stint)
    wall: Times = {name: {cls: [] for cls in CLASSES} for name in systems}
    cpu: Times = {name: {cls: [] for cls in CLASSES} for name in systems}
    for cls in CLASSES:
        for q, stint in queries.by_class[cls]:
            for name, run in systems.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                run(cls, q, stint)
                wall[name][cls].append((time.perf_counter() - started) * 1000)
                cpu[name][cls].append((time.process_time() - cpu_started) * 1000)
    return wall, cpu


def _freshness(store: IndexStore, corpus: Corpus, tmp: Path, rounds: int) -> list[float]:
    """End to end, as in the server: an observation committed to a (SQLite) database with its
    index task, the real indexer thread applying it to the 50,000-document index, until a search
    returns it; in ms from the commit's return."""
    engine = make_engine(f"sqlite:///{tmp / 'fieldbook.db'}")
    migrations.upgrade(engine)
    stint_id = corpus.stints[0]
    with Session(engine, expire_on_commit=False) as session:
        user = User(email="bench@example.com", name="Bench", password_hash="-")
        session.add(user)
        session.flush()
        session.add(
            Stint(
                id=stint_id,
                title="基准",
                customer="基准客户",
                purpose="product",
                start_date=date(2026, 3, 2),
                end_date=date(2026, 3, 27),
                timezone="Asia/Shanghai",
                created_by=user.id,
            )
        )
        session.commit()
    indexer = Indexer(store, engine)
    indexer.start()
    latencies = []
    try:
        for i in range(rounds):
            marker = f"新鲜度标记{i:04d}号"
            now = datetime.now(UTC)
            with Session(engine) as session:
                obs = Observation(
                    id=uuid.uuid4(),
                    stint_id=stint_id,
                    author_id=user.id,
                    text=f"{marker} freshness probe",
                    kind="note",
                    observed_at=now,
                    day=now.date(),
                    create_hash="-",
                )
                session.add(obs)
                record_index_task(session, "observation", obs.id)
                session.commit()
            started = time.perf_counter()
            clauses = [analyse_clause(marker)]
            filters = Filters(stints={str(stint_id)})
            while store.search(clauses, [], filters, newest=True, offset=0, limit=1, facets=False).total < 1:
                time.sleep(0.002)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        indexer.stop()
        engine.dispose()
    return latencies


def run(quick: bool) -> list[Figure]:
    n = 5_000 if quick else 50_000
    per_class = 40 if quick else 100
    corpus = make_corpus(n, stints=20)
    queries = Queries(corpus, per_class)
    allowed = {str(s) for s in queries.allowed}
    mean_chars = statistics.mean(len(d.texts["text"]) + len(d.texts["quote"]) for d in corpus.docs)
    figures = [
        Figure(AREA, f"corpus: observations (mean {mean_chars:.0f} chars, 20 stints)", n, "docs"),
        Figure(AREA, "machine load average at start (2 cores here)", os.getloadavg()[0], ""),
    ]

    with tempfile.TemporaryDirectory(prefix="fieldbook-bench-") as tmp:
        store = IndexStore(Path(tmp) / "search")
        started, cpu = time.perf_counter(), time.process_time()
        store.swap(store.build(batches(corpus.docs)))
        ours_rate = n / (time.perf_counter() - started)
        ours_cpu_rate = n / (time.process_time() - cpu)
        cpu = time.process_time()
        fts_rate = n / _fts_build(Path(tmp) / "fts.db", corpus.docs)
        fts_cpu_rate = n / (time.process_time() - cpu)
        figures.append(
            Figure(
                AREA,
                "indexing throughput (full build, wall clock)",
                ours_rate,
                "docs/s",
                fts_rate,
                "FTS5",
                ">= 1,000 docs/s",
                ours_rate >= 1000,
            )
        )
        # On a shared machine the wall clock includes waiting for the CPU; this is the work itself.
        figures.append(
            Figure(
                AREA,
                "indexing throughput (per CPU-second)",
                ours_cpu_rate,
                "docs/s",
                fts_cpu_rate,
                "FTS5",
                ">= 1,000 docs/s",
                ours_cpu_rate >= 1000,
            )
        )

        fts_db = sqlite3.connect(Path(tmp) / "fts.db")
        fts_db.execute("CREATE TEMP TABLE m (id INTEGER PRIMARY KEY)")
        wall, cpu_ms = _timings(
            {"ours": _ours(store, allowed), "fts": _fts(fts_db, sorted(allowed))}, queries
        )
        for cls in CLASSES:
            ours, theirs = wall["ours"][cls], wall["fts"][cls]
            p95 = _pct(ours, 0.95)
            figures.append(Figure(AREA, f"{cls} p50", _pct(ours, 0.5), "ms", _pct(theirs, 0.5), "FTS5"))
            figures.append(
                Figure(AREA, f"{cls} p95", p95, "ms", _pct(theirs, 0.95), "FTS5", "<= 50 ms", p95 <= 50)
            )
            cpu95 = _pct(cpu_ms["ours"][cls], 0.95)
            figures.append(
                Figure(
                    AREA,
                    f"{cls} p95, CPU time",
                    cpu95,
                    "ms",
                    _pct(cpu_ms["fts"][cls], 0.95),
                    "FTS5",
                    "<= 50 ms",
                    cpu95 <= 50,
                )
            )
        all_ours = [t for cls in CLASSES for t in wall["ours"][cls]]
        all_theirs = [t for cls in CLASSES for t in wall["fts"][cls]]
        ours_p95, fts_p95 = _pct(all_ours, 0.95), _pct(all_theirs, 0.95)
        figures.append(
            Figure(AREA, "all classes p50", _pct(all_ours, 0.5), "ms", _pct(all_theirs, 0.5), "FTS5")
        )
        figures.append(
            Figure(
                AREA, "all classes p95", ours_p95, "ms", fts_p95, "FTS5", "<= FTS5 p95", ours_p95 <= fts_p95
            )
        )

        by_doc = {d.doc_id: d for d in corpus.docs}
        visible = [d for d in corpus.docs if str(d.stint_id) in allowed]
        contents = {d.doc_id: _content(d) for d in visible}
        for cls in ("zh2", "zh34"):
            recalls, precisions = [], []
            for q, _ in queries.by_class[cls]:
                truth = {i for i, c in contents.items() if q in c}
                found = _ours_all_ids(store, allowed, q)
                recalls.append(len(found & truth) / len(truth) if truth else 1.0)
                precisions.append(len(found & truth) / len(found) if found else 1.0)
                assert all(i in by_doc for i in found)
            recall, precision = statistics.mean(recalls), statistics.mean(precisions)
            figures.append(Figure(AREA, f"{cls} recall", recall, "", target="= 1.0", met=recall == 1.0))
            figures.append(Figure(AREA, f"{cls} precision", precision, ""))

        fresh = _freshness(store, corpus, Path(tmp), 10 if quick else 20)
        fresh_p95 = _pct(fresh, 0.95)
        figures.append(
            Figure(
                AREA,
                "write -> searchable p95 (DB commit, indexer thread, search)",
                fresh_p95,
                "ms",
                target="<= 1000 ms",
                met=fresh_p95 <= 1000,
            )
        )
        fts_db.close()
    return figures
