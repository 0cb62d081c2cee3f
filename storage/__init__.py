"""Blob storage: immutable bytes named by their SHA-256. Knows paths and buckets, nothing of the domain.

``make_store(url, data_dir)`` picks a backend from ``FIELDBOOK_STORAGE_URL``:
``file:///abs/path`` (or nothing: ``<data_dir>/blobs``) for local files, ``s3://bucket/prefix`` for
S3-compatible object storage (``?endpoint_url=...&region=...`` for servers other than AWS).
"""

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobNotFound(Exception):
    pass


def check_digest(digest: str) -> str:
    """A blob name is a lowercase hex SHA-256 and nothing else, so it can never name a path."""
    if not _SHA256.fullmatch(digest):
        raise ValueError("a blob is named by a lowercase hex SHA-256")
    return digest


class BlobStore(Protocol):
    def put_file(self, path: Path, digest: str) -> None:
        """Take ``path`` (complete, its SHA-256 already checked to be ``digest``) into the store; the
        file is consumed. Storing bytes that are already there only marks them as recently used."""

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int: ...

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` up to and excluding ``end`` (default: to the end), in chunks."""

    def delete(self, digest: str) -> None: ...

    def list(self) -> Iterator[tuple[str, datetime]]:
        """Every stored digest with the time it was last stored or marked as used."""

    def probe(self) -> None:
        """Write and remove a few bytes that are no blob (``/readyz``); raises when the store cannot
        take a write. Never shows up in ``list``."""


def make_store(url: str | None, data_dir: Path) -> BlobStore:
    if not url:
        from storage.local import LocalBlobStore

        return LocalBlobStore(data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file":
        from storage.local import LocalBlobStore

        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from storage.s3 import S3BlobStore

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return S3BlobStore(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=query.get("endpoint_url"),
            region=query.get("region"),
        )
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r}: use file:// or s3://")
