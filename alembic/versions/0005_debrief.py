"""debrief: themes, insights and evidence, action plan and history, share links

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('public_throttle',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('window_started_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_public_throttle'))
    )
    op.create_index(op.f('ix_public_throttle_window_started_at'), 'public_throttle', ['window_started_at'], unique=False)
    op.create_table('action',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('impact', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('effort', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('progress_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('create_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_action_created_by_user_account')),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], name=op.f('fk_action_owner_id_user_account')),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_action_stint_id_stint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action'))
    )
    op.create_index('ix_action_owner_status', 'action', ['owner_id', 'status'], unique=False)
    op.create_index(op.f('ix_action_stint_id'), 'action', ['stint_id'], unique=False)
    op.create_table('share_link',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('include_photos', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('access_count', sa.Integer(), nullable=False),
    sa.Column('last_accessed_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ip_salt', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_share_link_created_by_user_account')),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_share_link_stint_id_stint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_link')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_share_link_token_hash'))
    )
    op.create_index(op.f('ix_share_link_stint_id'), 'share_link', ['stint_id'], unique=False)
    op.create_table('theme',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_theme_stint_id_stint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_theme'))
    )
    op.create_index(op.f('ix_theme_stint_id'), 'theme', ['stint_id'], unique=False)
    op.create_table('action_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('action_id', sa.Uuid(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['action_id'], ['action.id'], name=op.f('fk_action_event_action_id_action'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_action_event_actor_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_event'))
    )
    op.create_index(op.f('ix_action_event_action_id'), 'action_event', ['action_id'], unique=False)
    op.create_table('insight',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('theme_id', sa.Uuid(), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('create_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_insight_created_by_user_account')),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_insight_stint_id_stint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['theme_id'], ['theme.id'], name=op.f('fk_insight_theme_id_theme'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insight'))
    )
    op.create_index(op.f('ix_insight_stint_id'), 'insight', ['stint_id'], unique=False)
    op.create_table('share_access',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('share_id', sa.Uuid(), nullable=False),
    sa.Column('at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.ForeignKeyConstraint(['share_id'], ['share_link.id'], name=op.f('fk_share_access_share_id_share_link'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_access'))
    )
    op.create_index(op.f('ix_share_access_share_id'), 'share_access', ['share_id'], unique=False)
    op.create_table('action_insight',
    sa.Column('action_id', sa.Uuid(), nullable=False),
    sa.Column('insight_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['action.id'], name=op.f('fk_action_insight_action_id_action'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['insight_id'], ['insight.id'], name=op.f('fk_action_insight_insight_id_insight'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('action_id', 'insight_id', name=op.f('pk_action_insight'))
    )
    op.create_index(op.f('ix_action_insight_insight_id'), 'action_insight', ['insight_id'], unique=False)
    op.create_table('insight_evidence',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('insight_id', sa.Uuid(), nullable=False),
    sa.Column('observation_id', sa.Uuid(), nullable=True),
    sa.Column('material_id', sa.Uuid(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('(observation_id IS NULL) <> (material_id IS NULL)', name=op.f('ck_insight_evidence_one_source')),
    sa.ForeignKeyConstraint(['insight_id'], ['insight.id'], name=op.f('fk_insight_evidence_insight_id_insight'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['observation_id'], ['observation.id'], name=op.f('fk_insight_evidence_observation_id_observation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insight_evidence'))
    )
    op.create_index(op.f('ix_insight_evidence_insight_id'), 'insight_evidence', ['insight_id'], unique=False)
    op.create_index(op.f('ix_insight_evidence_material_id'), 'insight_evidence', ['material_id'], unique=False)
    op.create_index(op.f('ix_insight_evidence_observation_id'), 'insight_evidence', ['observation_id'], unique=False)
    op.create_table('insight_verdict',
    sa.Column('insight_id', sa.Uuid(), nullable=False),
    sa.Column('hypothesis_id', sa.Uuid(), nullable=False),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.ForeignKeyConstraint(['hypothesis_id'], ['hypothesis.id'], name=op.f('fk_insight_verdict_hypothesis_id_hypothesis'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['insight_id'], ['insight.id'], name=op.f('fk_insight_verdict_insight_id_insight'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('insight_id', 'hypothesis_id', name=op.f('pk_insight_verdict'))
    )
    op.create_index(op.f('ix_insight_verdict_hypothesis_id'), 'insight_verdict', ['hypothesis_id'], unique=False)
    op.create_table('share_insight',
    sa.Column('share_id', sa.Uuid(), nullable=False),
    sa.Column('insight_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['insight_id'], ['insight.id'], name=op.f('fk_share_insight_insight_id_insight'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['share_id'], ['share_link.id'], name=op.f('fk_share_insight_share_id_share_link'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('share_id', 'insight_id', name=op.f('pk_share_insight'))
    )


def downgrade() -> None:
    op.drop_table('share_insight')
    op.drop_index(op.f('ix_insight_verdict_hypothesis_id'), table_name='insight_verdict')
    op.drop_table('insight_verdict')
    op.drop_index(op.f('ix_insight_evidence_observation_id'), table_name='insight_evidence')
    op.drop_index(op.f('ix_insight_evidence_material_id'), table_name='insight_evidence')
    op.drop_index(op.f('ix_insight_evidence_insight_id'), table_name='insight_evidence')
    op.drop_table('insight_evidence')
    op.drop_index(op.f('ix_action_insight_insight_id'), table_name='action_insight')
    op.drop_table('action_insight')
    op.drop_index(op.f('ix_share_access_share_id'), table_name='share_access')
    op.drop_table('share_access')
    op.drop_index(op.f('ix_insight_stint_id'), table_name='insight')
    op.drop_table('insight')
    op.drop_index(op.f('ix_action_event_action_id'), table_name='action_event')
    op.drop_table('action_event')
    op.drop_index(op.f('ix_theme_stint_id'), table_name='theme')
    op.drop_table('theme')
    op.drop_index(op.f('ix_share_link_stint_id'), table_name='share_link')
    op.drop_table('share_link')
    op.drop_index(op.f('ix_action_stint_id'), table_name='action')
    op.drop_index('ix_action_owner_status', table_name='action')
    op.drop_table('action')
    op.drop_index(op.f('ix_public_throttle_window_started_at'), table_name='public_throttle')
    op.drop_table('public_throttle')
