"""Tables of the debrief (复盘): themes, insights and their evidence, the improvement action plan
with its history, and share links. The schema changes only through migrations
(``alembic/versions/0005_debrief.py``, ``0006_share_access_what.py``)."""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

import api.models  # noqa: F401  (sets the constraint naming convention before these tables)
from api.db import UTCDateTime, utcnow


def _utc(nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class ActionStatus(StrEnum):
    proposed = "proposed"
    approved = "approved"
    in_progress = "in_progress"
    done = "done"
    rejected = "rejected"


class Level(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high").index(self.value) + 1


class Theme(SQLModel, table=True):
    """A group of insights, e.g. 排班 (scheduling), 采购决策 (buying decisions)."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    position: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Insight(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", index=True, ondelete="CASCADE")
    theme_id: uuid.UUID | None = Field(default=None, foreign_key="theme.id", ondelete="SET NULL")
    title: str = Field(max_length=200)
    statement: str = Field(sa_type=sa.Text)
    position: int = 0
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    version: int = 1
    # SHA-256 of the create request: a retry with the same id and body is recognised.
    create_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class InsightEvidence(SQLModel, table=True):
    """One piece of evidence: an observation or a material of the insight's own stint."""

    __tablename__ = "insight_evidence"
    __table_args__ = (
        sa.CheckConstraint("(observation_id IS NULL) <> (material_id IS NULL)", name="one_source"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    insight_id: uuid.UUID = Field(foreign_key="insight.id", index=True, ondelete="CASCADE")
    observation_id: uuid.UUID | None = Field(
        default=None, foreign_key="observation.id", index=True, ondelete="CASCADE"
    )
    # No foreign key: materials live in another area's table; ids are checked when linked.
    material_id: uuid.UUID | None = Field(default=None, index=True)
    position: int = 0


class InsightVerdict(SQLModel, table=True):
    """The insight's verdict on a hypothesis: supports or refutes."""

    __tablename__ = "insight_verdict"

    insight_id: uuid.UUID = Field(foreign_key="insight.id", primary_key=True, ondelete="CASCADE")
    hypothesis_id: uuid.UUID = Field(
        foreign_key="hypothesis.id", primary_key=True, index=True, ondelete="CASCADE"
    )
    verdict: str = Field(max_length=16)


class Action(SQLModel, table=True):
    """An improvement action (改善行动) of a stint's action plan."""

    __table_args__ = (sa.Index("ix_action_owner_status", "owner_id", "status"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", index=True, ondelete="CASCADE")
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=sa.Text)
    owner_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    due_date: date | None = None
    impact: str = Field(max_length=8)
    effort: str = Field(max_length=8)
    status: str = Field(default=ActionStatus.proposed.value, max_length=16)
    progress: int = 0
    progress_note: str | None = Field(default=None, max_length=2000)
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    version: int = 1
    create_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class ActionInsight(SQLModel, table=True):
    __tablename__ = "action_insight"

    action_id: uuid.UUID = Field(foreign_key="action.id", primary_key=True, ondelete="CASCADE")
    insight_id: uuid.UUID = Field(foreign_key="insight.id", primary_key=True, index=True, ondelete="CASCADE")


class ActionEvent(SQLModel, table=True):
    """The history of an action: who changed what, when; reviews keep their decision and comment."""

    __tablename__ = "action_event"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    action_id: uuid.UUID = Field(foreign_key="action.id", index=True, ondelete="CASCADE")
    actor_id: uuid.UUID = Field(foreign_key="user_account.id")
    at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # created, updated, review, deleted
    kind: str = Field(max_length=16)
    # {"field": [before, after]} for every field that changed
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    decision: str | None = Field(default=None, max_length=16)
    comment: str | None = Field(default=None, max_length=2000)


class ShareLink(SQLModel, table=True):
    """A read-only link to a stint's debrief. Only the SHA-256 of its token is stored."""

    __tablename__ = "share_link"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    label: str | None = Field(default=None, max_length=200)
    include_photos: bool = False
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    access_count: int = 0
    last_accessed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # Salt of this link's hashed IP addresses: visitors of one link cannot be matched with another's.
    ip_salt: str = Field(max_length=32)


class ShareInsight(SQLModel, table=True):
    """The insights a link shows, chosen when it was made."""

    __tablename__ = "share_insight"

    share_id: uuid.UUID = Field(foreign_key="share_link.id", primary_key=True, ondelete="CASCADE")
    insight_id: uuid.UUID = Field(foreign_key="insight.id", primary_key=True, ondelete="CASCADE")


class AccessKind(StrEnum):
    """What a share link's reader opened."""

    debrief = "debrief"  # the debrief: the page /s/{token} or its JSON /api/public/{token}
    photo = "photo"  # one photo of a shared insight: /api/public/{token}/materials/{material_id}


class ShareAccess(SQLModel, table=True):
    """One answer a share link gave a reader: when, hashed IP address, user agent, what was opened.
    Since ``0006_share_access_what.py``; rows from before it are all debrief views."""

    __tablename__ = "share_access"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    share_id: uuid.UUID = Field(foreign_key="share_link.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    ip_hash: str = Field(max_length=64)
    user_agent: str = Field(default="", max_length=300)
    kind: str = Field(
        default=AccessKind.debrief.value,
        max_length=16,
        sa_column_kwargs={"server_default": AccessKind.debrief.value},
    )
    # The photo served (kind photo), else None. No foreign key, like insight_evidence.material_id:
    # materials live in another area's table and are tombstoned, never deleted (only with their
    # stint, which takes its share links and this log along).
    material_id: uuid.UUID | None = None


class PublicThrottle(SQLModel, table=True):
    """Requests to the public share endpoints per client in the current window, shared by workers."""

    __tablename__ = "public_throttle"

    key: str = Field(max_length=64, primary_key=True)
    window_started_at: datetime = Field(sa_column=_utc(index=True))
    hits: int = 0
