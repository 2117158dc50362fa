"""What a replay bundle records as the code that produced it."""

from __future__ import annotations

import platform

from vanta import __version__


def code_version() -> dict[str, str]:
    return {"package": "vanta-platform", "version": __version__,
            "python": platform.python_version()}
