"""Sync: a 1,000-op push and a 10,000-change pull, against inserting and reading the same rows
directly through the database driver (sqlite3 / psycopg) in the same run.

The push goes through the whole app in process (JSON, validation, auth, Idempotency-Key, per-op
checks, change log, op ids; no socket); the baseline inserts the same observation and tag rows with
the driver's ``executemany`` in one transaction. The pull follows the feed's pages (1,000 changes
each) to the end; the baseline selects the same observations and their tags with the driver. Best
of a few rounds each. SQLite always; PostgreSQL too when it answers at FIELDBOOK_TEST_DATABASE_URL
(a private database is created and dropped; default: the local test server). The search indexer
thread is not started. The push's body is encoded before the clock starts (the phone's work: it
was ~10 ms of the figure) and one event loop thread serves the whole run, as in a server (TestClient
otherwise starts a thread and a loop per request).

Where the SQLite push's time goes (issue #5; the route called in process with timers around its
parts, medians of 6-9 pushes, 25 Nov 2026, on a 2-core machine shared with other jobs, so each
figure swings +-20 %): the push is ~58-64 ms (~70-80 ms before today's changes, 27730b3), ~4 ms
of it before the route (reading the body, parsed by orjson in ~0.75 ms plus a ~0.6 ms check that
it holds no float, json.loads when it does; the session check; the hop to a worker thread) and
~1 ms after it. Its driver calls, ~25 ms: executemany into five tables ~19 ms and the batch's
COMMIT ~4-5 ms (both paid by the baseline too; a COMMIT that crosses SQLite's 1,000-page
auto-checkpoint takes ~14 ms instead, one push in ~3 here, hence the best of a few rounds), the
selects for op ids and records already there ~1.4 ms, the Idempotency-Key's own fsync'd COMMIT
~0.5 ms (making it non-durable would save about that and risks a checkpoint without fsync, so it
stays FULL). The batch runs in a transaction of its own, not in a savepoint: on SQLite a
savepoint's sub-journal cost ~8 ms of those inserts. The rest, ~30 ms, is Python. Per push: the
ops' canonical JSON and SHA-256 ~2-3 ms (orjson where it writes json's bytes exactly, else json:
the hashes are stored; json alone took ~5.6 ms), the Idempotency-Key's claim ~1 ms and storing
the answer ~0.5 ms (Core statements; through the ORM, and the answer through json, 2.4 and
2.7 ms). Per op: the create's validation ~3.8 us, new_observation ~6.5 us of which the
fingerprint ~2.7 us (8.8 us in all before), OpIn validation ~1.3 us, the handler and the loop
around it (caches, results, op records) ~6 us, converting the rows for insert_many and noting
the change log's and index tasks' rows ~5 us, the change log's rows built at COMMIT ~1 us. The
cyclic garbage collector is paused while the push runs: its passes over the ~20,000 objects a
push keeps alive found nothing and cost ~3 ms a push, and now and then ~8 ms more. The target
(<= 3 x the driver's executemany) is met on SQLite in every run since (python -m bench sync,
thirteen runs: 2.64-3.00 x, push 57.5-67.8 ms against 19.5-23.0 ms; the code before: 3.09-3.41 x).
Later the same day (3e3c76d, 44e379a, e18fdca): the sign-in is read on the event loop on SQLite (the
capture route's way: ~0.15 ms after another connection's commit, instead of ~0.6 ms of ORM in a
threadpool call of its own); a batch's creates note their change log and index task rows as
new_observation_rows builds them (~1.0 -> ~0.4 ms for a thousand; the log's rows are no longer
rebuilt at COMMIT either); the collector is paused from the body's arrival to the answer, not for
its parts (each resume passed over the push's live objects: ~0.2 ms, and ~1 ms every other push). Interleaved A/B,
the bench's own figure (best of three, SQLite only), eight pairs: push 60.1-65.5 ms before (median
62.3), 57.5-60.5 after (median 59.6), lower in every pair by 1.1-6.9 ms (the machine busier than
above: the baseline 21.0-26.4 ms); python -m bench sync after: 2.78, 2.79, 2.87 x (push 56.3-60.5 ms
against 20.1-21.1 ms). <= 2.7 x is still not reliable: what is left in these files is spread thin
(the handlers' and the batch loop's ~3-4 us an op); the largest shares are elsewhere: the create's
validation and new_observation (~10 us an op, api/observation_schemas.py,
api/observation_writes.py), insert_rows' conversions (api/db.py), and before the route the
middleware and routing (~0.7 ms before the body is read). Tried and dropped: a loop over each
container's values for the float check (~0.09 ms less; not worth its subtlety), SHA-256 through a
copied hasher (no change), letting the collector pass over the body as read instead of freeing it
first (the same, and more work); writing the fingerprint's time with isoformat instead of pydantic's
serializer (slower: pydantic's timezone answers each utcoffset call from Rust), checking orjson's
output for floats with a regex (~1.4 ms a push, more than it saved) or with a set of each
container's types (slower than one loop over the values), validating the batch's creates in one
TypeAdapter call (~0.1 ms), keying the batch's caches by the ids' ints (~0.2 ms, within the noise),
a larger SQLite page cache (no change measured). After the review (one loop reader for both
sign-ins, the collector running while a body arrives): 2.70, 2.72, 2.59, 2.81 x. (Foreign keys, on in the app and off in the
baseline's connection, made no measurable difference to the executemany; nor did the order of the
baseline's rows, sorted or as the push wrote them. The baseline's copy of the database is in WAL
mode and synchronous=FULL, as the app's.)"""

