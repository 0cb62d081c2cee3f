"""What an insight is made of and how it reads: evidence from the stint's own log and materials,
verdicts on its hypotheses."""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Self

import sqlalchemy as sa
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from api.debrief_media import material_previews, stint_material_ids
from api.debrief_models import Insight, InsightEvidence, InsightVerdict, Theme
from api.errors import Invalid
from api.models import Hypothesis, Observation, Stance

MAX_EVIDENCE = 100


class EvidenceIn(BaseModel):
    """Either an observation or a material of the same stint."""

    model_config = {"extra": "forbid"}

    observation_id: uuid.UUID | None = None
    material_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.observation_id is None) == (self.material_id is None):
            raise ValueError("give exactly one of observation_id or material_id")
        return self


class VerdictIn(BaseModel):
    model_config = {"extra": "forbid"}

    hypothesis_id: uuid.UUID
    verdict: Stance


class EvidenceOut(BaseModel):
    observation_id: uuid.UUID | None = None
    material_id: uuid.UUID | None = None
    # Observation evidence: what was seen and heard.
    text: str | None = None
    kind: str | None = None
    quote: str | None = None
    speaker_role: str | None = None
    speaker_name: str | None = None
    day: date | None = None
    # Material evidence: the caption and a metadata-free preview.
    caption: str | None = None
    content_type: str | None = None
    preview_url: str | None = None


class VerdictOut(BaseModel):
    hypothesis_id: uuid.UUID
    statement: str
    verdict: Stance


class InsightOut(BaseModel):
    id: uuid.UUID
    stint_id: uuid.UUID
    theme_id: uuid.UUID | None
    title: str
    statement: str
    position: int
    draft: bool = Field(description="True while the insight has no evidence")
    evidence: list[EvidenceOut]
    verdicts: list[VerdictOut]
    created_by: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


def insights_out(session: Session, rows: Sequence[Insight]) -> list[InsightOut]:
    """Serialise insights with their evidence and verdicts; evidence that was deleted since drops out."""
    ids = [i.id for i in rows]
    evidence: dict[uuid.UUID, list[EvidenceOut]] = {i: [] for i in ids}
    verdicts: dict[uuid.UUID, list[VerdictOut]] = {i: [] for i in ids}
    if ids:
        links = session.exec(
            select(InsightEvidence)
            .where(col(InsightEvidence.insight_id).in_(ids))
            .order_by(col(InsightEvidence.insight_id), col(InsightEvidence.position))
        ).all()
        stints = {i.id: i.stint_id for i in rows}
        obs_ids = {e.observation_id for e in links if e.observation_id}
        observations = {
            o.id: o
            for o in session.exec(
                select(Observation).where(
                    col(Observation.id).in_(obs_ids), col(Observation.deleted_at).is_(None)
                )
            )
        }
        materials = material_previews(session, {e.material_id for e in links if e.material_id})
        for link in links:
            if link.observation_id and (o := observations.get(link.observation_id)):
                if o.stint_id != stints[link.insight_id]:
                    continue
                evidence[link.insight_id].append(
                    EvidenceOut(
                        observation_id=o.id,
                        text=o.text,
                        kind=o.kind,
                        quote=o.quote,
                        speaker_role=o.speaker_role,
                        speaker_name=o.speaker_name,
                        day=o.day,
                    )
                )
            elif link.material_id and (m := materials.get(link.material_id)):
                if m.stint_id != stints[link.insight_id]:
                    continue
                evidence[link.insight_id].append(
                    EvidenceOut(
                        material_id=m.id,
                        caption=m.caption,
                        content_type=m.content_type,
                        preview_url=f"/api/materials/{m.id}/preview" if m.has_preview else None,
                    )
                )
        for verdict, statement in session.execute(
            sa.select(InsightVerdict, col(Hypothesis.statement))
            .join(Hypothesis, col(Hypothesis.id) == col(InsightVerdict.hypothesis_id))
            .where(col(InsightVerdict.insight_id).in_(ids), col(Hypothesis.deleted_at).is_(None))
            .order_by(col(Hypothesis.created_at))
        ).all():
            verdicts[verdict.insight_id].append(
                VerdictOut(
                    hypothesis_id=verdict.hypothesis_id, statement=statement, verdict=Stance(verdict.verdict)
                )
            )
    return [
        InsightOut(
            **i.model_dump(exclude={"deleted_at", "create_hash"}),
            draft=not evidence[i.id],
            evidence=evidence[i.id],
            verdicts=verdicts[i.id],
        )
        for i in rows
    ]


