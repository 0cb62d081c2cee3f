"""The load run (issue #8): simulated researchers capture, upload photos, sync and search against a
real ``fieldbook serve --workers 2`` on loopback, on SQLite or PostgreSQL.

Each researcher is one asyncio task with its own ``httpx.AsyncClient`` (a phone) and a small think
time between requests, so this is a busy field team rather than a flood. Every answer other than
the expected status is an error; afterwards every acknowledged observation (with its acknowledged
version) and photo is looked up in the database.

``python -m bench.load [--researchers 50] [--duration 60] [--postgres URL]`` prints the table."""

import argparse
import asyncio
import io
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from PIL import Image, ImageDraw
from sqlmodel import Session, col, select

from api import migrations, security
from api.auth import open_session
from api.db import make_engine
from api.material_tables import Material
from api.models import Observation, User
from bench.search_corpus import (
    ACTIVITIES,
    DIMENSIONS,
    ENGLISH,
    KINDS,
    QUOTES,
    ROLES,
    SYSTEMS,
    TAGS,
    TEMPLATES,
)
from bench.search_corpus import _sentences as seed_sentences
from tests.live_server import LiveServer, fresh_postgres_database

OPS = ("capture", "photo", "push", "pull", "search")
WEIGHTS = (35, 10, 15, 20, 20)  # a field day: mostly notes, reading the feed and looking things up
THINK = (0.2, 1.0)  # seconds between one researcher's requests
PER_STINT = 10
TIMEZONE = "Asia/Shanghai"
SEARCH_TERMS = [
    *("排班", "对账", "调度员", "仓库", "手写", "审批", "月结", "客户", "报表", "系统", "沉浸式", "洞见"),
    *("客户洞见", "老板", "痛点", "司机", "财务经理", "数据"),
    *("Excel", "dispatcher", "offline", "spreadsheet", "dashboard", "invoices", "ERP", "WeChat"),
    *('"月底对账"', "排班 Excel", "kind:quote", "tag:痛点", "对账 -Excel"),
]


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)  # seconds, successful or not
    errors: int = 0

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1]


@dataclass
class LoadResult:
    database: str
    researchers: int
    seconds: float = 0.0
    ops: dict[str, OpStats] = field(default_factory=lambda: {op: OpStats() for op in OPS})
    samples: list[str] = field(default_factory=list)  # the first few errors, with their bodies
    observations: dict[str, int] = field(default_factory=dict)  # acknowledged: id -> version
    materials: set[str] = field(default_factory=set)  # acknowledged photo ids
    missing: list[str] = field(default_factory=list)  # acknowledged but absent or at another version
    server_errors: list[str] = field(default_factory=list)  # ERROR lines from the server's log

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.ops.values())

    @property
    def requests(self) -> int:
        return sum(len(s.latencies) for s in self.ops.values())

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def table(self) -> str:
        lines = [
            f"load run: {self.researchers} researchers, {self.seconds:.0f} s, {self.database}",
            f"{'op':<8} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}",
        ]
        for op, s in self.ops.items():
            top = max(s.latencies, default=0.0)
            lines.append(
                f"{op:<8} {len(s.latencies):>6} {s.errors:>6} {s.quantile(0.5) * 1000:>8.1f} "
                f"{s.quantile(0.95) * 1000:>8.1f} {top * 1000:>8.1f}"
            )
        lines.append(f"total    {self.requests:>6} {self.errors:>6}  {self.throughput:.1f} requests/s")
        lines.append(
            f"acknowledged: {len(self.observations)} observations, {len(self.materials)} photos; "
            f"missing afterwards: {len(self.missing)}"
        )
        lines += [f"error: {s}" for s in self.samples] + [f"missing: {m}" for m in self.missing[:5]]
        lines += [f"server: {line}" for line in self.server_errors]
        return "\n".join(lines)


@dataclass(frozen=True)
class Researcher:
    user_id: str
    email: str
    token: str
    stint_id: str


