"""uploads: Upload-Metadata up to 16,000 characters

A caption of 2,000 Chinese characters is 8,000 characters of base64 by itself; with the file name and
ids a tus creation carrying the longest caption the API allows did not fit in 8,000.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlmodel

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("material_upload", schema=None) as batch_op:
        batch_op.alter_column(
            "metadata_header",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=8000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=16000),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("material_upload", schema=None) as batch_op:
        batch_op.alter_column(
            "metadata_header",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=16000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=8000),
            existing_nullable=False,
        )
