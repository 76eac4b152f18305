"""GetRandomPassword (spec §10)."""

from __future__ import annotations

from typing import Any

from strongroom.domain.passwords import random_password
from strongroom.operations.context import Context


def get_random_password(_ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A password from the operating system's CSPRNG; nothing is stored."""
    password = random_password(
        length=request.get("PasswordLength", 32),
        exclude_characters=request.get("ExcludeCharacters", ""),
        exclude_numbers=bool(request.get("ExcludeNumbers")),
        exclude_punctuation=bool(request.get("ExcludePunctuation")),
        exclude_uppercase=bool(request.get("ExcludeUppercase")),
        exclude_lowercase=bool(request.get("ExcludeLowercase")),
        include_space=bool(request.get("IncludeSpace")),
        require_each_included_type=request.get("RequireEachIncludedType", True),
    )
    return {"RandomPassword": password}
