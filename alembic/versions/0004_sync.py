"""sync: change log (commit-ordered feed), Idempotency-Keys, applied op ids

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_change",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("entity_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("stint_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sync_change")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("sync_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_change_changed_at"), ["changed_at"], unique=False)
        batch_op.create_index("ix_sync_change_entity", ["type", "entity_id"], unique=False)
        batch_op.create_index("ix_sync_change_stint_seq", ["stint_id", "seq"], unique=False)
        batch_op.create_index("ix_sync_change_user_seq", ["user_id", "seq"], unique=False)

    sync_state = op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
    )
    op.bulk_insert(sync_state, [{"id": 1, "horizon": 0}])

    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_idempotency_key_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_key_created_at"), ["created_at"], unique=False)

    op.create_table(
        "sync_op",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("op_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("op_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_sync_op_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "op_id", name=op.f("pk_sync_op")),
    )
    with op.batch_alter_table("sync_op", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_op_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_op", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_op_created_at"))

    op.drop_table("sync_op")
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_key_created_at"))

    op.drop_table("idempotency_key")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_change", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_change_user_seq")
        batch_op.drop_index("ix_sync_change_stint_seq")
        batch_op.drop_index("ix_sync_change_entity")
        batch_op.drop_index(batch_op.f("ix_sync_change_changed_at"))

    op.drop_table("sync_change")
