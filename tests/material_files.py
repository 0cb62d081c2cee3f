"""Real files for the materials tests: photos with EXIF/GPS/XMP/ICC, office documents, hostile files."""

import io
import struct
import zipfile

from PIL import Image, ImageCms, ImageDraw

GPS_SHANGHAI = (31.2304, 121.4737)  # 上海嘉定仓, roughly
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="31,13.824N" '
    b'exif:GPSLongitude="121,28.422E"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round(((value - d) * 60 - m) * 60, 4)
    return (float(d), float(m), s)


def exif_bytes(orientation: int = 1, gps: tuple[float, float] | None = GPS_SHANGHAI) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15 Pro"
    exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2026:03:05 14:03:11"
    sub[0x9011] = "+08:00"
    if gps is not None:
        g = exif.get_ifd(0x8825)
        g[1], g[2] = "N", _dms(gps[0])
        g[3], g[4] = "E", _dms(gps[1])
    return exif.tobytes()


def photo(
    size: tuple[int, int] = (400, 300),
    fmt: str = "JPEG",
    orientation: int = 1,
    gps: tuple[float, float] | None = GPS_SHANGHAI,
    colour: str = "steelblue",
) -> bytes:
    """A photo whose left half is red, so orientation can be checked from the preview's pixels."""
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2, size[1]), fill="red")
    out = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    extra: dict[str, object] = {"exif": exif_bytes(orientation, gps), "icc_profile": icc}
    if fmt == "JPEG":
        extra |= {"comment": b"taken at customer site GPS 31.23,121.47", "xmp": XMP, "quality": 90}
    if fmt == "PNG":
        extra |= {"xmp": XMP}
    img.save(out, fmt, **extra)
    return out.getvalue()


def heic_photo(size: tuple[int, int] = (320, 240), orientation: int = 6) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    img = Image.new("RGB", size, "steelblue")
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2, size[1]), fill="red")
    out = io.BytesIO()
    img.save(out, "HEIF", exif=exif_bytes(orientation), quality=80)
    return out.getvalue()


def jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG's header segments up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    markers, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        if marker == 0xDA:
            break
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        markers.append(marker)
        i += 2 + length
    return markers


def assert_no_metadata(data: bytes) -> Image.Image:
    """No EXIF, GPS, XMP, ICC, IPTC or comment in a JPEG, judged from its bytes."""
    markers = jpeg_segments(data)
    assert all(m == 0xE0 or not (0xE1 <= m <= 0xEF or m == 0xFE) for m in markers), [hex(m) for m in markers]
    for needle in (b"Exif", b"GPS", b"xmpmeta", b"ns.adobe.com", b"ICC_PROFILE", b"Photoshop", b"iPhone"):
        assert needle not in data, needle
    img = Image.open(io.BytesIO(data), formats=["JPEG"])
    assert not img.getexif()
    assert not {"exif", "icc_profile", "xmp", "comment", "photoshop"} & set(img.info)
    return img


def _ooxml(parts: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return out.getvalue()


_CT = b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def docx(paragraphs: list[str]) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    doc = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    return _ooxml({"[Content_Types].xml": _CT, "word/document.xml": doc.encode()})


def xlsx(strings: list[str]) -> bytes:
    si = "".join(f"<si><t>{s}</t></si>" for s in strings)
    sst = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_S}">{si}</sst>'
    wb = f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_S}"/>'
    return _ooxml(
        {"[Content_Types].xml": _CT, "xl/workbook.xml": wb.encode(), "xl/sharedStrings.xml": sst.encode()}
    )


def pptx(slides: list[str]) -> bytes:
    parts = {"[Content_Types].xml": _CT, "ppt/presentation.xml": b"<p:presentation/>"}
    for n, text in enumerate(slides, 1):
        xml = f'<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:p="p" xmlns:a="{_A}"><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>'
        parts[f"ppt/slides/slide{n}.xml"] = xml.encode()
    return _ooxml(parts)


def docx_bomb() -> bytes:
    """A DOCX whose document.xml inflates from ~1 MB to 1 GB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        with zf.open("word/document.xml", "w", force_zip64=True) as f:
            block = b"\0" * (16 * 2**20)
            for _ in range(64):
                f.write(block)
    return out.getvalue()


def pdf(text: str = "Dispatch board audit") -> bytes:
    """A minimal one-page PDF with a text line (Helvetica, ASCII)."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def wav(seconds: float = 0.2) -> bytes:
    rate, samples = 8000, int(8000 * seconds)
    data = b"\0\0" * samples
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    )
    return header + b"data" + struct.pack("<I", len(data)) + data


def pixel_flood(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG that claims a huge canvas (header only counts before decoding)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\0" + b"\0" * width
    idat = zlib.compress(row * 4, 9)  # truncated image data: the header is the attack
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