class Content:
    """Field-note text from the domain seeds, and phone-sized JPEGs made once and told apart by a
    comment segment (a real phone never sends the same bytes twice)."""

    def __init__(self, seed: int = 5) -> None:
        rnd = random.Random(seed)
        self.sentences = seed_sentences()
        self.photos = [_photo(rnd) for _ in range(4)]

    def note(self, rnd: random.Random, stint_id: str | None = None) -> dict[str, Any]:
        text = rnd.choice(TEMPLATES).format(
            act=rnd.choice(ACTIVITIES),
            role=rnd.choice(ROLES),
            sys=rnd.choice(SYSTEMS),
            sent=rnd.choice(self.sentences),
            eng=rnd.choice(ENGLISH).format(sys=rnd.choice(SYSTEMS)),
        )
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "text": text,
            "kind": rnd.choice(KINDS),
            "observed_at": datetime.now(UTC).isoformat(),
            "tags": rnd.sample(TAGS, rnd.randint(0, 3)),
            "dimension": rnd.choice(DIMENSIONS),
        }
        if body["kind"] == "quote":
            body["quote"] = rnd.choice(QUOTES).format(sys=rnd.choice(SYSTEMS))
            body["speaker_role"] = rnd.choice(ROLES)
        if stint_id:
            body["stint_id"] = stint_id
        return body

    def photo(self, rnd: random.Random) -> bytes:
        jpeg = rnd.choice(self.photos)
        comment = uuid.uuid4().bytes
        return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def _photo(rnd: random.Random) -> bytes:
    """A 1280x960 JPEG of coloured shapes and noise, some 100-300 KB like a downscaled phone photo."""
    img = Image.effect_noise((1280, 960), 40).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(30):
        x, y = rnd.randrange(1200), rnd.randrange(900)
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.rectangle((x, y, x + rnd.randrange(40, 400), y + rnd.randrange(40, 300)), fill=colour)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=70)
    return out.getvalue()


