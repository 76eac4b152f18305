"""What every operation is given, and the steps most of them share.

An operation is ``def op(ctx: Context, request: dict) -> dict``: the request is the
validated JSON body (members spelled as in the AWS model), the result is the response body
before serialisation. Members that have no value are left out (or None, which the protocol
layer drops), never sent as null.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from strongroom.crypto.envelope import DecryptError, Sealer, aad_for_version
from strongroom.domain.arn import parse_secret_arn, partition_for_region
from strongroom.domain.names import is_valid_name
from strongroom.domain.principal import Principal
from strongroom.errors import (
    INVALID_NAME,
    MARKED_FOR_DELETION,
    SECRET_NOT_FOUND,
    DecryptionFailure,
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
    ValidationException,
)
from strongroom.storage.base import SecretRow, Store, Transaction, VersionRow

if TYPE_CHECKING:
    from strongroom.operations.access import Access

DAY = 86_400.0
_Found = TypeVar("_Found")
_STRING, _BINARY = b"S", b"B"

TOKEN_REQUIRED = "You must provide a ClientRequestToken value. We recommend a UUID-type value."  # noqa: S105
BOTH_VALUES = (
    "You can't specify both a binary secret value and a string secret value in the same secret."
)


@dataclass(frozen=True, slots=True)
class Context:
    store: Store
    sealer: Sealer
    account_id: str
    region: str
    principal: Principal
    clock: Callable[[], float]
    token_key: bytes  # signs NextToken values (operations.paging)
    # Writes a read-only operation leaves for after its response is ready (LastAccessedDate),
    # so that the read itself never waits for the write lock; the caller runs them before
    # it answers, so the next request still sees them.
    later: list[Callable[[], None]] = field(default_factory=list)
    # The caller's authorization (operations.access); None for the account root, which is
    # allowed everything.
    access: Access | None = None
    # Tells the rotation engine that a rotation was started or cancelled (None: no engine).
    wake_rotations: Callable[[], None] | None = None

    @property
    def partition(self) -> str:
        return partition_for_region(self.region)  # ARNs in cn-* regions are aws-cn, ...


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A decrypted value: exactly one of ``string`` / ``binary``."""

    string: str | None = None
    binary: bytes | None = None

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> SecretValue | None:
        string, binary = request.get("SecretString"), request.get("SecretBinary")
        if string is not None and binary is not None:
            raise InvalidParameterException(BOTH_VALUES)
        if string is None and binary is None:
            return None
        return cls(string=string, binary=binary)

    def to_plaintext(self) -> bytes:
        # The kind travels inside the ciphertext, so the database does not reveal it either.
        if self.string is not None:
            return _STRING + self.string.encode()
        return _BINARY + (self.binary or b"")

    @classmethod
    def from_plaintext(cls, plaintext: bytes) -> SecretValue:
        if plaintext[:1] == _STRING:
            return cls(string=plaintext[1:].decode())
        return cls(binary=plaintext[1:])

    def members(self) -> dict[str, Any]:
        if self.string is not None:
            return {"SecretString": self.string}
        return {"SecretBinary": self.binary}


def seal_value(ctx: Context, arn: str, version_id: str, value: SecretValue) -> tuple[bytes, str]:
    """The sealed blob for one version and the id of the master key that wrapped it."""
    blob = ctx.sealer.seal(value.to_plaintext(), aad_for_version(arn, version_id))
    return blob, ctx.sealer.key_id_of(blob)


def open_value(ctx: Context, arn: str, version_id: str, blob: bytes) -> SecretValue:
    try:
        plaintext = ctx.sealer.open(blob, aad_for_version(arn, version_id))
    except DecryptError as exc:
        # The row does not belong where it is, or the master key is wrong: never a value.
        raise DecryptionFailure(
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key."
        ) from exc
    return SecretValue.from_plaintext(plaintext)


