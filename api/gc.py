"""``fieldbook gc``: free blobs no live material needs, and partial uploads that expired.

A blob stored or re-used within the grace period is kept even if no row names it yet: an upload
in flight has put its bytes but not yet committed its row."""

import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from api.config import Settings
from api.db import utcnow
from api.material_tables import Upload
from api.materials import live_blob_digests
from api.store_check import leftover_files
from storage import BlobStore


@dataclass
class GcReport:
    blobs_removed: int = 0
    blobs_kept: int = 0
    uploads_removed: int = 0
    stray_files_removed: int = 0


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
        # Read after the uploads: a row committed from here on has a blob younger than the grace.
        live = live_blob_digests(session)
    for path in leftover_files(engine, settings, store, older_than=time.time() - grace.total_seconds()):
        with suppress(FileNotFoundError):  # finished (renamed into place) meanwhile
            path.unlink()
            report.stray_files_removed += 1
    for digest, stored_at in list(store.list()):
        if digest in live or stored_at > now - grace:
            report.blobs_kept += 1
            continue
        store.delete(digest)
        report.blobs_removed += 1
    return report
