"""foundation: accounts, stints, observations

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.db

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('auth_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_auth_session_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_auth_session_token_hash'))
    )
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_session_user_id'), ['user_id'], unique=False)

    op.create_table('stint',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('customer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('goals', sqlmodel.sql.sqltypes.AutoString(length=5000), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_stint_created_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stint'))
    )
    op.create_table('daily_summary',
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_daily_summary_author_id_user_account')),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_daily_summary_stint_id_stint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('stint_id', 'author_id', 'day', name=op.f('pk_daily_summary'))
    )
    op.create_table('hypothesis',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('statement', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('dimension', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_hypothesis_created_by_user_account')),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_hypothesis_stint_id_stint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hypothesis'))
    )
    with op.batch_alter_table('hypothesis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hypothesis_stint_id'), ['stint_id'], unique=False)

    op.create_table('observation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('quote', sa.Text(), nullable=True),
    sa.Column('speaker_role', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('speaker_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('dimension', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('observed_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('create_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('deleted_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_observation_author_id_user_account')),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_observation_stint_id_stint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observation'))
    )
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observation_author_id'), ['author_id'], unique=False)
        batch_op.create_index('ix_observation_stint_day', ['stint_id', 'day'], unique=False)
        batch_op.create_index('ix_observation_stint_observed', ['stint_id', 'observed_at', 'id'], unique=False)

    op.create_table('stint_member',
    sa.Column('stint_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('added_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['stint_id'], ['stint.id'], name=op.f('fk_stint_member_stint_id_stint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_stint_member_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('stint_id', 'user_id', name=op.f('pk_stint_member'))
    )
    with op.batch_alter_table('stint_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stint_member_user_id'), ['user_id'], unique=False)

    op.create_table('observation_hypothesis',
    sa.Column('observation_id', sa.Uuid(), nullable=False),
    sa.Column('hypothesis_id', sa.Uuid(), nullable=False),
    sa.Column('stance', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.ForeignKeyConstraint(['hypothesis_id'], ['hypothesis.id'], name=op.f('fk_observation_hypothesis_hypothesis_id_hypothesis'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['observation_id'], ['observation.id'], name=op.f('fk_observation_hypothesis_observation_id_observation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('observation_id', 'hypothesis_id', name=op.f('pk_observation_hypothesis'))
    )
    with op.batch_alter_table('observation_hypothesis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observation_hypothesis_hypothesis_id'), ['hypothesis_id'], unique=False)

    op.create_table('observation_tag',
    sa.Column('observation_id', sa.Uuid(), nullable=False),
    sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.ForeignKeyConstraint(['observation_id'], ['observation.id'], name=op.f('fk_observation_tag_observation_id_observation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('observation_id', 'tag', name=op.f('pk_observation_tag'))
    )
    with op.batch_alter_table('observation_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observation_tag_tag'), ['tag'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('observation_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observation_tag_tag'))

    op.drop_table('observation_tag')
    with op.batch_alter_table('observation_hypothesis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observation_hypothesis_hypothesis_id'))

    op.drop_table('observation_hypothesis')
    with op.batch_alter_table('stint_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stint_member_user_id'))

    op.drop_table('stint_member')
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.drop_index('ix_observation_stint_observed')
        batch_op.drop_index('ix_observation_stint_day')
        batch_op.drop_index(batch_op.f('ix_observation_author_id'))

    op.drop_table('observation')
    with op.batch_alter_table('hypothesis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hypothesis_stint_id'))

    op.drop_table('hypothesis')
    op.drop_table('daily_summary')
    op.drop_table('stint')
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_session_user_id'))

    op.drop_table('auth_session')
    op.drop_table('user_account')
    op.drop_table('login_throttle')