import contextlib
import gc
import json
import random
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.from_thread
import psycopg
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

from api import migrations
from api.auth import open_session
from api.config import Settings
from api.db import make_engine
from api.main import create_app
from api.models import User
from bench.figures import Figure
from bench.postgres import PG_URL, answers
from tests.conftest import STINT

AREA = "sync"
PUSH_OPS = 1000
PULL_CHANGES = 10_000
PUSH_TARGET = 3.0

SCENES = [
    "调度员每天早上 7 点手工排班，用 Excel 拖拽司机和线路",
    "Finance closes the month in three days; 对账靠打印出来的表格",
    "仓库主管说：系统慢的时候我们就先手写，晚上再补录",
    "司机在门卫处排队领单，平均 20 分钟，高峰 40 分钟",
    "老板只看周报 PDF, never the live dashboard",
    "客服把客户投诉抄在便利贴上，贴在显示器边上",
]
TAGS = ["排班", "excel", "对账", "手写", "等待", "周报", "投诉", "dispatch"]


@contextmanager
def _database(pg_url: str | None) -> Iterator[str]:
    if not pg_url:
        folder = Path(tempfile.mkdtemp(prefix="fieldbook-bench-sync-"))
        try:
            yield f"sqlite:///{folder / 'fieldbook.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"fieldbook_bench_sync_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class _Setup:
    def __init__(self, url: str, data_dir: Path) -> None:
        engine = make_engine(url)
        migrations.upgrade(engine)
        with Session(engine) as session:
            user = User(email="bench.sync@example.com", name="李研究员", password_hash="x")
            session.add(user)
            session.flush()
            token, _ = open_session(session, user.id, timedelta(days=1))
            self.user_id = user.id
        engine.dispose()
        self.app = create_app(Settings(data_dir=data_dir, database_url=url))
        # As ``serve_app`` does in each worker: what exists once the app is built is frozen, so the
        # collector's full passes skip it (unfrozen, one in ~5 pushes met a ~130 ms full pass).
        gc.collect()
        gc.freeze()
        self.client = TestClient(self.app)  # no lifespan: no indexer thread competing for the CPU
        # One event loop thread for the whole run, as in a server; without it TestClient starts a
        # thread and a loop per request.
        self._portal = contextlib.ExitStack()
        self.client.portal = self._portal.enter_context(anyio.from_thread.start_blocking_portal())
        self.headers = {"Authorization": f"Bearer {token}"}
        stint = self.client.post("/api/stints", json=STINT, headers=self.headers)
        assert stint.status_code == 201, stint.text
        self.stint_id = stint.json()["id"]

    def ops(self, n: int, rng: random.Random) -> list[dict[str, Any]]:
        start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        return [
            {
                "op_id": uuid.uuid4().hex,
                "type": "observation",
                "id": str(uuid.uuid4()),
                "op": "upsert",
                "base_version": None,
                "data": {
                    "stint_id": self.stint_id,
                    "text": f"{rng.choice(SCENES)}（第 {i} 条）",
                    "kind": rng.choice(["note", "quote", "behaviour", "pain_point"]),
                    "observed_at": (start + timedelta(minutes=17 * i)).isoformat(),
                    "tags": rng.sample(TAGS, 2),
                },
            }
            for i in range(n)
        ]

    def close(self) -> None:
        self._portal.close()
        self.app.state.engine.dispose()
        gc.unfreeze()  # the benches after this one in the process start as they would alone

    def push(self, ops: list[dict[str, Any]]) -> float:
        # Encoded before the clock starts: the phone's work, not the server's (~10 ms of JSON here).
        body = json.dumps({"ops": ops}, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        started = time.perf_counter()
        r = self.client.post("/api/sync/push", content=body, headers=headers)
        elapsed = time.perf_counter() - started
        assert r.status_code == 200, r.text
        assert all(x["status"] == "applied" for x in r.json()["results"])
        return elapsed

    def pull_all(self) -> tuple[float, int]:
        started = time.perf_counter()
        since: str | None = None
        count = 0
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if since is not None:
                params["since"] = since
            r = self.client.get("/api/sync/changes", params=params, headers=self.headers)
            assert r.status_code == 200, r.text
            page = r.json()
            count += sum(1 for c in page["changes"] if c["type"] == "observation")
            since = page["cursor"]
            if not page["has_more"]:
                return time.perf_counter() - started, count


Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]  # table -> columns, rows


