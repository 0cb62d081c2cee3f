"""Photos: EXIF fields, and previews re-encoded from pixels alone (orientation applied, no metadata)."""

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, ImageOps
from pillow_heif import register_heif_opener

from api.errors import AppError, Invalid

register_heif_opener()
# Named formats only (Pillow advisory): nothing else is ever parsed, whatever the bytes claim.
FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
}
PREVIEW_SIZES = {"thumb": 320, "screen": 1600}
PREVIEW_TYPE = "image/jpeg"

_ORIENTATION, _MAKE, _MODEL, _EXIF_IFD, _GPS_IFD = 0x0112, 0x010F, 0x0110, 0x8769, 0x8825
_DATETIME, _DATETIME_ORIGINAL, _OFFSET_ORIGINAL = 0x0132, 0x9003, 0x9011


class ImageBomb(Invalid):
    code = "image_too_large"


class BadImage(Invalid):
    code = "invalid_image"
    message = "The image cannot be decoded; it may be damaged."


@dataclass
class ImageInfo:
    width: int
    height: int
    taken_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    previews: dict[str, bytes] = field(default_factory=dict)


def _text(value: Any, limit: int = 100) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value[:limit] or None


def _taken_at(exif: Image.Exif) -> str | None:
    sub = exif.get_ifd(_EXIF_IFD)
    raw = _text(sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME), 40)
    if raw is None:
        return None
    try:
        when = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = _text(sub.get(_OFFSET_ORIGINAL), 10)
    iso = when.isoformat()
    if offset and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        iso += offset
    return iso


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = d + m / 60 + s / 3600
    if _text(ref, 2) in ("S", "W"):
        result = -result
    return round(result, 7)


def _gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    gps = exif.get_ifd(_GPS_IFD)
    if not gps:
        return None, None
    lat, lon = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return lat, lon


def _to_srgb(img: Image.Image) -> Image.Image:
    """Pixels in sRGB, so dropping the colour profile keeps the colours (wide-gamut phone photos)."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return img.convert("RGB")


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return _to_srgb(img) if img.mode != "RGB" or img.info.get("icc_profile") else img


def _encode(img: Image.Image, longest: int) -> bytes:
    copy = img.copy()
    copy.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    # A brand-new image from raw pixels carries no info dict: no EXIF, XMP, ICC or comments.
    clean = Image.frombytes("RGB", copy.size, copy.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def process_image(path: Path, content_type: str, max_pixels: int) -> ImageInfo:
    """Read EXIF and make the previews; 422 for pixel floods and undecodable images."""
    try:
        with Image.open(path, formats=[FORMATS[content_type]]) as img:
            width, height = img.size
            if width * height > max_pixels or width <= 0 or height <= 0:
                raise ImageBomb(
                    f"The image has {width}×{height} pixels; at most {max_pixels:,} are accepted.",
                    details={"width": width, "height": height, "max_pixels": max_pixels},
                )
            exif = img.getexif()
            info = ImageInfo(width=width, height=height)
            info.taken_at = _taken_at(exif)
            info.camera_make = _text(exif.get(_MAKE))
            info.camera_model = _text(exif.get(_MODEL))
            orientation = img.info.get("original_orientation") or exif.get(_ORIENTATION)
            info.orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None
            info.gps_lat, info.gps_lon = _gps(exif)
            if img.format == "JPEG":
                img.draft("RGB", (PREVIEW_SIZES["screen"] * 2, PREVIEW_SIZES["screen"] * 2))
            img.load()
            upright = ImageOps.exif_transpose(img)
            if exif.get(_ORIENTATION) in (5, 6, 7, 8):  # HEIF arrives upright, its tag reset to 1
                info.width, info.height = height, width
            pixels = _flatten(upright)
            info.previews = {name: _encode(pixels, size) for name, size in PREVIEW_SIZES.items()}
            return info
    except AppError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageBomb(f"The image has too many pixels: {exc}") from None
    except Exception as exc:  # any decoder failure on hostile bytes is the file's fault: 422, never 500
        raise BadImage(details={"reason": str(exc)[:200]}) from None
