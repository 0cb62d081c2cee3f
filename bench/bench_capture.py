"""Capture over HTTP: observation creates per second through a real ``fieldbook serve`` (uvicorn, 2
worker processes, SQLite in a temporary data directory), against bare FastAPI apps (``bench/bare_app.py``)
served by uvicorn with the same workers and options, driven by the same clients in the same run.

Each of ``CLIENTS`` concurrent clients (one ``httpx.AsyncClient`` and connection each, like a phone)
posts ``POST /api/stints/{id}/observations`` back to back, signed in, with its own UUIDs and Chinese
text; after a warm-up, the 201s in a fixed window are counted (any other answer is an error).

Baselines: ``echo`` (validate the same body shape, answer 201, no database) is the target's (>= 0.5 x);
``sqlite`` (the same plus one INSERT and COMMIT per request, WAL, synchronous=FULL, BEGIN IMMEDIATE) is
the fairer one: it pays for the same durable commit. Client and servers share the machine's cores, so
the bare apps' rates are bounded by the client and the scheduler more than by their own work (their
servers use well under a millisecond of CPU per request): the rate ratios flatter us. The server CPU
per create (every process of the server's group, from /proc) is reported beside them: other load on
the machine disturbs it far less than rates.

Where our time goes (issue #8; per-thread CPU from /proc/<pid>/task, named with py-spy dump; Nov 2026,
2 cores shared with other jobs, so CPU figures swing by +-30 % between runs: compare A/B pairs).
FastAPI runs each ``def`` dependency, the route and the answer's validation as separate threadpool
calls; a create made 7 (session open, sign-in, current user, stint role, route, answer, session
close) and now makes 2 (sign-in + role in one call, then the route): the session dependency and
``current_user`` are async, the role check signs the request in itself, and the route returns its
JSON itself (the same bytes) instead of a model FastAPI validates again. A/B on the real server
(interleaved, 8 s windows): 8.4 / 8.2 / 4.9 -> 7.1 / 5.7 / 6.0 ms per create with 3 calls. Of
~4.5-8 ms of server CPU per create now: request threads ~2.2-3.3 ms (of which the SQLite driver and fsync'd
COMMIT are a small part: the rest is SQLAlchemy's session and ORM machinery for the sign-in, role,
existence check and INSERTs, pydantic, the change log), event loop ~1.0-1.7 ms (uvicorn, routing,
request validation, JSON, access log, thread handovers), search indexer 0.5-1.2 ms (Whoosh; it
depends on which rounds meet a segment merge, so an 8 s window swings widely). A round's cost is
mostly per round: ~1.5 ms per document in rounds of 20, ~0.45 ms in rounds of 150; under a stream
of writes rounds now start every 0.5 s instead of 0.25 s (1.7 -> 1.1 ms per create, medians of
three A/B pairs). From the 201 to the index commit under this load: p95 0.6 s on a faster machine,
0.9-1.2 s on a slower one (24 Nov): rounds cannot be spaced further without breaking "searchable
within a second". Of a round (Whoosh, in process): writing postings ~48 %, merging segments ~28 %,
Chinese analysis ~6 %, loading the documents ~6 %.

24 Nov 2026, a machine about half as fast (echo 490-630/s): the sign-in and stint role became one
query built once, and the create no longer reads its id before the INSERT (a taken id meets the
primary key; the write transaction is its INSERTs and COMMIT): request threads 5.7-6.7 -> 3.8-4.2 ms
per create (interleaved A/B pairs); whole server ~10.3 -> ~8.7 ms; ratio 0.19 -> 0.23. The three
parts are now about equal (request threads, event loop, indexer: ~2.2-4 ms each); our middleware
and JSON access log are ~60 us of the event loop's ~2.5 ms (FastAPI's dependency solving, the two
threadpool handovers and uvicorn are the rest).

Late 24 Nov 2026 (a loaded machine: load average ~6 on the 2 cores): each worker's indexer paced
only its own rounds, so with two workers they took turns every ~0.25 s, not 0.5 s (rounds of ~30-40
documents); the busy pace is now the index's (a stamp beside the indexer's lock): ~60 documents a
round, the indexer 1.6-1.9 -> 1.45-1.5 ms of CPU per document. The create also answers from its
column values without building the ORM row first (280 -> 20 us, timeit). Whole server, interleaved
A/B (8 s windows): 7.02 / 6.98 / 6.99 -> 5.44 / 6.71 / 5.56 ms per create. From the 201 to found by
a search under this load (a probe every ~0.15 s beside the 8 clients): p95 0.64-0.79 -> 0.86-0.91 s,
p50 ~0.3 -> ~0.35 s; a round that meets a large segment merge still takes ~1 s (the maximum, either
way, 0.9-1.7 s). Per thread after it (ms per create, /proc/<pid>/task): request threads ~3.3, event
loop ~1.9, indexer ~1.5 (the two workers' indexer threads taking turns); an access log line is ~25 us.
The kernel often hands all 8 connections to one worker (then the other only indexes): runs where the
load is split use more CPU per create (two event loops, writers queueing across processes), one more
reason to compare A/B pairs rather than single runs. The whole bench on that machine: echo 214-226/s
at 0.8-1.0 ms, ours 93-98/s at 7.3-7.6 ms (the ratio, 0.43, flatters us: the load held echo down).
Later, on a quieter machine (load ~2.5), with the observation routes matched first as well (~65 us
of route matching less, timeit): A/B 6.10 / 6.05 / 6.70 -> 4.97 / 6.42 / 6.67 ms per create, 164 /
165 / 148 -> 249 / 194 / 184 creates/s; the whole bench: echo 711-736/s at 0.6 ms, ours 129-152/s
at 6.4-7.6 ms, ratio 0.21 (0.26 the day before: within the swings).

The target (>= 0.5 x echo) is not met: the bare app with one durable INSERT uses ~0.6-1.0 ms of CPU
per create and ours 4.5-8 ms; at half the echo rate on two shared cores we would need ~2 ms. No one
part is worth more than ~1 ms, so the gap is the sum of a real product path (token and role checks
against the database on every request, four INSERTs with the change log and index task, the
SQLite writer gate, a search index kept within a second), not a single hot spot.

25 Nov 2026, a faster machine (echo 1,180-1,590/s at ~0.3 ms; ours 210-440/s at 2.5-4.6 ms, ratio
0.16-0.32, swinging with other load). Taking the write apart, the same server with parts switched off
by a temporary flag, interleaved, two rounds (ms of server CPU per create, creates/s):
- no write at all (sign-in, role, validation, the answer): 1.13-1.22 ms, 707-731/s (0.44-0.57 x echo
  in other runs);
- the write without its index task (the INSERTs, the writer gate, the fsync'd COMMIT): +1.3-1.5 ms,
  356-441/s. Single-threaded the write takes ~0.8 ms of wall time, ~0.35 ms of it the COMMIT's
  fsync: writers are serialised, so ~1,250 writes/s at best, and under load GIL waits stretch each
  gate hold to 1.1-2.6 ms (mean, instrumented): the writes' queue, not the CPU, sets the rate;
- indexing: +1.1-1.6 ms (Whoosh's bulk rate in bench_search is ~0.8 ms per document).
Half the echo rate on two cores shared with the client needs ~2 ms per create in all: the request
path with no write plus Whoosh's bulk indexing cost alone come to ~1.9-2.0 ms. The next steps, none
enough alone: group commit (one transaction for the creates waiting at the gate, which would lift
the writes' queue limit and share the COMMIT), and the indexer in a process of its own (off the
workers' GIL).

Later on 25 Nov: group commit (api/create_group.py; A/B 275 / 278 / 300 against 210 / 268 / 284
creates/s) and UV_TCP_SINGLE_ACCEPT (api/cli.py; it shares the connections between the workers in
some runs only). The whole bench after them: echo 1,536-1,550/s, ours 375-389/s at 2.5-2.6 ms,
ratio 0.25, within the morning's swing (0.24-0.32). Per-worker CPU shows why: in most runs one
worker serves all 8 connections (9.4 s of CPU in a 10 s window against 0.2 s), and its GIL caps it
near 1 / 2.5 ms = 400 creates/s whatever the writes cost; runs where the connections were shared
reached 452/s. In a sampled profile of that worker's GIL (py-spy --gil) the event loop held it ~49 %
(FastAPI's dependency solving ~14 %), the indexer ~25 %, the sign-in and role query ~13 %, the
grouped write ~8 %.

Later on 25 Nov 2026 (another machine: echo 1,225-1,391/s), the target came within reach by taking
away whole steps rather than trimming them. Figures are creates/s and server CPU per create; "split"
is per-thread CPU (/proc/<pid>/task, threads named with py-spy dump) over 7 s of the bench's load:
- parts switched off by a temporary flag (interleaved): everything 369-403/s at 3.0-3.1 ms; no
  indexer 498-504/s at 2.2 ms; no write either 736-769/s at 1.3-1.4 ms; with the sign-in answered
  from a cache as well 981-999/s at 0.7 ms: the ORM sign-in (query, session, threadpool call) cost
  ~0.6 ms, as much as the rest of the request path;
- the sign-in and role read on the event loop through sqlite3 (api/loop_sign_in.py): 400 / 382 ->
  449 / 463/s, 3.1 -> 2.5 ms;
- a listening socket per worker (api/workers.py, SO_REUSEPORT, replacing UV_TCP_SINGLE_ACCEPT; the
  bare apps are served the same way): no run with one worker alone any more (5 + 6 CPU-s instead
  of 0.2 + 9.4); ratio 0.37;
- the group's writer takes its batch once it holds the write lock: 1.6 -> 2.0 creates a COMMIT;
- the create route async, its write handed to a writer thread per worker and awaited (no
  threadpool call, no parked thread per waiting create): 0.46, 1.75 ms; split: event loop 0.72,
  writer 0.43, indexer 0.51 ms per create (before: loop 0.80, request threads 0.71, indexer 0.63);
- no request session in the route's dependencies, the loop sign-in through mmap: loop 0.66 ms;
- the writer through a Core connection, rows built without an ORM session: a batch of one 645 ->
  509 us of CPU in process; the bench 0.49 (635 vs 1,283/s, 1.71 ms).
Tried without effect: a shorter GIL switch interval (1 and 0.5 ms: 650 / 642 vs 643/s), a tiered
merge policy for the index (the same CPU per document as Whoosh's MERGE_SMALL in rounds of 100 and
of 300). What is left, per create: the event loop ~0.66-0.74 ms (uvicorn, FastAPI's dependencies
and validation, the JSON access log, the answer; the bare echo app's whole server is ~0.3), Whoosh
~0.5-0.65 (~0.47 ms a document plus ~34 ms a round, a round every 0.5 s under load), the writer
~0.45 (~0.15 of it system time: the fsync'd COMMIT, two per ~2 creates with two workers).

Later on 25 Nov 2026 (echo 1,384-1,461/s): the index kept apart from the workers. A/B pairs on the
real server (8 s windows, interleaved; creates/s):
- Whoosh's stored fields uncompressed (zlib, again at every merge, was ~17 % of the indexer): the
  indexer 0.55 -> 0.50 ms of CPU per create, rates within the noise (632-671 vs 643-684);
- one indexer in ``fieldbook serve``'s own process for both workers (api/search.py), none in the
  workers: 665 / 687 / 692 -> 738 / 740 / 744. In a worker the indexer shared the GIL with the event
  loop and the writer; the writer's COMMIT took 1.0-1.3 ms of wall time under load for 0.23 ms of
  CPU (0.33 ms alone, 0.63 ms beside two busy loops: a thread woken on a busy machine waits for a
  core), so anything that keeps the workers' threads off a core shortens every create;
- that indexer at nice 10, and request ids without a system call: 736 / 756 / 771 -> 757 / 775 / 783.
The whole bench after them: echo 1,384-1,443/s, ours 748-775/s at 1.49 ms, ratio 0.54 (met).
Per create: event loop ~0.58-0.60 ms (the sign-in's query ~80 us of it in the server, ~12 us in a
quiet process: each read after another connection's commit restarts SQLite's page cache, and its
memory map (munmap); answered from memory it would be +6 % but nothing would see a revocation),
indexer ~0.45-0.50 (its own process), writer ~0.35. Tried without effect: the GIL switch interval
(0.2-1 ms), no memory map for the sign-in's connection, a checkpoint thread instead of SQLite's
automatic checkpoints (+1 %), no security headers; no access log was +1-2 %."""

