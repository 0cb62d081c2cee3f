"""Clients for the crash run (tests/test_crash.py): each writes through one way in, keeps what the
server acknowledged (a 2xx with its body) and retries what it did not, with the same ids, keys and
upload URLs, after the server comes back. A request cut off by the kill is left pending."""

import base64
import hashlib
import io
import random
import string
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image

OCTETS = "application/offset+octet-stream"
TUS = {"Tus-Resumable": "1.0.0"}


class Down(Exception):
    """The server did not answer (killed): stop for this round, the work stays pending."""


def token(rng: random.Random) -> str:
    """A made-up word no other record contains, to find one record by search."""
    return "zq" + "".join(rng.choices(string.ascii_lowercase, k=10))


def jpeg(rng: random.Random) -> bytes:
    size = (rng.randint(16, 96), rng.randint(16, 96))
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def wav(rng: random.Random, size: int) -> bytes:
    """A WAV file of random samples: every byte differs from run to run, so a lost or doubled
    piece shows in the SHA-256."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)  # PCM, mono, 8 kHz, 16 bit
    head = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + fmt
    return head + b"data" + struct.pack("<I", size) + rng.randbytes(size)


@dataclass
class Obs:
    text: str
    version: int
    deleted: bool = False


@dataclass
class Client:
    """One thread's writes. ``failures`` collects answers no correct server gives."""

    base: str
    headers: dict[str, str]
    stint_id: str
    rng: random.Random
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def request(self, http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return http.request(method, self.base + path, **{"headers": self.headers, **kw})
        except httpx.TransportError as exc:
            raise Down from exc

    def unexpected(self, what: str, r: httpx.Response) -> None:
        self.failures.append(f"{type(self).__name__}: {what} answered {r.status_code} {r.text[:300]}")

    def has_pending(self) -> bool:
        raise NotImplementedError

    def step(self, http: httpx.Client, drain: bool) -> bool:
        """One piece of work; False when there is nothing left to do (drain only)."""
        raise NotImplementedError

    def run(self, stop: threading.Event, drain: bool = False) -> None:
        with httpx.Client(timeout=60) as http:
            try:
                while not stop.is_set() and self.step(http, drain):
                    pass
            except Down:
                self.count("cut off by the kill")


@dataclass
class Pusher(Client):
    """Sync pushes: batches of observation creates, edits and deletes under an Idempotency-Key."""

    obs: dict[str, Obs] = field(default_factory=dict)
    batch: tuple[str, list[dict[str, Any]]] | None = None  # (key, ops) sent but not acknowledged

    def has_pending(self) -> bool:
        return self.batch is not None

    def _new_batch(self) -> tuple[str, list[dict[str, Any]]]:
        ops: list[dict[str, Any]] = []
        live = [i for i, o in self.obs.items() if not o.deleted]
        touched: set[str] = set()
        for _ in range(self.rng.randint(1, 5)):
            roll = self.rng.random()
            op: dict[str, Any] = {
                "op_id": uuid.UUID(int=self.rng.getrandbits(128)).hex,
                "type": "observation",
            }
            candidates = [i for i in live if i not in touched]
            if roll < 0.6 or not candidates:
                oid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                text = f"推送 {token(self.rng)} 司机排队领单"
                op |= {"id": oid, "op": "upsert", "base_version": None}
                op["data"] = {"stint_id": self.stint_id, "text": text}
            else:
                oid = self.rng.choice(candidates)
                op |= {"id": oid, "base_version": self.obs[oid].version}
                if roll < 0.85:
                    op |= {"op": "upsert", "data": {"text": f"改过 {token(self.rng)} 装车顺序"}}
                else:
                    op |= {"op": "delete"}
            touched.add(oid)
            ops.append(op)
        return uuid.UUID(int=self.rng.getrandbits(128)).hex, ops

    def step(self, http: httpx.Client, drain: bool) -> bool:
        if self.batch is None:
            if drain:
                return False
            time.sleep(self.rng.uniform(0.05, 0.2))  # a phone syncs now and then, not in a tight loop
            self.batch = self._new_batch()
        key, ops = self.batch
        r = self.request(
            http,
            "POST",
            "/api/sync/push",
            json={"ops": ops},
            headers={**self.headers, "Idempotency-Key": key},
        )
        if r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_in_use":
            # A retry that overtook its own first attempt (a client timeout while the server was
            # still working; a killed server's claims are released at start): resend the same ops
            # under a new key; their op_ids keep them from applying twice.
            self.batch = (uuid.UUID(int=self.rng.getrandbits(128)).hex, ops)
            self.count("push re-keyed: its first attempt was still running")
            return True
        if r.status_code != 200:
            self.unexpected("push", r)
            self.batch = None
            return True
        for op, res in zip(ops, r.json()["results"], strict=True):
            if res["status"] not in ("applied", "duplicate"):
                self.failures.append(f"push op {op['op_id']} on {op['id']}: {res}")
                continue
            self.count(f"push op {res['status']}")
            if op["op"] == "delete":
                self.obs[op["id"]].deleted, self.obs[op["id"]].version = True, res["version"]
            else:
                self.obs[op["id"]] = Obs(text=op["data"]["text"], version=res["version"])
        self.batch = None
        return True


@dataclass
class Poster(Client):
    """REST creates, each with its own id (a retry answers 200 with the same row)."""

    obs: dict[str, Obs] = field(default_factory=dict)
    pending: tuple[str, str] | None = None

    def has_pending(self) -> bool:
        return self.pending is not None

    def step(self, http: httpx.Client, drain: bool) -> bool:
        if self.pending is None:
            if drain:
                return False
            time.sleep(self.rng.uniform(0.02, 0.1))
            self.pending = (
                str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                f"记录 {token(self.rng)} 调度白板",
            )
        oid, text = self.pending
        r = self.request(
            http, "POST", f"/api/stints/{self.stint_id}/observations", json={"id": oid, "text": text}
        )
        if r.status_code not in (200, 201) or r.json()["text"] != text:
            self.unexpected("observation create", r)
        else:
            self.count("observation created" if r.status_code == 201 else "observation create retried")
            self.obs[oid] = Obs(text=text, version=r.json()["version"])
        self.pending = None
        return True


@dataclass
class Material:
    id: str
    data: bytes
    filename: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Uploader(Client):
    """Multipart uploads of small photos and voice memos, each with its own material id."""

    materials: dict[str, Material] = field(default_factory=dict)
    pending: Material | None = None
    abandoned: dict[str, Material] = field(default_factory=dict)

    def has_pending(self) -> bool:
        return self.pending is not None

    def run(self, stop: threading.Event, drain: bool = False) -> None:
        if self.pending is not None and self.rng.random() < 0.3:
            # The photo was discarded on the phone before a retry: it may or may not exist, and
            # blobs stored for it before the kill may belong to no material (gc's work).
            self.abandoned[self.pending.id] = self.pending
            self.pending = None
            self.count("multipart upload abandoned after the kill")
        super().run(stop, drain)

    def _new(self) -> Material:
        mid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if self.rng.random() < 0.5:
            return Material(mid, jpeg(self.rng), "白板.jpg")
        return Material(mid, wav(self.rng, self.rng.randint(1, 300) * 1024), "录音.wav")

    def step(self, http: httpx.Client, drain: bool) -> bool:
        if self.pending is None:
            if drain:
                return False
            self.pending = self._new()
        m = self.pending
        files = {"file": (m.filename, m.data, "application/octet-stream")}
        r = self.request(
            http, "POST", f"/api/stints/{self.stint_id}/materials", files=files, data={"id": m.id}
        )
        if r.status_code not in (200, 201) or r.json()["sha256"] != m.sha256:
            self.unexpected("multipart upload", r)
        else:
            self.count("multipart upload" if r.status_code == 201 else "multipart upload retried")
            self.materials[m.id] = m
        self.pending = None
        return True


@dataclass
class TusUpload:
    material: Material
    url: str | None = None
    offset: int = 0  # acknowledged: the last Upload-Offset the server answered
    in_flight: int = 0  # bytes of a PATCH sent but not answered
    stale: bool = False  # ask (HEAD) before the next PATCH


@dataclass
class TusUploader(Client):
    """tus uploads in small PATCHes, so the kill often falls in the middle of one file."""

    materials: dict[str, Material] = field(default_factory=dict)
    pending: TusUpload | None = None
    chunk: int = 64 * 1024

    def has_pending(self) -> bool:
        return self.pending is not None

    def run(self, stop: threading.Event, drain: bool = False) -> None:
        if self.pending is not None:
            self.pending.stale = True  # the server was killed: ask where it stands
        super().run(stop, drain)

    def _create(self, http: httpx.Client, up: TusUpload) -> None:
        meta = {"stint_id": self.stint_id, "filename": up.material.filename, "id": up.material.id}
        header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
        tus = {**self.headers, **TUS, "Upload-Length": str(len(up.material.data)), "Upload-Metadata": header}
        r = self.request(http, "POST", "/api/uploads", headers=tus)
        if r.status_code != 201:
            self.unexpected("tus create", r)
            self.pending = None
            return
        up.url, up.offset, up.in_flight, up.stale = r.headers["location"], 0, 0, False

    def _head(self, http: httpx.Client, up: TusUpload) -> None:
        assert up.url is not None
        r = self.request(http, "HEAD", up.url, headers={**self.headers, **TUS})
        if r.status_code in (404, 410):  # the create was never committed, or the file was consumed
            self.count("tus upload started again")
            up.url = None
            return
        if r.status_code != 200:
            self.unexpected("tus HEAD", r)
            self.pending = None
            return
        offset = int(r.headers["upload-offset"])
        if offset not in (up.offset, up.offset + up.in_flight):
            self.failures.append(
                f"tus {up.url}: the server holds {offset} bytes; acknowledged {up.offset}, "
                f"{up.in_flight} more were in flight"
            )
        if 0 < offset < len(up.material.data):
            self.count("tus resumed mid-file")
        up.offset, up.in_flight, up.stale = offset, 0, False
        if offset == len(up.material.data):
            self._done(up)

    def _done(self, up: TusUpload) -> None:
        self.count("tus upload")
        self.materials[up.material.id] = up.material
        self.pending = None

    def step(self, http: httpx.Client, drain: bool) -> bool:
        if self.pending is None:
            if drain:
                return False
            mid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.pending = TusUpload(
                Material(mid, wav(self.rng, self.rng.randint(128, 768) * 1024), "访谈.wav")
            )
        up = self.pending
        if up.url is None:
            self._create(http, up)
            return True
        if up.stale:
            self._head(http, up)
            return True
        piece = up.material.data[up.offset : up.offset + self.chunk]
        up.in_flight = len(piece)
        tus = {**self.headers, **TUS, "Upload-Offset": str(up.offset), "Content-Type": OCTETS}
        r = self.request(http, "PATCH", up.url, content=piece, headers=tus)
        if r.status_code == 409:
            up.stale = True
            return True
        if r.status_code == 410:
            self.count("tus upload started again")
            up.url = None
            return True
        if r.status_code != 204:
            self.unexpected("tus PATCH", r)
            self.pending = None
            return True
        up.offset, up.in_flight = int(r.headers["upload-offset"]), 0
        if up.offset == len(up.material.data):
            self._done(up)
        return True
