"""Materials (素材): photos and on-site artefacts of a stint — reading, serving, deleting.

Uploads arrive through ``api.material_upload`` (multipart) and ``api.tus`` (resumable)."""

import uuid
from datetime import datetime
from typing import Annotated, Any, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, col, select

from api.access import StintAccess, StintDep, stint_access
from api.auth import CurrentUser
from api.db import SessionDep
from api.errors import ErrorResponse, Forbidden, Gone, Invalid, NotFound, PreconditionFailed, responses
from api.etags import check_if_match, etag
from api.images import PREVIEW_TYPE
from api.ingest import StoreDep, tombstone, write_material
from api.material_tables import Material
from api.models import Observation, Role, User
from api.serving import content_disposition, send_blob

router = APIRouter(prefix="/api", tags=["materials"])

BLOB_ANSWERS: dict[int | str, dict[str, object]] = {
    **responses(401, 404, 410, 422),
    206: {"description": "The requested byte range"},
    304: {"description": "Not modified (If-None-Match)"},
    416: {"model": ErrorResponse, "description": "Range not satisfiable"},
}


class Gps(BaseModel):
    lat: float
    lon: float


class MaterialOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    observation_id: uuid.UUID | None
    uploaded_by: uuid.UUID
    sha256: str
    content_type: str
    kind: str
    size: int
    filename: str = Field(description="The client's file name, for display only")
    caption: str | None
    width: int | None
    height: int | None
    taken_at: str | None = Field(description="EXIF time as the camera recorded it (ISO 8601)")
    camera_make: str | None
    camera_model: str | None
    orientation: int | None
    gps: Gps | None = Field(description="Photo position; shown to stint members only")
    has_preview: bool
    text_status: str = Field(description="none, pending, done or failed (text for search)")
    version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool


class MaterialDetail(MaterialOut):
    extracted_text: str | None


class MaterialPage(BaseModel):
    items: list[MaterialOut]


class MaterialUpdate(BaseModel):
    """A material's editable metadata; the bytes never change (upload another material instead)."""

    model_config = {"extra": "forbid"}

    caption: str | None = Field(default=None, max_length=2000)
    observation_id: uuid.UUID | None = Field(default=None, description="null: attached to no observation")

    @field_validator("caption")
    @classmethod
    def _clean_caption(cls, value: str | None) -> str | None:
        # As an upload's caption: trimmed, no NUL, empty means none.
        cleaned = (value or "").strip().replace("\x00", "")
        return cleaned or None

    def values(self) -> dict[str, Any]:
        """Only the fields sent."""
        return self.model_dump(exclude_unset=True)


def material_out(m: Material, *, with_gps: bool = True) -> MaterialOut:
    """``with_gps=False`` for anything that leaves the stint's members (share links)."""
    gps = (
        Gps(lat=m.gps_lat, lon=m.gps_lon)
        if with_gps and m.gps_lat is not None and m.gps_lon is not None
        else None
    )
    return MaterialOut(
        **m.model_dump(
            exclude={"deleted_at", "gps_lat", "gps_lon", "thumb_sha256", "screen_sha256", "extracted_text"}
        ),
        gps=gps,
        has_preview=m.screen_sha256 is not None,
        deleted=m.deleted_at is not None,
    )


def load_material(session: Session, material_id: uuid.UUID, user: User) -> tuple[Material, StintAccess]:
    """The material and the caller's access; 404 to non-members, 410 once deleted."""
    missing = NotFound("No such material.", code="material_not_found")
    material = session.get(Material, material_id)
    if material is None:
        raise missing
    access = stint_access(session, material.stint_id, user, missing=missing)
    if material.deleted_at is not None:
        raise Gone("This material was deleted.", code="material_deleted")
    return material, access


