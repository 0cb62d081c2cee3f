"""The database half of ``fieldbook backup`` and ``restore`` (see ``api.backup``): a consistent copy of
SQLite (online backup) or PostgreSQL (``pg_dump`` of an exported snapshot), with the row counts,
revision and live blobs that copy holds, and putting such a copy back."""

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel

from api.config import Settings
from api.materials import live_blob_digests
from storage.local import fsync_dir

FILES = {"sqlite": "fieldbook.db", "postgresql": "fieldbook.pgdump"}
CHUNK = 1024 * 1024


class BackupError(Exception):
    """Refused or failed; the message says why and what to do."""


@contextmanager
def private_file(path: Path) -> Iterator[BinaryIO]:
    """A new file only its owner can read; fsynced before it is closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def database_kind(settings: Settings) -> Literal["sqlite", "postgresql"]:
    name = sa.make_url(settings.sqlalchemy_url).get_backend_name()
    if name not in FILES:
        raise BackupError(f"backup supports SQLite and PostgreSQL, not {name}")
    return "sqlite" if name == "sqlite" else "postgresql"


def sqlite_path(settings: Settings) -> Path:
    database = sa.make_url(settings.sqlalchemy_url).database
    if not database or database == ":memory:":
        raise BackupError("the SQLite database is not a file")
    return Path(database)


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq connection URL for the PostgreSQL tools; the password goes in the environment, where
    other users' ``ps`` cannot see it."""
    url = sa.make_url(settings.sqlalchemy_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def run_tool(name: str, args: list[str], env: dict[str, str]) -> None:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools")
    done = subprocess.run([path, *args], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{name} failed: {done.stderr.strip()}")


def inspect(conn: sa.Connection) -> tuple[dict[str, int], str | None, set[str]]:
    """Rows per table, the Alembic revision and the live materials' blobs, as ``conn`` sees them."""
    names = sorted(sa.inspect(conn).get_table_names())
    rows = {
        n: int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(n))).scalar_one()) for n in names
    }
    revision = None
    if "alembic_version" in names:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    with Session(bind=conn) as session:
        digests = live_blob_digests(session)
    return rows, revision, digests


def dump_sqlite(settings: Settings, target: Path) -> tuple[dict[str, int], str | None, set[str]]:
    source = sqlite_path(settings)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    with private_file(target):
        pass  # created 0600 before SQLite opens it
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # one step (pages=-1): a single read snapshot, writers carry on (WAL)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()
    fsync_file(target)
    copy = sa.create_engine(f"sqlite:///{target}", poolclass=NullPool)
    try:
        with copy.connect() as conn:
            return inspect(conn)
    finally:
        copy.dispose()


def dump_postgres(settings: Settings, target: Path) -> tuple[dict[str, int], str | None, set[str]]:
    dsn, env = _libpq(settings)
    with private_file(target):
        pass
    engine = sa.create_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # pg_dump reads the snapshot of this open transaction, whose queries fill the manifest.
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                run_tool(
                    "pg_dump", ["--format=custom", f"--snapshot={snapshot}", f"--file={target}", dsn], env
                )
                found = inspect(conn)
    finally:
        engine.dispose()
    fsync_file(target)
    return found


def has_data(settings: Settings, kind: str) -> bool:
    if kind == "sqlite" and not sqlite_path(settings).exists():
        return False
    engine = sa.create_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for name in sa.inspect(conn).get_table_names():
                one = sa.select(sa.literal(1)).select_from(sa.table(name)).limit(1)
                if name != "alembic_version" and conn.execute(one).first() is not None:
                    return True
    finally:
        engine.dispose()
    return False


def restore_sqlite(settings: Settings, dump: Path, tables: Iterable[str]) -> None:
    target = sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore-{os.getpid()}")
    with private_file(tmp) as out, open(dump, "rb") as f:
        shutil.copyfileobj(f, out, CHUNK)
    # The old WAL goes first: replayed onto the new file it would corrupt it.
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def restore_postgres(settings: Settings, dump: Path, tables: Iterable[str]) -> None:
    """``tables``: those the backup holds; they and Fieldbook's current ones are replaced."""
    import api.main  # noqa: F401 - registers every table in SQLModel.metadata

    dsn, env = _libpq(settings)
    ours = set(tables) | set(SQLModel.metadata.tables) | {"alembic_version"}
    engine = sa.create_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            # Only Fieldbook's tables (of this or the backup's version): the database may hold others.
            for name in sa.inspect(conn).get_table_names():
                if name in ours:
                    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    finally:
        engine.dispose()
    args = ["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", f"--dbname={dsn}"]
    run_tool("pg_restore", [*args, str(dump)], env)
