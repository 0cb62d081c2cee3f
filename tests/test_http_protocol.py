"""``fieldbook serve``'s HTTP protocol (api/http_protocol.py): a request body reaches the app whole
and in order however the socket cuts it up, whether the app takes each chunk as it comes or several
pile up first."""

import asyncio
import hashlib
import random
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from api.http_protocol import BodyChunksAsTheyCome


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


async def _serve(body: bytes, cuts: list[int], pauses: set[int]) -> tuple[list[bytes], bytes]:
    """Send a POST whose body arrives cut at ``cuts``, letting the app run after the pieces in
    ``pauses``; answer the messages the app received and what the protocol wrote back."""
    received: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            received.append(message["body"])
            more = message.get("more_body", False)
        digest = hashlib.sha256(b"".join(received)).hexdigest().encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        await send({"type": "http.response.body", "body": digest})

    config = Config(app=app, log_config=None, lifespan="off")
    protocol = BodyChunksAsTheyCome(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    head = b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: %d\r\n\r\n" % len(body)
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    protocol.data_received(head)
    for n, piece in enumerate(pieces):
        protocol.data_received(piece)
        if n in pauses:
            for _ in range(3):
                await asyncio.sleep(0)
    for _ in range(50):
        if transport.written.endswith(hashlib.sha256(body).hexdigest().encode()):
            break
        await asyncio.sleep(0.001)
    protocol.connection_lost(None)
    return received, bytes(transport.written)


@pytest.mark.parametrize("seed", range(12))
def test_the_app_receives_the_body_whole_and_in_order(seed: int) -> None:
    rnd = random.Random(seed)
    body = rnd.randbytes(rnd.choice([1, 1000, 300_000]))
    cuts = sorted(rnd.sample(range(1, len(body)), min(len(body) - 1, rnd.randint(0, 20))))
    pauses = {n for n in range(len(cuts) + 1) if rnd.random() < [0.0, 0.5, 1.0][seed % 3]}
    received, written = asyncio.run(_serve(body, cuts, pauses))
    assert b"".join(received) == body
    assert all(type(part) is bytes for part in received)
    assert written.startswith(b"HTTP/1.1 200 OK") and written.endswith(
        hashlib.sha256(body).hexdigest().encode()
    )
    if seed % 3 == 2:  # the app took each piece as it came: a message per piece (the last may be empty)
        pieces = [b - a for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert [len(part) for part in received if part] == pieces
