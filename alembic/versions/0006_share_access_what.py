"""share access: what was opened (the debrief or one photo, with the photo's material id)

Photos served through a share link are logged like debrief views. Rows from before this revision
were all debrief views (the page or its JSON): the server default labels them so.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("share_access", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                server_default="debrief",
                nullable=False,
            )
        )
        # No foreign key, like insight_evidence.material_id: materials are tombstoned, never deleted.
        batch_op.add_column(sa.Column("material_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("share_access", schema=None) as batch_op:
        batch_op.drop_column("material_id")
        batch_op.drop_column("kind")
