"""The ``strongroom`` command: serve, and the operator's tools (master-key, migrate)."""

from __future__ import annotations

from strongroom.cli.main import main

__all__ = ["main"]
