"""Content decides the type: an allow-list of formats recognised from their bytes, never from names."""

import codecs
import re
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from api.config import Settings
from api.errors import AppError, Invalid


class Kind(StrEnum):
    image = "image"
    document = "document"
    text = "text"
    audio = "audio"


@dataclass(frozen=True)
class Sniffed:
    kind: Kind
    content_type: str


class Unsupported(AppError):
    status_code = 415
    code = "unsupported_media_type"
    message = (
        "This kind of file is not accepted. Accepted: photos (JPEG, PNG, WebP, HEIC), PDF, Word, Excel, "
        "PowerPoint, plain text / CSV / Markdown, and voice memos (MP3, M4A, AAC, AMR, WAV, OGG, FLAC)."
    )


class TooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    message = "The file is larger than allowed."


HEAD_BYTES = 64 * 1024
# Zip containers (DOCX, XLSX, PPTX): bounds that no real office file reaches.
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_UNCOMPRESSED = 500 * 2**20
MAX_ZIP_RATIO = 200

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AUDIO_FTYP = {b"M4A ", b"M4B ", b"3gp4", b"3gp5", b"3ga4"}
_OOXML = {
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/presentation.xml": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_TEXT_TYPES = {".csv": "text/csv", ".md": "text/markdown", ".markdown": "text/markdown"}
# Markup hidden in a binary format is how polyglots get executed by a browser or a plugin.
_MARKUP = re.compile(rb"<(?:script|html|svg|body|iframe|object|embed|\?php)[\s>/]", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def limit_for(settings: Settings, kind: Kind) -> int:
    return {
        Kind.image: settings.max_image_bytes,
        Kind.document: settings.max_document_bytes,
        Kind.text: settings.max_text_bytes,
        Kind.audio: settings.max_audio_bytes,
    }[kind]


def max_upload_bytes(settings: Settings) -> int:
    return max(limit_for(settings, kind) for kind in Kind)


def looks_like_image(head: bytes) -> bool:
    """From the first bytes only: the file will be judged as an image (and its limit applies)."""
    return head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (
        head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    )


def _sniff_ftyp(head: bytes) -> Sniffed | None:
    if head[4:8] != b"ftyp" or len(head) < 16:
        return None
    box = int.from_bytes(head[:4], "big")
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, min(box, len(head), 256) - 3, 4)}
    if major in _HEIF_BRANDS and b"avif" not in brands:
        heic = bool(brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
        return Sniffed(Kind.image, "image/heic" if heic else "image/heif")
    if major in _AUDIO_FTYP:
        return Sniffed(Kind.audio, "audio/mp4" if major.startswith(b"M4") else "audio/3gpp")
    return None


def _sniff_audio(head: bytes) -> Sniffed | None:
    if head.startswith(b"ID3") or (len(head) > 2 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):
        return Sniffed(Kind.audio, "audio/mpeg")
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return Sniffed(Kind.audio, "audio/aac")
    if head.startswith(b"#!AMR"):
        return Sniffed(Kind.audio, "audio/amr")
    if head.startswith(b"OggS"):
        return Sniffed(Kind.audio, "audio/ogg")
    if head.startswith(b"fLaC"):
        return Sniffed(Kind.audio, "audio/flac")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return Sniffed(Kind.audio, "audio/wav")
    return None


def _sniff_zip(path: Path) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except Exception:  # any damage in a hostile central directory: refused, never a 500
        raise Unsupported("This zip file is damaged or not an Office document.") from None
    names = {i.filename for i in infos}
    if len(infos) > MAX_ZIP_ENTRIES:
        raise Invalid("The document has too many parts.", code="decompression_bomb")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > MAX_ZIP_UNCOMPRESSED or (total > 10 * 2**20 and total > MAX_ZIP_RATIO * max(packed, 1)):
        raise Invalid(
            "The document unpacks to far more data than any real office file.", code="decompression_bomb"
        )
    if "[Content_Types].xml" in names:
        for part, mime in _OOXML.items():
            if part in names:
                return Sniffed(Kind.document, mime)
    raise Unsupported("Zip archives are accepted only as Word, Excel or PowerPoint documents.")


def _sniff_text(path: Path, size: int, filename: str, settings: Settings) -> Sniffed | None:
    if size > settings.max_text_bytes:
        return None  # too big to be a text we accept; the caller answers 415 or 413
    raw = path.read_bytes()
    text = decode_text(raw)
    if text is None or _CONTROL.search(text):
        return None
    start = text.lstrip("\ufeff \t\r\n")
    if start.startswith("<") or _MARKUP.search(raw[:HEAD_BYTES]):
        raise Unsupported("HTML, XML and SVG files are not accepted (they can carry scripts).")
    suffix = Path(filename).suffix.lower()
    return Sniffed(Kind.text, _TEXT_TYPES.get(suffix, "text/plain"))


def decode_text(raw: bytes) -> str | None:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030 (Excel's CSV on Chinese Windows)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def sniff(path: Path, size: int, filename: str, settings: Settings) -> Sniffed:
    """What the file is, from its bytes; 415 for anything off the allow-list, 413 over its kind's limit."""
    if size == 0:
        raise Invalid("The file is empty.", code="empty_file")
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    found: Sniffed | None
    if head.startswith(b"\xff\xd8\xff"):
        found = Sniffed(Kind.image, "image/jpeg")
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = Sniffed(Kind.image, "image/png")
    elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        found = Sniffed(Kind.image, "image/webp")
    elif head.startswith(b"%PDF-"):
        found = Sniffed(Kind.document, "application/pdf")
    elif head.startswith(b"PK\x03\x04"):
        found = _sniff_zip(path)
    else:
        found = _sniff_ftyp(head) or _sniff_audio(head) or _sniff_text(path, size, filename, settings)
    if found is None:
        raise Unsupported()
    limit = limit_for(settings, found.kind)
    if size > limit:
        raise TooLarge(
            f"{found.kind.value.capitalize()} files may be at most {limit // 2**20} MB.",
            details={"limit": limit, "size": size},
        )
    if found.kind is Kind.image or found.content_type == "application/pdf":
        _refuse_polyglot(path, size, found)
    return found


def _refuse_polyglot(path: Path, size: int, found: Sniffed) -> None:
    """An image or PDF that is also a zip archive, or carries HTML/script, is refused."""
    with open(path, "rb") as f:
        f.seek(max(0, size - 66 * 1024))
        tail = f.read()
        if b"PK\x05\x06" in tail and found.kind is Kind.image:
            raise Unsupported("This image is also a zip archive (a polyglot file).", code="polyglot")
        if found.kind is not Kind.image:
            if b"PK\x05\x06" in tail or b"PK\x03\x04" in tail:
                raise Unsupported("This PDF is also a zip archive (a polyglot file).", code="polyglot")
            return
        f.seek(0)
        carry = b""
        while chunk := f.read(1024 * 1024):
            if _MARKUP.search(carry + chunk):
                raise Unsupported("This image carries HTML or script (a polyglot file).", code="polyglot")
            carry = chunk[-16:]
