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

    # Phones at customer sites stay signed in for the length of a typical stint.
    session_ttl_hours: int = Field(default=24 * 30, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=15 * 60, ge=1)

    # JSON request bodies larger than this get 413; uploads have their own limits.
    max_body_bytes: int = Field(default=1_000_000, ge=1024)

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fieldbook.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
