"""Small private files (keys) written atomically, mode 0600, safe when processes race."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

FILE_MODE = 0o600
DIR_MODE = 0o700
READ_ATTEMPTS = 50

T = TypeVar("T")


def fsync_dir(directory: Path) -> None:
    """Best-effort fsync of a directory so a new link or rename survives a crash."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp(directory: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh 0600 temp file in ``directory`` and fsync it."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def create_once(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data`` unless it exists; the first of racing writers wins."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = write_temp(path.parent, data)
    try:
        # link() fails if another process won the race, and never exposes a partial file.
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:
        # Filesystems without hard links: exclusive create as a fallback.
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def read_valid(path: Path, parse: Callable[[bytes], T]) -> T:
    """Read and parse ``path``; a fallback writer may still be mid-write, so retry briefly."""
    last_error: ValueError | None = None
    for _ in range(READ_ATTEMPTS):
        try:
            return parse(path.read_bytes())
        except ValueError as e:
            last_error = e
            time.sleep(0.01)
    assert last_error is not None
    raise last_error
