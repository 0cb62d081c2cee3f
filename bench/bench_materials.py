"""Materials: upload throughput against a plain copy of the same bytes on the same disk, and the
server's memory growth while it receives a large upload (a real uvicorn process on loopback).

The client sends each body with ``sendfile`` (almost no CPU of its own, so on 2 cores it does not
starve the server); the server does all its real work: multipart parsing, sniffing, SHA-256, size
limits, fsync before answering, the content-addressed store (a rename). Every upload sends bytes
the server has not seen, so none is answered by deduplication. Also reported: the server's CPU
seconds per GB received (user + system of the server process), steadier than MB/s on a shared box.

Measured (200 MB, 2 cores shared with other workers, Nov 2026). Server CPU: ~2.0-2.4 s per GB on
multipart, ~1.8-2.2 on tus. Per 200 MB the event loop thread spends ~0.25 s (reading the socket,
uvicorn copying each of ~830 reads of ~256 KB twice, parsing the multipart body) and the spool thread
~0.19 s (SHA-256 at ~1.7 GB/s is 0.12 s of it, writing to the page cache 0.05 s); the client's
loopback send comes on top. Receiving takes ~0.31 s on a quiet machine (~650 MB/s), 0.45-0.7 s when
the other workers are busy. After the last byte: the fsync waited 0.06-0.1 s (the whole file) before
write-behind (``api/spool.py``), 0.005-0.02 s with it; ingest (sniff, rename into the store, the row)
~0.01 s. Interleaved old/new runs, medians of 9 uploads each on a loaded machine: multipart 248 ->
268 MB/s and 2.38 -> 2.15 CPU-s/GB, tus 193 -> 207 MB/s and 2.34 -> 2.24 CPU-s/GB; memory growth
8-11 MB. Ratios: 0.3-0.55 x copy when the copy runs at 700-1,300 MB/s, >= 1 when the disk is the
slow part (copy < 400 MB/s). 0.5 x a quiet-disk copy (1,800-2,300 MB/s, ~0.1 s for 200 MB) would
need the whole upload in ~0.2 s, less than the ~0.45 CPU-s the server's receiving alone needs on two
cores: not reachable on this machine without giving up SHA-256 or uvicorn.

Re-measured per thread (/proc task stats, perf; 200 MB, interleaved pairs, Nov 24). Receiving takes
0.41-0.56 s of the upload, the fsync 0.005-0.05 s, ingest 0.01-0.03 s. Event loop thread: tus
0.24-0.29 CPU-s, multipart 0.29-0.42 (a quarter of it memmove: uvloop copies each 256 KB read into a
bytes, httptools copies the body slice again; 7 % loopback TCP in softirqs; 6 % the recv copy; the
rest Python). Spool thread: 0.25-0.31 CPU-s, SHA-256 at 1.5 GB/s (SHA-NI, ``openssl speed`` agrees)
half of it, the page-cache write most of the rest. With the client's sendfile that is ~0.75 CPU-s on
two cores shared with other work: ~550 MB/s (0.5 x a 1,100 MB/s copy) needs both cores idle. The
tus CPU-per-GB spikes (5-6.7 s/GB in some runs, 2.5-2.7 in others) are the spool thread's system
time: its writes took 0.3-0.9 s instead of 0.1 s while the machine was busy, in multipart runs too
(the same writes in a process of their own stay at 0.05-0.09 s); interleaved, tus costs no more per
GB than multipart. Two measurement errors fixed: the tus create made a new httpx client per upload
(35-55 ms of TLS setup inside the timing, the server idle meanwhile), and the multipart boundary had
10 characters where real clients send 32-40 (python-multipart's search for it: loop thread
0.33-0.39 -> 0.29-0.34 CPU-s per 200 MB, the same bytes otherwise).

25 Nov 2026: uvicorn copied every body byte twice more on the event loop (into a bytearray, then
bytes() of it); ``api/http_protocol.py`` hands each chunk over as the parser made it. Interleaved
pairs on a machine busy with other work: multipart 1.96 / 1.91 -> 1.76 / 1.72 CPU-s per GB, 418 /
443 -> 505 / 531 MB/s (tus's CPU per GB swung 1.8-3.9 in both, the spool thread's system time as
above). On a quiet disk (copy 1,396 MB/s) the day's runs before it: 0.43 / 0.48 x copy."""

import base64
import contextlib
import os
import shutil
import socket
import statistics
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _new_bytes(path: Path) -> None:
    """Other bytes for the next upload: the same bytes again would be stored by deduplication
    (the staged file unlinked instead of renamed), which is not what is measured."""
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(uuid.uuid4().bytes)


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


# As long as real clients' boundaries (httpx: 32 hex digits; browsers: ~38 characters). The former
# 10-character one made python-multipart's search for it (bytes.find) cost 2.4x as much per GB.
BOUNDARY = b"fb" + b"0123456789abcdef" * 2


def _multipart(port: int, token: str, stint_id: str, path: Path, _client: httpx.Client) -> None:
    pre = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="memo.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )
    post = b"\r\n--" + BOUNDARY + b"--\r\n"
    length = len(pre) + path.stat().st_size + len(post)
    head = (
        f"POST /api/stints/{stint_id}/materials HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    _send(port, head + pre, path, post)


def _tus(port: int, token: str, stint_id: str, path: Path, client: httpx.Client) -> None:
    """Create the upload (timed: it is part of a tus upload), then send every byte in one PATCH.
    The create goes through one client made beforehand: ``httpx.post`` made a new client each time,
    whose TLS setup alone took 35-55 ms of the timed upload (~10 % of it) with the server idle."""
    size = path.stat().st_size
    meta = f"stint_id {base64.b64encode(stint_id.encode()).decode()},filename {base64.b64encode(b'memo.wav').decode()}"
    h = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    r = client.post(
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
        client = httpx.Client()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            stint = httpx.post(f"{base}/api/stints", json=STINT, headers=headers).json()
            # Warm up (imports, first connections), then measure each path once per round, best of rounds.
            small = work / "small.wav"
            _wav(small, 2**20)
            _multipart(port, token, stint["id"], small, client)
            _tus(port, token, stint["id"], small, client)
            rounds = 3  # best of three: the machine is shared
            copy_s, multi_s, tus_s = [], [], []
            multi_cpu, tus_cpu = [], []
            rss_before = _rss_kb(pid, "VmRSS")
            _reset_peak(pid)
            for _ in range(rounds):
                copy_s.append(_copy_seconds(src, work / "copy.wav"))
                for send, seconds, cpu in ((_multipart, multi_s, multi_cpu), (_tus, tus_s, tus_cpu)):
                    _new_bytes(src)
                    cpu_before, started = _cpu_seconds(pid), time.perf_counter()
                    send(port, token, stint["id"], src, client)
                    seconds.append(time.perf_counter() - started)
                    cpu.append(_cpu_seconds(pid) - cpu_before)
            peak = _rss_kb(pid, "VmHWM")
        finally:
            client.close()
            server.stop()
    mb = size / 2**20
    gb = size / 1e9
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
        Figure(AREA, "server CPU per GB, multipart", statistics.median(multi_cpu) / gb, "s/GB"),
        Figure(AREA, "server CPU per GB, tus", statistics.median(tus_cpu) / gb, "s/GB"),
        Figure(
            AREA,
            f"server memory growth, {mb:.0f} MB uploads",
            growth_mb,
            "MB",
            target="< 50 MB",
            met=growth_mb < 50,
        ),
    ]
