"""``fieldbook gc``: free blobs no live material needs, and partial uploads that expired.

A blob stored or re-used within the grace period is kept even if no row names it yet: an upload
in flight has put its bytes but not yet committed its row."""

import time
from contextlib import suppress
from dataclasses import dataclass
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


@dataclass
class GcReport:
    blobs_removed: int = 0
    blobs_kept: int = 0
    uploads_removed: int = 0
    stray_files_removed: int = 0


def _old_files(directory: Path, older_than: float) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.is_file() and p.stat().st_mtime < older_than]


def collect(engine: sa.Engine, store: BlobStore, settings: Settings, grace: timedelta) -> GcReport:
    report = GcReport()
    now = utcnow()
    with Session(engine) as session:
        expired = session.exec(
            select(Upload).where(col(Upload.completed_at).is_(None), col(Upload.expires_at) <= now)
        ).all()
        for upload in expired:
            (settings.data_dir / "uploads" / f"{upload.id.hex}.part").unlink(missing_ok=True)
            session.delete(upload)
            report.uploads_removed += 1
        finished = session.exec(
            select(Upload).where(
                col(Upload.completed_at).is_not(None), col(Upload.completed_at) <= now - grace
            )
        ).all()
        for upload in finished:
            session.delete(upload)
        session.commit()
        live_parts = {f"{u.hex}.part" for u in session.exec(select(Upload.id)).all()}
        # Read after the uploads: a row committed from here on has a blob younger than the grace.
        live = live_blob_digests(session)
    cutoff = time.time() - grace.total_seconds()
    for path in _old_files(settings.data_dir / "uploads", cutoff):
        if path.name not in live_parts:
            path.unlink(missing_ok=True)
            report.stray_files_removed += 1
    for path in _old_files(settings.data_dir / "staging", cutoff):
        path.unlink(missing_ok=True)
        report.stray_files_removed += 1
    if isinstance(store, LocalBlobStore):  # a blob write a killed worker left half done
        for path in store.temp_files():
            with suppress(FileNotFoundError):  # renamed into place meanwhile
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    report.stray_files_removed += 1
    for digest, stored_at in list(store.list()):
        if digest in live or stored_at > now - grace:
            report.blobs_kept += 1
            continue
        store.delete(digest)
        report.blobs_removed += 1
    return report


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
