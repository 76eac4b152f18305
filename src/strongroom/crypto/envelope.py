"""Envelope encryption of secret values.

Each value is encrypted with AES-256-GCM under its own random 256-bit data key, and that data
key is wrapped by the keyring's current master key. The value and the wrapped key are both
bound to the same AAD, which names the record the value belongs to (``aad_for_version``,
``aad_for_access_key``): a blob, or just its wrapped key, copied onto another record will not
open.

Blob layout, format version 1 (integers big-endian):

    size  field
    1     format version, 0x01
    1     K, length of the master key id
    K     master key id, ASCII
    2     W, length of the wrapped data key
    W     wrapped data key, opaque (MasterKey.wrap output; 60 bytes for a LocalMasterKey)
    12    nonce for the value
    rest  AES-256-GCM ciphertext of the value, then its 16-byte tag

A 100-byte value takes 1 + 1 + 16 + 2 + 60 + 12 + 116 = 208 bytes under a local key.

The header carries no MAC of its own, which is what lets ``rewrap`` swap key id and wrapped
key while leaving the ciphertext alone. It needs none: another version byte is refused, an
altered key id or wrapped key fails to unwrap (the wrap is authenticated and bound to the
AAD), and an altered nonce or ciphertext fails the GCM tag.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.keys import Keyring, MasterKey, UnknownKeyError, UnwrapError, check_key_id

FORMAT_VERSION = 1
DATA_KEY_SIZE = 32
_NONCE_SIZE = 12
_TAG_SIZE = 16
_MAX_WRAPPED = 0xFFFF

_SECRET_VERSION_DOMAIN = b"strongroom/secret-version/v1"
_ACCESS_KEY_DOMAIN = b"strongroom/access-key/v1"
_FUNCTION_ENV_DOMAIN = b"strongroom/function-env/v1"
_AUDIT_KEY_DOMAIN = b"strongroom/audit-signing-key/v1"


class DecryptError(Exception):
    """A blob did not open. Messages give the reason and at most the public master key id."""


def _pack(key_id: str, wrapped: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    kid = key_id.encode("ascii")
    return b"".join(
        (
            bytes((FORMAT_VERSION, len(kid))),
            kid,
            len(wrapped).to_bytes(2, "big"),
            wrapped,
            nonce,
            ciphertext,
        )
    )


def _unpack(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    """Split a blob into (key id, wrapped key, nonce, ciphertext); DecryptError if malformed."""
    if len(blob) < 2:  # noqa: PLR2004 -- version byte and key id length
        raise DecryptError("ciphertext blob is truncated")
    if blob[0] != FORMAT_VERSION:
        raise DecryptError(f"unsupported ciphertext blob format version {blob[0]}")
    wrapped_at = 2 + blob[1]
    nonce_at = wrapped_at + 2 + int.from_bytes(blob[wrapped_at : wrapped_at + 2], "big")
    ciphertext_at = nonce_at + _NONCE_SIZE
    if blob[1] == 0 or len(blob) < ciphertext_at + _TAG_SIZE:
        raise DecryptError("ciphertext blob is truncated or malformed")
    try:
        key_id = blob[2:wrapped_at].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptError("ciphertext blob has a malformed master key id") from None
    return (
        key_id,
        blob[wrapped_at + 2 : nonce_at],
        blob[nonce_at:ciphertext_at],
        blob[ciphertext_at:],
    )


def key_id_of(blob: bytes) -> str:
    """The id of the master key that wrapped this blob's data key (no decryption)."""
    return _unpack(blob)[0]


def _wrap(master: MasterKey, data_key: bytes, aad: bytes) -> bytes:
    wrapped = master.wrap(data_key, aad)
    if len(wrapped) > _MAX_WRAPPED:
        raise ValueError(f"master key {master.key_id!r} produced an oversized wrapped key")
    return wrapped


class Sealer:
    """Seals and opens secret values with a keyring. Thread-safe; holds no per-call state.

    ``refresh_interval`` is how often (seconds) ``seal`` checks the key file for a rotation
    done by another process; 0 checks on every seal.
    """

    def __init__(self, keyring: Keyring, *, refresh_interval: float = 1.0) -> None:
        self._keyring = keyring
        self._refresh_interval = refresh_interval

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def _current(self) -> MasterKey:
        # Keep up with rotations, so new data does not land under a key about to be retired.
        self._keyring.reload_if_changed(max_age=self._refresh_interval)
        return self._keyring.current

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        master = self._current()
        # One urandom call for both (it is a syscall); the data key is single-use, so a
        # random nonce is ample.
        fresh = os.urandom(DATA_KEY_SIZE + _NONCE_SIZE)
        data_key, nonce = fresh[:DATA_KEY_SIZE], fresh[DATA_KEY_SIZE:]
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, aad)
        return _pack(master.key_id, _wrap(master, data_key, aad), nonce, ciphertext)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        key_id, wrapped, nonce, ciphertext = _unpack(blob)
        data_key = self._unwrap(key_id, wrapped, aad)
        try:
            return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptError("value failed authentication: wrong AAD or altered blob") from None

    def rewrap(self, blob: bytes, aad: bytes, to: MasterKey | None = None) -> bytes:
        """Re-wrap the data key under ``to`` (default: the current key); ciphertext untouched.

        Only the wrapped key is authenticated here; the value is not decrypted.
        """
        key_id, wrapped, nonce, ciphertext = _unpack(blob)
        data_key = self._unwrap(key_id, wrapped, aad)
        target = self._current() if to is None else to
        check_key_id(target.key_id)
        return _pack(target.key_id, _wrap(target, data_key, aad), nonce, ciphertext)

    def key_id_of(self, blob: bytes) -> str:
        return key_id_of(blob)

    def _unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        try:
            master = self._keyring.get(key_id)
        except UnknownKeyError:
            raise DecryptError(f"master key {key_id!r} is not in the keyring") from None
        try:
            data_key = master.unwrap(wrapped, aad)
        except (UnwrapError, InvalidTag):
            raise DecryptError("data key failed to unwrap: wrong AAD or altered blob") from None
        if len(data_key) != DATA_KEY_SIZE:
            raise DecryptError("unwrapped data key has the wrong length")
        return data_key


def _encode(domain: bytes, *fields: str) -> bytes:
    # Every part is length-prefixed, so distinct (domain, fields) never encode alike.
    parts = [len(domain).to_bytes(2, "big"), domain]
    for field in fields:
        raw = field.encode("utf-8", "surrogatepass")  # total and still injective
        parts += (len(raw).to_bytes(4, "big"), raw)
    return b"".join(parts)


def aad_for_version(secret_arn: str, version_id: str) -> bytes:
    """AAD binding a value to one version of one secret."""
    return _encode(_SECRET_VERSION_DOMAIN, secret_arn, version_id)


def aad_for_access_key(access_key_id: str) -> bytes:
    """AAD binding a stored secret access key to its access key id."""
    return _encode(_ACCESS_KEY_DOMAIN, access_key_id)


def aad_for_function_env(account_id: str, name: str) -> bytes:
    """AAD binding a rotation function's environment variables to that function."""
    return _encode(_FUNCTION_ENV_DOMAIN, account_id, name)


def aad_for_audit_key() -> bytes:
    """AAD binding the audit trail's signing key to its one place."""
    return _encode(_AUDIT_KEY_DOMAIN)
