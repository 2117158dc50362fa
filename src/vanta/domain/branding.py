"""A tenant's brand on its white-label pages: display name, accent colour, optional logo.

The logo is stored as bytes, never fetched from a URL (a URL would make every follower's
browser call a third party, and could change behind the owner's back). Only raster formats
whose headers we check are taken: PNG, JPEG, GIF. SVG is refused: it can carry script.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from vanta.domain.errors import ValidationFailed

DEFAULT_ACCENT = "#2563eb"
MAX_NAME = 80
MAX_LOGO_BYTES = 32 * 1024  # fits the API's 64 KiB JSON limit once base64-encoded
MAX_LOGO_SIDE = 1024
LOGO_TYPES = ("image/png", "image/jpeg", "image/gif")

_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Logo:
    media_type: str
    data: bytes

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True, slots=True)
class Branding:
    display_name: str
    accent_color: str  # "#rrggbb", lower case
    logo: Logo | None = None


def _bad(message: str, field: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, field=field)


def parse_accent(value: object) -> str:
    """``#rgb`` or ``#rrggbb`` (any case), kept as ``#rrggbb`` in lower case."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise _bad("accent_color must be a hex colour such as #2563eb", "accent_color",
                   "invalid_accent_color")
    h = value[1:].lower()
    return "#" + ("".join(c * 2 for c in h) if len(h) == 3 else h)


def parse_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME \
            or _CONTROL.search(value):
        raise _bad(f"display_name must be 1 to {MAX_NAME} printable characters",
                   "display_name", "invalid_display_name")
    return value.strip()


def _size(media_type: str, data: bytes) -> tuple[int, int] | None:
    """Width and height from the image's own header; None when the bytes are not that type."""
    if media_type == "image/png":
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        return None
    if media_type == "image/gif":
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        return None
    return _jpeg_size(data)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):  # walk the segments to the first start-of-frame
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def parse_logo(value: object) -> Logo | None:
    """A ``data:image/(png|jpeg|gif);base64,...`` URL, or None for no logo."""
    if value is None:
        return None
    m = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise _bad("logo must be a data: URL of a PNG, JPEG or GIF image (base64)", "logo",
                   "invalid_logo")
    media_type, payload = m.group(1), re.sub(r"\s", "", m.group(2))
    if media_type not in LOGO_TYPES:
        raise _bad(f"logo must be one of {', '.join(LOGO_TYPES)}", "logo",
                   "unsupported_logo_type")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("logo is not valid base64", "logo", "invalid_logo") from None
    if not data or len(data) > MAX_LOGO_BYTES:
        raise _bad(f"logo must be 1 byte to {MAX_LOGO_BYTES // 1024} KiB", "logo",
                   "logo_too_large")
    size = _size(media_type, data)
    if size is None:
        raise _bad(f"logo bytes are not a {media_type} image", "logo", "invalid_logo")
    if not all(1 <= side <= MAX_LOGO_SIDE for side in size):
        raise _bad(f"logo must be at most {MAX_LOGO_SIDE}×{MAX_LOGO_SIDE} pixels", "logo",
                   "logo_too_large")
    return Logo(media_type, data)


def parse_branding(raw: object) -> Branding:
    """The whole brand (a PUT replaces it): display_name and accent_color, logo optional."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - {"display_name", "accent_color", "logo"})
    if unknown:
        raise _bad(f"unknown field(s): {', '.join(unknown)}", unknown[0], "unknown_field")
    return Branding(parse_name(raw.get("display_name")), parse_accent(raw.get("accent_color")),
                    parse_logo(raw.get("logo")))
