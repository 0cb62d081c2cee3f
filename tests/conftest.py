"""Test fixtures: a freshly migrated database per test, on SQLite by default or on PostgreSQL
when FIELDBOOK_TEST_DATABASE_URL names one (each test run gets its own database there)."""

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

from api import migrations, security
from api.auth import open_session
from api.config import Settings
from api.db import make_engine
from api.main import create_app
from api.models import User

PG_URL = os.environ.get("FIELDBOOK_TEST_DATABASE_URL", "")
PASSWORD = "correct horse battery"
_PASSWORD_HASH = security.hash_password(PASSWORD)  # hashed once: argon2 is slow on purpose


def create_op(stint_id: str, text: str, **data: Any) -> dict[str, Any]:
    """A sync push's op creating a new observation in ``stint_id``."""
    return {
        "op_id": uuid.uuid4().hex,
        "type": "observation",
        "id": str(uuid.uuid4()),
        "op": "upsert",
        "base_version": None,
        "data": {"stint_id": stint_id, "text": text, **data},
    }


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (set FIELDBOOK_TEST_DATABASE_URL for PostgreSQL)'}"


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite: a migrated file copied per test. PostgreSQL: a migrated database of this run."""
    if not PG_URL:
        path = tmp_path_factory.mktemp("template") / "fieldbook.db"
        engine = make_engine(f"sqlite:///{path}")
        migrations.upgrade(engine)
        engine.dispose()
        yield str(path)
        return
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"fieldbook_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        path = tmp_path / "fieldbook.db"
        shutil.copy(database_template, path)
        yield f"sqlite:///{path}"
        return
    yield database_template
    engine = make_engine(database_template)
    # DELETE, children first: on these tiny tables ~10x faster than TRUNCATE.
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def db(app: FastAPI) -> Iterator[Session]:
    # Reads here must not hold SQLite's write lock while the app handles a request.
    with Session(app.state.read_engine, expire_on_commit=False) as session:
        yield session


@dataclass
class Person:
    """A test account with a live session."""

    user: User
    token: str
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}"}

    @property
    def id(self) -> str:
        return str(self.user.id)

    @property
    def email(self) -> str:
        return self.user.email


@pytest.fixture
def person(db: Session):  # type: ignore[no-untyped-def]
    """Factory: ``person("Li Wei")`` makes an account and signs it in."""

    def make(name: str = "Researcher", *, admin: bool = False, email: str | None = None) -> Person:
        email = email or f"{uuid.uuid4().hex[:10]}@example.com"
        user = User(email=email, name=name, password_hash=_PASSWORD_HASH, is_admin=admin)
        db.add(user)
        db.flush()  # no ORM relationships, so the unit of work does not order inserts by foreign key
        token, _ = open_session(db, user.id, timedelta(days=1))
        return Person(user=user, token=token)

    return make


STINT = {
    "title": "华东物流调度驻场",
    "customer": "顺达物流",
    "purpose": "product",
    "start_date": "2026-03-02",
    "end_date": "2026-03-27",
    "site": "上海嘉定仓",
    "timezone": "Asia/Shanghai",
}


@pytest.fixture
def stint_team(client: TestClient, person):  # type: ignore[no-untyped-def]
    """A stint with a manager, a researcher and a viewer, plus an outsider and an admin."""
    manager, researcher, viewer = person("王经理"), person("李研究员"), person("赵观察")
    outsider, admin = person("Outsider"), person("Admin", admin=True)
    stint = client.post("/api/stints", json=STINT, headers=manager.headers).json()
    for member, role in ((researcher, "researcher"), (viewer, "viewer")):
        r = client.post(
            f"/api/stints/{stint['id']}/members",
            json={"email": member.email, "role": role},
            headers=manager.headers,
        )
        assert r.status_code == 201, r.text
    return {
        "stint": stint,
        "manager": manager,
        "researcher": researcher,
        "viewer": viewer,
        "outsider": outsider,
        "admin": admin,
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, one per browser test module (each skips itself where
    there is none: tests.e2e_support.browser_scenarios)."""
    from tests.e2e_support import chromium

    with chromium() as b:
        yield b
