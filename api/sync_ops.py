"""One pushed operation at a time: observations, daily summaries, hypothesis stance links, material
metadata.

Each handler decides from the server's current copy and the op's ``base_version``: applied, duplicate
(this change is already there), conflict (someone else changed the record since the device saw it:
the server's copy comes back and nothing is overwritten), or it raises an ``AppError`` (rejected).
The writes themselves are the same functions the REST routes use. Handlers raise before writing
anything, so a rejected op leaves no trace even without a savepoint."""

import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from api.access import StintAccess
from api.changelog import ChangeType, logged_version
from api.days import SummaryIn, delete_summary, save_summary, summary_key
from api.errors import Forbidden, Gone, Invalid, NotFound
from api.ingest import tombstone
from api.material_tables import Material
from api.materials import MaterialUpdate, changed_values, material_out, may_change, update_metadata
from api.models import DailySummary, Observation, Role, Stance
from api.observation_schemas import HypothesisLink, ObservationCreate, ObservationUpdate, observations_out
from api.observation_writes import (
    apply_update,
    current_links,
    new_observation,
    same_create,
    usable_links,
    write_version,
)
from api.observations import may_edit
from api.sync_batch import Batch, OpIn, OpType, Outcome, conflict, uuid_of, validate
from api.sync_changes import parse_summary_key, summary_data
from api.users import user_names


def _observation_json(b: Batch, obs: Observation) -> dict[str, Any]:
    return observations_out(b.session, [obs])[0].model_dump(mode="json")


def _observation_conflict(b: Batch, obs: Observation, mine: dict[str, Any]) -> Outcome:
    b.session.refresh(obs)
    current = _observation_json(b, obs)
    if obs.deleted_at is not None:
        return Outcome(
            status="conflict", version=obs.version, deleted=True, current=current, mine=mine, changes=[]
        )
    return conflict(current, obs.version, mine)


def _mine(body: BaseModel) -> dict[str, Any]:
    """What the device sent, in the shape the server answers with (links as hypothesis_links)."""
    mine = body.model_dump(
        mode="json", exclude_unset=True, exclude={"id", "hypothesis_ids", "hypothesis_links"}
    )
    links = getattr(body, "links", lambda: None)()
    if links is not None:
        mine["hypothesis_links"] = [link.model_dump(mode="json") for link in links]
    return mine


# Every create's outcome (never mutated): one pydantic model less per op of a push of creates.
CREATED = Outcome(status="applied", version=1)


def observation_upsert(b: Batch, op: OpIn) -> Outcome:
    obs_id = b.record_id(op.id, "an observation")
    data = dict(op.data or {})
    stint_raw = data.pop("stint_id", None)
    if data.pop("id", op.id) != op.id:
        raise Invalid("data.id differs from the op's id.", code="invalid_id")
    existing = b.observation(obs_id)
    if existing is None:
        if op.base_version:
            raise NotFound(
                "The server has no such observation; send it as a create (base_version null).",
                code="unknown_record",
            )
        if stint_raw is None:
            raise Invalid("data.stint_id: a new observation names its stint.", code="validation_error")
        stint_id = b.stint_id(stint_raw)
        body = validate(ObservationCreate, data)
        new = new_observation(b.clock(stint_id), b.user_id, body, obs_id, b.now)
        if new.links:  # most notes link nothing: no need for the stint's hypotheses
            new.links = usable_links(b.session, stint_id, new.links, b.hypotheses(stint_id))
        b.create(obs_id, new)
        return CREATED
    access = b.access(existing.stint_id)
    if stint_raw is not None and str(stint_raw) != str(existing.stint_id):
        raise Invalid("An observation cannot move to another stint.", code="stint_mismatch")
    if op.base_version is None:
        create = validate(ObservationCreate, data)
        if same_create(existing, existing.stint_id, b.user.id, create):
            return Outcome(
                status="duplicate", version=existing.version, deleted=existing.deleted_at is not None
            )
        return _observation_conflict(b, existing, _mine(create))
    may_edit(access, existing)
    update = validate(ObservationUpdate, data)
    if op.base_version != existing.version:
        return _observation_conflict(b, existing, _mine(update))
    # An edit against a deleted version resolves a delete conflict by keeping the record.
    restore = existing.deleted_at is not None
    live = b.hypotheses(existing.stint_id)
    if not apply_update(b.session, existing, access.stint.timezone, update, restore=restore, live=live):
        return _observation_conflict(b, existing, _mine(update))
    return Outcome(status="applied", version=existing.version)


def observation_delete(b: Batch, op: OpIn) -> Outcome:
    obs_id = b.record_id(op.id, "an observation")
    existing = b.observation(obs_id)
    if existing is None:
        raise NotFound("No such observation.", code="unknown_record")
    access = b.access(existing.stint_id)
    may_edit(access, existing)
    if existing.deleted_at is not None:
        return Outcome(status="applied", version=existing.version, deleted=True)
    if op.base_version is not None and op.base_version != existing.version:
        return _observation_conflict(b, existing, {"deleted": True})
    if not write_version(b.session, existing, {"deleted_at": b.now}):
        return _observation_conflict(b, existing, {"deleted": True})
    return Outcome(status="applied", version=existing.version, deleted=True)