@router.get("/stints/{stint_id}/materials", response_model=MaterialPage, responses=responses(401, 404, 422))
def list_materials(
    session: SessionDep,
    access: StintDep,
    observation_id: uuid.UUID | None = None,
    kind: Annotated[str | None, Query(pattern="^(image|document|text|audio)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> MaterialPage:
    """The stint's materials, newest first."""
    stmt = select(Material).where(Material.stint_id == access.stint.id, col(Material.deleted_at).is_(None))
    if observation_id is not None:
        stmt = stmt.where(Material.observation_id == observation_id)
    if kind is not None:
        stmt = stmt.where(Material.kind == kind)
    rows = session.exec(stmt.order_by(col(Material.created_at).desc(), col(Material.id)).limit(limit)).all()
    return MaterialPage(items=[material_out(m) for m in rows])


@router.get(
    "/materials/{material_id}", response_model=MaterialDetail, responses=responses(401, 404, 410, 422)
)
def get_material(
    material_id: uuid.UUID, response: Response, session: SessionDep, user: CurrentUser
) -> MaterialDetail:
    """A material's metadata, EXIF fields and extracted text (members only)."""
    material, _ = load_material(session, material_id, user)
    response.headers["ETag"] = etag(material.version)
    return MaterialDetail(**material_out(material).model_dump(), extracted_text=material.extracted_text)


@router.get("/materials/{material_id}/content", response_class=Response, responses=BLOB_ANSWERS)
def material_content(
    material_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser, store: StoreDep
) -> Response:
    """The original bytes, as an attachment (members only). Supports Range and If-None-Match."""
    material, _ = load_material(session, material_id, user)
    session.close()  # no connection held while the bytes stream
    return send_blob(
        request,
        store,
        material.sha256,
        material.size,
        material.content_type,
        content_disposition("attachment", material.filename),
    )


@router.get("/materials/{material_id}/preview", response_class=Response, responses=BLOB_ANSWERS)
def material_preview(
    material_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    size: Annotated[str, Query(pattern="^(thumb|screen)$")] = "screen",
) -> Response:
    """A re-encoded JPEG without any metadata (no EXIF, GPS, XMP or colour profile), shown inline."""
    material, _ = load_material(session, material_id, user)
    session.close()
    digest = material.thumb_sha256 if size == "thumb" else material.screen_sha256
    if digest is None:
        raise NotFound("This material has no preview (it is not a photo).", code="no_preview")
    stem = material.filename.rsplit(".", 1)[0] or "preview"
    return send_blob(
        request,
        store,
        digest,
        store.size(digest),
        PREVIEW_TYPE,
        content_disposition("inline", f"{stem}-{size}.jpg"),
        cache="private, max-age=86400",
    )


def may_change(access: StintAccess, material: Material) -> None:
    """Researchers and managers; a researcher only their own uploads."""
    access.require(Role.researcher)
    if material.uploaded_by != access.user.id and not access.is_manager:
        raise Forbidden("Only the uploader or a manager changes a material.")


def changed_values(session: Session, material: Material, update: MaterialUpdate) -> dict[str, Any]:
    """What ``update`` would change (empty: nothing), checked; raises ``Invalid`` before any write."""
    values = {k: v for k, v in update.values().items() if getattr(material, k) != v}
    observation_id = values.get("observation_id")
    if observation_id is not None:
        obs = session.get(Observation, observation_id)
        # An observation not yet synced is fine (offline phones); one in another stint is not.
        if obs is not None and obs.stint_id != material.stint_id:
            raise Invalid("The observation belongs to another stint.", code="unknown_observation")
    return values


def update_metadata(session: Session, material: Material, values: dict[str, Any]) -> bool:
    """Write checked metadata (see :func:`changed_values`) as the next version: the REST route and
    the sync op share this. False when someone else wrote the material since it was read."""
    if not values:
        return True
    return write_material(session, material, values)


def _stale(session: Session, material: Material) -> NoReturn:
    """Someone else's write won the race: roll back and answer 412 with the current version."""
    expected = material.version
    session.rollback()
    current = session.get(Material, material.id, populate_existing=True)
    check_if_match(etag(expected), current.version if current else expected + 1, required=True)
    raise PreconditionFailed()


@router.patch(
    "/materials/{material_id}",
    response_model=MaterialDetail,
    responses=responses(401, 403, 404, 410, 412, 422, 428),
)
def patch_material(
    material_id: uuid.UUID,
    body: MaterialUpdate,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="The ETag you read")] = None,
) -> MaterialDetail:
    """Change a material's `caption` or `observation_id` (its uploader or a manager).
    Needs `If-Match`: 428 without, 412 when stale."""
    material, access = load_material(session, material_id, user)
    may_change(access, material)
    check_if_match(if_match, material.version, required=True)
    if not update_metadata(session, material, changed_values(session, material, body)):
        _stale(session, material)
    session.commit()
    response.headers["ETag"] = etag(material.version)
    return MaterialDetail(**material_out(material).model_dump(), extracted_text=material.extracted_text)


@router.delete("/materials/{material_id}", status_code=204, responses=responses(401, 403, 404, 410, 412, 422))
def delete_material(
    material_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(description="Optional: the ETag you read")] = None,
) -> Response:
    """Delete a material (its uploader or a manager). A tombstone stays; `fieldbook gc` frees the bytes."""
    material, access = load_material(session, material_id, user)
    may_change(access, material)
    check_if_match(if_match, material.version, required=False)
    if not tombstone(session, material):
        _stale(session, material)
    session.commit()
    return Response(status_code=204)


def arrived(session: Session, material_ids: list[uuid.UUID]) -> dict[uuid.UUID, Material]:
    """Live materials among these ids."""
    if not material_ids:
        return {}
    rows = session.exec(
        select(Material).where(col(Material.id).in_(material_ids), col(Material.deleted_at).is_(None))
    ).all()
    return {m.id: m for m in rows}


def live_blob_digests(session: Session) -> set[str]:
    """Every digest a live material needs (originals and previews), for gc and checks."""
    found: set[str] = set()
    stmt = sa.select(col(Material.sha256), col(Material.thumb_sha256), col(Material.screen_sha256)).where(
        col(Material.deleted_at).is_(None)
    )
    for row in session.execute(stmt):
        found.update(d for d in row if d)
    return found
