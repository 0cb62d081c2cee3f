"""Which materials an observation expects, and which have arrived: a phone that says "3 photos" while
only 2 reached the server shows the gap instead of reporting success."""

import uuid

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.auth import CurrentUser
from api.db import SessionDep
from api.errors import Forbidden, responses
from api.material_tables import ExpectedMaterial, Material
from api.materials import MaterialOut, arrived, material_out
from api.models import Observation, Role
from api.observations import load_observation

router = APIRouter(prefix="/api", tags=["materials"])


class ExpectedIn(BaseModel):
    model_config = {"extra": "forbid"}

    material_ids: list[uuid.UUID] = Field(max_length=100, description="Ids the phone chose for its materials")


class ExpectedItem(BaseModel):
    material_id: uuid.UUID
    expected: bool = Field(description="Listed by the observation")
    arrived: bool
    deleted: bool = Field(description="It arrived and was deleted since: no longer missing")
    material: MaterialOut | None


class ObservationMaterials(BaseModel):
    observation_id: uuid.UUID
    expected: int
    arrived: int
    missing: list[uuid.UUID] = Field(description="Expected, not arrived, and not deleted since")
    deleted: list[uuid.UUID] = Field(description="Expected, arrived, then deleted on purpose")
    complete: bool
    items: list[ExpectedItem]


def _status(session: Session, obs: Observation) -> ObservationMaterials:
    expected = list(
        session.exec(
            select(ExpectedMaterial.material_id)
            .where(ExpectedMaterial.observation_id == obs.id)
            .order_by(col(ExpectedMaterial.position))
        ).all()
    )
    attached = session.exec(
        select(Material.id)
        .where(Material.observation_id == obs.id, col(Material.deleted_at).is_(None))
        .order_by(col(Material.created_at))
    ).all()
    ids = list(dict.fromkeys([*expected, *attached]))
    found = {k: m for k, m in arrived(session, ids).items() if m.stint_id == obs.stint_id}
    # A material someone deleted on purpose is no longer awaited: the observation can be complete.
    deleted = (
        set(
            session.exec(
                select(Material.id).where(
                    col(Material.id).in_(expected),
                    Material.stint_id == obs.stint_id,
                    col(Material.deleted_at).is_not(None),
                )
            ).all()
        )
        if expected
        else set()
    )
    items = [
        ExpectedItem(
            material_id=i,
            expected=i in expected,
            arrived=i in found,
            deleted=i in deleted,
            material=material_out(found[i]) if i in found else None,
        )
        for i in ids
    ]
    missing = [i for i in expected if i not in found and i not in deleted]
    return ObservationMaterials(
        observation_id=obs.id,
        expected=len(expected),
        arrived=sum(1 for i in expected if i in found),
        missing=missing,
        deleted=[i for i in expected if i in deleted],
        complete=not missing,
        items=items,
    )


@router.get(
    "/observations/{observation_id}/materials",
    response_model=ObservationMaterials,
    responses=responses(401, 404, 410, 422),
)
def observation_materials(
    observation_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> ObservationMaterials:
    """The materials an observation expects or has, and which of them have arrived."""
    obs, _ = load_observation(session, observation_id, user)
    return _status(session, obs)


@router.put(
    "/observations/{observation_id}/materials",
    response_model=ObservationMaterials,
    responses=responses(401, 403, 404, 410, 422),
)
def set_expected_materials(
    observation_id: uuid.UUID, body: ExpectedIn, session: SessionDep, user: CurrentUser
) -> ObservationMaterials:
    """Say which materials (by the ids the phone chose) belong to this observation; they may arrive later.
    Replaces the list; sending it again is harmless."""
    obs, access = load_observation(session, observation_id, user)
    access.require(Role.researcher)
    if obs.author_id != user.id and not access.is_manager:
        raise Forbidden("Only the author or a manager changes an observation.")
    session.execute(sa.delete(ExpectedMaterial).where(col(ExpectedMaterial.observation_id) == obs.id))
    ids = list(dict.fromkeys(body.material_ids))
    session.add_all(
        ExpectedMaterial(observation_id=obs.id, material_id=m, position=n) for n, m in enumerate(ids)
    )
    session.commit()
    return _status(session, obs)