class LinkIn(BaseModel):
    model_config = {"extra": "forbid"}

    hypothesis_id: uuid.UUID
    stance: Stance = Stance.supports


def _link(b: Batch, op: OpIn, change: Callable[[dict[uuid.UUID, HypothesisLink], LinkIn], None]) -> Outcome:
    """Stance links merge: each op adds, changes or removes one link whatever the base version,
    so two devices linking the same observation to different hypotheses both win."""
    obs_id = b.record_id(op.id, "an observation")
    link = validate(LinkIn, dict(op.data or {}))
    existing = b.observation(obs_id)
    if existing is None:
        raise NotFound("No such observation.", code="unknown_record")
    access = b.access(existing.stint_id)
    may_edit(access, existing)
    if existing.deleted_at is not None:
        raise Gone("This observation was deleted.", code="observation_deleted")
    live = b.hypotheses(existing.stint_id)
    target = HypothesisLink(hypothesis_id=link.hypothesis_id, stance=link.stance)
    if not usable_links(b.session, existing.stint_id, [target], live):
        # Its hypothesis was deleted: nothing to change (a link to it, if any, stays as it is).
        return Outcome(status="applied", version=existing.version)
    links = current_links(b.session, existing)
    before = dict(links)
    change(links, link)
    if links == before:
        return Outcome(status="applied", version=existing.version)
    update = ObservationUpdate(hypothesis_links=list(links.values()))
    if not apply_update(b.session, existing, access.stint.timezone, update, live=live):
        return _observation_conflict(b, existing, link.model_dump(mode="json"))
    return Outcome(status="applied", version=existing.version)


def _put_link(links: dict[uuid.UUID, HypothesisLink], link: LinkIn) -> None:
    links[link.hypothesis_id] = HypothesisLink(hypothesis_id=link.hypothesis_id, stance=link.stance)


def _drop_link(links: dict[uuid.UUID, HypothesisLink], link: LinkIn) -> None:
    links.pop(link.hypothesis_id, None)


def _summary_target(b: Batch, op: OpIn) -> tuple[StintAccess, str, DailySummary | None]:
    try:
        stint_id, author_id, day = parse_summary_key(op.id)
    except ValueError:
        raise Invalid(
            "id: a daily summary is identified by {stint_id}:{author_id}:{YYYY-MM-DD}.", code="invalid_id"
        ) from None
    access = b.access(stint_id)
    access.require(Role.researcher)
    if author_id != b.user.id:
        raise Forbidden("Only its author writes a day's summary.")
    key = summary_key(stint_id, author_id, day)
    return access, key, b.session.get(DailySummary, (stint_id, author_id, day))


def _summary_json(b: Batch, summary: DailySummary) -> dict[str, Any]:
    return summary_data(summary, user_names(b.session, {summary.author_id}).get(summary.author_id, ""))


def summary_upsert(b: Batch, op: OpIn) -> Outcome:
    body = validate(SummaryIn, dict(op.data or {}))
    access, key, current = _summary_target(b, op)
    if not body.summary:  # cleared on the device: removed, as by a delete op
        if current is None:
            tomb = logged_version(b.session, ChangeType.daily_summary, key)
            return Outcome(status="applied", version=tomb, deleted=True)
        return summary_delete(b, op)
    mine = {"summary": body.summary}
    stint_id, author_id, day = access.stint.id, b.user.id, parse_summary_key(key)[2]
    if current is None:
        tombstone = logged_version(b.session, ChangeType.daily_summary, key)
        if op.base_version not in (None, 0, tombstone):
            return conflict(None, tombstone, mine)
        saved = save_summary(b.session, stint_id, author_id, day, body.summary, None)
        return Outcome(status="applied", version=saved.version)
    if current.summary == body.summary:
        return Outcome(
            status="duplicate" if op.base_version != current.version else "applied", version=current.version
        )
    if op.base_version != current.version:
        return conflict(_summary_json(b, current), current.version, mine)
    saved = save_summary(b.session, stint_id, author_id, day, body.summary, current)
    return Outcome(status="applied", version=saved.version)


def summary_delete(b: Batch, op: OpIn) -> Outcome:
    _access, key, current = _summary_target(b, op)
    if current is None:
        tombstone = logged_version(b.session, ChangeType.daily_summary, key)
        if tombstone == 0:
            raise NotFound("No such daily summary.", code="unknown_record")
        return Outcome(status="applied", version=tombstone, deleted=True)
    if op.base_version is not None and op.base_version != current.version:
        return conflict(_summary_json(b, current), current.version, {"deleted": True})
    return Outcome(status="applied", version=delete_summary(b.session, current), deleted=True)


