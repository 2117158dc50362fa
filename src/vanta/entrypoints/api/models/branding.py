"""The tenant branding body."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from vanta.entrypoints.api.models.base import WS, RequestModel

_PRINTABLE = r"[^\x00-\x1f\x7f]"
# printable, and not only white space (the name is shown stripped)
NAME = rf"^{_PRINTABLE}*[^\x00-\x1f\x7f{WS}]{_PRINTABLE}*$"
LOGO = r"^data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=]+$"


class BrandingIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {
        "display_name": "invalid_display_name", "accent_color": "invalid_accent_color",
        "logo": "invalid_logo", "logo:string_too_long": "logo_too_large"}

    display_name: str = Field(min_length=1, max_length=80, pattern=NAME)
    accent_color: str = Field(pattern=r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
                              description="hex colour, #rgb or #rrggbb")
    logo: str | None = Field(
        default=None, max_length=43_720, pattern=LOGO,
        description="a PNG, JPEG or GIF image of at most 32 KiB and 1024×1024 pixels as a "
                    "data: URL (base64); null or absent: no logo. The bytes are checked "
                    "against the named type.")
