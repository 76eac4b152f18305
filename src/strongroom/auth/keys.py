"""Access keys: looked up for every request, so kept briefly in memory.

The secret access key is stored envelope-encrypted (``crypto.envelope``); decrypting it and
querying the database on every request would cost more than the rest of SigV4
verification, so a lookup is cached for ``ttl`` seconds. A key made inactive or deleted
therefore stops working within ``ttl`` seconds on every node.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from strongroom.crypto.envelope import Sealer, aad_for_access_key
from strongroom.domain.principal import Principal
from strongroom.storage.base import AccessKeyRow, Store


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A usable credential: what ``auth.sigv4.verify`` checks a signature against."""

    access_key_id: str
    secret_access_key: str
    principal: Principal
    session_token_sha256: str | None = None  # temporary credentials only
    expires_at: float | None = None


class AccessKeys:
    def __init__(self, store: Store, sealer: Sealer, *, ttl: float = 5.0) -> None:
        self._store = store
        self._sealer = sealer
        self._ttl = ttl
        self._cache: dict[str, tuple[float, AccessKey | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, access_key_id: str) -> AccessKey | None:
        now = time.monotonic()
        hit = self._cache.get(access_key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._store.read() as tx:
            row = tx.access_key(access_key_id)
        key = None if row is None or row.status != "Active" else self._open(row)
        with self._lock:
            if len(self._cache) > 10_000:  # noqa: PLR2004 - bound memory under key-guessing
                self._cache.clear()
            self._cache[access_key_id] = (now + self._ttl, key)
        return key

    def _open(self, row: AccessKeyRow) -> AccessKey:
        secret = self._sealer.open(row.sealed_secret, aad_for_access_key(row.access_key_id))
        return AccessKey(
            access_key_id=row.access_key_id,
            secret_access_key=secret.decode(),
            principal=Principal(
                account_id=row.account_id,
                arn=row.principal_arn,
                access_key_id=row.access_key_id,
                user_name=row.user_name,
                user_id=row.user_id or row.account_id,  # the root: its account id, as AWS
                role_arn=row.role_arn,
                session_name=row.session_name,
                session_policy=row.session_policy,
                # For the audit trail's sessionContext: when the session's key was issued.
                session_created=row.created_at if row.role_arn else None,
            ),
            session_token_sha256=row.session_token_hash,
            expires_at=row.expires_at,
        )
