"""The tus 1.0 protocol surface: versions, headers, error answers (no upload state here)."""

import base64
import binascii
import fcntl
import hashlib
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, BinaryIO

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from api.errors import AppError, BadRequest, ErrorResponse, Invalid, responses
from api.material_tables import MAX_METADATA

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration,checksum"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
OFFSET_TYPE = "application/offset+octet-stream"


class TusRoute(APIRoute):
    """Every tus answer, errors included, says which protocol version it speaks."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_version(request: Request) -> Response:
            try:
                response = await handler(request)
            except AppError as exc:
                exc.headers = {**(exc.headers or {}), "Tus-Resumable": TUS_VERSION}
                raise
            response.headers["Tus-Resumable"] = TUS_VERSION
            return response

        return with_version


class Locked(AppError):
    status_code = 423
    code = "upload_busy"
    message = "Another request is writing to this upload; retry in a moment."


class ChecksumMismatch(AppError):
    status_code = 460
    code = "checksum_mismatch"
    message = "The bytes sent do not match Upload-Checksum; nothing of this request was kept."


class WrongVersion(AppError):
    status_code = 412
    code = "tus_version"
    message = f"Send Tus-Resumable: {TUS_VERSION}."


def _tus_version(tus_resumable: Annotated[str | None, Header()] = None) -> None:
    if tus_resumable != TUS_VERSION:
        raise WrongVersion(headers={"Tus-Version": TUS_VERSION})


TusVersion = Depends(_tus_version)


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    extra = {
        412: "Missing or unsupported Tus-Resumable",
        415: "Wrong Content-Type, or the finished file's type is not accepted",
        423: "Another request is writing to this upload",
        460: "Checksum mismatch",
        507: "The server's disk is full",
    }
    plain = [c for c in codes if c not in extra]
    return {
        **responses(*plain),
        **{c: {"model": ErrorResponse, "description": extra[c]} for c in codes if c in extra},
    }


def parse_metadata(header: str) -> dict[str, str]:
    """``key base64,key base64``; values must be UTF-8."""
    if len(header) > MAX_METADATA:
        raise BadRequest("Upload-Metadata is too long.", code="bad_metadata")
    found: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        if not key or not key.isascii() or " " in value.strip():
            raise BadRequest("Upload-Metadata is malformed.", code="bad_metadata")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                f"Upload-Metadata {key}: not base64 of UTF-8 text.", code="bad_metadata"
            ) from None
    return found


def meta_uuid(meta: dict[str, str], key: str) -> uuid.UUID | None:
    raw = meta.get(key, "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid(f"Upload-Metadata {key}: not a valid UUID.", code="bad_metadata") from None


def lock(f: BinaryIO) -> None:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Locked() from None


def parse_checksum(header: str | None) -> tuple[Any, bytes] | None:
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    factory = CHECKSUMS.get(algorithm.lower())
    if factory is None:
        raise BadRequest(
            f"Unsupported checksum algorithm; use one of {', '.join(CHECKSUMS)}.", code="checksum_algorithm"
        )
    try:
        expected = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum is not base64.", code="bad_checksum") from None
    return factory(), expected