def _material(b: Batch, op: OpIn) -> tuple[Material, dict[str, Any]]:
    """The material and its JSON; unknown to this user (never uploaded, or in a stint they are
    not in: the same answer) is rejected, as is a change they may not make."""
    material = b.session.get(Material, uuid_of(op.id, "a material"))
    if material is not None:
        try:
            access = b.access(material.stint_id)
        except NotFound:
            material = None
    if material is None:
        raise NotFound(
            "The server has no such material: upload its bytes first (multipart or tus, with this id), "
            "then push its metadata.",
            code="material_not_uploaded",
        )
    may_change(access, material)
    return material, _material_json(material)


def _material_json(material: Material) -> dict[str, Any]:
    return material_out(material).model_dump(mode="json")


def _material_conflict(material: Material, current: dict[str, Any], mine: dict[str, Any]) -> Outcome:
    if material.deleted_at is not None:
        return Outcome(
            status="conflict", version=material.version, deleted=True, current=current, mine=mine, changes=[]
        )
    return conflict(current, material.version, mine)


def material_upsert(b: Batch, op: OpIn) -> Outcome:
    """Metadata only (caption, observation_id). ``base_version`` null (the device never saw a
    version, e.g. it set them at upload): the same values are a duplicate, others a conflict."""
    update = validate(MaterialUpdate, dict(op.data or {}))
    material, current = _material(b, op)
    mine = update.model_dump(mode="json", exclude_unset=True)
    values = changed_values(b.session, material, update)
    if material.deleted_at is not None:
        return _material_conflict(material, current, mine)
    if not values:
        status = "applied" if op.base_version == material.version else "duplicate"
        return Outcome(status=status, version=material.version)
    if op.base_version != material.version or not update_metadata(b.session, material, values):
        b.session.refresh(material)
        return _material_conflict(material, _material_json(material), mine)
    return Outcome(status="applied", version=material.version)


def material_delete(b: Batch, op: OpIn) -> Outcome:
    material, current = _material(b, op)
    if material.deleted_at is not None:
        return Outcome(status="applied", version=material.version, deleted=True)
    if op.base_version is not None and op.base_version != material.version:
        return _material_conflict(material, current, {"deleted": True})
    if not tombstone(b.session, material):
        b.session.refresh(material)
        return _material_conflict(material, _material_json(material), {"deleted": True})
    return Outcome(status="applied", version=material.version, deleted=True)


def _refused_change(op: OpIn) -> dict[str, Any]:
    """What a refused op asked for, checked as it would have been applied: a value that would be
    rejected is rejected here too (compared with the server's copy, it could not even be read)."""
    if op.op == "delete":
        return {"deleted": True}
    data = {k: v for k, v in (op.data or {}).items() if k not in ("stint_id", "id")}
    if op.type is OpType.observation:
        return _mine(validate(ObservationCreate if op.base_version is None else ObservationUpdate, data))
    if op.type is OpType.daily_summary:
        return {"summary": validate(SummaryIn, data).summary}
    if op.type is OpType.material:
        return validate(MaterialUpdate, data).model_dump(mode="json", exclude_unset=True)
    return data  # links merge: never refused


def refuse(b: Batch, op: OpIn) -> Outcome:
    """A conflict without trying: this op was refused before (a re-sent op stays refused), or an
    earlier op of the batch on the same record was, and this one was made on top of it."""
    mine = _refused_change(op)
    if op.type is OpType.material:
        material, now = _material(b, op)
        return _material_conflict(material, now, mine)
    if op.type is OpType.daily_summary:
        _access, key, current = _summary_target(b, op)
        if current is None:
            return conflict(None, logged_version(b.session, ChangeType.daily_summary, key), mine)
        return conflict(_summary_json(b, current), current.version, mine)
    existing = b.observation(b.record_id(op.id, "an observation"))
    if existing is None:
        raise NotFound("No such observation.", code="unknown_record")
    b.access(existing.stint_id)
    return _observation_conflict(b, existing, mine)


HANDLERS: dict[tuple[OpType, str], Callable[[Batch, OpIn], Outcome]] = {
    (OpType.observation, "upsert"): observation_upsert,
    (OpType.observation, "delete"): observation_delete,
    (OpType.daily_summary, "upsert"): summary_upsert,
    (OpType.daily_summary, "delete"): summary_delete,
    (OpType.hypothesis_link, "upsert"): lambda b, op: _link(b, op, _put_link),
    (OpType.hypothesis_link, "delete"): lambda b, op: _link(b, op, _drop_link),
    (OpType.material, "upsert"): material_upsert,
    (OpType.material, "delete"): material_delete,
}


def apply(b: Batch, op: OpIn) -> Outcome:
    """Apply one op; raises ``AppError`` when it is rejected."""
    if op.type is OpType.observation:  # most ops: no (enum, str) key to hash (an enum's is in Python)
        return observation_upsert(b, op) if op.op == "upsert" else observation_delete(b, op)
    b.flush()  # the ops after a create see it
    return HANDLERS[(op.type, op.op)](b, op)
