"""A full disk, said plainly: which folder, how much is free, and what to do."""

from __future__ import annotations

import errno
import pathlib
import shutil

from twinhub.errors import TerminalError

DISK_FULL_TEXT = ("no space left on device", "disk is full", "database or disk is full", "disk full")


class DiskFull(TerminalError, OSError):
    """Writing the stage or the catalog ran out of space; the served version is untouched."""


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a full filesystem or a file-size limit."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if any(text in str(exc).lower() for text in DISK_FULL_TEXT):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def explain_disk_full(exc: BaseException, folder: pathlib.Path, doing: str) -> BaseException:
    """A :class:`DiskFull` naming ``folder`` and its free space if ``exc`` is a full disk, else ``exc`` itself."""
    if not is_disk_full(exc) or isinstance(exc, DiskFull):
        return exc
    try:
        room = f" ({shutil.disk_usage(folder).free / 1e6:.1f} MB free)"
    except OSError:
        room = ""
    error = DiskFull(f"disk full while {doing}: free space on the filesystem of {folder}{room} "
                     "or move the hub home; the previous version is still served")
    error.errno = errno.ENOSPC
    return error
