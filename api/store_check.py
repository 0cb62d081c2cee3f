"""The blob store's half of ``fieldbook check``, and the clean-up of what a killed server leaves behind.

A server killed at any instant leaves no partial blob (a blob appears under its digest only once
complete: temp → fsync → rename, see ``storage.local``), but it can leave:

- temp files: a blob being written in the local store, a request body being staged
  (``<data>/staging``), a tus partial file whose upload row was never committed (``<data>/uploads``).
  ``fieldbook serve`` removes the first two at start, before any worker runs, so no request can be
  writing them; ``fieldbook gc`` removes all three once older than its grace period.
- unreferenced blobs: stored, but the row naming them was never committed (the crash fell between
  the two), or their material was deleted since. ``fieldbook gc`` frees them after its grace period.

``check_store`` reports both kinds (older than the grace period: younger ones may be an upload in
flight), blobs that live materials name but the store lacks, and with ``deep`` every blob whose
bytes no longer hash to its name."""

import hashlib
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from api.config import Settings
from api.db import utcnow
from api.material_tables import Material, Upload
from api.materials import live_blob_digests
from storage import BlobStore
from storage.local import LocalBlobStore


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file()] if directory.is_dir() else []


def temp_files(settings: Settings, store: BlobStore) -> list[Path]:
    """Blob temp files (local store) and staged request bodies: only a running request owns them."""
    found = _files(settings.data_dir / "staging")
    if isinstance(store, LocalBlobStore):
        found += store.temp_files()
    return found


def remove_temp_files(settings: Settings, store: BlobStore) -> int:
    """At server start, before the workers: whatever is there was left by a killed process."""
    removed = 0
    for path in temp_files(settings, store):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _stray_parts(engine: sa.Engine, settings: Settings) -> list[Path]:
    """tus partial files with no upload row (the server died between creating the file and the row)."""
    parts = [p for p in _files(settings.data_dir / "uploads") if p.suffix == ".part"]
    if not parts:
        return []
    with Session(engine) as session:
        live = {f"{u.hex}.part" for u in session.exec(select(Upload.id)).all()}
    return [p for p in parts if p.name not in live]


def leftover_files(
    engine: sa.Engine, settings: Settings, store: BlobStore, *, older_than: float
) -> list[Path]:
    """Temp files, staged bodies and tus parts without an upload row, last changed before ``older_than``
    (a timestamp): younger ones may belong to a request in flight."""
    return _older(temp_files(settings, store) + _stray_parts(engine, settings), older_than)


def missing_blobs(engine: sa.Engine, store: BlobStore) -> list[str]:
    """Live materials whose original or preview is not in the blob store (for ``fieldbook check``)."""
    problems: list[str] = []
    with Session(engine) as session:
        rows = session.exec(select(Material).where(col(Material.deleted_at).is_(None))).all()
    for m in rows:
        for what, digest in (
            ("original", m.sha256),
            ("thumbnail", m.thumb_sha256),
            ("preview", m.screen_sha256),
        ):
            if digest is not None and not store.exists(digest):
                problems.append(f"materials: {what} of material {m.id} ({m.filename}) is missing: {digest}")
    return problems


def _corrupt(store: BlobStore) -> list[str]:
    bad = []
    for digest, _ in list(store.list()):
        h = hashlib.sha256()
        for chunk in store.read(digest):
            h.update(chunk)
        if h.hexdigest() != digest:
            bad.append(digest)
    return bad


def _older(paths: list[Path], cutoff: float) -> list[Path]:
    old = []
    for p in paths:
        try:
            if p.stat().st_mtime < cutoff:
                old.append(p)
        except FileNotFoundError:
            continue  # finished (or cleaned up) while we looked
    return old


@dataclass
class StoreReport:
    blobs: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    deep: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.unreferenced or self.leftovers)

    def lines(self) -> list[str]:
        hashed = ", every one hashed" if self.deep else " (--deep also hashes every blob)"
        out = [f"blobs: {self.blobs} stored{hashed}"]
        out += self.missing
        out += [f"blobs: {d} does not hash to its name (corrupt)" for d in self.corrupt]
        if self.unreferenced:
            out.append(
                f"blobs: {len(self.unreferenced)} blob(s) no live material needs "
                f"(deleted materials, or a crash between storing and recording); `fieldbook gc` frees them"
            )
        out += [
            f"files: {p} is left over from an interrupted write; `fieldbook gc` removes it"
            for p in self.leftovers
        ]
        return out


def check_store(
    engine: sa.Engine, store: BlobStore, settings: Settings, *, deep: bool, grace: timedelta
) -> StoreReport:
    report = StoreReport(deep=deep)
    cutoff = utcnow() - grace
    # Digests first, then the rows: a blob stored meanwhile is younger than the grace period anyway.
    stored = list(store.list())
    report.blobs = len(stored)
    with Session(engine) as session:
        live = live_blob_digests(session)
    report.unreferenced = [d for d, at in stored if d not in live and at < cutoff]
    report.missing = missing_blobs(engine, store)
    if deep:
        report.corrupt = _corrupt(store)
    report.leftovers = leftover_files(engine, settings, store, older_than=time.time() - grace.total_seconds())
    return report
