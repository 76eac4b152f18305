"""Envelope encryption: round trips, tamper detection, AAD binding and rewrapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.envelope import (
    DecryptError,
    Sealer,
    aad_for_access_key,
    aad_for_version,
    key_id_of,
)
from strongroom.crypto.keys import (
    Keyring,
    LocalMasterKey,
    add_new_key,
    load_or_create_keyring,
    retire_keys,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

SECRET_TEXT = b"correct horse battery staple"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
V1 = "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"
V2 = "EXAMPLE2-90ab-cdef-fedc-ba987SECRET2"

# Built once: hypothesis dislikes function-scoped fixtures, and keys are immutable anyway.
KEY = LocalMasterKey.generate()
SEALER = Sealer(Keyring(KEY))
MAX_EXAMPLES = settings(max_examples=200, deadline=None)


@MAX_EXAMPLES
@given(plaintext=st.binary(max_size=64 * 1024), aad=st.binary(max_size=512))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    blob = SEALER.seal(plaintext, aad)
    assert SEALER.open(blob, aad) == plaintext
    assert key_id_of(blob) == KEY.key_id


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 1024 * 1024])
def test_round_trip_sizes(size: int) -> None:
    plaintext = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert SEALER.open(SEALER.seal(plaintext, b""), b"") == plaintext


def test_every_seal_is_fresh() -> None:
    aad = aad_for_version(ARN, V1)
    blobs = {SEALER.seal(SECRET_TEXT, aad) for _ in range(50)}
    assert len(blobs) == 50
    assert all(SECRET_TEXT not in blob for blob in blobs)


def test_documented_size() -> None:
    assert len(SEALER.seal(b"x" * 100, b"aad")) == 208


@MAX_EXAMPLES
@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64), data=st.data())
def test_any_changed_byte_is_detected(plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    blob = bytearray(SEALER.seal(plaintext, aad))
    at = data.draw(st.integers(0, len(blob) - 1), label="at")
    blob[at] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(DecryptError):
        SEALER.open(bytes(blob), aad)


@MAX_EXAMPLES
@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64), data=st.data())
def test_truncation_and_extension_are_detected(
    plaintext: bytes, aad: bytes, data: st.DataObject
) -> None:
    blob = SEALER.seal(plaintext, aad)
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    with pytest.raises(DecryptError):
        SEALER.open(blob[:cut], aad)
    with pytest.raises(DecryptError):
        SEALER.open(blob + data.draw(st.binary(min_size=1, max_size=32)), aad)


@MAX_EXAMPLES
@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64), other=st.binary(max_size=64))
def test_other_aad_is_refused(plaintext: bytes, aad: bytes, other: bytes) -> None:
    if other == aad:
        other += b"\x00"
    blob = SEALER.seal(plaintext, aad)
    with pytest.raises(DecryptError):
        SEALER.open(blob, other)
    with pytest.raises(DecryptError):
        SEALER.rewrap(blob, other)


def test_every_bit_flip_and_every_prefix_fail() -> None:
    aad = aad_for_version(ARN, V1)
    blob = SEALER.seal(SECRET_TEXT, aad)
    for at in range(len(blob)):
        for bit in range(8):
            flipped = bytearray(blob)
            flipped[at] ^= 1 << bit
            with pytest.raises(DecryptError):
                SEALER.open(bytes(flipped), aad)
    for cut in range(len(blob)):
        with pytest.raises(DecryptError):
            SEALER.open(blob[:cut], aad)


names = st.text(min_size=1, max_size=80)


@MAX_EXAMPLES
@given(arn_a=names, arn_b=names, v1=names, v2=names, plaintext=st.binary(max_size=128))
def test_blob_is_bound_to_its_secret_and_version(
    arn_a: str, arn_b: str, v1: str, v2: str, plaintext: bytes
) -> None:
    blob = SEALER.seal(plaintext, aad_for_version(arn_a, v1))
    assert SEALER.open(blob, aad_for_version(arn_a, v1)) == plaintext
    if v2 != v1:
        with pytest.raises(DecryptError):
            SEALER.open(blob, aad_for_version(arn_a, v2))
    if arn_b != arn_a:
        with pytest.raises(DecryptError):
            SEALER.open(blob, aad_for_version(arn_b, v1))
    with pytest.raises(DecryptError):
        SEALER.open(blob, aad_for_access_key(arn_a))


@MAX_EXAMPLES
@given(a=st.tuples(names, names), b=st.tuples(names, names))
def test_aad_encoding_is_injective(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert (aad_for_version(*a) == aad_for_version(*b)) == (a == b)
    assert aad_for_version(*a) != aad_for_access_key(a[0] + a[1])


def test_aad_encoding_examples() -> None:
    assert aad_for_version("ab", "c") != aad_for_version("a", "bc")
    assert aad_for_version("a", "") != aad_for_access_key("a")
    assert b"strongroom/secret-version/v1" in aad_for_version(ARN, V1)
    assert b"strongroom/access-key/v1" in aad_for_access_key("AKIAEXAMPLE")
    assert aad_for_version("\ud800", "x") != aad_for_version("\ud801", "x")  # lone surrogates


def test_errors_never_reveal_plaintext_or_keys() -> None:
    aad = aad_for_version(ARN, V1)
    blob = SEALER.seal(SECRET_TEXT, aad)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    secrets_ = (SECRET_TEXT, SECRET_TEXT.hex().encode(), KEY.export(), KEY.export().hex().encode())
    attempts: list[Callable[[], bytes]] = [
        lambda: SEALER.open(tampered, aad),
        lambda: SEALER.open(blob, aad_for_version(ARN, V2)),
        lambda: SEALER.open(blob[:30], aad),
        lambda: Sealer(Keyring(LocalMasterKey.generate())).open(blob, aad),
    ]
    for attempt in attempts:
        with pytest.raises(DecryptError) as info:
            attempt()
        text = repr(info.value).encode()
        assert not any(s in text for s in secrets_)
        assert info.value.__cause__ is None


def test_unknown_key_and_bad_version_are_decrypt_errors() -> None:
    aad = b"aad"
    blob = SEALER.seal(SECRET_TEXT, aad)
    stranger = Sealer(Keyring(LocalMasterKey.generate()))
    with pytest.raises(DecryptError, match=KEY.key_id):
        stranger.open(blob, aad)
    with pytest.raises(DecryptError, match="version"):
        SEALER.open(b"\x02" + blob[1:], aad)
    with pytest.raises(DecryptError):
        key_id_of(b"\x01")


# -- Rotation ----------------------------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


def test_rewrap_moves_blob_to_new_key(key_file: Path) -> None:
    ring, _ = load_or_create_keyring(key_file)
    old_key = ring.current
    aad = aad_for_version(ARN, V1)
    blob = Sealer(ring).seal(SECRET_TEXT, aad)

    new_ring = add_new_key(key_file)
    sealer = Sealer(new_ring)
    assert sealer.open(blob, aad) == SECRET_TEXT  # old key still in the ring
    rewrapped = sealer.rewrap(blob, aad)

    assert key_id_of(blob) == old_key.key_id
    assert sealer.key_id_of(rewrapped) == new_ring.current.key_id != old_key.key_id
    assert rewrapped[-len(SECRET_TEXT) - 28 :] == blob[-len(SECRET_TEXT) - 28 :]  # nonce+ct
    assert sealer.open(rewrapped, aad) == SECRET_TEXT
    with pytest.raises(DecryptError):
        Sealer(Keyring(old_key)).open(rewrapped, aad)  # needs the new key now

    # Once everything is rewrapped the old key can go; only the old blob breaks.
    retired = retire_keys(key_file, keep={new_ring.current.key_id})
    assert Sealer(retired).open(rewrapped, aad) == SECRET_TEXT
    with pytest.raises(DecryptError, match=old_key.key_id):
        Sealer(retired).open(blob, aad)


def test_rewrap_to_explicit_key() -> None:
    target = LocalMasterKey.generate()
    aad = aad_for_access_key("AKIAEXAMPLE")
    blob = SEALER.seal(SECRET_TEXT, aad)
    moved = SEALER.rewrap(blob, aad, to=target)
    assert key_id_of(moved) == target.key_id
    assert Sealer(Keyring(target)).open(moved, aad) == SECRET_TEXT
    with pytest.raises(DecryptError):
        SEALER.open(moved, aad)


def test_running_sealer_follows_rotation(key_file: Path) -> None:
    ring, _ = load_or_create_keyring(key_file)
    sealer = Sealer(ring, refresh_interval=0)
    first = sealer.seal(SECRET_TEXT, b"a")
    new_id = add_new_key(key_file).current.key_id  # another process rotates
    second = sealer.seal(SECRET_TEXT, b"a")
    assert key_id_of(first) != key_id_of(second) == new_id
    assert sealer.open(first, b"a") == sealer.open(second, b"a") == SECRET_TEXT


def test_open_picks_up_key_added_elsewhere(key_file: Path) -> None:
    reader = Sealer(load_or_create_keyring(key_file)[0], refresh_interval=3600)
    writer = Sealer(add_new_key(key_file))
    blob = writer.seal(SECRET_TEXT, b"a")
    assert reader.open(blob, b"a") == SECRET_TEXT  # unknown id triggers a reload