def _driver(url: str) -> Any:
    if url.startswith("sqlite"):
        return sqlite3.connect(sa.make_url(url).database or "")
    return psycopg.connect(
        sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


@contextmanager
def _before_push(url: str, setup: "_Setup") -> Iterator[str]:
    """A copy of the database as it is now: the driver baseline inserts into it what the push adds."""
    if url.startswith("sqlite"):
        path = Path(sa.make_url(url).database or "")
        copy = path.with_name(f"baseline-{uuid.uuid4().hex[:6]}.db")
        src, dst = sqlite3.connect(path), sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()
        try:
            yield f"sqlite:///{copy}"
        finally:
            copy.unlink()
        return
    setup.app.state.engine.dispose()  # a template database must have no connections
    name = f"{sa.make_url(url).database}_b{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_admin_dsn(url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{sa.make_url(url).database}"')
    try:
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_dsn(url: str) -> str:
    return (
        sa.make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


def _added_rows(url: str, before: str) -> Rows:
    """Every row the push added, table by table (parents first), as the driver reads them."""
    added: Rows = {}
    with _driver(url) as now, _driver(before) as then:
        for table in SQLModel.metadata.sorted_tables:
            sql = f'SELECT * FROM "{table.name}"'
            cur = now.execute(sql)
            columns = [d[0] for d in cur.description]
            new = set(cur.fetchall()) - set(then.execute(sql).fetchall())
            if new:
                added[table.name] = (columns, sorted(new, key=repr))
    return added


def _driver_insert(url: str, rows: Rows) -> float:
    """The baseline: the same rows, inserted with the driver's executemany in one transaction."""
    mark = "?" if url.startswith("sqlite") else "%s"
    conn = _driver(url)
    try:
        if url.startswith("sqlite"):
            conn.execute("PRAGMA synchronous=FULL")
        started = time.perf_counter()
        cur = conn.cursor()
        for table, (columns, values) in rows.items():
            names = ", ".join(f'"{c}"' for c in columns)
            cur.executemany(
                f'INSERT INTO "{table}" ({names}) VALUES ({", ".join([mark] * len(columns))})', values
            )
        conn.commit()
        return time.perf_counter() - started
    finally:
        conn.close()


def _push_and_baseline(url: str, setup: "_Setup", ops: list[dict[str, Any]]) -> tuple[float, float, int]:
    with _before_push(url, setup) as before:
        pushed = setup.push(ops)
        rows = _added_rows(url, before)
        direct = _driver_insert(before, rows)
    return pushed, direct, sum(len(v) for _, v in rows.values())


def _driver_read(url: str, stint_id: str) -> tuple[float, int]:
    sql = "SELECT * FROM observation WHERE stint_id = {p} ORDER BY observed_at"
    tag_sql = (
        "SELECT t.observation_id, t.tag FROM observation_tag t JOIN observation o ON o.id = t.observation_id "
        "WHERE o.stint_id = {p}"
    )
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sa.make_url(url).database or "")
        started = time.perf_counter()
        rows = conn.execute(sql.format(p="?"), (uuid.UUID(stint_id).hex,)).fetchall()
        conn.execute(tag_sql.format(p="?"), (uuid.UUID(stint_id).hex,)).fetchall()
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed, len(rows)
    with psycopg.connect(
        sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        started = time.perf_counter()
        rows = conn.execute(sql.format(p="%s"), (uuid.UUID(stint_id),)).fetchall()
        conn.execute(tag_sql.format(p="%s"), (uuid.UUID(stint_id),)).fetchall()
        return time.perf_counter() - started, len(rows)


def _measure(url: str, label: str, quick: bool) -> list[Figure]:
    rng = random.Random(5)
    rounds = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="fieldbook-bench-sync-data-") as data_dir:
        setup = _Setup(url, Path(data_dir))
        setup.push(setup.ops(50, rng))  # warm-up: imports, caches, connection pool
        runs = [_push_and_baseline(url, setup, setup.ops(PUSH_OPS, rng)) for _ in range(rounds)]
        push, direct = min(r[0] for r in runs), min(r[1] for r in runs)
        rows_written = runs[0][2]
        # Fill up to the pull size (pushed in batches, as phones do), then pull everything.
        have = 50 + rounds * PUSH_OPS
        target = 3000 if quick else PULL_CHANGES
        while have < target:
            n = min(PUSH_OPS, target - have)
            setup.push(setup.ops(n, rng))
            have += n
        pulled = min((setup.pull_all() for _ in range(rounds)), key=lambda x: x[0])
        read = min((_driver_read(url, setup.stint_id) for _ in range(rounds)), key=lambda x: x[0])
        assert pulled[1] == read[1] == have, (pulled, read, have)
        setup.close()
    return [
        Figure(
            AREA,
            f"push {PUSH_OPS} ops ({label})",
            push * 1000,
            "ms",
            baseline=direct * 1000,
            baseline_name=f"ms driver executemany, same {rows_written:,} rows",
            target=f"<= {PUSH_TARGET:g} x baseline",
            met=push <= PUSH_TARGET * direct,
        ),
        Figure(
            AREA,
            f"pull {have:,} changes ({label})",
            pulled[0] * 1000,
            "ms",
            baseline=read[0] * 1000,
            baseline_name="ms driver select",
        ),
    ]


def run(quick: bool) -> list[Figure]:
    figures: list[Figure] = []
    with _database(None) as url:
        figures += _measure(url, "SQLite", quick)
    if answers(PG_URL):
        with _database(PG_URL) as url:
            figures += _measure(url, "PostgreSQL", quick)
    else:
        figures.append(Figure(AREA, f"PostgreSQL: skipped, no server at {sa.make_url(PG_URL)}", 0, "-"))
    return figures
