"""The FastAPI application: routers, error handlers, middleware, the PWA."""

import gc
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import (
    action_review,
    actions,
    auth,
    days,
    debrief,
    expected_materials,
    exports,
    hypotheses,
    insights,
    material_upload,
    materials,
    members,
    observations,
    readiness,
    search,
    share_public,
    shares,
    spool,
    stints,
    sync,
    sync_changes,
    themes,
    tus,
    users,
)
from api.access import signed_in_before_body
from api.config import Settings
from api.db import make_engine, reading
from api.errors import ErrorResponse, error_body, install_error_handlers
from api.logs import RequestLog, configure_logging
from api.middleware import BodyLimit, SecurityHeaders

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = FastAPI(
        title="Fieldbook",
        version="0.1.0",
        description="The field journal for immersive customer research (沉浸式调研).",
        # Every route can answer with our error shape on invalid input (replaces FastAPI's default 422).
        responses={422: {"model": ErrorResponse, "description": "Invalid input"}},
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.sqlalchemy_url)
    app.state.read_engine = reading(app.state.engine)
    if settings.log_json:
        configure_logging()
    install_error_handlers(app, before_unreadable_body=signed_in_before_body)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        exempt=("/api/uploads",),
        exempt_pattern=r"/api/stints/[^/]+/materials",  # multipart uploads enforce their own limits
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog)  # outermost: sees every answer, errors included

    # First: routes are matched in order, ~7 us per router tried, and captures are the busiest route
    # (none of the routers below has a path an observation route also matches).
    app.include_router(observations.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(stints.router)
    app.include_router(members.router)
    app.include_router(hypotheses.router)
    app.include_router(days.router)
    app.include_router(material_upload.router)
    app.include_router(materials.router)
    app.include_router(expected_materials.router)
    app.include_router(tus.router)
    app.include_router(insights.router)
    app.include_router(themes.router)
    app.include_router(actions.router)
    app.include_router(action_review.router)
    app.include_router(debrief.router)
    app.include_router(shares.router)
    app.include_router(share_public.router)
    app.include_router(exports.router)
    app.include_router(sync.router)
    app.include_router(sync_changes.router)
    # The search router, and this process's indexer thread unless `fieldbook serve` runs one.
    search.install(app)

    @app.get(
        "/healthz", tags=["ops"], responses={503: {"model": ErrorResponse, "description": "Database down"}}
    )
    def healthz(request: Request) -> JSONResponse:
        """200 when the database answers."""
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return JSONResponse(error_body("database_unavailable", "The database does not answer."), 503)
        return JSONResponse({"status": "ok"})

    app.include_router(readiness.router)  # /readyz: schema, blob store, search index

    frontend = settings.frontend_dir or FRONTEND_DIR
    if frontend.is_dir():
        app.mount("/", StaticFiles(directory=frontend, html=True), name="frontend")
    return app


def serve_app() -> FastAPI:
    """The app as ``fieldbook serve`` runs it, once per worker process.

    What exists once the app is built (modules, the ORM's and pydantic's schemas: ~170,000 objects)
    lives as long as the process. Frozen, the garbage collector's full passes skip it; otherwise each
    one walks all of it with the GIL held, stalling every request of the worker for ~70 ms (measured
    after ``create_app``; a 1,000-op sync push met one every third push). glibc's malloc keeps a few
    MB of freed buffers (see ``spool.keep_buffers_mapped``): uploads cost less CPU."""
    spool.keep_buffers_mapped()
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