class Phone:
    """One researcher's device: what it has been told (versions, feed cursor) and its requests."""

    def __init__(
        self, who: Researcher, client: httpx.AsyncClient, content: Content, result: LoadResult
    ) -> None:
        self.who, self.client, self.content, self.result = who, client, content, result
        self.rnd = random.Random(who.email)
        self.versions: dict[str, int] = {}  # this phone's acknowledged observations
        self.summary_version: int | None = None
        self.cursor: str | None = None

    async def call(self, op: str, expected: int, method: str, url: str, **kw: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            r = await self.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.record(op, time.perf_counter() - started, f"{op} {method} {url}: {exc!r}")
            return None
        elapsed = time.perf_counter() - started
        if r.status_code != expected:
            self.record(op, elapsed, f"{op} {method} {url}: {r.status_code} {r.text[:400]}")
            return None
        self.result.ops[op].latencies.append(elapsed)
        return r

    def record(self, op: str, elapsed: float, sample: str) -> None:
        stats = self.result.ops[op]
        stats.latencies.append(elapsed)
        stats.errors += 1
        if len(self.result.samples) < 5:
            self.result.samples.append(sample)

    def acknowledge(self, obs_id: str, version: int) -> None:
        self.versions[obs_id] = version
        self.result.observations[obs_id] = version

    async def capture(self) -> None:
        body = self.content.note(self.rnd)
        r = await self.call(
            "capture", 201, "POST", f"/api/stints/{self.who.stint_id}/observations", json=body
        )
        if r is not None:
            self.acknowledge(body["id"], r.json()["version"])

    async def photo(self) -> None:
        material_id = str(uuid.uuid4())
        form = {"id": material_id, "caption": self.rnd.choice(self.content.sentences)[:200]}
        if self.versions and self.rnd.random() < 0.7:
            form["observation_id"] = self.rnd.choice(list(self.versions))
        name = f"IMG_{self.rnd.randrange(10000):04d}.jpg"
        files = {"file": (name, self.content.photo(self.rnd), "image/jpeg")}
        r = await self.call(
            "photo", 201, "POST", f"/api/stints/{self.who.stint_id}/materials", data=form, files=files
        )
        if r is not None:
            self.result.materials.add(material_id)

    async def push(self) -> None:
        """An outbox flush: a few new notes, sometimes an edit of one of ours, sometimes the day's summary."""
        ops: list[dict[str, Any]] = []
        for _ in range(self.rnd.randint(1, 4)):
            note = self.content.note(self.rnd, self.who.stint_id)
            ops.append({"type": "observation", "id": note.pop("id"), "base_version": None, "data": note})
        if self.versions and self.rnd.random() < 0.5:
            obs_id = self.rnd.choice(list(self.versions))
            data = {"tags": self.rnd.sample(TAGS, 2), "text": self.content.note(self.rnd)["text"]}
            ops.append(
                {"type": "observation", "id": obs_id, "base_version": self.versions[obs_id], "data": data}
            )
        if self.rnd.random() < 0.3:
            today = datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
            ops.append(
                {
                    "type": "daily_summary",
                    "id": f"{self.who.stint_id}:{self.who.user_id}:{today}",
                    "base_version": self.summary_version,
                    "data": {"summary": " ".join(self.rnd.sample(self.content.sentences, 3))},
                }
            )
        for op in ops:
            op |= {"op_id": uuid.uuid4().hex, "op": "upsert"}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        r = await self.call("push", 200, "POST", "/api/sync/push", json={"ops": ops}, headers=headers)
        if r is None:
            return
        for op, res in zip(ops, r.json()["results"], strict=True):
            if res["status"] != "applied":  # nobody else writes these records: anything else is a bug
                self.record("push", 0.0, f"push op {op['type']} {op['id']}: {res}")
                self.result.ops["push"].latencies.pop()  # an op, not a request: keep the count honest
            elif op["type"] == "observation":
                self.acknowledge(op["id"], res["version"])
            else:
                self.summary_version = res["version"]

    async def pull(self) -> None:
        params: dict[str, Any] = {"limit": 200} | ({"since": self.cursor} if self.cursor else {})
        r = await self.call("pull", 200, "GET", "/api/sync/changes", params=params)
        if r is not None:
            self.cursor = r.json()["cursor"]

    async def search(self) -> None:
        params: dict[str, Any] = {"q": self.rnd.choice(SEARCH_TERMS)}
        if self.rnd.random() < 0.5:
            params["stint_id"] = self.who.stint_id
        await self.call("search", 200, "GET", "/api/search", params=params)

    async def work(self, until: float) -> None:
        actions = {op: getattr(self, op) for op in OPS}
        await asyncio.sleep(self.rnd.uniform(0, THINK[1]))  # people do not all press at once
        while time.monotonic() < until:
            await actions[self.rnd.choices(OPS, WEIGHTS)[0]]()
            await asyncio.sleep(self.rnd.uniform(*THINK))


def add_accounts(database_url: str, count: int, prefix: str) -> list[tuple[str, str, str]]:
    """``count`` accounts with bearer tokens, written straight to the database with one shared
    password hash (argon2 is slow on purpose): (user id, e-mail, token) each."""
    engine = make_engine(database_url)
    password_hash = security.hash_password(uuid.uuid4().hex)
    out = []
    try:
        migrations.upgrade(engine)
        with Session(engine) as session:
            for i in range(count):
                user = User(
                    email=f"{prefix}{i}@example.com", name=f"{prefix} {i}", password_hash=password_hash
                )
                session.add(user)
                session.flush()
                token, _ = open_session(session, user.id, timedelta(days=1), "bench.load")
                out.append((str(user.id), user.email, token))
    finally:
        engine.dispose()
    return out


def enrol(url: str, database_url: str, researchers: int) -> list[Researcher]:
    """Stints of up to ``PER_STINT`` researchers, each opened by its manager, members added by the API."""
    stints = -(-researchers // PER_STINT)
    managers = add_accounts(database_url, stints, "manager")
    people = add_accounts(database_url, researchers, "researcher")
    today = date.today()
    team = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for s, (_, _, manager_token) in enumerate(managers):
            auth = {"Authorization": f"Bearer {manager_token}"}
            stint = {
                "title": f"驻场调研 {s + 1}",
                "customer": "顺达物流",
                "purpose": "product",
                "start_date": (today - timedelta(days=20)).isoformat(),
                "end_date": (today + timedelta(days=20)).isoformat(),
                "timezone": TIMEZONE,
            }
            r = client.post("/api/stints", json=stint, headers=auth)
            r.raise_for_status()
            stint_id = r.json()["id"]
            for user_id, email, token in people[s * PER_STINT : (s + 1) * PER_STINT]:
                r = client.post(
                    f"/api/stints/{stint_id}/members",
                    json={"email": email, "role": "researcher"},
                    headers=auth,
                )
                r.raise_for_status()
                team.append(Researcher(user_id, email, token, stint_id))
    return team


async def drive(url: str, team: list[Researcher], seconds: float, result: LoadResult) -> None:
    content = Content()
    until = time.monotonic() + seconds
    clients = [
        httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {r.token}"})
        for r in team
    ]
    started = time.monotonic()
    try:
        await asyncio.gather(
            *(Phone(r, c, content, result).work(until) for r, c in zip(team, clients, strict=True))
        )
    finally:
        result.seconds = time.monotonic() - started
        for c in clients:
            await c.aclose()


def verify(database_url: str, result: LoadResult) -> None:
    """Every acknowledged observation is there at its acknowledged version; every photo is there."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            ids = [uuid.UUID(i) for i in result.observations]
            found: dict[str, int] = {}
            for i in range(0, len(ids), 500):
                rows = session.exec(
                    select(Observation.id, Observation.version).where(
                        col(Observation.id).in_(ids[i : i + 500]), col(Observation.deleted_at).is_(None)
                    )
                )
                found |= {str(obs_id): version for obs_id, version in rows}
            photos = [uuid.UUID(i) for i in result.materials]
            stored = set()
            for i in range(0, len(photos), 500):
                stored |= {
                    str(m)
                    for m in session.exec(
                        select(Material.id).where(
                            col(Material.id).in_(photos[i : i + 500]), col(Material.deleted_at).is_(None)
                        )
                    )
                }
    finally:
        engine.dispose()
    for obs_id, version in result.observations.items():
        if found.get(obs_id) != version:
            result.missing.append(
                f"observation {obs_id}: acknowledged v{version}, stored {found.get(obs_id)}"
            )
    result.missing += [f"photo {m}" for m in result.materials - stored]


@contextmanager
def database(kind: str, workdir: Path, pg_base_url: str | None) -> Iterator[str]:
    """A fresh database: a SQLite file in ``workdir``, or a new PostgreSQL database (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'fieldbook.db'}"
        return
    assert pg_base_url, "PostgreSQL needs a server URL"
    name = f"fieldbook_load_{uuid.uuid4().hex[:8]}"
    url = fresh_postgres_database(pg_base_url, name)
    try:
        yield url
    finally:
        admin = sa.create_engine(pg_base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def load_run(researchers: int, seconds: float, workdir: Path, pg_base_url: str | None = None) -> LoadResult:
    """Start a server on a fresh data dir and database, run the team, stop it, check what was acknowledged."""
    kind = "postgresql" if pg_base_url else "sqlite"
    result = LoadResult(database=kind, researchers=researchers)
    with database(kind, workdir, pg_base_url) as url:
        server = LiveServer(data_dir=workdir / "data", database_url=url, workers=2)
        server.start()
        try:
            team = enrol(server.url, url, researchers)
            asyncio.run(drive(server.url, team, seconds, result))
        finally:
            server.stop()
        verify(url, result)
    log = workdir / "data" / "server.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    result.server_errors = [ln[:400] for ln in lines if '"ERROR"' in ln or "Traceback" in ln][:5]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--researchers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--postgres", metavar="URL", help="run on a fresh database beside this one")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (server log) afterwards")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fieldbook-load-"))
    try:
        result = load_run(args.researchers, args.duration, workdir, args.postgres)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(result.table())
    return 1 if result.errors or result.missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
