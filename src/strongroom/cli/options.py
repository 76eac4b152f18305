"""Click options generated from ``settings.SETTINGS``, so flags, variables and docs agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from strongroom import settings as settings_module
from strongroom.settings import SETTINGS, Settings, SettingsError


def _click_type(setting: settings_module.Setting) -> Any:
    if setting.parse is settings_module._bool:  # noqa: SLF001 - same module family
        return None
    if setting.parse is int or setting.parse is settings_module._port:  # noqa: SLF001
        return int
    return str


def setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command with the flags of the named settings (all when none are named)."""
    chosen = [s for s in SETTINGS if not names or s.name in names]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for setting in reversed(chosen):
            help_text = f"{setting.help} [env: {setting.env}]"
            if _click_type(setting) is None:
                option = click.option(
                    setting.flag, setting.name, is_flag=True, default=None, help=help_text
                )
            else:
                option = click.option(
                    setting.flag,
                    setting.name,
                    type=_click_type(setting),
                    default=None,
                    help=help_text,
                )
            command = option(command)
        return command

    return decorate


def load_settings(flags: dict[str, Any]) -> Settings:
    overrides = dict(flags)
    for setting in SETTINGS:
        value = overrides.get(setting.name)
        if value is not None and not isinstance(value, bool) and setting.parse is not str:
            try:
                overrides[setting.name] = setting.parse(str(value))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=setting.flag) from exc
    try:
        return settings_module.load(overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
