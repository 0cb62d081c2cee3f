"""tus 1.0 resumable uploads at ``/api/uploads``: core, creation, termination, expiration, checksum.

The committed offset is what has been fsynced: a PATCH appends under an exclusive file lock, fsyncs
every few megabytes and records the offset; a resumed PATCH first truncates the partial file to the
recorded offset. A server killed mid-PATCH therefore neither duplicates nor loses bytes. The routes are
here; receiving the bytes and recording offsets is in ``api.tus_receive``."""

import os
import uuid
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Header, Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.access import stint_access
from api.auth import CurrentUser
from api.config import Settings
from api.db import SessionDep, utcnow
from api.errors import BadRequest, Conflict, Gone, Invalid, NotFound
from api.ingest import StoreDep, display_name, staging_dir
from api.material_tables import Upload
from api.material_upload import clean_caption
from api.middleware import header_number
from api.models import Role, User
from api.sniff import TooLarge, Unsupported, max_upload_bytes
from api.spool import Spool
from api.textextract import drain
from api.tus_protocol import (
    CHECKSUMS,
    EXTENSIONS,
    OFFSET_TYPE,
    TUS_VERSION,
    ChecksumMismatch,
    TusRoute,
    TusVersion,
    answers,
    lock,
    meta_uuid,
    parse_checksum,
    parse_metadata,
)
from api.tus_receive import (
    commit_offset,
    finish_upload,
    hash_prefix,
    receive_body,
    refuse_early,
)
from storage.local import fsync_dir

router = APIRouter(prefix="/api/uploads", tags=["uploads (tus)"], route_class=TusRoute)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _part_path(settings: Settings, upload_id: uuid.UUID) -> Path:
    return staging_dir(settings, "uploads") / f"{upload_id.hex}.part"


def _expires(upload: Upload) -> dict[str, str]:
    return {"Upload-Expires": format_datetime(upload.expires_at, usegmt=True)}


@router.options("", status_code=204, responses=answers())
def tus_options(request: Request) -> Response:
    """What this tus server supports."""
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(max_upload_bytes(_settings(request))),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        },
    )


@router.post(
    "", status_code=201, dependencies=[TusVersion], responses=answers(400, 401, 403, 404, 412, 413, 422)
)
def create_upload(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    upload_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str, Header()] = "",
) -> Response:
    """Start an upload. `Upload-Metadata` carries `stint_id`, `filename`, and optionally `id` (the
    material id chosen by the client), `observation_id`, `caption`. Answers `Location` and
    `Fieldbook-Material-Id`: once complete, `GET /api/materials/{id}` exists."""
    settings = _settings(request)
    length = header_number(upload_length)
    if length is None:
        raise BadRequest("Send Upload-Length (deferred lengths are not supported).", code="upload_length")
    limit = max_upload_bytes(settings)
    if length > limit:
        raise TooLarge(f"Files may be at most {limit // 2**20} MB.", details={"limit": limit})
    meta = parse_metadata(upload_metadata)
    stint_id = meta_uuid(meta, "stint_id")
    if stint_id is None:
        raise Invalid("Upload-Metadata needs stint_id.", code="bad_metadata")
    stint_access(session, stint_id, user).require(Role.researcher)
    caption = clean_caption(meta.get("caption", ""))
    now = utcnow()
    upload = Upload(
        stint_id=stint_id,
        user_id=user.id,
        length=length,
        material_id=meta_uuid(meta, "id") or uuid.uuid4(),
        observation_id=meta_uuid(meta, "observation_id"),
        filename=display_name(meta.get("filename") or meta.get("name")),
        caption=caption,
        metadata_header=upload_metadata,
        created_at=now,
        expires_at=now + timedelta(hours=settings.upload_expiry_hours),
    )
    part = _part_path(settings, upload.id)
    with open(part, "xb") as f:
        os.fsync(f.fileno())
    fsync_dir(part.parent)
    session.add(upload)
    session.commit()
    return Response(
        status_code=201,
        headers={
            "Location": f"/api/uploads/{upload.id}",
            "Fieldbook-Material-Id": str(upload.material_id),
            **_expires(upload),
        },
    )


def _load(
    session: Session, upload_id: uuid.UUID, user: User, settings: Settings, *, adding: bool = False
) -> Upload:
    """The caller's own upload, while they are a member of its stint. ``adding`` (a PATCH: its last
    byte makes a material): only while they may still add materials there, as when it was created.
    Abandoning one's own upload (DELETE) stays possible after a demotion: it only frees the bytes."""
    upload = session.get(Upload, upload_id)
    missing = NotFound("No such upload.", code="upload_not_found")
    if upload is None or upload.user_id != user.id:
        raise missing
    access = stint_access(session, upload.stint_id, user, missing=missing)
    if adding:
        access.require(Role.researcher)
    if upload.error is not None:
        raise Gone(upload.error, code="upload_refused")
    if upload.completed_at is None and upload.expires_at <= utcnow():
        _part_path(settings, upload.id).unlink(missing_ok=True)
        raise Gone("This upload expired; start a new one.", code="upload_expired")
    if upload.completed_at is None and not _part_path(settings, upload.id).exists():
        # A server killed while turning the finished file into a material (it is consumed then):
        # the client starts again with the same material id, which answers as a retry if it exists.
        raise Gone("The partial upload was removed; start a new one.", code="upload_expired")
    return upload