def require_token(request: dict[str, Any], error: type[Exception] = InvalidRequestException) -> str:
    """The request's ClientRequestToken, checked as AWS does (spec §4)."""
    token = request.get("ClientRequestToken")
    if token is None:
        raise error(TOKEN_REQUIRED)
    if not 32 <= len(token) <= 64:  # noqa: PLR2004 - the model's bounds
        # Text from emulators, UNCONFIRMED against AWS (spec §16.2).
        raise InvalidParameterException("ClientRequestToken must be 32-64 characters long.")
    return str(token)


def find_secret(ctx: Context, tx: Transaction, secret_id: str) -> SecretRow | None:
    """Resolve a SecretId by name, full ARN or partial ARN (spec §2.4).

    A secret whose recovery window has ended counts as gone even before the background
    purge has removed it.
    """
    _check_secret_id(secret_id)
    return _unexpired(ctx, lookup_secret(tx, ctx.account_id, ctx.region, secret_id))


def lookup_secret(
    tx: Transaction, account_id: str, region: str | None, secret_id: str
) -> SecretRow | None:
    """A secret by name in ``region``, or by full or partial ARN (spec §2.4); no checks."""
    return _resolve(secret_id, region, account_id, tx.secret_by_name, tx.secret_by_arn)


def _resolve(
    secret_id: str,
    region: str | None,
    account_id: str,
    by_name: Callable[[str, str, str], _Found | None],
    by_arn: Callable[[str], _Found | None],
) -> _Found | None:
    if not secret_id.startswith("arn:"):
        return None if region is None else by_name(account_id, region, secret_id)
    found = by_arn(secret_id)
    if found is None:
        arn = parse_secret_arn(secret_id)
        if arn is not None and not arn.looks_full:
            found = by_name(arn.account_id, arn.region, arn.resource)
    return found


def get_secret(
    ctx: Context, tx: Transaction, secret_id: str, *, allow_deleted: bool = False
) -> SecretRow:
    """Like ``find_secret`` but raises what AWS raises for a missing or deleted secret."""
    return _usable(find_secret(ctx, tx, secret_id), allow_deleted=allow_deleted)


def get_staged_secret(
    ctx: Context, tx: Transaction, secret_id: str, stage: str
) -> tuple[SecretRow, VersionRow | None]:
    """``get_secret`` and the secret's version holding ``stage`` (None if none does), read
    together: one round trip for GetSecretValue where ``get_secret`` and a version lookup
    would be two."""
    _check_secret_id(secret_id)
    found = _resolve(
        secret_id,
        ctx.region,
        ctx.account_id,
        lambda account_id, region, name: tx.staged_by_name(account_id, region, name, stage),
        lambda arn: tx.staged_by_arn(arn, stage),
    )
    if found is None:
        raise ResourceNotFoundException(SECRET_NOT_FOUND)
    secret, version = found
    return _usable(_unexpired(ctx, secret)), version


def _check_secret_id(secret_id: str) -> None:
    if not secret_id.startswith("arn:") and not is_valid_name(secret_id):
        raise ValidationException(INVALID_NAME)


def _unexpired(ctx: Context, row: SecretRow | None) -> SecretRow | None:
    if row is not None and row.deletion_date is not None and row.deletion_date <= ctx.clock():
        return None
    return row


def _usable(row: SecretRow | None, *, allow_deleted: bool = False) -> SecretRow:
    if row is None:
        raise ResourceNotFoundException(SECRET_NOT_FOUND)
    if row.deletion_date is not None and not allow_deleted:
        raise InvalidRequestException(MARKED_FOR_DELETION)
    return row


def day_of(timestamp: float) -> float:
    """LastAccessedDate has day resolution: 00:00 UTC of the day (spec §1.4)."""
    return math.floor(timestamp / DAY) * DAY


def secret_ref(row: SecretRow) -> dict[str, Any]:
    return {"ARN": row.arn, "Name": row.name}
