"""Database tables. The schema changes only through Alembic migrations (``alembic/versions``)."""

import uuid
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.db import UTCDateTime, utcnow

# Set before any table so every constraint gets a stable, predictable name.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _utc(nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class Role(StrEnum):
    viewer = "viewer"
    researcher = "researcher"
    manager = "manager"

    @property
    def rank(self) -> int:
        return ("viewer", "researcher", "manager").index(self.value)


class Purpose(StrEnum):
    product = "product"
    benchmark = "benchmark"
    customer_success = "customer_success"
    other = "other"


class HypothesisDimension(StrEnum):
    usage = "usage"
    buying = "buying"
    relationship = "relationship"


class HypothesisStatus(StrEnum):
    open = "open"
    supported = "supported"
    refuted = "refuted"


class ObservationKind(StrEnum):
    note = "note"
    quote = "quote"
    behaviour = "behaviour"
    process = "process"
    pain_point = "pain_point"
    idea = "idea"
    question = "question"


class ObservationDimension(StrEnum):
    scene = "scene"
    words_actions = "words_actions"
    organisation = "organisation"


class Stance(StrEnum):
    supports = "supports"
    refutes = "refutes"


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=200)
    is_admin: bool = False
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class AuthSession(SQLModel, table=True):
    """A signed-in device. Only the SHA-256 of its bearer token is stored."""

    __tablename__ = "auth_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    user_agent: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    last_used_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins per account key (SHA-256 of the e-mail), shared by all workers."""

    __tablename__ = "login_throttle"

    key: str = Field(max_length=64, primary_key=True)
    failures: int = 0
    window_started_at: datetime = Field(sa_column=_utc())
    locked_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class Stint(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(max_length=200)
    customer: str = Field(max_length=200)
    site: str | None = Field(default=None, max_length=300)
    purpose: str = Field(max_length=32)
    goals: str | None = Field(default=None, max_length=5000)
    start_date: date
    end_date: date
    timezone: str = Field(max_length=64)
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class Membership(SQLModel, table=True):
    __tablename__ = "stint_member"

    stint_id: uuid.UUID = Field(foreign_key="stint.id", primary_key=True, ondelete="CASCADE")
    user_id: uuid.UUID = Field(
        foreign_key="user_account.id", primary_key=True, index=True, ondelete="CASCADE"
    )
    role: str = Field(max_length=16)
    added_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Hypothesis(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", index=True, ondelete="CASCADE")
    statement: str = Field(max_length=2000)
    dimension: str | None = Field(default=None, max_length=16)
    status: str = Field(default=HypothesisStatus.open.value, max_length=16)
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class Observation(SQLModel, table=True):
    __table_args__ = (
        # The log is read a stint at a time, in observed order, or one day at a time.
        sa.Index("ix_observation_stint_observed", "stint_id", "observed_at", "id"),
        sa.Index("ix_observation_stint_day", "stint_id", "day"),
    )

    # The id is chosen by the phone, so an offline capture keeps its identity through retries.
    id: uuid.UUID = Field(primary_key=True)
    stint_id: uuid.UUID = Field(foreign_key="stint.id", ondelete="CASCADE")
    author_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    text: str = Field(sa_type=sa.Text)
    kind: str = Field(max_length=16)
    quote: str | None = Field(default=None, sa_type=sa.Text)
    speaker_role: str | None = Field(default=None, max_length=100)
    speaker_name: str | None = Field(default=None, max_length=100)
    dimension: str | None = Field(default=None, max_length=16)
    observed_at: datetime = Field(sa_column=_utc())
    # The UTC offset observed_at was recorded with, in minutes east of UTC: the phone's local time is
    # kept as it was, not only the instant. None: not known (saved before it was kept, or no time sent).
    observed_offset_minutes: int | None = Field(default=None, sa_type=sa.SmallInteger)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # The log day in the stint's timezone: 23:50 local time belongs to that day, not UTC's.
    day: date
    version: int = 1
    # SHA-256 of the create request: a retry with the same body is recognised as the same create.
    create_hash: str = Field(max_length=64)
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class ObservationTag(SQLModel, table=True):
    __tablename__ = "observation_tag"

    observation_id: uuid.UUID = Field(foreign_key="observation.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(max_length=40, primary_key=True, index=True)


class ObservationHypothesis(SQLModel, table=True):
    __tablename__ = "observation_hypothesis"

    observation_id: uuid.UUID = Field(foreign_key="observation.id", primary_key=True, ondelete="CASCADE")
    hypothesis_id: uuid.UUID = Field(
        foreign_key="hypothesis.id", primary_key=True, index=True, ondelete="CASCADE"
    )
    stance: str = Field(max_length=16)


class DailySummary(SQLModel, table=True):
    """A researcher's own summary of one day of a stint's log."""

    __tablename__ = "daily_summary"

    stint_id: uuid.UUID = Field(foreign_key="stint.id", primary_key=True, ondelete="CASCADE")
    author_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True)
    day: date = Field(primary_key=True)
    summary: str = Field(sa_type=sa.Text)
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