def stint_insights(session: Session, stint_id: uuid.UUID) -> list[Insight]:
    """A stint's live insights in their order: by theme order, then position, then creation."""
    return list(
        session.exec(
            select(Insight)
            .outerjoin(Theme, col(Theme.id) == col(Insight.theme_id))
            .where(col(Insight.stint_id) == stint_id, col(Insight.deleted_at).is_(None))
            .order_by(
                col(Theme.id).is_(None),
                col(Theme.position),
                col(Theme.created_at),
                col(Insight.position),
                col(Insight.created_at),
                col(Insight.id),
            )
        ).all()
    )


def set_evidence(session: Session, insight: Insight, items: list[EvidenceIn]) -> None:
    obs_wanted = list(dict.fromkeys(e.observation_id for e in items if e.observation_id))
    mat_wanted = list(dict.fromkeys(e.material_id for e in items if e.material_id))
    if obs_wanted:
        found = set(
            session.exec(
                select(Observation.id).where(
                    col(Observation.id).in_(obs_wanted),
                    col(Observation.stint_id) == insight.stint_id,
                    col(Observation.deleted_at).is_(None),
                )
            ).all()
        )
        if missing := [o for o in obs_wanted if o not in found]:
            raise Invalid(
                "Evidence must be observations of this stint.",
                code="unknown_observation",
                details={"observation_ids": [str(m) for m in missing]},
            )
    if mat_wanted:
        found = stint_material_ids(session, insight.stint_id, set(mat_wanted))
        if missing := [m for m in mat_wanted if m not in found]:
            raise Invalid(
                "Evidence must be materials of this stint.",
                code="unknown_material",
                details={"material_ids": [str(m) for m in missing]},
            )
    session.execute(sa.delete(InsightEvidence).where(col(InsightEvidence.insight_id) == insight.id))
    seen: set[tuple[uuid.UUID | None, uuid.UUID | None]] = set()
    position = 0
    for item in items:
        key = (item.observation_id, item.material_id)
        if key in seen:
            continue
        seen.add(key)
        session.add(
            InsightEvidence(
                insight_id=insight.id,
                observation_id=item.observation_id,
                material_id=item.material_id,
                position=position,
            )
        )
        position += 1


def set_verdicts(session: Session, insight: Insight, items: list[VerdictIn]) -> None:
    wanted: dict[uuid.UUID, Stance] = {}
    for item in items:
        if wanted.get(item.hypothesis_id, item.verdict) != item.verdict:
            raise Invalid(
                "An insight cannot both support and refute the same hypothesis.",
                code="contradictory_verdicts",
                details={"hypothesis_id": str(item.hypothesis_id)},
            )
        wanted[item.hypothesis_id] = item.verdict
    if wanted:
        found = set(
            session.exec(
                select(Hypothesis.id).where(
                    col(Hypothesis.id).in_(wanted),
                    col(Hypothesis.stint_id) == insight.stint_id,
                    col(Hypothesis.deleted_at).is_(None),
                )
            ).all()
        )
        if missing := set(wanted) - found:
            raise Invalid(
                "Verdicts must be on hypotheses of this stint.",
                code="unknown_hypothesis",
                details={"hypothesis_ids": sorted(str(m) for m in missing)},
            )
    session.execute(sa.delete(InsightVerdict).where(col(InsightVerdict.insight_id) == insight.id))
    session.add_all(
        InsightVerdict(insight_id=insight.id, hypothesis_id=h, verdict=v.value) for h, v in wanted.items()
    )
