"""``POST /api/stints/{id}/materials``: a multipart upload streamed straight to a staging file.

Async for a real reason: the body is parsed as it arrives (python-multipart's streaming parser), so
memory stays flat whatever the file size and the bytes are written once, hashed on the way."""

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.access import StintAccess, StintWriter
from api.config import Settings
from api.db import SessionDep
from api.errors import BadRequest, ErrorResponse, Invalid, responses
from api.ingest import MaterialRequest, StagingFile, StoreDep, display_name, ingest, staging_dir
from api.materials import MaterialOut, material_out
from api.middleware import header_number
from api.sniff import TooLarge, Unsupported, looks_like_image, max_upload_bytes
from api.textextract import drain

router = APIRouter(prefix="/api", tags=["materials"])

MAX_FIELD_BYTES = 4000
MAX_PARTS = 10
# A caption is limited in characters, as PATCH /api/materials/{id} limits it. Its form field may take
# up to 4 bytes a character (UTF-8), with room for whitespace trimmed around it.
MAX_CAPTION = 2000
MAX_CAPTION_BYTES = 4 * MAX_CAPTION + 1000
UPLOAD_ANSWERS: dict[int | str, dict[str, object]] = {
    **responses(400, 401, 403, 404, 409, 410, 413, 422),
    200: {"model": MaterialOut, "description": "Already uploaded (same id, same bytes)"},
    415: {"model": ErrorResponse, "description": "File type not accepted"},
    507: {"model": ErrorResponse, "description": "The server's disk is full"},
}


_FORM_SCHEMA = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "id": {"type": "string", "format": "uuid", "description": "Chosen by the client"},
                    "observation_id": {"type": "string", "format": "uuid"},
                    "caption": {"type": "string", "maxLength": MAX_CAPTION},
                },
            }
        }
    },
}


class _Form:
    """Callbacks for python-multipart: small text fields in memory, the one file part to disk."""

    def __init__(self, file: StagingFile, image_limit: int | None = None) -> None:
        self.file = file
        self.kind_limit = image_limit
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.has_file = False
        self.ended = False  # the closing boundary arrived: nothing was cut off
        self._parts = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BadRequest("Too many form fields.", code="too_many_parts")
        self._headers, self._value = {}, bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = self._name == "file"
        if self._is_file:
            if self.has_file:
                raise BadRequest("Send one file per request.", code="one_file_only")
            self.has_file = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            if self.file.size == 0 and self.kind_limit is not None and looks_like_image(data[start:end]):
                self.file.limit = min(self.file.limit, self.kind_limit)  # 413 early, not after 1 GB
            self.file.write(memoryview(data)[start:end])
            return
        self._value += data[start:end]
        if self._name == "caption":
            if len(self._value) > MAX_CAPTION_BYTES:
                raise caption_too_long()
        elif len(self._value) > MAX_FIELD_BYTES:
            raise BadRequest(f"The field {self._name!r} is too long.", code="field_too_long")

    def _part_end(self) -> None:
        if not self._is_file and self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")


def caption_too_long() -> Invalid:
    return Invalid(
        f"caption: at most {MAX_CAPTION} characters.", code="caption_too_long", details={"limit": MAX_CAPTION}
    )


def clean_caption(raw: str) -> str | None:
    """An upload's caption (multipart or tus): no NUL, trimmed, empty means none; at most
    ``MAX_CAPTION`` characters of any script, else Invalid ``caption_too_long``."""
    caption = raw.replace("\x00", "").strip()
    if len(caption) > MAX_CAPTION:
        raise caption_too_long()
    return caption or None


def _uuid_field(fields: dict[str, str], name: str) -> uuid.UUID | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid(f"{name}: not a valid UUID.", details=[{"loc": [name]}]) from None


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Unsupported("Send the file as multipart/form-data with a `file` field.", code="not_multipart")
    return boundary


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


@router.post(
    "/stints/{stint_id}/materials",
    status_code=201,
    response_model=MaterialOut,
    responses=UPLOAD_ANSWERS,
    openapi_extra={"requestBody": _FORM_SCHEMA},
)
async def upload_material(
    request: Request,
    response: Response,
    access: StintWriter,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    background: BackgroundTasks,
) -> MaterialOut:
    """Upload one file (multipart field `file`, optional `id`, `observation_id`, `caption`).
    Send your own `id` to make retries safe: the same id and bytes again answers 200."""
    session.close()  # no database transaction (on SQLite: the write lock) held while bytes stream
    boundary = _boundary(request)
    limit = max_upload_bytes(settings)
    declared = header_number(request.headers.get("content-length"))
    if declared is not None and declared > limit + 64 * 1024:
        raise TooLarge(f"Files may be at most {limit // 2**20} MB.", details={"limit": limit})
    staging = StagingFile(staging_dir(settings), limit)
    form = _Form(staging, settings.max_image_bytes)
    try:
        parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
            await staging.spool.relieve()
        parser.finalize()
        if not form.ended:
            raise BadRequest("The multipart body ended before its closing boundary.", code="bad_multipart")
        if not form.has_file:
            raise Invalid("The form has no `file` field.", code="no_file")
        req = _request(access, form, clean_caption(form.fields.get("caption", "")))
        staged = await run_in_threadpool(staging.finish)
    except FormParserError as exc:  # the parser's own errors, a boundary it refuses (> 256 bytes) included
        await run_in_threadpool(staging.abort)
        raise BadRequest(f"The multipart body is malformed: {exc}", code="bad_multipart") from None
    except ClientDisconnect:
        await run_in_threadpool(staging.abort)  # the phone lost its network: nothing kept, nobody to answer
        return Response(status_code=400)  # type: ignore[return-value]
    except Exception:
        await run_in_threadpool(staging.abort)
        raise
    material, created = await run_in_threadpool(
        ingest, request.app.state.engine, settings, store, staged, req
    )
    if not created:
        response.status_code = 200
    if material.text_status == "pending":
        background.add_task(drain, request.app.state.engine, store)
    return material_out(material)


def _request(access: StintAccess, form: _Form, caption: str | None) -> MaterialRequest:
    return MaterialRequest(
        stint_id=access.stint.id,
        user_id=access.user.id,
        material_id=_uuid_field(form.fields, "id"),
        observation_id=_uuid_field(form.fields, "observation_id"),
        caption=caption,
        filename=display_name(form.filename),
    )
