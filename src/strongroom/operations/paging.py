"""NextToken: an opaque, tamper-checked cursor.

Tokens carry a keyset cursor (the last row's sort value and pk), not an offset, so a page
neither skips nor repeats rows while other secrets are created between calls. They are
base64 JSON with a truncated HMAC under the installation's token key (kept in the database,
so every process and node accepts every other's tokens): a forged token is an
InvalidNextTokenException, never a 500 or a query the caller shaped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from strongroom.errors import InvalidNextTokenException

_MAC_BYTES = 12
# Text UNCONFIRMED (spec §16.2).
INVALID_TOKEN = "The NextToken value is invalid."  # noqa: S105 - a message


def encode(key: bytes, kind: str, cursor: Any) -> str:
    body = json.dumps([kind, cursor], separators=(",", ":")).encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")


def decode(key: bytes, kind: str, token: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
            raise InvalidNextTokenException(INVALID_TOKEN)
        found_kind, cursor = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise InvalidNextTokenException(INVALID_TOKEN) from exc
    if found_kind != kind:
        raise InvalidNextTokenException(INVALID_TOKEN)
    return cursor
