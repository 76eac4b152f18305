"""Temporary credentials: what AssumeRole and the rotation engine hand out.

An ASIA access key id, a 40-character secret access key sealed like every other, and a
session token of which only a SHA-256 is kept (it is a bearer credential, like a password).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from strongroom.crypto.envelope import Sealer, aad_for_access_key
from strongroom.operations.iam.common import new_id
from strongroom.storage.base import AccessKeyRow, Transaction


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float


def issue_session(
    tx: Transaction,
    sealer: Sealer,
    *,
    account_id: str,
    principal_arn: str,
    role_arn: str,
    session_name: str,
    user_id: str,
    now: float,
    expires_at: float,
    session_policy: str | None = None,
) -> SessionCredentials:
    """Store a new session key for ``principal_arn`` and return its credentials."""
    key_id, secret = new_id("ASIA"), secrets.token_urlsafe(30)  # 40 characters
    token = base64.b64encode(secrets.token_bytes(240)).decode()
    sealed = sealer.seal(secret.encode(), aad_for_access_key(key_id))
    tx.insert_access_key(
        AccessKeyRow(
            access_key_id=key_id,
            account_id=account_id,
            principal_arn=principal_arn,
            sealed_secret=sealed,
            master_key_id=sealer.key_id_of(sealed),
            created_at=now,
            session_token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=expires_at,
            user_id=user_id,
            role_arn=role_arn,
            session_name=session_name,
            session_policy=session_policy,
        )
    )
    return SessionCredentials(key_id, secret, token, expires_at)
