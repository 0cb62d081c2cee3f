"""Sending stored bytes: ETag and If-None-Match, single byte ranges (RFC 9110), RFC 6266 file names."""

import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from api.errors import AppError
from api.middleware import decimal
from storage import BlobNotFound, BlobStore

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")  # bounds of any length: see middleware.decimal


class RangeNotSatisfiable(AppError):
    status_code = 416
    code = "range_not_satisfiable"
    message = "The requested range is outside the file."


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._ ()\-]", "_", text).strip(" ._")


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded`` (RFC 6266/8187)."""
    stem, dot, ext = filename.rpartition(".") if "." in filename else (filename, "", "")
    ascii_ext = _ascii(ext)
    ascii_name = (_ascii(stem) or "material") + (f".{ascii_ext}" if dot and ascii_ext else "")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range asked for as [start, end), None for the whole file; several ranges → whole file."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # unknown units or a list of ranges: answer with the whole representation
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = decimal(last)
        if length == 0:
            raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        return max(0, size - length), size
    start = decimal(first)
    end = min(decimal(last) + 1, size) if last else size
    if start >= size or (last and decimal(last) < start):
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def _stream(store: BlobStore, digest: str, start: int, end: int) -> Iterator[bytes]:
    try:
        yield from store.read(digest, start, end)
    except BlobNotFound:
        return


def send_blob(
    request: Request,
    store: BlobStore,
    digest: str,
    size: int,
    media_type: str,
    disposition: str,
    *,
    cache: str = "private, max-age=0, must-revalidate",
) -> Response:
    etag = f'"{digest}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": disposition,
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
    }
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    wanted = _range(request.headers.get("range"), size)
    if_range = request.headers.get("if-range")
    if wanted is not None and if_range is not None and if_range.strip() != etag:
        wanted = None  # the client's copy is another version: send the whole file
    if wanted is None:
        start, end, status = 0, size, 200
    else:
        (start, end), status = wanted, 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    if not store.exists(digest):
        raise RuntimeError(f"blob {digest} is missing from the store")  # `fieldbook check` reports it
    return StreamingResponse(
        _stream(store, digest, start, end), status_code=status, headers=headers, media_type=media_type
    )
