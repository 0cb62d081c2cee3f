"""The schema comes only from migrations, and they are complete and reversible on both databases."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import api.main  # noqa: F401  (every table registered)
from api import migrations
from api.db import make_engine


def _pending_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_matches_models_downgrade_and_upgrade_again(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        # The per-test database is already at head.
        assert _pending_diff(engine) == []
        assert _tables(engine) == {t.name for t in SQLModel.metadata.sorted_tables}

        migrations.downgrade(engine, "base")
        assert _tables(engine) == set()

        migrations.upgrade(engine, "head")
        assert _pending_diff(engine) == []
        assert _tables(engine) == {t.name for t in SQLModel.metadata.sorted_tables}
    finally:
        engine.dispose()


def test_sqlite_connections_are_durable_and_enforce_foreign_keys(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()
