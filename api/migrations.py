"""Running Alembic from Fieldbook itself (``fieldbook migrate``, ``serve``, tests)."""

import os
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from alembic import command

_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The migrations directory is ``alembic/`` beside the package (source tree or /app in Docker),
    or FIELDBOOK_MIGRATIONS_DIR."""
    location = Path(os.environ.get("FIELDBOOK_MIGRATIONS_DIR", _ROOT / "alembic"))
    if not (location / "env.py").is_file():
        raise RuntimeError(f"no Alembic migrations at {location}; set FIELDBOOK_MIGRATIONS_DIR")
    config = Config()
    config.set_main_option("script_location", str(location))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: sa.Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def is_current(engine: sa.Engine) -> bool:
    """Is the database at this code's newest schema (not empty, not older, not newer)?"""
    with engine.connect() as connection:
        have = set(MigrationContext.configure(connection).get_current_heads())
    return have == set(ScriptDirectory.from_config(alembic_config()).get_heads())
