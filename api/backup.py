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
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError

from api import migrations
from api.backup_database import (
    CHUNK,
    FILES,
    BackupError,
    database_kind,
    dump_postgres,
    dump_sqlite,
    has_data,
    inspect,
    private_file,
    restore_postgres,
    restore_sqlite,
    run_tool,
)
from api.config import Settings
from api.db import make_engine, utcnow
from api.ingest import staging_dir
from api.search_indexer import Indexer, indexer_lock, store_for
from storage import BlobNotFound, BlobStore
from storage.local import fsync_dir

MANIFEST = "manifest.json"
BLOBS = "blobs"
_DIGEST = r"^[0-9a-f]{64}$"


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


def _sum(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy_blobs(store: BlobStore, digests: set[str], into: Path) -> tuple[list[BlobEntry], list[str]]:
    into.mkdir(mode=0o700)
    copied: list[BlobEntry] = []
    missing: list[str] = []
    for digest in sorted(digests):
        path = into / digest
        h, size = hashlib.sha256(), 0
        try:
            chunks = store.read(digest)
            with private_file(path) as f:
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
    kind = database_kind(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))  # mode 0700
    try:
        db_file = work / FILES[kind]
        dump = dump_sqlite if kind == "sqlite" else dump_postgres
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
        with private_file(work / MANIFEST) as f:
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


def _restore_blobs(settings: Settings, store: BlobStore, src: Path, manifest: Manifest) -> None:
    staging = staging_dir(settings)  # beside a local store: put_file moves the copy in by a rename
    for blob in manifest.blobs:
        if store.exists(blob.sha256) and store.size(blob.sha256) == blob.size:
            continue
        copy = staging / f"restore-{blob.sha256}.{os.getpid()}"
        shutil.copyfile(src / BLOBS / blob.sha256, copy)
        store.put_file(copy, blob.sha256)  # consumes the copy, never the backup's file


def restore(settings: Settings, store: BlobStore, src: Path, *, force: bool = False) -> Summary:
    started = time.monotonic()
    src = src.absolute()
    manifest = verify(src)
    kind = database_kind(settings)
    if manifest.database.kind != kind:
        raise BackupError(
            f"this is a backup of a {manifest.database.kind} database; the configured one is {kind}"
        )
    if kind == "postgresql":
        run_tool("pg_restore", ["--list", str(src / manifest.database.file)], dict(os.environ))  # readable
    if has_data(settings, kind) and not force:
        raise BackupError("the configured database already holds data; restore with --force to replace it")
    search = store_for(settings.data_dir)
    # Held throughout: no indexer of this data directory writes while the database changes under it.
    with indexer_lock(search.lock_path, wait_seconds=30) as got:
        if not got:
            raise BackupError("the search indexer of this data directory is busy: stop the server first")
        _restore_blobs(settings, store, src, manifest)
        (restore_sqlite if kind == "sqlite" else restore_postgres)(
            settings, src / manifest.database.file, manifest.database.rows
        )
        engine = make_engine(settings.sqlalchemy_url)
        try:
            with engine.connect() as conn:
                rows = inspect(conn)[0]
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
