"""Unique ids shaped like AWS's UUIDs, cheaply: request ids and audit event ids."""

from __future__ import annotations

import itertools
import uuid


class UuidShapedIds:
    """A random UUID per instance (per process), then a counter in its last 48 bits: unique
    across processes and restarts without a uuid4() (16 bytes from the OS) per id.

    Thread-safe: ``itertools.count`` hands out each number once, whichever thread asks.
    """

    def __init__(self) -> None:
        base = uuid.uuid4().hex[:20]
        self._prefix = f"{base[:8]}-{base[8:12]}-{base[12:16]}-{base[16:20]}-"
        self._numbers = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._numbers) & 0xFFFFFFFFFFFF:012x}"
