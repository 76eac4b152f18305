"""Master keys, the keyring, and the key file they live in.

A master key never encrypts secret values; it only wraps the per-value data keys made by
:mod:`strongroom.crypto.envelope`. Rotation therefore means adding a key, rewrapping the small
wrapped keys, and retiring the old key -- no value is re-encrypted.

Key file (JSON, mode 0600, refused if group or others have any access, as ssh does):

    {
      "format": "strongroom-keyring",
      "version": 1,
      "current": "<key id>",
      "keys": [{"id": "<key id>", "created": "<ISO 8601 UTC>", "key": "<base64, 32 bytes>"}]
    }

It is only ever written whole: the first time by publishing a fully written 0600 temp file
under its final name with link() (so concurrent starters see no file or a complete one), and
afterwards through a 0600 temp file and rename(). Read-modify-write (rotate, retire) is
serialised between processes by flock() on a ``<name>.lock`` file beside it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.durable import sync_folder

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

KEY_SIZE = 32
MAX_KEY_ID_LENGTH = 64  # the storage layer's master_key_id column
_NONCE_SIZE = 12
_TAG_SIZE = 16
_FILE_FORMAT = "strongroom-keyring"
_FILE_VERSION = 1
_MAX_FILE_SIZE = 1 << 20
_KEY_ID_INFO = b"strongroom/master-key-id/v1"


class KeyFileError(Exception):
    """The key file is malformed or unusable. Messages name the file, never key material."""


class KeyFilePermissionError(KeyFileError):
    """The key file is accessible to group or others."""


class UnknownKeyError(LookupError):
    """No master key with the given id is in the keyring, even after a reload."""


class UnwrapError(Exception):
    """A wrapped data key did not authenticate: wrong key, wrong context, or tampering."""


class MasterKey(Protocol):
    """A key-encryption key: wraps and unwraps the per-value data keys.

    This is the seam for external key managers (AWS KMS, Vault transit, an HSM over PKCS#11):
    an implementation only wraps small byte strings bound to ``context`` and the key itself
    need never enter this process. ``wrap`` output is opaque and at most 65535 bytes;
    ``unwrap`` must raise :class:`UnwrapError` when ``wrapped`` or ``context`` does not
    authenticate (other exceptions are treated as operational failures, not tampering).
    """

    @property
    def key_id(self) -> str:
        """Short public id: printable ASCII, 1 to 64 characters, stable for the key's life."""

    def wrap(self, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


def check_key_id(key_id: str) -> str:
    """Return ``key_id`` if it fits in a blob header and the storage column, else raise."""
    if not (0 < len(key_id) <= MAX_KEY_ID_LENGTH and key_id.isascii() and key_id.isprintable()):
        raise ValueError(f"invalid master key id {key_id!r}")
    return key_id


class LocalMasterKey:
    """A 256-bit master key held in memory; wraps with AES-256-GCM and a random 96-bit nonce.

    Random nonces bound one key to about 2**32 wraps (NIST SP 800-38D); rotate well before.
    Only seals wrap, so at 1000 new values a second that is over 100 days.
    """

    __slots__ = ("_aead", "_key_id", "_secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_SIZE:
            raise ValueError(f"a master key is {KEY_SIZE} bytes, got {len(secret)}")
        self._secret = bytes(secret)
        # Built once: rebuilding the cipher per wrap would redo the key schedule every call.
        self._aead = AESGCM(self._secret)
        # A one-way derivation, so the id can be logged and stored without revealing the key.
        kdf = HKDF(algorithm=hashes.SHA256(), length=8, salt=None, info=_KEY_ID_INFO)
        self._key_id = kdf.derive(self._secret).hex()

    @classmethod
    def generate(cls) -> LocalMasterKey:
        return cls(AESGCM.generate_key(bit_length=KEY_SIZE * 8))

    @property
    def key_id(self) -> str:
        return self._key_id

    def export(self) -> bytes:
        """The raw key bytes, for writing the key file only."""
        return self._secret

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) < _NONCE_SIZE + _TAG_SIZE:
            raise UnwrapError("wrapped data key is truncated")
        try:
            return self._aead.decrypt(wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], context)
        except InvalidTag:
            raise UnwrapError("wrapped data key failed authentication") from None

    def __repr__(self) -> str:
        return f"LocalMasterKey(key_id={self._key_id!r})"


@dataclass(frozen=True, slots=True)
class _State:
    current: MasterKey
    by_id: dict[str, MasterKey]


# (device, inode, size, mtime, ctime): rename() gives a new inode, so a rotation always shows.
_Stamp = tuple[int, int, int, int, int]


def _stamp(st: os.stat_result) -> _Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _make_state(current: MasterKey, older: Iterable[MasterKey]) -> _State:
    by_id: dict[str, MasterKey] = {}
    for key in (*older, current):
        if by_id.setdefault(check_key_id(key.key_id), key) is not key:
            raise ValueError(f"two different master keys share the id {key.key_id!r}")
    return _State(current, by_id)


class Keyring:
    """The current master key (wraps new data keys) plus older ones, by key id.

    Older keys stay so that data they wrapped remains readable until it is rewrapped. A
    keyring loaded from a file can pick up changes to it with :meth:`reload_if_changed`;
    readers never lock, because a reload swaps one immutable state object.
    """

    def __init__(self, current: MasterKey, older: Iterable[MasterKey] = ()) -> None:
        self._state = _make_state(current, older)
        self._path: Path | None = None
        self._stamp: _Stamp | None = None
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def _from_file(cls, path: Path) -> Keyring:
        doc = _read_key_file(path)
        ring = cls(doc.current_key(), [e.key for e in doc.entries])
        ring._path, ring._stamp = path, doc.stamp
        return ring

    @property
    def current(self) -> MasterKey:
        return self._state.current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._state.by_id)

    @property
    def path(self) -> Path | None:
        return self._path

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._state.by_id

    def get(self, key_id: str) -> MasterKey:
        """The key with this id; an unknown id first triggers one reload (a rotation elsewhere)."""
        key = self._state.by_id.get(key_id)
        if key is None and self.reload_if_changed():
            key = self._state.by_id.get(key_id)
        if key is None:
            raise UnknownKeyError(f"no master key with id {key_id!r} in the keyring")
        return key

    def reload_if_changed(self, *, max_age: float = 0.0) -> bool:
        """Re-read the key file if it changed on disk; True if the keyring was replaced.

        Costs one stat(); with ``max_age`` > 0 not even that if the last check is younger
        than ``max_age`` seconds, so it can sit on the hot path. A file that has become
        unreadable or unsafe raises rather than leaving a silently stale keyring.
        """
        if self._path is None:
            return False
        if max_age > 0 and time.monotonic() - self._checked_at < max_age:
            return False
        with self._lock:
            self._checked_at = time.monotonic()
            if _stamp(self._path.stat()) == self._stamp:
                return False
            doc = _read_key_file(self._path)
            self._state = _make_state(doc.current_key(), [e.key for e in doc.entries])
            self._stamp = doc.stamp
            return True

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.key_id!r}, keys={sorted(self.key_ids)!r})"


