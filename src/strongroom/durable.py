"""Names that survive a crash: a file created or renamed is durable only once the folder
holding it is synced too."""

from __future__ import annotations

import os
from pathlib import Path


def sync_folder(directory: Path) -> None:
    """``fsync`` ``directory``, so the names made or changed in it survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
