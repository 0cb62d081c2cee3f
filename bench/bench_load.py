"""Load: 50 simulated researchers capturing, uploading photos, syncing and searching for 60 s against
``fieldbook serve --workers 2`` on loopback (``bench/load.py``), on SQLite and on PostgreSQL.

Figures: p50/p95 per operation per database, requests per second, errors (any unexpected answer)
and acknowledged writes missing afterwards, both with the target 0. PostgreSQL runs when it answers
at FIELDBOOK_TEST_DATABASE_URL (default: the local test server); otherwise a row says it was skipped.
Quick: 20 researchers for 15 s."""

import shutil
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from bench.figures import Figure
from bench.load import OPS, LoadResult, load_run
from bench.postgres import PG_URL, answers

AREA = "load"


def _figures(result: LoadResult) -> list[Figure]:
    db = result.database
    figures = []
    for op in OPS:
        stats = result.ops[op]
        figures.append(
            Figure(
                AREA, f"{db}: {op} p50 ({len(stats.latencies)} requests)", stats.quantile(0.5) * 1000, "ms"
            )
        )
        figures.append(Figure(AREA, f"{db}: {op} p95", stats.quantile(0.95) * 1000, "ms"))
    figures += [
        Figure(AREA, f"{db}: throughput, {result.researchers} researchers", result.throughput, "requests/s"),
        Figure(AREA, f"{db}: errors", result.errors, "requests", target="= 0", met=result.errors == 0),
        Figure(
            AREA,
            f"{db}: acknowledged writes missing",
            len(result.missing),
            f"of {len(result.observations) + len(result.materials)}",
            target="= 0",
            met=not result.missing,
        ),
    ]
    return figures


def run(quick: bool) -> list[Figure]:
    researchers, seconds = (20, 15.0) if quick else (50, 60.0)
    figures: list[Figure] = []
    for pg_url in [None, PG_URL]:
        if pg_url and not answers(pg_url):
            figures.append(Figure(AREA, f"postgresql: skipped, no server at {sa.make_url(pg_url)}", 0, "-"))
            continue
        workdir = Path(tempfile.mkdtemp(prefix="fieldbook-bench-load-"))
        try:
            result = load_run(researchers, seconds, workdir, pg_url)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(result.table(), file=sys.stderr, flush=True)  # the detail; the figures go in the table
        figures += _figures(result)
    return figures
