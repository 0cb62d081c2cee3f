"""materials: uploaded photos and artefacts, tus uploads, materials an observation expects

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('material',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('observation_id', sa.Uuid(), nullable=True),
    sa.Column('uploaded_by', sa.Uuid(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('caption', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('taken_at', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('camera_make', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('camera_model', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('orientation', sa.Integer(), nullable=True),
    sa.Column('gps_lat', sa.Float(), nullable=True),
    sa.Column('gps_lon', sa.Float(), nullable=True),
    sa.Column('thumb_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('screen_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('text_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text_source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('extracted_text', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_material_stint_id_stint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user_account.id'], name=op.f('fk_material_uploaded_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_material'))
    )
    with op.batch_alter_table('material', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_material_observation_id'), ['observation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_material_sha256'), ['sha256'], unique=False)
        batch_op.create_index('ix_material_stint_created', ['stint_id', 'created_at'], unique=False)

    op.create_table('material_upload',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('committed_offset', sa.BigInteger(), nullable=False),
    sa.Column('material_id', sa.Uuid(), nullable=False),
    sa.Column('observation_id', sa.Uuid(), nullable=True),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('caption', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('metadata_header', sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_material_upload_stint_id_stint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_material_upload_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_material_upload'))
    )
    with op.batch_alter_table('material_upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_material_upload_stint_id'), ['stint_id'], unique=False)

    op.create_table('observation_material',
    sa.Column('observation_id', sa.Uuid(), nullable=False),
    sa.Column('material_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['observation_id'], ['observation.id'], name=op.f('fk_observation_material_observation_id_observation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('observation_id', 'material_id', name=op.f('pk_observation_material'))
    )
    with op.batch_alter_table('observation_material', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observation_material_material_id'), ['material_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('observation_material', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observation_material_material_id'))

    op.drop_table('observation_material')
    with op.batch_alter_table('material_upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_material_upload_stint_id'))

    op.drop_table('material_upload')
    with op.batch_alter_table('material', schema=None) as batch_op:
        batch_op.drop_index('ix_material_stint_created')
        batch_op.drop_index(batch_op.f('ix_material_sha256'))
        batch_op.drop_index(batch_op.f('ix_material_observation_id'))

    op.drop_table('material')
