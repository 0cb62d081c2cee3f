"""From received bytes to a material: staging files on disk, then sniff → previews → blob store → row.

Both ways in (multipart and tus) stream into a staging file under the data directory and hand it to
``ingest``, which consumes it whatever happens: it either becomes a blob or is deleted."""

import hashlib
import os
import tempfile
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlmodel import Session, col

from api.changelog import ChangeType, record_change
from api.config import Settings
from api.db import utcnow
from api.errors import Conflict, Gone, Invalid
from api.images import process_image
from api.material_tables import Material, TextStatus
from api.models import Observation
from api.search_docs import record_index_task
from api.sniff import Kind, TooLarge, sniff
from api.spool import Spool
from api.textextract import initial_status
from storage import BlobStore, make_store
from storage.local import fsync_dir

_store_lock = threading.Lock()
HASH_CHUNK = 1024 * 1024


def blob_store(request: Request) -> BlobStore:
    """The app's blob store, made on first use from ``FIELDBOOK_STORAGE_URL``."""
    app = request.app
    with _store_lock:
        store: BlobStore | None = getattr(app.state, "blob_store", None)
        if store is None:
            settings: Settings = app.state.settings
            store = make_store(settings.storage_url, settings.data_dir)
            app.state.blob_store = store
    return store


StoreDep = Annotated[BlobStore, Depends(blob_store)]


def staging_dir(settings: Settings, name: str = "staging") -> Path:
    path = settings.data_dir / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def display_name(raw: str | None) -> str:
    """A client's file name, kept as display text only (never a path). Names that try to be paths
    (separators, ``..``) or carry control characters are refused: no real device sends them."""
    name = unicodedata.normalize("NFC", raw or "").strip()
    if "/" in name or "\\" in name or name in (".", "..") or len(name) > 255:
        raise Invalid("The file name must be a plain name, not a path.", code="invalid_filename")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise Invalid("The file name contains control characters.", code="invalid_filename")
    return name or "material"


def fsync_file(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Staged:
    path: Path
    size: int
    sha256: str


class StagingFile:
    """Bytes streamed to a private file in the data directory, hashed on the way, size-limited.
    Writing and hashing happen on a ``Spool`` thread; ``finish`` and ``abort`` block (use a thread)."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self.spool = Spool(self._file, [self._hash])

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"Files may be at most {self.limit // 2**20} MB.", details={"limit": self.limit})
        self.spool.put(data)

    def finish(self) -> Staged:
        """Durable on disk (fsync) and closed."""
        try:
            self.spool.sync()
        finally:
            self.spool.close()
            self._file.close()
        return Staged(path=self.path, size=self.size, sha256=self._hash.hexdigest())

    def abort(self) -> None:
        self.spool.close()
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass
class MaterialRequest:
    stint_id: uuid.UUID
    user_id: uuid.UUID
    material_id: uuid.UUID | None = None
    observation_id: uuid.UUID | None = None
    caption: str | None = None
    filename: str = "material"


def _put_bytes(store: BlobStore, directory: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    fd, name = tempfile.mkstemp(dir=directory, prefix="preview-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        fsync_file(f)  # type: ignore[arg-type]
    store.put_file(Path(name), digest)
    return digest


def _existing(session: Session, req: MaterialRequest, staged: Staged) -> Material | None:
    """A retry of a create is answered with what it created; an id reused for other bytes is 409."""
    if req.material_id is None:
        return None
    found = session.get(Material, req.material_id)
    if found is None:
        return None
    if found.stint_id != req.stint_id or found.sha256 != staged.sha256:
        raise Conflict("A material with this id already exists with other content.", code="material_id_taken")
    if found.deleted_at is not None:
        raise Gone("This material was deleted.", code="material_deleted")
    return found


def _check_observation(session: Session, req: MaterialRequest) -> None:
    if req.observation_id is None:
        return
    obs = session.get(Observation, req.observation_id)
    # An observation not yet synced is fine (offline phones); one in another stint is not.
    if obs is not None and obs.stint_id != req.stint_id:
        raise Invalid("The observation belongs to another stint.", code="unknown_observation")


def ingest(
    engine: sa.Engine, settings: Settings, store: BlobStore, staged: Staged, req: MaterialRequest
) -> tuple[Material, bool]:
    """Turn a staged file into a material (consuming the file); ``(material, created)``."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            existing = _existing(session, req, staged)
            if existing is not None:
                return existing, False
            _check_observation(session, req)
        found = sniff(staged.path, staged.size, req.filename, settings)
        fields: dict[str, Any] = {}
        if found.kind is Kind.image:
            info = process_image(staged.path, found.content_type, settings.max_image_pixels)
            directory = staged.path.parent
            fields = {
                "width": info.width,
                "height": info.height,
                "taken_at": info.taken_at,
                "camera_make": info.camera_make,
                "camera_model": info.camera_model,
                "orientation": info.orientation,
                "gps_lat": info.gps_lat,
                "gps_lon": info.gps_lon,
                "thumb_sha256": _put_bytes(store, directory, info.previews["thumb"]),
                "screen_sha256": _put_bytes(store, directory, info.previews["screen"]),
            }
        store.put_file(staged.path, staged.sha256)
        material = Material(
            id=req.material_id or uuid.uuid4(),
            stint_id=req.stint_id,
            observation_id=req.observation_id,
            uploaded_by=req.user_id,
            sha256=staged.sha256,
            size=staged.size,
            content_type=found.content_type,
            kind=found.kind.value,
            filename=req.filename,
            caption=req.caption,
            text_status=initial_status(found.content_type, settings).value,
            **fields,
        )
        with Session(engine, expire_on_commit=False) as session:
            session.add(material)
            log_material(session, material)
            try:
                session.commit()
            except sa.exc.IntegrityError:
                session.rollback()  # the same id committed concurrently: answer as a retry
                existing = _existing(session, req, staged)
                if existing is None:
                    raise
                return existing, False
        return material, True
    finally:
        staged.path.unlink(missing_ok=True)


def log_material(session: Session, material: Material) -> None:
    """Tell the sync feed and the search index that a material was created, changed or deleted
    (in the caller's transaction)."""
    record_change(
        session,
        ChangeType.material,
        material.id,
        stint_id=material.stint_id,
        version=material.version,
        deleted=material.deleted_at is not None,
    )
    record_index_task(session, "material", material.id)


def write_material(session: Session, material: Material, values: dict[str, Any]) -> bool:
    """Write ``values`` and the next version, only if no one else wrote since ``material`` was read
    (two concurrent edits cannot both win); False, with nothing written, if someone did. The one
    write path for metadata changes and deletes, REST and sync alike."""
    written = session.execute(
        sa.update(Material)
        .where(col(Material.id) == material.id, col(Material.version) == material.version)
        .values(**values, version=material.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(material)
    log_material(session, material)
    return True


def tombstone(session: Session, material: Material) -> bool:
    """Delete a material (its row stays as a tombstone); False if someone else wrote it meanwhile."""
    values = {
        "deleted_at": utcnow(),
        "extracted_text": None,
        # A deleted material's text is not extracted any more.
        "text_status": TextStatus.none.value,
    }
    return write_material(session, material, values)


def fsync_parent(path: Path) -> None:
    fsync_dir(path.parent)
