"""Tables of the materials area (素材): materials, resumable uploads, materials an observation expects."""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.db import UTCDateTime, utcnow


def _utc(nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable)


def _big(nullable: bool = False) -> sa.Column[int]:
    return sa.Column(sa.BigInteger(), nullable=nullable)


class TextStatus(StrEnum):
    none = "none"  # nothing to extract (audio, or OCR not available)
    pending = "pending"
    done = "done"
    failed = "failed"


class Material(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_material_stint_created", "stint_id", "created_at"),)

    # Chosen by the client when it wants to (an offline phone links a photo before the bytes arrive).
    id: uuid.UUID = Field(primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", ondelete="CASCADE")
    # No foreign key: the observation may reach the server after its photo.
    observation_id: uuid.UUID | None = Field(default=None, index=True)
    uploaded_by: uuid.UUID = Field(foreign_key="user_account.id")
    sha256: str = Field(max_length=64, index=True)
    size: int = Field(sa_column=_big())
    content_type: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    # The client's file name, display only: never used as a path.
    filename: str = Field(max_length=255)
    caption: str | None = Field(default=None, max_length=2000)
    width: int | None = None
    height: int | None = None
    # As the camera wrote it (local time, with its offset when recorded): ISO 8601.
    taken_at: str | None = Field(default=None, max_length=40)
    camera_make: str | None = Field(default=None, max_length=100)
    camera_model: str | None = Field(default=None, max_length=100)
    orientation: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    thumb_sha256: str | None = Field(default=None, max_length=64)
    screen_sha256: str | None = Field(default=None, max_length=64)
    text_status: str = Field(default=TextStatus.none.value, max_length=16)
    text_source: str | None = Field(default=None, max_length=16)
    # Text from the document or OCR of the photo, for the search index.
    extracted_text: str | None = Field(default=None, sa_type=sa.Text)
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


# A tus Upload-Metadata header, kept as sent: the longest caption (2,000 characters, up to 8,000 of
# base64), the file name and the ids fit.
MAX_METADATA = 16_000


class Upload(SQLModel, table=True):
    """A tus resumable upload. Its committed offset is what has been fsynced to its partial file."""

    __tablename__ = "material_upload"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", index=True, ondelete="CASCADE")
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE")
    length: int = Field(sa_column=_big())
    committed_offset: int = Field(default=0, sa_column=_big())
    material_id: uuid.UUID
    observation_id: uuid.UUID | None = None
    filename: str = Field(max_length=255)
    caption: str | None = Field(default=None, max_length=2000)
    metadata_header: str = Field(max_length=MAX_METADATA)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())
    completed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # Why the finished bytes were refused (415, 413, 422...), answered on later requests as 410.
    error: str | None = Field(default=None, max_length=500)


class ExpectedMaterial(SQLModel, table=True):
    """A material an observation says it has (by the id the phone chose), arrived or not."""

    __tablename__ = "observation_material"

    observation_id: uuid.UUID = Field(foreign_key="observation.id", primary_key=True, ondelete="CASCADE")
    material_id: uuid.UUID = Field(primary_key=True, index=True)
    position: int = 0
