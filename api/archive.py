"""A whole stint as one ZIP, and back.

The archive holds ``data.json`` (every row of the stint, and the accounts it names without their
passwords), ``materials/<sha256>`` (originals and previews of live materials, named by their own
SHA-256) and, last, ``manifest.json`` with the SHA-256 and size of every other file. It is streamed
as it is written: only one chunk of a material is in memory at a time.

Deleted records travel as tombstones without their content (``api.archive_tombstones``); the bytes
of deleted materials are left out.

``import_stint`` checks every sum before it writes anything, then restores the rows with the same
ids, so exporting the imported stint gives the same ``data.json``. Accounts are matched by id, then by
e-mail; one that is missing is created disabled (an admin enables it and sets its password)."""

import hashlib
import json
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, SQLModel, col, select

from api.archive_tombstones import without_deleted_content
from api.changelog import ChangeType, record_access, record_change
from api.db import utcnow
from api.debrief_models import (
    Action,
    ActionEvent,
    ActionInsight,
    Insight,
    InsightEvidence,
    InsightVerdict,
    Theme,
)
from api.material_tables import ExpectedMaterial, Material
from api.models import (
    DailySummary,
    Hypothesis,
    Membership,
    Observation,
    ObservationHypothesis,
    ObservationTag,
    Stint,
    User,
)
from api.observation_schemas import as_recorded
from api.search_docs import record_index_task
from storage import BlobStore, check_digest

FORMAT = "fieldbook-stint"
FORMAT_VERSION = 1
_CHUNK = 1024 * 1024

# In the order rows can be inserted (parents first). Each: (name, table, column naming the parent,
# name of the parent's section).
_SECTIONS: list[tuple[str, type[SQLModel], str, str | None]] = [
    ("stint", Stint, "id", None),
    ("members", Membership, "stint_id", None),
    ("hypotheses", Hypothesis, "stint_id", None),
    ("observations", Observation, "stint_id", None),
    ("observation_tags", ObservationTag, "observation_id", "observations"),
    ("observation_hypotheses", ObservationHypothesis, "observation_id", "observations"),
    ("daily_summaries", DailySummary, "stint_id", None),
    ("materials", Material, "stint_id", None),
    ("expected_materials", ExpectedMaterial, "observation_id", "observations"),
    ("themes", Theme, "stint_id", None),
    ("insights", Insight, "stint_id", None),
    ("insight_evidence", InsightEvidence, "insight_id", "insights"),
    ("insight_verdicts", InsightVerdict, "insight_id", "insights"),
    ("actions", Action, "stint_id", None),
    ("action_insights", ActionInsight, "action_id", "actions"),
    ("action_events", ActionEvent, "action_id", "actions"),
]


class ArchiveError(ValueError):
    """The archive is not one this server made, or it was changed or damaged since."""


def _pk(model: type[SQLModel]) -> list[str]:
    return [c.name for c in model.__table__.primary_key.columns]  # type: ignore[attr-defined]


def _user_columns(model: type[SQLModel]) -> list[str]:
    return [
        c.name
        for c in model.__table__.columns  # type: ignore[attr-defined]
        if any(fk.column.table.name == User.__tablename__ for fk in c.foreign_keys)
    ]


def _rows(session: Session, stint_id: uuid.UUID) -> dict[str, list[SQLModel]]:
    found: dict[str, list[SQLModel]] = {}
    for name, model, parent_col, parent in _SECTIONS:
        if parent is None:
            keys: Sequence[Any] = [stint_id]
        else:
            keys = [getattr(r, "id") for r in found[parent]]  # noqa: B009
        rows: list[SQLModel] = []
        for start in range(0, len(keys), 500):
            stmt = select(model).where(col(getattr(model, parent_col)).in_(keys[start : start + 500]))
            rows += list(session.exec(stmt).all())
        pk = _pk(model)
        found[name] = sorted(rows, key=lambda r: tuple(str(getattr(r, k)) for k in pk))
    return found


