"""The PostgreSQL server the benchmarks use beside SQLite: FIELDBOOK_TEST_DATABASE_URL, or the local test
server; benchmarks print a "skipped" row when it does not answer."""

import os

import sqlalchemy as sa

PG_URL = os.environ.get("FIELDBOOK_TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def answers(url: str = PG_URL) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()
