"""Deleted records in a stint archive: tombstones without their content.

A researcher who deletes a photo of a confidential document, or a quote, expects it gone from
anything that leaves the server. A tombstone keeps what a restore needs (ids, owners, times, version,
the create's SHA-256 so a phone's retry is answered "deleted" instead of making it anew) so that live
rows naming it still resolve and devices learn of the delete; what hangs off it (tags, links,
evidence) is left out, and the history of a deleted action keeps who did what when, not the words."""

from collections.abc import Sequence
from typing import Any, get_origin

from sqlmodel import SQLModel

# The archive's sections, parents first: (name, table, column naming the parent, parent's section).
Layout = Sequence[tuple[str, type[SQLModel], str, str | None]]

# The columns a tombstone keeps, per section; every other column is emptied (``_emptied``). Kept:
# identity, who and when, version, categories, and the SHA-256 by which a retried create is known.
_TOMBSTONE = {"id", "stint_id", "version", "created_at", "updated_at", "create_hash"}
_TOMBSTONE_KEEPS: dict[str, set[str]] = {
    "hypotheses": _TOMBSTONE | {"dimension", "status", "created_by"},
    "observations": _TOMBSTONE
    | {"author_id", "kind", "observed_at", "observed_offset_minutes", "received_at", "day"},
    "materials": _TOMBSTONE | {"observation_id", "uploaded_by", "sha256", "size", "content_type", "kind"},
    "insights": _TOMBSTONE | {"theme_id", "position", "created_by"},
    "actions": _TOMBSTONE | {"owner_id", "due_date", "impact", "effort", "status", "progress", "created_by"},
}
# Emptied columns that need a value other than None / "" / 0 / {}.
_TOMBSTONE_SETS: dict[str, dict[str, Any]] = {"materials": {"text_status": "none"}}
# The history of a deleted action: who did what when, not what was written.
_EVENT_KEEPS = {"id", "action_id", "actor_id", "at", "kind", "decision"}


def _emptied(model: type[SQLModel], row: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """``row`` with every column but ``keep`` emptied: None where the column allows it, else the
    empty value of its type."""
    out = dict(row)
    for column in model.__table__.columns:  # type: ignore[attr-defined]
        if column.name in keep or column.name == "deleted_at":
            continue
        if column.nullable:
            out[column.name] = None
            continue
        annotation = model.model_fields[column.name].annotation
        kind = get_origin(annotation) or annotation
        if kind not in (str, int, dict):  # a new column: decide whether a tombstone keeps it
            raise TypeError(f"{model.__name__}.{column.name}: keep it in a tombstone or empty it")
        out[column.name] = kind()
    return out


def without_deleted_content(sections: dict[str, list[dict[str, Any]]], layout: Layout) -> None:
    """Tombstones of ``sections`` (the rows of data.json, in the order of ``layout``) keep no
    content; see the module's doc."""
    dead: dict[str, set[Any]] = {}
    for name, model, parent_col, parent in layout:
        rows = sections[name]
        if name in _TOMBSTONE_KEEPS:
            keep = _TOMBSTONE_KEEPS[name]
            sections[name] = [
                _emptied(model, r, keep) | _TOMBSTONE_SETS.get(name, {}) if r["deleted_at"] else r
                for r in rows
            ]
            dead[name] = {r["id"] for r in rows if r["deleted_at"]}
        elif parent in dead and name == "action_events":
            sections[name] = [
                _emptied(model, r, _EVENT_KEEPS) if r[parent_col] in dead[parent] else r for r in rows
            ]
        elif parent in dead:
            sections[name] = [r for r in rows if r[parent_col] not in dead[parent]]
