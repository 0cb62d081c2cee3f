"""Stints (驻场调研): one on-site research period at one customer. The creator is its manager."""

import uuid
from datetime import date, datetime
from typing import Annotated, Self

import sqlalchemy as sa
from fastapi import APIRouter, Response
from pydantic import AfterValidator, BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from api.access import StintDep, StintManager
from api.auth import CurrentUser
from api.changelog import ChangeType, record_access, record_change
from api.db import SessionDep, utcnow
from api.errors import Invalid, responses
from api.fields import Text
from api.logday import log_day, valid_timezone
from api.models import Membership, Observation, Purpose, Role, Stint
from api.search_docs import record_index_task

router = APIRouter(prefix="/api/stints", tags=["stints"])

# The method's range is 2–12 weeks.
MAX_STINT_DAYS = 12 * 7
DEFAULT_TIMEZONE = "Asia/Shanghai"

Timezone = Annotated[Text(64), AfterValidator(valid_timezone)]  # type: ignore[valid-type]
Title = Text(200, min_length=1)
Site = Text(300)
Goals = Text(5000)


# As for an observation's time (observation_schemas.EARLIEST_OBSERVED): a stint in year 1 or 9999 is
# a typing slip, and its days' arithmetic (summaries' slack, exports) would run off the calendar.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)


def check_dates(start: date, end: date) -> None:
    if start < FIRST_DAY or end > LAST_DAY:
        raise ValueError(f"a stint's dates lie between {FIRST_DAY} and {LAST_DAY}")
    if end < start:
        raise ValueError("end_date is before start_date")
    if (end - start).days > MAX_STINT_DAYS:
        raise ValueError(
            f"a stint lasts at most 12 weeks ({MAX_STINT_DAYS} days); "
            f"end_date is {(end - start).days} days after start_date"
        )


class StintCreate(BaseModel):
    model_config = {"extra": "forbid", "str_strip_whitespace": True}

    title: Title  # type: ignore[valid-type]
    customer: Title  # type: ignore[valid-type]
    purpose: Purpose
    start_date: date
    end_date: date
    site: Site | None = None  # type: ignore[valid-type]
    goals: Goals | None = None  # type: ignore[valid-type]
    timezone: Timezone = DEFAULT_TIMEZONE  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_dates(self.start_date, self.end_date)
        return self


class StintUpdate(BaseModel):
    model_config = {"extra": "forbid", "str_strip_whitespace": True}

    title: Title | None = None  # type: ignore[valid-type]
    customer: Title | None = None  # type: ignore[valid-type]
    purpose: Purpose | None = None
    start_date: date | None = None
    end_date: date | None = None
    site: Site | None = None  # type: ignore[valid-type]
    goals: Goals | None = None  # type: ignore[valid-type]
    timezone: Timezone | None = None  # type: ignore[valid-type]


class StintOut(BaseModel):
    id: uuid.UUID
    title: str
    customer: str
    purpose: Purpose
    start_date: date
    end_date: date
    site: str | None
    goals: str | None
    timezone: str
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime
    my_role: Role
    days: int = Field(description="Number of calendar days the stint spans")


def stint_out(stint: Stint, role: Role) -> StintOut:
    return StintOut(
        **stint.model_dump(exclude={"deleted_at"}),
        my_role=role,
        days=(stint.end_date - stint.start_date).days + 1,
    )


def recompute_days(session: Session, stint: Stint) -> None:
    """Re-file every observation under its log day after the stint's timezone changed.

    A move is not an edit: the version (and ETag) stays, so an edit a phone made offline against it
    still applies instead of conflicting. Phones learn the new day all the same: the move goes into
    the sync feed as a new change of the record (same version, current data), and to the index."""
    for obs in session.exec(select(Observation).where(Observation.stint_id == stint.id)).all():
        while (day := log_day(obs.observed_at, stint.timezone)) != obs.day:
            moved = session.execute(
                sa.update(Observation)
                .where(col(Observation.id) == obs.id, col(Observation.version) == obs.version)
                .values(day=day)
                .execution_options(synchronize_session=False)
            )
            session.refresh(obs)  # edited concurrently (nothing moved): look again
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                record_change(
                    session,
                    ChangeType.observation,
                    obs.id,
                    stint_id=stint.id,
                    version=obs.version,
                    deleted=obs.deleted_at is not None,
                )
                record_index_task(session, "observation", obs.id)


@router.post("", response_model=StintOut, status_code=201, responses=responses(401, 403, 422))
def create_stint(body: StintCreate, session: SessionDep, user: CurrentUser) -> StintOut:
    """Open a stint; you become its manager."""
    stint = Stint(**body.model_dump(), created_by=user.id)
    session.add(stint)
    session.flush()
    session.add(Membership(stint_id=stint.id, user_id=user.id, role=Role.manager.value))
    record_access(session, stint.id, user.id, granted=True)
    session.commit()
    return stint_out(stint, Role.manager)


@router.get("", response_model=list[StintOut], responses=responses(401))
def list_stints(session: SessionDep, user: CurrentUser) -> list[StintOut]:
    """The stints you are a member of, newest first."""
    rows = session.exec(
        select(Stint, Membership.role)
        .join(Membership, Membership.stint_id == Stint.id)  # type: ignore[arg-type]
        .where(Membership.user_id == user.id, Stint.deleted_at.is_(None))  # type: ignore[union-attr]
        .order_by(Stint.start_date.desc(), Stint.created_at.desc())  # type: ignore[attr-defined]
    ).all()
    return [stint_out(stint, Role(role)) for stint, role in rows]


@router.get("/{stint_id}", response_model=StintOut, responses=responses(401, 404, 422))
def get_stint(access: StintDep) -> StintOut:
    return stint_out(access.stint, access.role)


@router.patch("/{stint_id}", response_model=StintOut, responses=responses(401, 403, 404, 422))
def update_stint(body: StintUpdate, session: SessionDep, access: StintManager) -> StintOut:
    """Change a stint (managers). A new timezone re-files observations under their local day."""
    stint = access.stint
    changes = body.model_dump(exclude_unset=True)
    for required in ("title", "customer", "purpose", "start_date", "end_date", "timezone"):
        if required in changes and changes[required] is None:
            raise Invalid(f"{required} cannot be empty.", code="validation_error")
    try:
        check_dates(changes.get("start_date", stint.start_date), changes.get("end_date", stint.end_date))
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_dates") from None
    timezone_changed = "timezone" in changes and changes["timezone"] != stint.timezone
    for field, value in changes.items():
        setattr(stint, field, value)
    stint.updated_at = utcnow()
    session.add(stint)
    if timezone_changed:
        recompute_days(session, stint)
    session.commit()
    return stint_out(stint, access.role)


@router.delete("/{stint_id}", status_code=204, responses=responses(401, 403, 404, 422))
def delete_stint(session: SessionDep, access: StintManager) -> Response:
    """Close a stint (managers). Its records are kept, hidden from every view."""
    access.stint.deleted_at = utcnow()
    session.add(access.stint)
    # Every member's devices learn from the sync feed to drop this stint.
    for member_id in session.exec(select(Membership.user_id).where(Membership.stint_id == access.stint.id)):
        record_access(session, access.stint.id, member_id, granted=False)
    session.commit()
    return Response(status_code=204)