def stint_data(session: Session, stint_id: uuid.UUID) -> dict[str, Any]:
    """Every row of the stint as JSON-ready data, in a stable order; deleted ones without content."""
    rows = _rows(session, stint_id)
    user_ids: set[uuid.UUID] = set()
    for name, model, _, _ in _SECTIONS:
        for column in _user_columns(model):
            user_ids |= {getattr(r, column) for r in rows[name] if getattr(r, column) is not None}
    users = session.exec(select(User).where(col(User.id).in_(user_ids))).all()
    sections = {name: [r.model_dump(mode="json") for r in rows[name]] for name, *_ in _SECTIONS}
    for row, obs in zip(sections["observations"], rows["observations"], strict=True):
        if isinstance(obs, Observation) and obs.observed_offset_minutes:
            # As the phone recorded it, like every answer; an import keeps the instant and the offset.
            row["observed_at"] = as_recorded(obs.observed_at, obs.observed_offset_minutes).isoformat()
    without_deleted_content(sections, _SECTIONS)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "users": sorted(
            ({"id": str(u.id), "email": u.email, "name": u.name} for u in users), key=lambda u: u["id"]
        ),
        **sections,
    }


def _digests(data: dict[str, Any]) -> list[str]:
    """The blobs of the live materials (a deleted material's bytes stay out of the archive)."""
    found: set[str] = set()
    for m in data["materials"]:
        if m.get("deleted_at") is None:
            found |= {d for d in (m["sha256"], m.get("thumb_sha256"), m.get("screen_sha256")) if d}
    return sorted(found)


class _Sink:
    """A write-only file for ZipFile that hands out what was written so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._written = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


def stream_stint_zip(session: Session, store: BlobStore, stint: Stint) -> tuple[Iterator[bytes], str]:
    """The archive as a stream of chunks, and a file name for it. The data is read now, from the
    caller's session; materials are read from the blob store while streaming."""
    data = stint_data(session, stint.id)
    data_bytes = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode()
    wanted = _digests(data)
    # A blob lost from the store (see `fieldbook check`) is named in the manifest, not a broken download.
    digests = [d for d in wanted if store.exists(d)]
    missing = sorted(set(wanted) - set(digests))
    name = f"fieldbook-{stint.id}-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.zip"

    def chunks() -> Iterator[bytes]:
        sink = _Sink()
        files: list[dict[str, Any]] = []
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("data.json", data_bytes)
            files.append(
                {
                    "path": "data.json",
                    "sha256": hashlib.sha256(data_bytes).hexdigest(),
                    "size": len(data_bytes),
                }
            )
            if chunk_out := sink.take():
                yield chunk_out
            for digest in digests:
                hasher, size = hashlib.sha256(), 0
                with archive.open(f"materials/{digest}", "w", force_zip64=True) as out:
                    for chunk in store.read(digest):
                        out.write(chunk)
                        hasher.update(chunk)
                        size += len(chunk)
                        if chunk_out := sink.take():
                            yield chunk_out
                files.append({"path": f"materials/{digest}", "sha256": hasher.hexdigest(), "size": size})
                if chunk_out := sink.take():
                    yield chunk_out
            manifest = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "stint_id": str(stint.id),
                "title": stint.title,
                "exported_at": utcnow().isoformat(),
                "files": files,
                "missing_materials": missing,
            }
            archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        if chunk_out := sink.take():
            yield chunk_out

    return chunks(), name


