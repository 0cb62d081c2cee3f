"""The fair writer gate of SQLite (api/sqlite_writer.py): writers are served in arrival order, no
writer starves when two processes write, every way a transaction ends lets go of the gate, a holder
that never lets go makes a writer fail after the timeout (not hang), and reads, savepoints and
in-memory databases do not use it. SQLite files of their own: the same on either test leg."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from api import sqlite_writer
from api.db import begin_reading, make_engine, reading

CHILD = """
import json, sys, threading, time
from api.db import make_engine
engine = make_engine(sys.argv[1])
who, seconds, waits = sys.argv[2], float(sys.argv[3]), {}
print("ready", flush=True)
sys.stdin.readline()
def write(name):
    waits[name] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        asked = time.monotonic()
        with engine.begin() as conn:
            waits[name].append(time.monotonic() - asked)
            conn.exec_driver_sql("INSERT INTO t (who) VALUES (?)", (f"{name}.{len(waits[name])}",))
            time.sleep(0.003)  # a request's work inside its transaction
threads = [threading.Thread(target=write, args=(f"{who}{i}",)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(waits), flush=True)
"""

HOLD = """
import fcntl, os, sys
from api.db import make_engine
if sys.argv[2] == "gate":  # stuck between the gate and BEGIN IMMEDIATE
    fd = os.open(sys.argv[1].removeprefix("sqlite:///") + "-writer.lock", os.O_RDONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
else:
    conn = make_engine(sys.argv[1]).connect()
    conn.begin()
    conn.exec_driver_sql("INSERT INTO t (who) VALUES ('other process')")
print("holding", flush=True)
sys.stdin.readline()
if sys.argv[2] != "gate":
    conn.commit()
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'w.db'}"


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT UNIQUE)")
    yield engine
    engine.dispose()


def write(engine: sa.Engine, who: str) -> float:
    started = time.monotonic()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t (who) VALUES (?)", (who,))
    return time.monotonic() - started


def written(engine: sa.Engine) -> list[str]:
    with reading(engine).connect() as conn:
        return [who for (who,) in conn.exec_driver_sql("SELECT who FROM t ORDER BY id")]


def hold(url: str, what: str) -> subprocess.Popen[str]:
    """Another process holding the gate, with SQLite's write lock (``write``) or without (``gate``)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, what], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "holding\n"
    return child


def test_writers_of_a_process_are_served_in_arrival_order(engine: sa.Engine) -> None:
    # SQLite's busy handler alone: the first waiters sleep ever longer and the last comers win.
    holder = engine.connect()
    holder.begin()
    holder.exec_driver_sql("INSERT INTO t (who) VALUES ('holder')")
    threads = []
    for i in range(8):
        threads.append(threading.Thread(target=write, args=(engine, f"w{i}")))
        threads[-1].start()
        time.sleep(0.1)
    holder.commit()
    holder.close()
    for t in threads:
        t.join()
    assert written(engine) == ["holder", *(f"w{i}" for i in range(8))]


@pytest.mark.slow
def test_no_writer_of_two_processes_starves(engine: sa.Engine, url: str) -> None:
    """Two processes of four threads each write in a loop for 3 s: each thread gets its share, and
    no transaction waits long."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, who, "3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for who in "ab"
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    waits: dict[str, list[float]] = {}
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        waits |= json.loads(out)
    # Without the gate some threads wrote once in the 3 s and another hundreds of times (waits of 3 s);
    # with it each wrote ~60-90 times, waiting at most ~0.2 s.
    counts = {who: len(w) for who, w in waits.items()}
    worst = max(max(w) for w in waits.values())
    assert len(counts) == 8 and min(counts.values()) * 4 >= max(counts.values()), counts
    assert worst < 1.5, f"a writer waited {worst:.2f} s; {counts}"


@pytest.mark.parametrize("end", ["commit", "exception", "rollback", "close", "invalidate", "conflict"])
def test_every_end_of_a_transaction_lets_go(engine: sa.Engine, end: str) -> None:
    sqlite_writer.install(engine, timeout=1.0)  # a leaked gate would keep the next writer 1 s
    write(engine, "existing")
    with Session(engine) as session:
        session.execute(sa.text("INSERT INTO t (who) VALUES ('mine')"))
        if end == "commit":
            session.commit()
        elif end == "rollback":
            session.rollback()
        elif end == "close":
            session.close()
        elif end == "invalidate":
            session.connection().invalidate()
        elif end == "conflict":
            with pytest.raises(sa.exc.IntegrityError):
                session.execute(sa.text("INSERT INTO t (who) VALUES ('existing')"))
            session.rollback()
    if end == "exception":
        with pytest.raises(ZeroDivisionError), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t (who) VALUES ('mine')")
            _ = 1 / 0
    assert write(engine, "next") < 0.5
    assert written(engine) == ["existing", *(["mine"] if end == "commit" else []), "next"]


def test_a_holder_that_never_lets_go_makes_a_writer_fail_not_hang(engine: sa.Engine, url: str) -> None:
    sqlite_writer.install(engine, timeout=0.5)
    for holder in ["thread", "process"]:
        child = hold(url, "write") if holder == "process" else None
        conn = engine.connect() if holder == "thread" else None
        if conn is not None:
            conn.begin()
            conn.exec_driver_sql("INSERT INTO t (who) VALUES ('holder')")
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            write(engine, "waiter")
        # The gate's timeout, then no second wait in SQLite's busy handler (30 s on the connection).
        assert 0.4 < time.monotonic() - started < 5, holder
        if conn is not None:
            conn.rollback()
            conn.close()
        if child is not None:
            child.communicate("done\n", timeout=30)
        assert write(engine, f"after the {holder}") < 0.4  # the abandoned wait let go as well
    assert written(engine) == ["after the thread", "other process", "after the process"]


def test_a_gate_held_outside_sqlite_only_delays_a_writer(engine: sa.Engine, url: str) -> None:
    """A process stuck holding the gate but not SQLite's lock: writers go ahead after the timeout;
    once that process dies, the kernel drops its lock at once."""
    sqlite_writer.install(engine, timeout=0.5)
    child = hold(url, "gate")
    try:
        assert 0.4 < write(engine, "waited") < 5
    finally:
        child.kill()
        child.wait()
    assert write(engine, "after") < 0.4
    assert written(engine) == ["waited", "after"]


def test_reads_and_savepoints_do_not_take_the_gate(engine: sa.Engine) -> None:
    sqlite_writer.install(engine, timeout=5.0)
    with Session(engine) as writer:
        writer.execute(sa.text("INSERT INTO t (who) VALUES ('outer')"))
        started = time.monotonic()
        with writer.begin_nested():
            writer.execute(sa.text("INSERT INTO t (who) VALUES ('savepoint')"))
        with reading(engine).connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        with Session(engine) as reader:
            begin_reading(reader)
            assert reader.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
            reader.commit()
        assert time.monotonic() - started < 2
        writer.commit()
    assert written(engine) == ["outer", "savepoint"]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_databases_have_no_gate(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (who TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES ('x')")
    engine.dispose()
    assert not hasattr(engine.dialect, "_fieldbook_writer_gate") and list(tmp_path.iterdir()) == []
