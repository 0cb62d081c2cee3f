"""Blobs as files under one root: ``<root>/ab/cd/abcd...``, written temp → fsync → rename → dir fsync.

A process killed mid-write leaves at most a temp file (``.<digest>.<pid>-<thread>.tmp``), never a partial blob
under a digest's name: ``temp_files`` finds such leftovers for ``fieldbook check``, ``gc`` and the
clean-up at ``fieldbook serve`` start."""

import errno
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage import BlobNotFound, check_digest

CHUNK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        path = (self.root / digest[:2] / digest[2:4] / digest).resolve()
        if not path.is_relative_to(self.root):  # cannot happen with a hex name; kept as a guard
            raise ValueError("blob path escapes the store root")
        return path

    def put_file(self, path: Path, digest: str) -> None:
        target = self._path(digest)
        if target.exists():
            os.utime(target)  # recently used: gc's grace period protects it
            path.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # One temp name per thread: two uploads of one photo store the same previews at once.
        tmp = target.with_name(f".{digest}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            os.rename(path, tmp)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copyfile(path, tmp)  # another file system: copy, then the original goes
            path.unlink()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
        fsync_dir(target.parent)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self._path(digest), "rb")  # noqa: SIM115 - closed by the generator below
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        return self._chunks(f, start, end)

    @staticmethod
    def _chunks(f: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
        with f:
            f.seek(start)
            left = None if end is None else end - start
            while left is None or left > 0:
                chunk = f.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def delete(self, digest: str) -> None:
        path = self._path(digest)
        path.unlink(missing_ok=True)
        if path.parent.exists():
            fsync_dir(path.parent)

    def probe(self) -> None:
        # Beside the ab/cd/ fan-out, so list() never sees it (one a killed process left is a temp
        # file); one name per thread, so concurrent probes of the workers do not remove each other's.
        path = self.root / f".probe-{os.getpid()}-{threading.get_ident()}"
        path.write_bytes(b"ok")
        path.unlink()

    def temp_files(self) -> list[Path]:
        """Temp files of ``put_file`` and ``probe`` calls, in flight or left by a killed process."""
        found = [*self.root.glob("??/??/.*.tmp"), *self.root.glob(".probe-*")]
        return [p for p in found if p.is_file()]

    def list(self) -> Iterator[tuple[str, datetime]]:
        for path in self.root.glob("??/??/*"):
            name = path.name
            if name.startswith(".") or len(name) != 64:
                continue
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            yield name, datetime.fromtimestamp(mtime, UTC)
