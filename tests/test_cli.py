"""The ``fieldbook`` command, run as a real process against a real database."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FIELDBOOK = [sys.executable, "-m", "api.cli"]


def run(args, settings, **kwargs):
    env = {
        **os.environ,
        "FIELDBOOK_DATA_DIR": str(settings.data_dir),
        "FIELDBOOK_DATABASE_URL": settings.sqlalchemy_url,
    }
    return subprocess.run([*FIELDBOOK, *args], env=env, capture_output=True, text=True, timeout=60, **kwargs)


def test_user_add_reads_password_from_stdin_and_can_sign_in(settings, client):
    r = run(
        ["user", "add", "Zhang.Min@Example.com", "--name", "张敏", "--admin"],
        settings,
        input="a good long password\n",
    )
    assert r.returncode == 0, r.stderr
    assert "zhang.min@example.com" in r.stderr
    token = client.post(
        "/api/auth/token", data={"username": "zhang.min@example.com", "password": "a good long password"}
    )
    assert token.status_code == 200
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()
    assert me["name"] == "张敏" and me["is_admin"] is True

    again = run(["user", "add", "zhang.min@example.com"], settings, input="another long password\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = run(["user", "add", "short@example.com"], settings, input="short\n")
    assert weak.returncode == 1 and "at least" in weak.stderr
    listed = run(["user", "list"], settings)
    assert "zhang.min@example.com\t张敏\tadmin" in listed.stdout


def test_migrate_creates_a_fresh_database(tmp_path: Path):
    env = {**os.environ, "FIELDBOOK_DATA_DIR": str(tmp_path / "fresh")}
    env.pop("FIELDBOOK_DATABASE_URL", None)
    r = subprocess.run([*FIELDBOOK, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "fresh" / "fieldbook.db").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_migrates_and_tells_how_to_sign_in(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "FIELDBOOK_DATA_DIR": str(tmp_path / "served")}
    env.pop("FIELDBOOK_DATABASE_URL", None)
    proc = subprocess.Popen(
        [*FIELDBOOK, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("server did not answer")
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "Fieldbook" in page.text
        # Each worker accepts from a listening socket of its own (api/workers.py); the second may
        # still be starting when the first answers.
        deadline = time.monotonic() + 30
        while len(held := _listening_sockets_held(proc.pid, port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(held) == 2 and len(set(held.values())) == 2, held
        # The serving process keeps the search index for its workers, which run no indexer of their own.
        for worker in held:
            assert b"FIELDBOOK_INDEXER_THREAD=0" in Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        # A worker that dies is replaced, on the socket (and with the queue) it had.
        dead = next(iter(held))
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and dead in _listening_sockets_held(proc.pid, port):
            time.sleep(0.2)
        while time.monotonic() < deadline and len(_listening_sockets_held(proc.pid, port)) < 2:
            time.sleep(0.2)
        now = _listening_sockets_held(proc.pid, port)
        assert dead not in now and sorted(now.values()) == sorted(held.values()), (held, now)
        assert all(httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200 for _ in range(20))
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert "user add" in output and "--admin" in output
    assert f"http://127.0.0.1:{port}/docs" in output


def _listening_sockets_held(supervisor: int, port: int) -> dict[int, int]:
    """Each worker process of ``supervisor`` -> the inode of the socket listening on ``port`` it holds."""
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            listening.add(int(fields[9]))
    held = {}
    for worker in (p for p in Path("/proc").glob("[0-9]*") if _parent(p) == supervisor):
        try:
            links = [os.readlink(fd) for fd in (worker / "fd").iterdir()]
        except OSError:
            continue  # gone meanwhile
        mine = [int(link[8:-1]) for link in links if link.startswith("socket:[")]
        for inode in set(mine) & listening:
            held[int(worker.name)] = inode
    return held


def _parent(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile


def test_demo_loads_a_realistic_stint_for_the_first_admin(settings, client, person):
    admin = person("演示管理员", admin=True)
    r = run(["demo"], settings)
    assert r.returncode == 0, r.stderr + r.stdout
    stints = client.get("/api/stints", headers=admin.headers).json()
    assert len(stints) == 1 and stints[0]["my_role"] == "manager"
    sid = stints[0]["id"]
    page = client.get(f"/api/stints/{sid}/observations", headers=admin.headers).json()["items"]
    texts = " ".join(o["text"] for o in page)
    assert len(page) == 12 and "白板" in texts and "Dispatch" in texts
    debrief = client.get(f"/api/stints/{sid}/debrief", headers=admin.headers)
    assert debrief.status_code == 200
    actions = client.get(f"/api/stints/{sid}/actions", headers=admin.headers).json()
    assert len(actions if isinstance(actions, list) else actions["items"]) == 3
    # The demo's own sessions were closed again.
    assert run(["demo", "--owner", "nobody@example.com"], settings).returncode == 1


def test_served_app_keeps_its_startup_objects_out_of_the_collector(tmp_path: Path):
    """`fieldbook serve` builds each worker's app with api.main:serve_app, which freezes what exists
    then (otherwise every full collection walks it, stalling the worker). In a child process: a
    freeze here would outlive this test."""
    env = {**os.environ, "FIELDBOOK_DATA_DIR": str(tmp_path / "served")}
    env.pop("FIELDBOOK_DATABASE_URL", None)
    code = (
        "import gc; from api.main import serve_app; app = serve_app(); "
        "print(gc.get_freeze_count(), len(gc.get_objects()), type(app).__name__)"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    frozen, tracked, kind = r.stdout.split()
    assert kind == "FastAPI"
    assert int(frozen) > 50_000  # the modules and schemas (~170,000 objects)
    assert int(tracked) < int(frozen) // 100  # left for the collector: what requests create


def test_commands_before_migrate_say_so_instead_of_a_traceback(tmp_path: Path):
    env = {**os.environ, "FIELDBOOK_DATA_DIR": str(tmp_path / "new")}
    env.pop("FIELDBOOK_DATABASE_URL", None)
    for args, stdin in (
        (["user", "add", "li@example.com"], "a good long password\n"),
        (["user", "list"], ""),
    ):
        r = subprocess.run(
            [*FIELDBOOK, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 1, r.stderr
        assert "fieldbook migrate" in r.stderr and "Traceback" not in r.stderr
    migrated = subprocess.run([*FIELDBOOK, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    added = subprocess.run(
        [*FIELDBOOK, "user", "add", "li@example.com"],
        env=env,
        input="a good long password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
