"""A sync push as it arrives: its body parsed fast (``idempotency.read_json``), the cyclic collector
paused once the body is in, and its sign-in read on the event loop on SQLite (api/loop_sign_in.py)."""

import gc
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import make_transient_to_detached

from api import idempotency
from api.auth import CredentialsDep, signed_in
from api.db import SessionDep
from api.loop_sign_in import signed_in_user
from api.models import User


class _PushRequest(Request):
    """A push's body read by ``idempotency.read_json``, which leaves in ``state.plain_json``
    whether the ops are known to hash the same through orjson (then not checked a second time)."""

    paused_collector = False

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            # The collector paused from here to the answer (see PushRoute), not while the body
            # arrives: a client sending slowly would hold it off for every request of the worker.
            if gc.isenabled():
                gc.disable()
                self.paused_collector = True
            self._json, self.state.plain_json = idempotency.read_json(body)  # ~15,000 new objects
        return self._json


class PushRoute(APIRoute):
    """FastAPI's route, with the body read as above (its own pattern for a custom Request)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_fast(request: Request) -> Response:
            push_request = _PushRequest(request.scope, request.receive)
            # The collector paused for the rest of the push once its body is in: a thousand ops keep
            # ~20,000 objects alive until the answer is sent, and each pass over them found nothing
            # (what a push discards, reference counting frees): ~25 young passes and 2-3 middle
            # ones, ~3 ms a push, now and then a full pass of ~8 ms. Not for its parts: resumed
            # between them (after the body was parsed, after the route's work), it
            # passed over the objects the push still kept each time (~0.2 ms, and every other push
            # ~1 ms for the middle generation). Resumed once the body as read is let go: by then
            # what the push made is freed (reference counting), and the collector has nothing to
            # look at. Left alone if another push paused it (the first to finish resumes it).
            try:
                return await handler(push_request)
            finally:
                push_request.__dict__.pop("_json", None)
                if push_request.paused_collector:
                    gc.enable()

        return read_fast


async def _pusher(request: Request, session: SessionDep, token: CredentialsDep) -> User:
    """The signed-in user (as api.auth.current_user answers), in the request's session: read on the
    event loop when it can be, else the usual way (every refusal comes from there)."""
    # On SQLite read on the event loop (api/loop_sign_in.py): through the ORM and a threadpool call of
    # its own the sign-in cost ~0.6 ms and a thread hop per push, there ~0.15 ms right after another
    # connection's commit (~12 us otherwise), and ~20 us more to build the user.
    values = signed_in_user(request.app.state.engine, token)
    if values is None:
        return (await signed_in(request, session, token)).user
    user = User(**values)
    # As if loaded by the session (what the usual way leaves): persistent, its columns as read.
    make_transient_to_detached(user)
    session.add(user)
    return user


Pusher = Annotated[User, Depends(_pusher)]
