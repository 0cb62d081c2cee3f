"""Blobs as objects in an S3-compatible bucket: ``<prefix>/ab/cd/abcd...``."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from storage import BlobNotFound, check_digest

CHUNK = 1024 * 1024
# Multipart above 16 MB, two threads: memory stays flat whatever the blob size.
_TRANSFER = TransferConfig(multipart_threshold=16 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=2)


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        if not bucket:
            raise ValueError("s3:// storage URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.prefix}{digest[:2]}/{digest[2:4]}/{digest}"

    def put_file(self, path: Path, digest: str) -> None:
        key = self._key(digest)
        if self.exists(digest):
            # Refresh LastModified so a concurrent gc's grace period protects the blob.
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
            )
        else:
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                Config=_TRANSFER,
            )
        path.unlink(missing_ok=True)

    def exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def size(self, digest: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(digest) from None
            raise
        return int(head["ContentLength"])

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(digest)}
        if start or end is not None:
            if end is not None and end <= start:
                return iter(())
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(digest) from None
            raise
        return self._chunks(body)

    @staticmethod
    def _chunks(body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete(self, digest: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(digest))

    def probe(self) -> None:
        # A fixed key: a probe interrupted between the two calls leaves one small object, not one per
        # call; its name is not 64 characters, so list() skips it.
        key = f"{self.prefix}readyz-probe"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def list(self) -> Iterator[tuple[str, datetime]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                name = str(obj["Key"]).rsplit("/", 1)[-1]
                if len(name) == 64:
                    yield name, obj["LastModified"]
