"""Master keys, the keyring and its key file."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from typing import TYPE_CHECKING

import pytest

from strongroom.crypto.keys import (
    KeyFileError,
    KeyFilePermissionError,
    Keyring,
    LocalMasterKey,
    UnknownKeyError,
    UnwrapError,
    add_new_key,
    load_keyring,
    load_or_create_keyring,
    retire_keys,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: the files must still come out 0600."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- LocalMasterKey ----------------------------------------------------------------------------


def test_wrap_round_trips_and_is_bound_to_context() -> None:
    key = LocalMasterKey.generate()
    data_key = os.urandom(32)
    wrapped = key.wrap(data_key, b"ctx")
    assert wrapped != key.wrap(data_key, b"ctx")  # fresh nonce each time
    assert key.unwrap(wrapped, b"ctx") == data_key
    with pytest.raises(UnwrapError):
        key.unwrap(wrapped, b"other ctx")
    with pytest.raises(UnwrapError):
        LocalMasterKey.generate().unwrap(wrapped, b"ctx")
    with pytest.raises(UnwrapError):
        key.unwrap(wrapped[:20], b"ctx")


def test_key_id_is_stable_short_and_reveals_nothing() -> None:
    secret = os.urandom(32)
    key = LocalMasterKey(secret)
    assert key.key_id == LocalMasterKey(secret).key_id
    assert key.key_id != LocalMasterKey.generate().key_id
    assert len(key.key_id) == 16
    assert key.key_id not in secret.hex()
    assert secret.hex() not in repr(key)
    assert key.key_id in repr(key)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_must_be_256_bits(size: int) -> None:
    with pytest.raises(ValueError):
        LocalMasterKey(os.urandom(size))


# -- Keyring -----------------------------------------------------------------------------------


def test_keyring_in_memory() -> None:
    old, new = LocalMasterKey.generate(), LocalMasterKey.generate()
    ring = Keyring(new, [old])
    assert ring.current is new
    assert ring.get(old.key_id) is old
    assert ring.key_ids == {old.key_id, new.key_id}
    assert old.key_id in ring
    assert not ring.reload_if_changed()
    with pytest.raises(UnknownKeyError):
        ring.get("0000000000000000")


def test_keyring_refuses_clashing_ids() -> None:
    key = LocalMasterKey.generate()

    class Impostor:
        key_id = key.key_id
        inner = LocalMasterKey.generate()

        def wrap(self, data_key: bytes, context: bytes) -> bytes:
            return self.inner.wrap(data_key, context)

        def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
            return self.inner.unwrap(wrapped, context)

    with pytest.raises(ValueError):
        Keyring(key, [Impostor()])


# -- Key file ----------------------------------------------------------------------------------


def test_created_0600_and_reloaded_with_same_key(key_file: Path, open_umask: None) -> None:
    ring, created = load_or_create_keyring(key_file)
    assert created
    assert mode_of(key_file) == 0o600
    again, created_again = load_or_create_keyring(key_file)
    assert not created_again
    assert again.current.key_id == ring.current.key_id
    wrapped = ring.current.wrap(b"k" * 32, b"ctx")
    assert again.current.unwrap(wrapped, b"ctx") == b"k" * 32
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]  # no temp file left


def test_file_format(key_file: Path) -> None:
    ring, _ = load_or_create_keyring(key_file)
    doc = json.loads(key_file.read_text())
    assert doc["format"] == "strongroom-keyring"
    assert doc["version"] == 1
    assert doc["current"] == ring.current.key_id
    [entry] = doc["keys"]
    assert entry["id"] == ring.current.key_id
    assert LocalMasterKey(base64.b64decode(entry["key"])).key_id == entry["id"]


def test_creates_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys.json"
    _, created = load_or_create_keyring(path)
    assert created
    assert mode_of(path.parent) & 0o077 == 0


def test_concurrent_first_start_agrees_on_one_key(key_file: Path) -> None:
    barrier = threading.Barrier(8)
    results: list[tuple[str, bool]] = []

    def start() -> None:
        barrier.wait()
        ring, created = load_or_create_keyring(key_file)
        results.append((ring.current.key_id, created))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({key_id for key_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o610])
def test_refuses_file_open_to_group_or_others(key_file: Path, mode: int) -> None:
    load_or_create_keyring(key_file)
    key_file.chmod(mode)
    with pytest.raises(KeyFilePermissionError, match=str(key_file)) as info:
        load_keyring(key_file)
    assert f"{mode:04o}" in str(info.value)
    with pytest.raises(KeyFilePermissionError):
        load_or_create_keyring(key_file)  # never "recovers" by making a new key


def test_owner_read_only_is_fine(key_file: Path) -> None:
    load_or_create_keyring(key_file)
    key_file.chmod(0o400)
    load_keyring(key_file)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "not a Strongroom key file"),
        (b'{"format": "strongroom-keyring", "version": 2}', "unsupported version"),
        (b'{"format": "strongroom-keyring", "version": 1, "keys": []}', "no keys"),
    ],
)
def test_malformed_files_are_refused(key_file: Path, content: bytes, message: str) -> None:
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        load_keyring(key_file)


def test_tampered_entries_are_refused_without_quoting_keys(key_file: Path) -> None:
    load_or_create_keyring(key_file)
    doc = json.loads(key_file.read_text())
    material = doc["keys"][0]["key"]
    other = LocalMasterKey.generate()
    cases = [
        ({**doc, "current": other.key_id}, "current does not name"),
        ({**doc, "keys": [{**doc["keys"][0], "id": other.key_id}]}, "does not match its id"),
        ({**doc, "keys": [{**doc["keys"][0], "key": material[:-4]}]}, "not 32 bytes"),
        ({**doc, "keys": [{**doc["keys"][0], "key": "!" + material[1:]}]}, "not 32 bytes"),
        ({**doc, "keys": doc["keys"] * 2}, "listed twice"),
        ({**doc, "keys": [{"id": 1}]}, "string fields"),
    ]
    for bad, message in cases:
        key_file.write_text(json.dumps(bad))
        with pytest.raises(KeyFileError, match=message) as info:
            load_keyring(key_file)
        assert material[:8] not in str(info.value)


def test_rotation_replaces_atomically_and_keeps_0600(key_file: Path, open_umask: None) -> None:
    first, _ = load_or_create_keyring(key_file)
    inode = key_file.stat().st_ino
    rotated = add_new_key(key_file)
    assert key_file.stat().st_ino != inode  # a new file renamed into place, not rewritten
    assert mode_of(key_file) == 0o600
    assert rotated.current.key_id != first.current.key_id
    assert first.current.key_id in rotated
    assert load_keyring(key_file).current.key_id == rotated.current.key_id
    leftovers = {p.name for p in key_file.parent.iterdir()} - {"keys.json", "keys.json.lock"}
    assert not leftovers
    assert mode_of(key_file.with_name("keys.json.lock")) == 0o600


def test_concurrent_rotations_lose_no_key(key_file: Path) -> None:
    load_or_create_keyring(key_file)
    made: list[str] = []
    threads = [
        threading.Thread(target=lambda: made.append(add_new_key(key_file).current.key_id))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(made) <= load_keyring(key_file).key_ids
    assert len(load_keyring(key_file).key_ids) == 7


def test_retire_keeps_current_and_listed(key_file: Path) -> None:
    k1 = load_or_create_keyring(key_file)[0].current.key_id
    k2 = add_new_key(key_file).current.key_id
    k3 = add_new_key(key_file).current.key_id
    ring = retire_keys(key_file, keep={k2, "not-a-key"})
    assert ring.key_ids == {k2, k3}
    assert retire_keys(key_file, keep=set()).key_ids == {k3}
    assert mode_of(key_file) == 0o600
    assert k1 not in load_keyring(key_file)


def test_reload_sees_rotation_by_another_instance(key_file: Path) -> None:
    server, _ = load_or_create_keyring(key_file)
    old = server.current.key_id
    assert not server.reload_if_changed()
    new = add_new_key(key_file).current.key_id  # as the CLI would, in another process
    assert server.current.key_id == old
    assert server.reload_if_changed()
    assert server.current.key_id == new
    assert server.key_ids == {old, new}
    assert not server.reload_if_changed()


def test_reload_is_throttled_by_max_age(key_file: Path) -> None:
    server, _ = load_or_create_keyring(key_file)
    add_new_key(key_file)
    assert not server.reload_if_changed(max_age=3600)  # just loaded: no stat at all
    assert server.reload_if_changed(max_age=0)


def test_get_unknown_id_reloads_once(key_file: Path) -> None:
    server, _ = load_or_create_keyring(key_file)
    new = add_new_key(key_file).current.key_id
    assert server.get(new).key_id == new
    with pytest.raises(UnknownKeyError, match="ffffffffffffffff"):
        server.get("ffffffffffffffff")


def test_reload_refuses_a_file_made_readable(key_file: Path) -> None:
    server, _ = load_or_create_keyring(key_file)
    add_new_key(key_file)
    key_file.chmod(0o644)
    with pytest.raises(KeyFilePermissionError):
        server.reload_if_changed()
