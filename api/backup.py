"""``fieldbook backup DEST`` and ``fieldbook restore SRC``: the whole database plus the stored files.

A backup directory holds the database (``fieldbook.db``: a SQLite online-backup copy, or
``fieldbook.pgdump``: ``pg_dump --format=custom``), ``blobs/<sha256>`` and, written last,
``manifest.json`` (format, time, database kind, Alembic revision, rows per table, SHA-256 and size of
every file). It is written in a hidden directory beside DEST (0700, files 0600: it holds password and
token hashes), fsynced, and renamed to DEST at the end: a directory named DEST is a complete backup.

Consistency: the database is copied first, as one snapshot (SQLite: one backup step, a read
transaction that WAL lets writers run beside; PostgreSQL: ``pg_dump --snapshot`` of a REPEATABLE READ
transaction whose own queries fill the manifest). Then the blobs of the live materials *in that copy*
are read from the store. Blobs are immutable and named by their content, so every one the copy names
is still there unless ``fieldbook gc`` freed it meanwhile, which it does only for a material deleted
after the snapshot: such a blob is listed as missing and the command says so. Blobs of deleted
materials are left out on purpose (gc frees them anyway; a backup should not keep what a user
deleted), and so are unfinished resumable uploads (their clients are told to start again).

Restore checks every sum before it changes anything, refuses a database that holds data unless
forced, puts the blobs back, then the database, upgrades it to the newest schema and rebuilds the
search index. On PostgreSQL Fieldbook's tables are dropped before ``pg_restore`` (one transaction of
its own): should that fail, run the restore again."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel

from api import migrations
from api.config import Settings
from api.db import make_engine, utcnow
from api.ingest import staging_dir
from api.materials import live_blob_digests
from api.search_indexer import Indexer, indexer_lock, store_for
from storage import BlobNotFound, BlobStore
from storage.local import fsync_dir

MANIFEST = "manifest.json"
BLOBS = "blobs"
FILES = {"sqlite": "fieldbook.db", "postgresql": "fieldbook.pgdump"}
CHUNK = 1024 * 1024
_DIGEST = r"^[0-9a-f]{64}$"


class BackupError(Exception):
    """Refused or failed; the message says why and what to do."""


class BlobEntry(BaseModel):
    sha256: str = Field(pattern=_DIGEST)
    size: int = Field(ge=0)


class DatabaseEntry(BaseModel):
    kind: Literal["sqlite", "postgresql"]
    file: str
    sha256: str = Field(pattern=_DIGEST)
    size: int = Field(ge=0)
    alembic_revision: str | None
    rows: dict[str, int]


class Manifest(BaseModel):
    format: Literal["fieldbook-backup"] = "fieldbook-backup"
    format_version: Literal[1] = 1
    created_at: datetime
    database: DatabaseEntry
    blobs: list[BlobEntry]
    missing_blobs: list[str] = []


@dataclass
class Summary:
    path: Path
    manifest: Manifest
    seconds: float = 0.0
    indexed: int = 0
    revision_after: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.manifest.database.rows.values())

    @property
    def blob_bytes(self) -> int:
        return sum(b.size for b in self.manifest.blobs)


# files


@contextmanager
def _private_file(path: Path) -> Iterator[BinaryIO]:
    """A new file only its owner can read; fsynced before it is closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _sum(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# the database side


def _kind(settings: Settings) -> Literal["sqlite", "postgresql"]:
    name = sa.make_url(settings.sqlalchemy_url).get_backend_name()
    if name not in FILES:
        raise BackupError(f"backup supports SQLite and PostgreSQL, not {name}")
    return "sqlite" if name == "sqlite" else "postgresql"


def _sqlite_path(settings: Settings) -> Path:
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


def _tool(name: str, args: list[str], env: dict[str, str]) -> None:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools")
    done = subprocess.run([path, *args], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{name} failed: {done.stderr.strip()}")


def _inspect(conn: sa.Connection) -> tuple[dict[str, int], str | None, set[str]]:
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


def _dump_sqlite(settings: Settings, target: Path) -> tuple[dict[str, int], str | None, set[str]]:
    source = _sqlite_path(settings)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    with _private_file(target):
        pass  # created 0600 before SQLite opens it
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # one step (pages=-1): a single read snapshot, writers carry on (WAL)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()
    _fsync(target)
    copy = sa.create_engine(f"sqlite:///{target}", poolclass=NullPool)
    try:
        with copy.connect() as conn:
            return _inspect(conn)
    finally:
        copy.dispose()


def _dump_postgres(settings: Settings, target: Path) -> tuple[dict[str, int], str | None, set[str]]:
    dsn, env = _libpq(settings)
    with _private_file(target):
        pass
    engine = sa.create_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # pg_dump reads the snapshot of this open transaction, whose queries fill the manifest.
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                _tool("pg_dump", ["--format=custom", f"--snapshot={snapshot}", f"--file={target}", dsn], env)
                found = _inspect(conn)
    finally:
        engine.dispose()
    _fsync(target)
    return found


def _copy_blobs(store: BlobStore, digests: set[str], into: Path) -> tuple[list[BlobEntry], list[str]]:
    into.mkdir(mode=0o700)
    copied: list[BlobEntry] = []
    missing: list[str] = []
    for digest in sorted(digests):
        path = into / digest
        h, size = hashlib.sha256(), 0
        try:
            chunks = store.read(digest)
            with _private_file(path) as f:
                for chunk in chunks:
                    h.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
        except BlobNotFound:
            path.unlink(missing_ok=True)
            missing.append(digest)
            continue
        if h.hexdigest() != digest:  # damaged in the store: a copy would fail every restore
            path.unlink()
            missing.append(digest)
            continue
        copied.append(BlobEntry(sha256=digest, size=size))
    fsync_dir(into)
    return copied, missing


def backup(settings: Settings, store: BlobStore, dest: Path) -> Summary:
    started = time.monotonic()
    dest = dest.absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} already exists and is not an empty directory; give a new one")
    kind = _kind(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))  # mode 0700
    try:
        db_file = work / FILES[kind]
        dump = _dump_sqlite if kind == "sqlite" else _dump_postgres
        rows, revision, digests = dump(settings, db_file)
        blobs, missing = _copy_blobs(store, digests, work / BLOBS)
        db_sum, db_size = _sum(db_file)
        manifest = Manifest(
            created_at=utcnow(),
            database=DatabaseEntry(
                kind=kind,
                file=db_file.name,
                sha256=db_sum,
                size=db_size,
                alembic_revision=revision,
                rows=rows,
            ),
            blobs=blobs,
            missing_blobs=missing,
        )
        with _private_file(work / MANIFEST) as f:
            f.write(manifest.model_dump_json(indent=2).encode())
        fsync_dir(work)
        os.rename(work, dest)  # replaces an empty DEST; fails if something appeared in it meanwhile
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    problems = [f"blob {d} is missing or damaged in the store (see `fieldbook check`)" for d in missing]
    return Summary(path=dest, manifest=manifest, seconds=time.monotonic() - started, problems=problems)


