"""One error hierarchy, one JSON shape: ``{"error": {"code", "message", "details"}}``."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fieldbook")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    message = "The request is not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class BadRequest(AppError):
    pass


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    message = "Sign in first."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = "Your role does not allow this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "This conflicts with the current state."


class Gone(AppError):
    status_code = 410
    code = "gone"
    message = "This was deleted."


class PreconditionFailed(AppError):
    status_code = 412
    code = "precondition_failed"
    message = "The record changed since you read it; reload and try again."


class Invalid(AppError):
    status_code = 422
    code = "validation_error"
    message = "The request is not valid."


class PreconditionRequired(AppError):
    status_code = 428
    code = "precondition_required"
    message = "Send If-Match with the ETag you read, so no one's change is overwritten."


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"
    message = "Too many attempts; wait and try again."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(
            message, headers={"Retry-After": str(retry_after)}, details={"retry_after": retry_after}
        )


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not signed in, or the session ended",
    403: "Signed in, but the role does not allow this",
    404: "Not found, or not visible to you",
    409: "Conflict with the current state",
    410: "Deleted",
    412: "Stale If-Match",
    413: "Request body too large",
    422: "Invalid input",
    428: "If-Match required",
    429: "Too many requests",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error answers a route can give."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may be large or hold a password.
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]


def _first_message(details: list[dict[str, Any]]) -> str:
    if not details:
        return "The request is not valid."
    first = details[0]
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    msg = first["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _app_error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(error_body(exc.code, exc.message, exc.details)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def install_error_handlers(
    app: FastAPI, *, before_unreadable_body: Callable[[Request], Awaitable[None]] | None = None
) -> None:
    """``before_unreadable_body``: checks that come before a 422 for a body that is not JSON at all,
    which FastAPI answers before any dependency runs (authentication, see api/access.py)."""

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return _app_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        if before_unreadable_body is not None and any(d["type"] == "json_invalid" for d in details):
            try:
                await before_unreadable_body(request)
            except AppError as refused:
                return _app_error_response(refused)
        return JSONResponse(error_body("validation_error", _first_message(details), details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            error_body("internal_error", "Something went wrong on our side; nothing was saved."),
            status_code=500,
        )