@router.head(
    "/{upload_id}", status_code=200, dependencies=[TusVersion], responses=answers(401, 404, 410, 412, 422)
)
def upload_status(upload_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """How many bytes the server holds durably (`Upload-Offset`): resume from there."""
    upload = _load(session, upload_id, user, _settings(request))
    offset = upload.length if upload.completed_at is not None else upload.committed_offset
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
        "Fieldbook-Material-Id": str(upload.material_id),
        **_expires(upload),
    }
    if upload.metadata_header:
        headers["Upload-Metadata"] = upload.metadata_header
    return Response(status_code=200, headers=headers)


@router.delete(
    "/{upload_id}",
    status_code=204,
    dependencies=[TusVersion],
    responses=answers(401, 404, 410, 412, 422, 423),
)
def terminate_upload(
    upload_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    """Abandon an upload and free its bytes (a finished upload's material stays)."""
    settings = _settings(request)
    upload = _load(session, upload_id, user, settings)
    part = _part_path(settings, upload.id)
    if part.exists():
        with open(part, "rb") as f:
            lock(f)
            part.unlink()
    session.delete(upload)
    session.commit()
    return Response(status_code=204)


def _start(engine: sa.Engine, upload_id: uuid.UUID, user: User, settings: Settings) -> Upload:
    with Session(engine, expire_on_commit=False) as session:
        return _load(session, upload_id, user, settings, adding=True)


@router.patch(
    "/{upload_id}",
    status_code=204,
    dependencies=[TusVersion],
    responses=answers(400, 401, 403, 404, 409, 410, 412, 413, 415, 422, 423, 460, 507),
)
async def append_to_upload(
    upload_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    background: BackgroundTasks,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
) -> Response:
    """Append bytes at `Upload-Offset` (which must equal the server's offset). With
    `Upload-Checksum`, the bytes are kept only if they match. The last byte turns the upload into
    a material: the answer is then 415/413/422 if its content is refused."""
    session.close()  # no database transaction (on SQLite: the write lock) held while bytes stream
    settings, engine = _settings(request), request.app.state.engine
    if content_type != OFFSET_TYPE:
        raise Unsupported(f"PATCH needs Content-Type: {OFFSET_TYPE}.", code="tus_content_type")
    offset = header_number(upload_offset)
    if offset is None:
        raise BadRequest("Send Upload-Offset.", code="upload_offset")
    checksum = parse_checksum(upload_checksum)
    upload = await run_in_threadpool(_start, engine, upload_id, user, settings)
    headers = {"Fieldbook-Material-Id": str(upload.material_id)}
    if upload.completed_at is not None:
        if offset == upload.length:
            return Response(status_code=204, headers={"Upload-Offset": str(upload.length), **headers})
        raise Conflict("This upload is already complete.", code="upload_complete")
    part = _part_path(settings, upload.id)
    try:
        f = open(part, "r+b")  # noqa: SIM115,ASYNC230 - closed below; opening is not a slow call
    except FileNotFoundError:
        raise Gone("The partial upload was removed; start a new one.", code="upload_expired") from None
    spool: Spool | None = None
    try:
        lock(f)
        upload = await run_in_threadpool(_start, engine, upload_id, user, settings)  # under the lock
        start = upload.committed_offset
        if offset != start:
            raise Conflict(
                f"Upload-Offset must be {start}, the bytes the server holds.",
                code="offset_mismatch",
                headers={"Upload-Offset": str(start)},
            )
        f.truncate(start)  # bytes written after the last fsync of a killed server are not trusted
        hashers: list[Any] = [checksum[0]] if checksum else []
        whole = None
        if header_number(content_length) == upload.length - start:
            whole = await run_in_threadpool(hash_prefix, f, start)  # this PATCH should finish the file
            hashers.append(whole)
        f.seek(start)
        spool = Spool(f, hashers)
        try:
            got = await receive_body(
                request, spool, upload, start, checkpoints=checksum is None, settings=settings
            )
        except TooLarge as exc:
            await run_in_threadpool(refuse_early, engine, upload, part, exc)
            raise
        await run_in_threadpool(spool.sync)  # every byte hashed and on disk before any verdict
        if checksum is not None and (got.disconnected or checksum[0].digest() != checksum[1]):
            f.truncate(start)
            await run_in_threadpool(commit_offset, engine, upload.id, spool, start, settings)
            if got.disconnected:
                return Response(status_code=400)  # nobody is listening
            raise ChecksumMismatch()
        if got.overflow:
            f.truncate(start)  # refused whole, as a failed checksum is
            await run_in_threadpool(commit_offset, engine, upload.id, spool, start, settings)
            raise BadRequest(
                "More bytes than Upload-Length were sent; nothing of this request was kept.",
                code="upload_overflow",
                headers={"Upload-Offset": str(start)},
            )
        headers["Upload-Offset"] = str(got.written)
        if got.written < upload.length:
            await run_in_threadpool(commit_offset, engine, upload.id, spool, got.written, settings)
            return Response(status_code=204, headers={**headers, **_expires(upload)})
        # Every byte is on disk, but the full offset is recorded only with the material (``close_upload``):
        # a server killed in between must not answer HEAD with Upload-Offset = Upload-Length, which
        # tells a client the upload is done (ours stops there) when no material was made.
        digest = whole.hexdigest() if whole is not None else None
        text_status = await run_in_threadpool(finish_upload, engine, settings, store, upload, part, digest)
    finally:
        if spool is not None:
            await run_in_threadpool(spool.close)
        f.close()
    if text_status == "pending":
        background.add_task(drain, engine, store)
    return Response(status_code=204, headers=headers)