import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.figures import Figure
from tests.conftest import STINT
from tests.live_server import LiveServer, add_account, free_port

AREA = "capture"
CLIENTS = 8
WORKERS = 2  # as tests/live_server.py and the load run
TARGET = 0.5
SCENES = [
    "调度员每天早上 7 点手工排班，用 Excel 拖拽司机和线路",
    "仓库主管说：系统慢的时候我们就先手写，晚上再补录",
    "司机在门卫处排队领单，平均 20 分钟，高峰 40 分钟",
    "客服把客户投诉抄在便利贴上，贴在显示器边上",
    "财务月底对账靠打印出来的表格，三天才能关账",
]


@dataclass
class Rate:
    creates: int
    errors: int
    seconds: float
    client_cpu: float  # this process's CPU seconds in the window: how busy the client was
    statuses: dict[int, int]  # the answers other than 201, by status
    server_cpu: float  # CPU seconds of the server's processes in the window

    @property
    def cpu_ms_per_create(self) -> float:
        return 1000 * self.server_cpu / self.creates if self.creates else float("inf")

    @property
    def per_second(self) -> float:
        return self.creates / self.seconds


def _body(n: int) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "text": f"{SCENES[n % len(SCENES)]}（第 {n} 条）",
        "kind": "quote" if n % 3 == 0 else "note",
        "speaker_role": "调度员",
        "tags": ["排班", "现场"],
    }


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group: a figure that other
    load on the machine disturbs far less than requests per second."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp, ...; utime and stime at 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def _drive(
    url: str, path: str, headers: dict[str, str], warmup: float, seconds: float, pgid: int
) -> Rate:
    counter = itertools.count()
    state = {"measuring": False, "creates": 0, "errors": 0}
    statuses: dict[int, int] = {}
    stop = asyncio.Event()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            while not stop.is_set():
                r = await http.post(path, json=_body(next(counter)))
                if state["measuring"]:
                    state["creates" if r.status_code == 201 else "errors"] += 1
                if r.status_code != 201:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    tasks = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    await asyncio.sleep(warmup)
    cpu, server_cpu, started = time.process_time(), group_cpu(pgid), time.perf_counter()
    state["measuring"] = True
    await asyncio.sleep(seconds)
    state["measuring"] = False
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    server_cpu = group_cpu(pgid) - server_cpu
    stop.set()
    await asyncio.gather(*tasks)
    return Rate(int(state["creates"]), int(state["errors"]), elapsed, cpu, statuses, server_cpu)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bare app exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)  # any answer (404 here) means it listens
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError("the bare app did not answer")


