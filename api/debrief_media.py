"""Where the debrief meets materials (素材): which materials a stint has, what an insight shows of
them, and their previews, which the materials area re-encodes without any metadata (EXIF, GPS, XMP)."""

import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from api.material_tables import Material
from storage import BlobNotFound, BlobStore

PREVIEW_TYPE = "image/jpeg"


@dataclass(frozen=True)
class MaterialInfo:
    id: uuid.UUID
    stint_id: uuid.UUID
    caption: str | None
    content_type: str
    preview_sha256: str | None

    @property
    def has_preview(self) -> bool:
        return self.preview_sha256 is not None


def stint_material_ids(session: Session, stint_id: uuid.UUID, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``ids`` that are live materials of the stint."""
    if not ids:
        return set()
    return set(
        session.exec(
            select(Material.id).where(
                col(Material.id).in_(ids),
                col(Material.stint_id) == stint_id,
                col(Material.deleted_at).is_(None),
            )
        ).all()
    )


def material_previews(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, MaterialInfo]:
    """What the debrief shows of each live material: caption, type and its metadata-free preview."""
    if not ids:
        return {}
    rows = session.exec(
        select(Material).where(col(Material.id).in_(ids), col(Material.deleted_at).is_(None))
    ).all()
    return {
        m.id: MaterialInfo(
            id=m.id,
            stint_id=m.stint_id,
            caption=m.caption,
            content_type=m.content_type,
            preview_sha256=m.screen_sha256,
        )
        for m in rows
    }


def preview_bytes(store: BlobStore, info: MaterialInfo) -> bytes | None:
    """The screen-size JPEG preview (never the original), or None when there is none."""
    if info.preview_sha256 is None:
        return None
    try:
        return b"".join(store.read(info.preview_sha256))
    except BlobNotFound:
        return None
