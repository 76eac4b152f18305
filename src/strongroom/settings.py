"""Settings: one frozen ``Settings`` built at start-up from flags and ``STRONGROOM_*`` variables.

Each setting is declared once in ``SETTINGS`` with its help text; the CLI builds its flags
from that table (so ``--help`` and the README's settings table say the same thing), and a
flag given on the command line wins over the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8855
DEFAULT_DATA_DIR = Path("./strongroom-data")


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # field of Settings; the variable is STRONGROOM_<NAME upper-cased>
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return "STRONGROOM_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _account_id(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise ValueError(f"an account id is 12 digits, got {value!r}")
    return value


def _log_level(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError(f"expected debug, info, warning, error or critical, got {value!r}")
    return lowered


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:  # noqa: PLR2004 - the TCP port range
        raise ValueError(f"not a TCP port: {value!r}")
    return port


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "Address to listen on."),
    Setting("port", f"TCP port to listen on (default {DEFAULT_PORT}).", _port),
    Setting("data_dir", "Directory for the database, keys and logs; created on first start.", Path),
    Setting(
        "database_url",
        "SQLAlchemy database URL; default: SQLite file strongroom.db in the data dir.",
    ),
    Setting("master_key_file", "Master key file; default: master.key in the data dir.", Path),
    Setting("account_id", "The 12-digit account id, fixed at first start.", _account_id),
    Setting(
        "dev",
        "Development mode: accept any well-formed credentials, loopback only. INSECURE.",
        _bool,
    ),
    Setting("workers", "Server processes (default 1).", int),
    Setting(
        "audit",
        "Record every call in the audit trail (default true). Off only to measure its cost.",
        _bool,
    ),
    Setting(
        "audit_seal_seconds",
        "Longest a call's record waits before it is sealed into a signed log file (default 300).",
        float,
    ),
    Setting(
        "audit_retention_days",
        "Drop sealed audit records, log files and digests older than this (default: keep all).",
        float,
    ),
    Setting("log_level", "Log level: debug, info, warning, error (default info).", _log_level),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    master_key_file: Path | None = None
    account_id: str | None = None
    dev: bool = False
    workers: int = 1
    audit: bool = True
    audit_seal_seconds: float = 300.0
    audit_retention_days: float | None = None
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'strongroom.db'}"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the flag and variable."""


def load(overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``overrides`` (CLI flags; None = not given), else the environment."""
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        given = overrides.get(setting.name)
        if given is not None:
            values[setting.name] = given
            continue
        raw = environ.get(setting.env)
        if raw is None:
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{setting.env} / {setting.flag}: {exc}") from exc
    unknown = set(values) - known
    assert not unknown, unknown  # noqa: S101 - SETTINGS and Settings are declared together
    return Settings(**values)
