"""The load run in short (issue #8): 20 researchers capture, upload photos, sync and search for 10 s
against ``fieldbook serve --workers 2`` on this leg's database (a fresh one beside
FIELDBOOK_TEST_DATABASE_URL on PostgreSQL). No latency thresholds here: those are ``make bench``'s;
this checks that nothing fails under concurrency and nothing acknowledged is lost."""

from pathlib import Path

from bench.load import OPS, load_run
from tests.conftest import PG_URL

RESEARCHERS = 20
SECONDS = 10.0
MIN_PER_OP = 5  # each researcher makes ~15 requests in 10 s; the rarest operation (photos) is 10% of them


def test_field_team_under_load_loses_nothing(tmp_path: Path) -> None:
    result = load_run(RESEARCHERS, SECONDS, tmp_path, PG_URL or None)
    table = result.table()
    print(table)
    assert result.errors == 0, table
    assert not result.server_errors, table
    assert result.observations and result.materials, table
    assert result.missing == [], table
    for op in OPS:
        assert len(result.ops[op].latencies) >= MIN_PER_OP, table
