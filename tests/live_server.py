"""A real Fieldbook server in a child process (``fieldbook serve``, uvicorn with worker processes) for the
crash and load runs: its own data directory and database, a free loopback port, killed on exit."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from api import migrations, security
from api.auth import open_session
from api.db import make_engine
from api.models import User

FIELDBOOK = str(Path(sys.executable).with_name("fieldbook"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """``start()`` / ``kill()`` / ``stop()`` a server on a fixed port, data dir and database."""

    data_dir: Path
    database_url: str
    workers: int = 2
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "FIELDBOOK_DATA_DIR": str(self.data_dir),
            "FIELDBOOK_DATABASE_URL": self.database_url,
            "FIELDBOOK_LOG_JSON": "1",
            **self.env,
        }

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "server.log").open("ab")
        # A session of its own: kill() signals the supervisor and every worker at once.
        self.process = subprocess.Popen(
            [FIELDBOOK, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"the server did not answer within {timeout}s; see {log.name}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown code runs anywhere (the crash case)."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


@contextmanager
def live_server(data_dir: Path, database_url: str, *, workers: int = 2) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=data_dir, database_url=database_url, workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def add_account(database_url: str, email: str, name: str, password: str, *, admin: bool = False) -> str:
    """An account and a bearer token, written straight to the database (argon2 in the server is slow)."""
    engine = make_engine(database_url)
    try:
        migrations.upgrade(engine)
        with Session(engine) as session:
            user = User(
                email=email, name=name, password_hash=security.hash_password(password), is_admin=admin
            )
            session.add(user)
            session.flush()
            token, _ = open_session(session, user.id, timedelta(days=1))
            session.commit()
        return token
    finally:
        engine.dispose()


def fresh_postgres_database(base_url: str, name: str) -> str:
    """A new, empty PostgreSQL database beside ``base_url``'s (dropped first if it exists)."""
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)
