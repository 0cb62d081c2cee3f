"""Materials: upload throughput against a plain copy of the same bytes on the same disk, and the
server's memory growth while it receives a large upload (a real uvicorn process on loopback)."""

import base64
import contextlib
import os
import shutil
import socket
import tempfile
import time
import uuid
from array import array
from pathlib import Path

import httpx

from bench.figures import Figure
from tests.conftest import STINT
from tests.live_server import LiveServer, add_account

ROOT = Path(__file__).resolve().parent.parent
AREA = "materials"


def _wav(path: Path, size: int) -> None:
    """A voice memo of ``size`` bytes of audio data (distinct words, not compressible)."""
    header = bytearray(b"RIFF" + (36 + size).to_bytes(4, "little") + b"WAVEfmt ")
    header += (16).to_bytes(4, "little") + bytes.fromhex("01000100401f0000803e00000200") + b"\x10\x00"
    header += b"data" + size.to_bytes(4, "little")
    with open(path, "wb") as f:
        f.write(header)
        step = 2**20 // 4
        for start in range(0, size // 4, step):
            f.write(array("I", range(start, min(start + step, size // 4))).tobytes())
        # On disk before anything is timed: the copy must not share the disk with this file's writeback.
        f.flush()
        os.fsync(f.fileno())


def _copy_seconds(src: Path, dest: Path) -> float:
    """The baseline: read the file and write it to the same disk, then fsync (as the upload does)."""
    started = time.perf_counter()
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 2**20)
        fout.flush()
        os.fsync(fout.fileno())
    elapsed = time.perf_counter() - started
    dest.unlink()
    return elapsed


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    # Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _send(port: int, head: bytes, path: Path, tail: bytes = b"") -> bytes:
    """One HTTP request whose body is a file, sent with sendfile: the client costs almost no CPU,
    so on a 2-core machine the figure is the server's, not the client library's."""
    with socket.create_connection(("127.0.0.1", port)) as sock, open(path, "rb") as f:
        sock.sendall(head)
        sock.sendfile(f)
        sock.sendall(tail)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = answer.split(b" ", 2)[1]
    if not status.startswith(b"2"):
        raise RuntimeError(answer[:500].decode("utf-8", "replace"))
    return answer


def _multipart(port: int, token: str, stint_id: str, path: Path) -> None:
    pre = (
        b'--fbboundary\r\nContent-Disposition: form-data; name="file"; filename="memo.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )
    post = b"\r\n--fbboundary--\r\n"
    length = len(pre) + path.stat().st_size + len(post)
    head = (
        f"POST /api/stints/{stint_id}/materials HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=fbboundary\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    _send(port, head + pre, path, post)


def _tus(port: int, token: str, stint_id: str, path: Path) -> None:
    size = path.stat().st_size
    meta = f"stint_id {base64.b64encode(stint_id.encode()).decode()},filename {base64.b64encode(b'memo.wav').decode()}"
    h = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    r = httpx.post(
        f"http://127.0.0.1:{port}/api/uploads",
        headers={**h, "Upload-Length": str(size), "Upload-Metadata": meta},
    )
    r.raise_for_status()
    head = (
        f"PATCH {r.headers['location']} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    _send(port, head, path)


def run(quick: bool) -> list[Figure]:
    size = (64 if quick else 200) * 2**20
    with tempfile.TemporaryDirectory(prefix="fieldbook-bench-", dir=ROOT) as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        data_dir.mkdir()
        db_url = f"sqlite:///{work / 'bench.db'}"
        token = add_account(db_url, "bench@example.com", "压测", "bench-password")
        src = work / "memo.wav"
        _wav(src, size)
        # One worker: uvicorn serves in the process started, whose memory is measured.
        server = LiveServer(data_dir=data_dir, database_url=db_url, workers=1, env={"FIELDBOOK_OCR": "false"})
        server.start()
        assert server.process is not None
        pid, port, base = server.process.pid, server.port, server.url
        try:
            headers = {"Authorization": f"Bearer {token}"}
            stint = httpx.post(f"{base}/api/stints", json=STINT, headers=headers).json()
            # Warm up (imports, first connections), then measure each path once per round, best of rounds.
            small = work / "small.wav"
            _wav(small, 2**20)
            _multipart(port, token, stint["id"], small)
            _tus(port, token, stint["id"], small)
            rounds = 3  # best of three: the machine is shared
            copy_s, multi_s, tus_s = [], [], []
            rss_before = _rss_kb(pid, "VmRSS")
            _reset_peak(pid)
            for n in range(rounds):
                if n:
                    _wav(src, size)  # new bytes: no deduplication shortcut
                copy_s.append(_copy_seconds(src, work / "copy.wav"))
                started = time.perf_counter()
                _multipart(port, token, stint["id"], src)
                multi_s.append(time.perf_counter() - started)
                with open(src, "r+b") as f:  # other bytes for the tus run
                    f.seek(100)
                    f.write(uuid.uuid4().bytes)
                started = time.perf_counter()
                _tus(port, token, stint["id"], src)
                tus_s.append(time.perf_counter() - started)
            peak = _rss_kb(pid, "VmHWM")
        finally:
            server.stop()
    mb = size / 2**20
    copy_rate = mb / min(copy_s)
    growth_mb = max(0, peak - rss_before) / 1024
    return [
        Figure(
            AREA,
            f"multipart upload {mb:.0f} MB",
            mb / min(multi_s),
            "MB/s",
            copy_rate,
            "file copy",
            ">= 0.5 x copy",
            mb / min(multi_s) >= 0.5 * copy_rate,
        ),
        Figure(
            AREA,
            f"tus upload {mb:.0f} MB",
            mb / min(tus_s),
            "MB/s",
            copy_rate,
            "file copy",
            ">= 0.5 x copy",
            mb / min(tus_s) >= 0.5 * copy_rate,
        ),
        Figure(
            AREA,
            f"server memory growth, {mb:.0f} MB uploads",
            growth_mb,
            "MB",
            target="< 50 MB",
            met=growth_mb < 50,
        ),
    ]
