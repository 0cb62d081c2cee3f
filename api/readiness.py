"""``/readyz``: may this process take traffic? ``/healthz`` (in ``main``) only says the database answers;
ready also means the schema is the one this code expects, the blob store takes a write and the search
index opens. An orchestrator keeps a process out of rotation while any of them fails."""

import functools
import logging
from collections.abc import Callable

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.errors import ErrorResponse, error_body
from api.ingest import blob_store
from api.migrations import alembic_config
from api.search_index import IndexStore

log = logging.getLogger("fieldbook")
router = APIRouter(tags=["ops"])


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: str
    checks: list[Check]


@functools.cache
def _code_heads() -> frozenset[str]:
    # The code's migrations cannot change while the process runs: read the scripts once.
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _database(request: Request) -> Check:
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return Check(name="database", ok=True, detail="answers")


def _database_heads(conn: sa.Connection) -> frozenset[str]:
    """What alembic's ``MigrationContext.get_current_heads`` reads, without the two INFO lines its
    context logs each time it is made: two log lines per probe, every few seconds."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _schema(request: Request) -> Check:
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        current = _database_heads(conn)
    expected = _code_heads()
    if current != expected:
        return Check(
            name="schema",
            ok=False,
            detail=f"database at {', '.join(sorted(current)) or 'no revision'}, "
            f"code expects {', '.join(sorted(expected))}; run `fieldbook migrate`",
        )
    return Check(name="schema", ok=True, detail=f"at head {', '.join(sorted(current))}")


def _blobs(request: Request) -> Check:
    blob_store(request).probe()
    return Check(name="blob_store", ok=True, detail="a write and a delete went through")


def _search(request: Request) -> Check:
    store: IndexStore = request.app.state.search_store
    if store.openable():
        return Check(name="search_index", ok=True, detail="the live index opens")
    return Check(name="search_index", ok=False, detail="no live index, or it does not open")


def _run(name: str, check: Callable[[Request], Check], request: Request) -> Check:
    try:
        return check(request)
    except Exception as exc:  # whatever stops a check (driver, OSError, S3 client) means "not ready"
        log.warning("readiness check %s failed: %s", name, exc)
        return Check(name=name, ok=False, detail=f"{type(exc).__name__}: {str(exc)[:200]}")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": ErrorResponse, "description": "Not ready; `details.checks` says why"}},
)
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers at the schema this code expects, the blob store takes a write
    and the search index opens; else 503 naming the failing checks. Each check is listed."""
    checks = [
        _run("database", _database, request),
        _run("schema", _schema, request),
        _run("blob_store", _blobs, request),
        _run("search_index", _search, request),
    ]
    failing = [c.name for c in checks if not c.ok]
    listed = [c.model_dump() for c in checks]
    if failing:
        return JSONResponse(
            error_body("not_ready", f"Not ready: {', '.join(failing)}.", {"checks": listed}), 503
        )
    return JSONResponse(Readiness(status="ready", checks=checks).model_dump())