def _verify(archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(archive.read("manifest.json"))
    except (KeyError, ValueError) as exc:
        raise ArchiveError("The archive has no readable manifest.json.") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ArchiveError("This is not a Fieldbook stint archive of a version this server reads.")
    listed = {f["path"]: f for f in manifest.get("files", [])}
    present = set(archive.namelist()) - {"manifest.json"}
    if present != set(listed):
        raise ArchiveError(f"The files do not match the manifest: {sorted(present ^ set(listed))[:5]}")
    for path, entry in listed.items():
        hasher, size = hashlib.sha256(), 0
        with archive.open(path) as f:
            while chunk := f.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        if hasher.hexdigest() != entry["sha256"] or size != entry["size"]:
            raise ArchiveError(f"{path} does not match its SHA-256 in the manifest.")
        if path.startswith("materials/") and check_digest(path.removeprefix("materials/")) != entry["sha256"]:
            raise ArchiveError(f"{path} is not named by its own SHA-256.")
    data: dict[str, Any] = json.loads(archive.read("data.json"))
    if data.get("format") != FORMAT or len(data.get("stint", [])) != 1:
        raise ArchiveError("data.json does not describe one stint.")
    return data


def _accounts(session: Session, users: list[dict[str, Any]]) -> dict[str, str]:
    """Old account id → id here: the same id, else the same e-mail, else a new disabled account."""
    mapping: dict[str, str] = {}
    for u in users:
        if session.get(User, uuid.UUID(u["id"])) is not None:
            mapping[u["id"]] = u["id"]
            continue
        same_email = session.exec(select(User).where(col(User.email) == u["email"])).first()
        if same_email is not None:
            mapping[u["id"]] = str(same_email.id)
            continue
        # "!" is no argon2 hash: nothing signs in until an admin sets a password and enables it.
        session.add(
            User(id=uuid.UUID(u["id"]), email=u["email"], name=u["name"], password_hash="!", is_active=False)  # noqa: S106
        )
        mapping[u["id"]] = u["id"]
    session.flush()
    return mapping


def import_stint(session: Session, store: BlobStore, path: Path) -> Stint:
    """Restore a stint from an archive made by ``stream_stint_zip``. Raises ArchiveError when the
    archive is damaged, and when the stint already exists here. Commits."""
    try:
        return _import(session, store, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, UnicodeDecodeError) as exc:
        raise ArchiveError(f"The archive cannot be read: {exc}") from None
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"data.json is not valid: {exc}") from None
    except sa.exc.IntegrityError as exc:
        session.rollback()
        raise ArchiveError(f"The stint's records clash with records here: {exc.orig}") from None


def _import(session: Session, store: BlobStore, path: Path) -> Stint:
    with zipfile.ZipFile(path) as archive:
        data = _verify(archive)
        stint_id = uuid.UUID(data["stint"][0]["id"])
        if session.get(Stint, stint_id) is not None:
            raise ArchiveError(f"Stint {stint_id} already exists here; delete it first to restore it.")
        with tempfile.TemporaryDirectory(prefix="fieldbook-import-") as tmp:
            for digest in sorted(
                set(_digests(data)) & {n.removeprefix("materials/") for n in archive.namelist()}
            ):
                target = Path(tmp) / digest
                with archive.open(f"materials/{digest}") as src, target.open("wb") as dst:
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
                store.put_file(target, digest)
    accounts = _accounts(session, data["users"])
    restored: dict[str, list[Any]] = {}
    for name, model, _, _ in _SECTIONS:
        users = _user_columns(model)
        rows = []
        for raw in data.get(name, []):
            values = {k: (accounts.get(v, v) if k in users and v else v) for k, v in raw.items()}
            rows.append(model.model_validate(values))
        session.add_all(rows)
        session.flush()
        restored[name] = rows
    for h in restored["hypotheses"]:
        record_change(
            session,
            ChangeType.hypothesis,
            h.id,
            stint_id=stint_id,
            version=h.version,
            deleted=h.deleted_at is not None,
        )
    for o in restored["observations"]:
        record_change(
            session,
            ChangeType.observation,
            o.id,
            stint_id=stint_id,
            version=o.version,
            deleted=o.deleted_at is not None,
        )
        record_index_task(session, "observation", o.id)
    for s in restored["daily_summaries"]:
        key = f"{s.stint_id}:{s.author_id}:{s.day.isoformat()}"
        record_change(session, ChangeType.daily_summary, key, stint_id=stint_id, version=s.version)
        record_index_task(session, "day", key)
    for m in restored["members"]:
        record_access(session, stint_id, m.user_id, granted=True)
    for material in restored["materials"]:
        record_change(
            session,
            ChangeType.material,
            material.id,
            stint_id=stint_id,
            version=material.version,
            deleted=material.deleted_at is not None,
        )
    for doc_type, section in (("material", "materials"), ("insight", "insights"), ("action", "actions")):
        for row in restored[section]:
            record_index_task(session, doc_type, row.id)
    session.commit()
    stint = session.get(Stint, stint_id)
    assert stint is not None
    return stint
