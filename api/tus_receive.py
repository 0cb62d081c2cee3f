"""A tus PATCH's bytes to disk, and the upload row's offset and end.

The committed offset is only ever recorded once those bytes are fsynced; the full length is recorded
only together with the material the upload became (``close_upload``)."""

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from fastapi import Request
from sqlmodel import Session, col
from starlette.requests import ClientDisconnect

from api.config import Settings
from api.db import utcnow
from api.errors import AppError
from api.ingest import MaterialRequest, Staged, ingest, sha256_of
from api.material_tables import Upload
from api.sniff import TooLarge, looks_like_image
from api.spool import Spool

# fsync and record the offset every 8 MB, but at most once a second: on a phone's network that is
# every 8 MB; on a fast network the fsyncs do not throttle the upload (a crash re-sends ~1 s of data).
CHECKPOINT = 8 * 2**20
CHECKPOINT_SECONDS = 1.0


def finish_upload(
    engine: sa.Engine, settings: Settings, store: Any, upload: Upload, part: Path, digest: str | None
) -> str:
    """The last byte arrived: the partial file becomes a material (or the upload is refused)."""
    staged = Staged(path=part, size=upload.length, sha256=digest or sha256_of(part))
    req = MaterialRequest(
        stint_id=upload.stint_id,
        user_id=upload.user_id,
        material_id=upload.material_id,
        observation_id=upload.observation_id,
        caption=upload.caption,
        filename=upload.filename,
    )
    try:
        material, _ = ingest(engine, settings, store, staged, req)
    except AppError as exc:
        close_upload(engine, upload, exc)
        raise
    close_upload(engine, upload, None)
    return material.text_status


def close_upload(engine: sa.Engine, upload: Upload, error: AppError | None) -> None:
    """The upload is over: done, or refused for good (later requests answer 410 with the reason)."""
    with Session(engine) as session:
        session.execute(
            sa.update(Upload)
            .where(col(Upload.id) == upload.id)
            .values(
                completed_at=utcnow(),
                committed_offset=upload.length if error is None else upload.committed_offset,
                error=None if error is None else error.message[:500],
            )
        )
        session.commit()


def refuse_early(engine: sa.Engine, upload: Upload, part: Path, exc: AppError) -> None:
    part.unlink(missing_ok=True)
    close_upload(engine, upload, exc)


def hash_prefix(f: BinaryIO, size: int) -> Any:
    """SHA-256 of the first ``size`` bytes, so a PATCH that completes the file hashes only its own bytes."""
    digest = hashlib.sha256()
    f.seek(0)
    left = size
    while left > 0 and (chunk := f.read(min(left, 2**20))):
        digest.update(chunk)
        left -= len(chunk)
    f.seek(size)
    return digest


def commit_offset(
    engine: sa.Engine, upload_id: uuid.UUID, spool: Spool, offset: int, settings: Settings
) -> None:
    """fsync the bytes, then record them as committed (never the other way round)."""
    spool.sync()
    record_offset(engine, upload_id, offset, settings)


def record_offset(engine: sa.Engine, upload_id: uuid.UUID, offset: int, settings: Settings) -> None:
    """Record ``offset`` as committed: only ever called once those bytes are fsynced."""
    with Session(engine) as session:
        session.execute(
            sa.update(Upload)
            .where(col(Upload.id) == upload_id)
            .values(
                committed_offset=offset, expires_at=utcnow() + timedelta(hours=settings.upload_expiry_hours)
            )
        )
        session.commit()


@dataclass
class Received:
    written: int
    overflow: bool = False
    disconnected: bool = False


async def receive_body(
    request: Request, spool: Spool, upload: Upload, start: int, checkpoints: bool, settings: Settings
) -> Received:
    """Append the body through the spool; without a checksum to verify, commit every CHECKPOINT bytes."""
    engine = request.app.state.engine
    got, committed, last = Received(written=start), start, time.monotonic()
    try:
        async for chunk in request.stream():
            if got.written == 0 and looks_like_image(chunk) and upload.length > settings.max_image_bytes:
                # A photo over the image limit: say so now, not after the phone sent it all.
                raise TooLarge(
                    f"Image files may be at most {settings.max_image_bytes // 2**20} MB.",
                    details={"limit": settings.max_image_bytes, "size": upload.length},
                )
            room = upload.length - got.written
            if len(chunk) > room:
                chunk, got.overflow = chunk[:room], True
            spool.put(chunk)
            got.written += len(chunk)
            await spool.relieve()
            now = time.monotonic()
            if (
                checkpoints
                and got.written - committed >= CHECKPOINT
                and now - last >= CHECKPOINT_SECONDS
                and got.written < upload.length  # the full length is recorded with the material only
            ):
                spool.checkpoint(partial(record_offset, engine, upload.id, got.written, settings))
                committed, last = got.written, now
            if got.overflow:
                break
    except ClientDisconnect:
        got.disconnected = True
    return got