@dataclass(frozen=True, slots=True)
class _Entry:
    key: LocalMasterKey
    created: str


@dataclass(frozen=True, slots=True)
class _KeyFile:
    entries: list[_Entry]
    current: str
    stamp: _Stamp

    def current_key(self) -> LocalMasterKey:
        return next(e.key for e in self.entries if e.key.key_id == self.current)


def load_keyring(path: Path) -> Keyring:
    return Keyring._from_file(path)  # noqa: SLF001 -- module-private constructor


def load_or_create_keyring(path: Path) -> tuple[Keyring, bool]:
    """Load the key file, creating it with one fresh key if absent; (keyring, created)."""
    with contextlib.suppress(FileNotFoundError):
        return load_keyring(path), False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = LocalMasterKey.generate()
    created = _create_file(path, _encode([_Entry(key, _now())], key.key_id))
    return load_keyring(path), created


def add_new_key(path: Path) -> Keyring:
    """Rotate: make a fresh key current, keeping the old ones so their data stays readable."""
    with _exclusive(path):
        doc = _read_key_file(path)
        key = LocalMasterKey.generate()
        _replace_file(path, _encode([*doc.entries, _Entry(key, _now())], key.key_id))
        return load_keyring(path)


def retire_keys(path: Path, keep: set[str]) -> Keyring:
    """Drop every key not in ``keep``; the current key is always kept. Unknown ids are ignored.

    ``keep`` must be the ids still referenced by stored blobs, gathered after every server
    has picked up the current key (see ``Keyring.reload_if_changed``), or data is lost.
    """
    with _exclusive(path):
        doc = _read_key_file(path)
        kept = [e for e in doc.entries if e.key.key_id in keep or e.key.key_id == doc.current]
        if len(kept) != len(doc.entries):
            _replace_file(path, _encode(kept, doc.current))
        return load_keyring(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _encode(entries: list[_Entry], current: str) -> bytes:
    keys = [
        {"id": e.key.key_id, "created": e.created, "key": base64.b64encode(e.key.export()).decode()}
        for e in entries
    ]
    doc = {"format": _FILE_FORMAT, "version": _FILE_VERSION, "current": current, "keys": keys}
    return json.dumps(doc, indent=2).encode() + b"\n"


def _read_key_file(path: Path) -> _KeyFile:
    with path.open("rb") as f:
        # fstat the open file, not the name, so the checked file is the one that is read.
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFilePermissionError(
                f"permissions {stat.S_IMODE(st.st_mode):04o} for key file {path} are too open: "
                f"it must not be accessible by group or others (chmod 600 {path})"
            )
        raw = f.read(_MAX_FILE_SIZE + 1)
    return _parse(path, raw, _stamp(st))


def _parse(path: Path, raw: bytes, stamp: _Stamp) -> _KeyFile:
    if len(raw) > _MAX_FILE_SIZE:
        raise KeyFileError(f"key file {path}: too large")
    try:
        doc: Any = json.loads(raw)
    except (ValueError, RecursionError):  # incl. bad UTF-8; never echo the file's text
        raise KeyFileError(f"key file {path}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != _FILE_FORMAT:
        raise KeyFileError(f"key file {path}: not a Strongroom key file")
    if doc.get("version") != _FILE_VERSION:
        raise KeyFileError(f"key file {path}: unsupported version (want {_FILE_VERSION})")
    items = doc.get("keys")
    if not isinstance(items, list) or not items:
        raise KeyFileError(f"key file {path}: no keys")
    entries = [_parse_entry(path, n, item) for n, item in enumerate(items)]
    ids = [e.key.key_id for e in entries]
    if len(set(ids)) != len(ids):
        raise KeyFileError(f"key file {path}: a key is listed twice")
    current = doc.get("current")
    if not isinstance(current, str) or current not in ids:
        raise KeyFileError(f"key file {path}: current does not name one of its keys")
    return _KeyFile(entries, current, stamp)


def _parse_entry(path: Path, n: int, item: object) -> _Entry:
    fields = item if isinstance(item, dict) else {}
    key_id, created, material = (fields.get(k) for k in ("id", "created", "key"))
    if not (isinstance(key_id, str) and isinstance(created, str) and isinstance(material, str)):
        raise KeyFileError(f"key file {path}: key #{n} needs string fields id, created, key")
    try:
        key = LocalMasterKey(base64.b64decode(material, validate=True))
    except (binascii.Error, ValueError):
        raise KeyFileError(f"key file {path}: key #{n} is not {KEY_SIZE} bytes of base64") from None
    if key.key_id != key_id:
        raise KeyFileError(f"key file {path}: key #{n} does not match its id {key_id!r}")
    return _Entry(key, created)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (which must not exist) with mode 0600 and write ``data`` durably."""
    # The mode applies at creation, so there is no moment when the file is more open.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # a umask can only remove bits; pin it exactly
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _create_file(path: Path, data: bytes) -> bool:
    """Publish a new key file unless one exists; False if another process got there first."""
    tmp = _temp_path(path)
    try:
        _write_private(tmp, data)
        try:
            os.link(tmp, path)  # atomic and never clobbers: nobody sees a half-written file
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem: exclusive create in place
            try:
                _write_private(path, data)
            except FileExistsError:
                return False
    finally:
        tmp.unlink(missing_ok=True)
    sync_folder(path.parent)  # else a crash can lose a key that already wrapped data
    return True


def _replace_file(path: Path, data: bytes) -> None:
    tmp = _temp_path(path)
    try:
        _write_private(tmp, data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the key file across processes, so no rotation is lost."""
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