# restore


def verify(src: Path) -> Manifest:
    """Read the manifest and check every file against it; nothing is changed."""
    try:
        manifest = Manifest.model_validate_json((src / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise BackupError(
            f"{src} is not a Fieldbook backup (no {MANIFEST}); an unfinished one has none"
        ) from None
    except ValidationError as exc:
        raise BackupError(f"{src / MANIFEST} is not a valid manifest: {exc.errors()[0]['msg']}") from None
    db = manifest.database
    if db.file != FILES[db.kind]:
        raise BackupError(f"the manifest names an unexpected database file {db.file!r}")
    wanted = [(src / db.file, db.sha256, db.size)]
    wanted += [(src / BLOBS / b.sha256, b.sha256, b.size) for b in manifest.blobs]
    for path, digest, size in wanted:
        try:
            actual = _sum(path)
        except FileNotFoundError:
            raise BackupError(f"{path} is missing from the backup") from None
        if actual != (digest, size):
            raise BackupError(
                f"{path} does not match the manifest (SHA-256 or size differ): the backup is damaged"
            )
    return manifest


def _has_data(settings: Settings, kind: str) -> bool:
    if kind == "sqlite" and not _sqlite_path(settings).exists():
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


def _restore_blobs(settings: Settings, store: BlobStore, src: Path, manifest: Manifest) -> None:
    staging = staging_dir(settings)  # beside a local store: put_file moves the copy in by a rename
    for blob in manifest.blobs:
        if store.exists(blob.sha256) and store.size(blob.sha256) == blob.size:
            continue
        copy = staging / f"restore-{blob.sha256}.{os.getpid()}"
        shutil.copyfile(src / BLOBS / blob.sha256, copy)
        store.put_file(copy, blob.sha256)  # consumes the copy, never the backup's file


def _restore_sqlite(settings: Settings, src: Path, manifest: Manifest) -> None:
    target = _sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore-{os.getpid()}")
    with _private_file(tmp) as out, open(src / manifest.database.file, "rb") as f:
        shutil.copyfileobj(f, out, CHUNK)
    # The old WAL goes first: replayed onto the new file it would corrupt it.
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def _restore_postgres(settings: Settings, src: Path, manifest: Manifest) -> None:
    import api.main  # noqa: F401 - registers every table in SQLModel.metadata

    dsn, env = _libpq(settings)
    ours = set(manifest.database.rows) | set(SQLModel.metadata.tables) | {"alembic_version"}
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
    _tool("pg_restore", [*args, str(src / manifest.database.file)], env)


def restore(settings: Settings, store: BlobStore, src: Path, *, force: bool = False) -> Summary:
    started = time.monotonic()
    src = src.absolute()
    manifest = verify(src)
    kind = _kind(settings)
    if manifest.database.kind != kind:
        raise BackupError(
            f"this is a backup of a {manifest.database.kind} database; the configured one is {kind}"
        )
    if kind == "postgresql":
        _tool("pg_restore", ["--list", str(src / manifest.database.file)], dict(os.environ))  # readable
    if _has_data(settings, kind) and not force:
        raise BackupError("the configured database already holds data; restore with --force to replace it")
    search = store_for(settings.data_dir)
    # Held throughout: no indexer of this data directory writes while the database changes under it.
    with indexer_lock(search.lock_path, wait_seconds=30) as got:
        if not got:
            raise BackupError("the search indexer of this data directory is busy: stop the server first")
        _restore_blobs(settings, store, src, manifest)
        (_restore_sqlite if kind == "sqlite" else _restore_postgres)(settings, src, manifest)
        engine = make_engine(settings.sqlalchemy_url)
        try:
            with engine.connect() as conn:
                rows = _inspect(conn)[0]
            if rows != manifest.database.rows:
                raise BackupError("the restored database's row counts differ from the manifest")
            migrations.upgrade(engine)
            with engine.connect() as conn:
                revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            indexed = Indexer(search, engine).rebuild_locked()
        finally:
            engine.dispose()
    return Summary(
        path=src,
        manifest=manifest,
        seconds=time.monotonic() - started,
        indexed=indexed,
        revision_after=revision,
        problems=[f"blob {d} was already missing when the backup was taken" for d in manifest.missing_blobs],
    )
