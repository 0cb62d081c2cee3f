"""Text from materials, for search: documents parsed, photos OCR'd by tesseract when it is installed.

Runs after the upload has been answered (``drain`` as a background task, or ``fieldbook extract``),
one material at a time per process, and picks up anything an earlier crash left pending."""

import functools
import logging
import shutil
import subprocess
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path

import sqlalchemy as sa
from defusedxml import ElementTree
from pypdf import PdfReader
from sqlmodel import Session, col, select

from api.changelog import ChangeType, record_change
from api.config import Settings
from api.db import utcnow
from api.material_tables import Material, TextStatus
from api.search_docs import record_index_task
from api.sniff import decode_text
from storage import BlobStore

log = logging.getLogger("fieldbook.text")

MAX_CHARS = 1_000_000
MAX_PDF_PAGES = 500
MAX_XML_PART = 50 * 2**20
OCR_TIMEOUT_SECONDS = 180
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_lock = threading.Lock()

OCR_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
EXTRACT_TYPES = {"application/pdf", DOCX, XLSX, PPTX, "text/plain", "text/csv", "text/markdown"}


@functools.cache
def ocr_languages() -> str | None:
    """``chi_sim+eng`` (or what of it is installed) when tesseract is there, else None."""
    exe = shutil.which("tesseract")
    if exe is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - our own argv, no shell
            [exe, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    installed = set(out.stdout.split())
    langs = [lang for lang in ("chi_sim", "eng") if lang in installed]
    return "+".join(langs) or None


def initial_status(content_type: str, settings: Settings) -> TextStatus:
    if content_type in EXTRACT_TYPES:
        return TextStatus.pending
    if content_type in OCR_TYPES and settings.ocr and ocr_languages():
        return TextStatus.pending
    return TextStatus.none


def _clip(text: str) -> str:
    text = text.replace("\x00", "")
    return text[:MAX_CHARS]


def _xml_texts(zf: zipfile.ZipFile, name: str, tag: str, para: str) -> list[str]:
    info = zf.getinfo(name)
    if info.file_size > MAX_XML_PART:
        return []
    root = ElementTree.fromstring(zf.read(info), forbid_dtd=True)
    lines = []
    for p in root.iter(para):
        line = "".join(t.text or "" for t in p.iter(tag))
        if line.strip():
            lines.append(line)
    return lines


def _ooxml(path: Path, content_type: str) -> str:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if content_type == DOCX:
            lines = _xml_texts(zf, "word/document.xml", f"{_W}t", f"{_W}p")
        elif content_type == PPTX:
            slides = sorted(
                (n for n in names if n.startswith("ppt/slides/slide") and n.endswith(".xml")),
                key=lambda n: int("".join(c for c in n if c.isascii() and c.isdigit()) or 0),
            )
            lines = [line for s in slides for line in _xml_texts(zf, s, f"{_A}t", f"{_A}p")]
        else:
            lines = []
            if "xl/sharedStrings.xml" in names:
                lines += _xml_texts(zf, "xl/sharedStrings.xml", f"{_S}t", f"{_S}si")
            for sheet in sorted(n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml")):
                lines += _xml_texts(zf, sheet, f"{_S}t", f"{_S}is")  # inline strings
    return "\n".join(lines)


def _pdf(path: Path) -> str:
    reader = PdfReader(path)
    parts: list[str] = []
    size = 0
    for page in reader.pages[:MAX_PDF_PAGES]:
        text = page.extract_text() or ""
        parts.append(text)
        size += len(text)
        if size > MAX_CHARS:
            break
    return "\n".join(parts)


def extract(path: Path, content_type: str) -> str:
    if content_type == "application/pdf":
        return _clip(_pdf(path))
    if content_type in (DOCX, XLSX, PPTX):
        return _clip(_ooxml(path, content_type))
    if content_type.startswith("text/"):
        return _clip(decode_text(path.read_bytes()) or "")
    raise ValueError(f"no text extraction for {content_type}")


def ocr(image: Path, languages: str) -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise RuntimeError("tesseract is not installed")
    out = subprocess.run(  # noqa: S603 - our own argv (a temp file we wrote), no shell
        [exe, str(image), "stdout", "-l", languages],
        capture_output=True,
        timeout=OCR_TIMEOUT_SECONDS,
        check=True,
    )
    return _clip(out.stdout.decode("utf-8", "replace")).strip()


def _fetch(store: BlobStore, digest: str, into: Path) -> None:
    with open(into, "wb") as f:
        for chunk in store.read(digest):
            f.write(chunk)


def _text_of(material: Material, store: BlobStore, scratch: Path) -> tuple[str, str]:
    if material.content_type in OCR_TYPES:
        languages = ocr_languages()
        if languages is None or material.screen_sha256 is None:
            raise RuntimeError("OCR is not available")
        _fetch(store, material.screen_sha256, scratch / "page.jpg")
        return ocr(scratch / "page.jpg", languages), "ocr"
    _fetch(store, material.sha256, scratch / "original")
    return extract(scratch / "original", material.content_type), "document"


def _next_pending(engine: sa.Engine) -> uuid.UUID | None:
    with Session(engine) as session:
        return session.exec(
            select(Material.id)
            .where(Material.text_status == TextStatus.pending.value)
            .order_by(col(Material.created_at))
            .limit(1)
        ).first()


def drain(engine: sa.Engine, store: BlobStore, limit: int = 1000) -> int:
    """Extract text for pending materials, one at a time per process; returns how many were handled.
    A call that finds another thread draining returns at once: that thread looks again after it
    lets go, so nothing committed before this call is left waiting."""
    seen: set[uuid.UUID] = set()
    while len(seen) < limit:
        if not _lock.acquire(blocking=False):
            break
        try:
            while len(seen) < limit and (material_id := _next_pending(engine)) not in seen:
                if material_id is None:
                    break
                _handle(engine, store, material_id)
                seen.add(material_id)
        finally:
            _lock.release()
        if _next_pending(engine) in seen | {None}:
            break  # nothing new (a row that stays pending is never retried in a loop)
    return len(seen)


def _handle(engine: sa.Engine, store: BlobStore, material_id: uuid.UUID) -> None:
    with Session(engine) as session:
        material = session.get(Material, material_id)
        if material is None:
            return
    text: str | None
    try:
        with tempfile.TemporaryDirectory(prefix="fieldbook-text-") as scratch:
            text, source = _text_of(material, store, Path(scratch))
        status = TextStatus.done
    except Exception as exc:  # any parser failure on a hostile file ends as "failed", never a crash
        log.warning("text extraction failed for material %s: %s", material_id, exc)
        text, source, status = None, None, TextStatus.failed
    with Session(engine) as session:
        written = session.execute(
            sa.update(Material)
            .where(col(Material.id) == material_id, col(Material.text_status) == TextStatus.pending.value)
            .values(extracted_text=text, text_source=source, text_status=status.value, updated_at=utcnow())
            .returning(col(Material.stint_id), col(Material.version))
        ).first()
        if written is not None:  # still pending until now: not deleted meanwhile
            # Devices learn the new text_status from the feed. Not a new version: the text is the
            # server's, and a caption edit a phone made against the current version must not conflict.
            stint_id, version = written
            record_change(session, ChangeType.material, material_id, stint_id=stint_id, version=version)
        record_index_task(session, "material", material_id)
        session.commit()
