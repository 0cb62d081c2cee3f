"""Settings, read from ``FIELDBOOK_*`` environment variables."""

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDBOOK_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite file in the data directory"
    )
    storage_url: str | None = Field(
        default=None,
        description="file:///path or s3://bucket/prefix; default local files in the data directory",
    )

    # One JSON line per log record on stderr (set by `fieldbook serve`); plain logging otherwise.
    log_json: bool = False

    # Each app process keeps the search index up to date with a thread of its own; `fieldbook serve`
    # runs one indexer for all of its workers instead and sets this false for them.
    indexer_thread: bool = True

    # The PWA's files; default: frontend/ beside the package (the source tree; /app/frontend in Docker).
    frontend_dir: Path | None = None

    # Phones at customer sites stay signed in for the length of a typical stint.
    session_ttl_hours: int = Field(default=24 * 30, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=15 * 60, ge=1)

    # JSON request bodies larger than this get 413; uploads have their own limits.
    max_body_bytes: int = Field(default=1_000_000, ge=1024)

    # Materials (uploads): size limits per kind (413 above them), decoded-pixel limit (422 above it),
    # how long an unfinished resumable upload is kept, OCR of photos when tesseract is installed.
    max_image_bytes: int = Field(default=64 * 2**20, ge=1)
    max_document_bytes: int = Field(default=200 * 2**20, ge=1)
    max_text_bytes: int = Field(default=20 * 2**20, ge=1)
    max_audio_bytes: int = Field(default=1024 * 2**20, ge=1)
    max_image_pixels: int = Field(default=60_000_000, ge=1)
    upload_expiry_hours: int = Field(default=24 * 7, ge=1)
    ocr: bool = True

    # Public share-link endpoints: requests per client address per minute (429 with Retry-After above).
    share_rate_limit_per_minute: int = Field(default=60, ge=1)

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fieldbook.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