@contextmanager
def _bare(kind: str, workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.bare_app",
            "--kind",
            kind,
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
        ]
        + (["--sqlite", str(workdir / f"bare-{uuid.uuid4().hex[:6]}.db")] if kind == "sqlite" else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers go with it
        cwd=Path(__file__).resolve().parent.parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url, process.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def _measure_bare(kind: str, workdir: Path, warmup: float, seconds: float) -> Rate:
    with _bare(kind, workdir) as (url, pgid):
        path = f"/api/stints/{uuid.uuid4()}/observations"
        return asyncio.run(_drive(url, path, {}, warmup, seconds, pgid))


def _measure_ours(workdir: Path, warmup: float, seconds: float) -> Rate:
    data = workdir / f"fieldbook-{uuid.uuid4().hex[:6]}"
    database_url = f"sqlite:///{data}/fieldbook.db"
    data.mkdir()
    token = add_account(database_url, "bench@example.com", "李研究员", "bench password 1")
    server = LiveServer(data_dir=data, database_url=database_url, workers=WORKERS)
    server.start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        stint = httpx.post(f"{server.url}/api/stints", json=STINT, headers=headers, timeout=30)
        stint.raise_for_status()
        path = f"/api/stints/{stint.json()['id']}/observations"
        assert server.process is not None
        return asyncio.run(_drive(server.url, path, headers, warmup, seconds, server.process.pid))
    finally:
        server.stop()


def run(quick: bool) -> list[Figure]:
    warmup, seconds, rounds = (1.0, 4.0, 1) if quick else (2.0, 10.0, 2)
    workdir = Path(tempfile.mkdtemp(prefix="fieldbook-bench-capture-"))
    best: dict[str, Rate] = {}
    errors = 0
    try:
        for _ in range(rounds):  # interleaved, best of the rounds: the machine is shared
            for name, measure in (
                ("echo", lambda: _measure_bare("echo", workdir, warmup, seconds)),
                ("sqlite", lambda: _measure_bare("sqlite", workdir, warmup, seconds)),
                ("ours", lambda: _measure_ours(workdir, warmup, seconds)),
            ):
                rate = measure()
                print(
                    f"  {name}: {rate.per_second:,.0f} creates/s ({rate.creates} in {rate.seconds:.1f}s, "
                    f"{rate.errors} errors {rate.statuses or ''}, server CPU {rate.cpu_ms_per_create:.1f} ms per create, "
                    f"client CPU {rate.client_cpu / rate.seconds:.0%})",
                    file=sys.stderr,
                    flush=True,
                )
                errors += rate.errors
                if name not in best or rate.per_second > best[name].per_second:
                    best[name] = rate
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ours, echo, bare_sqlite = best["ours"], best["echo"], best["sqlite"]
    ratio = ours.per_second / echo.per_second if echo.per_second else 0.0
    return [
        Figure(
            AREA,
            f"observation creates/s over HTTP, {CLIENTS} clients, {WORKERS} workers, SQLite",
            ours.per_second,
            "creates/s",
            baseline=echo.per_second,
            baseline_name="bare FastAPI echo",
            target=f">= {TARGET} x baseline",
            met=ratio >= TARGET,
        ),
        Figure(
            AREA,
            "the same, against a bare app that also commits one SQLite row",
            ours.per_second,
            "creates/s",
            baseline=bare_sqlite.per_second,
            baseline_name="bare FastAPI + INSERT/COMMIT",
        ),
        Figure(
            AREA,
            "server CPU per create (all processes; other load disturbs it less)",
            ours.cpu_ms_per_create,
            "ms",
            baseline=echo.cpu_ms_per_create,
            baseline_name="bare FastAPI echo",
        ),
        Figure(
            AREA,
            "server CPU per create, against the bare app with INSERT/COMMIT",
            ours.cpu_ms_per_create,
            "ms",
            baseline=bare_sqlite.cpu_ms_per_create,
            baseline_name="bare FastAPI + INSERT/COMMIT",
        ),
        Figure(AREA, "answers other than 201, all runs", errors, "requests", target="0", met=errors == 0),
    ]
