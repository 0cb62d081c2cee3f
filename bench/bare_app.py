"""The baselines of ``bench_capture``: bare FastAPI apps with the capture route's shape and nothing of ours.

- ``echo``: ``POST /api/stints/{stint_id}/observations`` validates a body of the same shape (the same
  field names, types and limits) and answers 201 with it: FastAPI + pydantic + uvicorn, no database.
- ``sqlite``: the same, plus one ``INSERT`` and ``COMMIT`` per request into a SQLite file with the
  pragmas and transaction mode Fieldbook uses (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``).

``python -m bench.bare_app --kind echo|sqlite --port P --workers N [--sqlite PATH]`` serves one with the
uvicorn options of ``fieldbook serve`` (``api.cli.serve``)."""

import argparse
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

_SQLITE_ENV = "BENCH_BARE_SQLITE"
Tag = Annotated[str, StringConstraints(max_length=200)]


class Body(BaseModel):
    model_config = {"extra": "forbid"}

    id: uuid.UUID | None = None
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
    kind: Literal["note", "quote", "behaviour", "process", "pain_point", "idea", "question"] | None = None
    observed_at: AwareDatetime | None = None
    quote: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000)] | None = None
    speaker_role: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    speaker_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    dimension: Literal["scene", "words_actions", "organisation"] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)
    hypothesis_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)


def _echo(stint_id: uuid.UUID, body: Body) -> dict[str, Any]:
    return {
        **body.model_dump(mode="json"),
        "id": str(body.id or uuid.uuid4()),
        "stint_id": str(stint_id),
        "version": 1,
        "created_at": datetime.now(UTC).isoformat(),
    }


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/stints/{stint_id}/observations", status_code=201)
    def create(stint_id: uuid.UUID, body: Body) -> JSONResponse:
        return JSONResponse(_echo(stint_id, body), status_code=201)

    return app


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def prepare_sqlite(path: str) -> None:
    with _connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS observation (id TEXT PRIMARY KEY, stint_id TEXT NOT NULL,"
            " text TEXT NOT NULL, kind TEXT, speaker_role TEXT, tags TEXT, version INTEGER NOT NULL,"
            " created_at TEXT NOT NULL)"
        )


def sqlite_app() -> FastAPI:
    path = os.environ[_SQLITE_ENV]
    local = threading.local()  # one connection per threadpool thread, as a pool would hand out
    app = FastAPI()

    @app.post("/api/stints/{stint_id}/observations", status_code=201)
    def create(stint_id: uuid.UUID, body: Body) -> JSONResponse:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = _connect(path)
        out = _echo(stint_id, body)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO observation VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (
                    out["id"],
                    out["stint_id"],
                    body.text,
                    body.kind,
                    body.speaker_role,
                    ",".join(body.tags or []),
                    out["created_at"],
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return JSONResponse(out, status_code=201)

    return app


def main() -> None:
    from api import workers

    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--kind", choices=["echo", "sqlite"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sqlite", help="the database file of --kind sqlite")
    args = parser.parse_args()
    if args.kind == "sqlite":
        prepare_sqlite(args.sqlite)
        os.environ[_SQLITE_ENV] = args.sqlite  # inherited by the worker processes
    # The options of `fieldbook serve` (api/cli.py), but our JSON logging, which needs our app.
    workers.run(
        f"bench.bare_app:{args.kind}_app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_config=None,
    )


if __name__ == "__main__":
    main()
