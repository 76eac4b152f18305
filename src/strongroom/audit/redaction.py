"""Which request and response members an audit record may hold, and under which key.

Theory of operation: a member is withheld when its name is on the deny table, or when its
name contains a deny fragment and is not on the allow table. The fragments apply to every
operation of every service, so a member of an operation we have never seen that looks like
secret material is withheld by default; the allow table only rescues names that merely
mention such a word (PasswordLength, ClientRequestToken). Binary values are withheld
wherever they are, whatever their name: the only binary members are secret payloads.

The text of every withheld value is remembered, so that `scrub` can take it out of any
free text that repeats it (an error message, say) before the record is written.

Names are compared lower-cased with everything but letters and digits removed, so
`SecretString`, `secretString` and `secret_string` are one name.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

# What stands in for a withheld value inside free text; AWS's own marker for such places.
WITHHELD: Final = "HIDDEN_DUE_TO_SECURITY_REASONS"

# Every member botocore marks sensitive in the secretsmanager, iam and sts models (the
# tests keep this true), plus STS's SessionToken, which the model does not mark.
_DENY_NAMES: Final = frozenset(
    {
        # Secrets Manager
        "secretstring",
        "secretbinary",
        "randompassword",
        "rotationtoken",
        # IAM
        "password",
        "oldpassword",
        "newpassword",
        "secretaccesskey",
        "privatekey",
        "addprivatekey",
        "base32stringseed",
        "qrcodepng",
        "servicepassword",
        "servicecredentialsecret",
        "authenticationcode1",
        "authenticationcode2",
        # STS
        "sessiontoken",
        "samlassertion",
        "webidentitytoken",
        "tradeintoken",
        "tokencode",
        "contextassertion",
        "trustedidentitypropagationcontext",
        "issuer",  # of a SAML / web identity: identifying data the model marks sensitive
        "subject",
        "subjecttype",
    }
)

# The fallback for members no table names: any name containing one of these is withheld.
_DENY_FRAGMENTS: Final = (
    "password",
    "passphrase",
    "secretstring",
    "secretbinary",
    "secretvalue",
    "secretkey",
    "secretaccesskey",
    "clientsecret",
    "credentialsecret",
    "privatekey",
    "token",
    "assertion",
    "seed",
    "plaintext",
    "authenticationcode",
)

# Names that contain a fragment but hold no secret (the tests check none of them has a
# sensitive shape in the models).
_ALLOW_NAMES: Final = frozenset(
    {
        "clientrequesttoken",  # an idempotency token, recorded by AWS
        "nexttoken",
        "passwordlength",  # GetRandomPassword's request
        "passwordresetrequired",
        "passwordlastused",
        "passwordpolicy",  # a container: its members are judged one by one
        "minimumpasswordlength",
        "maxpasswordage",
        "passwordreuseprevention",
        "allowuserstochangepassword",
        "expirepasswords",
        "globalendpointtokenversion",
        "assertionencryptionmode",
        "sessiontokensize",  # sizes and usage counts, not tokens
        "minimumsessiontokensize",
        "sessiontokenutilization",
        "privatekeylist",  # ids and dates of a SAML provider's keys, not the keys
        "removeprivatekey",  # the id of the key to remove
        "tokentype",  # STS GetWebIdentityToken: which kind of token to issue (an enum)
    }
)

_MEMBER_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_LEADING_CAPITALS = re.compile(r"[A-Z]+")
# Shorter withheld values are not scrubbed from free text: replacing every "true" or "1"
# would wreck the record and protect nothing.
_SCRUB_MIN_LENGTH: Final = 8


def _normal(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@functools.lru_cache(maxsize=4096)  # member names are few; this runs for every call
def is_withheld(name: str) -> bool:
    """True when a member of this name never reaches an audit record."""
    normal = _normal(name)
    if normal in _DENY_NAMES:
        return True
    if normal in _ALLOW_NAMES:
        return False
    return any(fragment in normal for fragment in _DENY_FRAGMENTS)


@functools.lru_cache(maxsize=4096)
def cloudtrail_key(name: str) -> str:
    """A model member name as CloudTrail writes it: `SecretId` → `secretId`, `ARN` → `arn`.

    Leading capitals are an acronym and go lower-case as a whole (`KMSKeyId` → `kmsKeyId`).
    AWS wrote `aRN` before February 2024 and `arn` since; we follow the current spelling.
    Keys that are not member names (a version id in a map) are left as they are.
    """
    if not _MEMBER_NAME.fullmatch(name):
        return name
    run = _LEADING_CAPITALS.match(name)
    size = len(run.group()) if run else 0
    if size == len(name):
        return name.lower()
    if size > 1 and name[size].islower():
        size -= 1  # the last capital starts the next word: KMSKey → kmsKey
    return name[:size].lower() + name[size:]


def redact(
    value: Any, *, rename: bool = True, dates: Callable[[datetime], str] | None = None
) -> tuple[Any, frozenset[str]]:
    """(`value` with every withheld member left out, the texts that were withheld).

    Mappings keep their non-withheld members (renamed to CloudTrail's keys unless `rename`
    is false), lists keep their items, datetimes become text (`dates`, else ISO 8601 UTC),
    bytes are dropped.
    """
    withheld: set[str] = set()
    cleaned = _clean(value, withheld, rename=rename, dates=dates or iso_time)
    return (None if cleaned is _DROP else cleaned), frozenset(withheld)


def withheld_texts(value: Any) -> frozenset[str]:
    """The texts `redact` would withhold from `value`, without building the cleaned copy."""
    if type(value) in _PLAIN:
        return frozenset()
    withheld: set[str] = set()
    _gather(value, withheld)
    return frozenset(withheld)


def _gather(value: Any, withheld: set[str]) -> None:
    # Plain members are skipped before a call: this walks every read's response.
    if isinstance(value, _MAPPINGS):
        for key, item in value.items():
            if is_withheld(key if type(key) is str else str(key)):
                _collect(item, withheld)
            elif type(item) not in _PLAIN:
                _gather(item, withheld)
    elif isinstance(value, _COLLECTIONS):
        for item in value:
            if type(item) not in _PLAIN:
                _gather(item, withheld)
    elif isinstance(value, _BYTES):
        _collect(value, withheld)


def scrub(value: Any, withheld: frozenset[str]) -> Any:
    """`value` with every withheld text (long enough to be worth it) replaced in its strings."""
    needles = _needles(withheld)
    if not needles:
        return value
    return _replace(value, needles)


def scrubbed_json(value: Any, withheld: frozenset[str]) -> tuple[Any, str]:
    """(`scrub(value)`, its compact JSON), walking `value` only when a withheld text is
    in the JSON at all: the JSON is needed anyway, and the walk is the costly part."""
    text = compact_json(value)
    if not needs_scrub(text, withheld):
        return value, text
    value = _replace(value, _needles(withheld))
    return value, compact_json(value)


def needs_scrub(text: str, withheld: frozenset[str]) -> bool:
    """True when the JSON ``text`` holds a withheld text that ``scrub`` would replace."""
    return any(_as_in_json(needle) in text for needle in _needles(withheld))


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# json.dumps(value, separators=(",", ":")), the same text. JSONEncoder.encode builds its C
# encoder anew on each call, which cost more than encoding a request's few members; this one
# is built once (json's own C encoder, with json.dumps' settings; no check for circular
# references, which parsed requests and results cannot hold). Pure Python where json has no C
# accelerator.
_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # untyped in typeshed
if _c_encoder is not None:
    # Positional only: markers, default, string encoder, indent, ":", ",", sort_keys,
    # skipkeys, allow_nan.
    _encode_compact = _c_encoder(
        None,
        _not_json,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,  # noqa: FBT003
        False,  # noqa: FBT003
        True,  # noqa: FBT003
    )

    def compact_json(value: Any) -> str:
        return "".join(_encode_compact(value, 0))

else:  # pragma: no cover - CPython always has it
    _PURE_COMPACT: Final = json.JSONEncoder(separators=(",", ":")).encode

    def compact_json(value: Any) -> str:
        return _PURE_COMPACT(value)


def _needles(withheld: frozenset[str]) -> list[str]:
    if len(withheld) <= 1:  # most records: nothing, or a read's one value (no sorted() call)
        return [w for w in withheld if len(w) >= _SCRUB_MIN_LENGTH]
    return sorted((w for w in withheld if len(w) >= _SCRUB_MIN_LENGTH), key=len, reverse=True)


class _Drop:
    """Marks an item left out of its container."""


_DROP: Final = _Drop()


_PLAIN: Final = frozenset({str, int, float, bool, type(None)})
# Tuples, not `A | B`: a union in isinstance() is built anew on every call (the walks below
# run for every call's record).
_MAPPINGS: Final = (dict, Mapping)
_COLLECTIONS: Final = (list, tuple, set, frozenset)
_BYTES: Final = (bytes, bytearray, memoryview)
_SCALARS: Final = (str, bool, int, float)


def _clean(  # noqa: PLR0911 - by type
    value: Any, withheld: set[str], *, rename: bool, dates: Callable[[datetime], str]
) -> Any:
    if type(value) in _PLAIN:  # most members: checked first, without the ABC checks below
        return value
    if isinstance(value, _MAPPINGS):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if is_withheld(name):
                _collect(item, withheld)
                continue
            cleaned = _clean(item, withheld, rename=rename, dates=dates)
            if cleaned is not _DROP:
                out[cloudtrail_key(name) if rename else name] = cleaned
        return out
    if isinstance(value, _COLLECTIONS):
        items = (_clean(item, withheld, rename=rename, dates=dates) for item in value)
        return [item for item in items if item is not _DROP]
    if isinstance(value, _BYTES):
        _collect(value, withheld)
        return _DROP
    if isinstance(value, datetime):
        return dates(value)
    if value is None or isinstance(value, _SCALARS):
        return value
    return str(value)


def _collect(value: Any, withheld: set[str]) -> None:
    """Remember every text inside a withheld value, in the forms it could be repeated in."""
    if isinstance(value, Mapping):
        for item in value.values():
            _collect(item, withheld)
    elif isinstance(value, _COLLECTIONS):
        for item in value:
            _collect(item, withheld)
    elif isinstance(value, _BYTES):
        raw = bytes(value)
        withheld.add(base64.b64encode(raw).decode())
        withheld.add(raw.decode("utf-8", errors="replace"))
    elif isinstance(value, str):
        withheld.add(value)


def _replace(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            if needle in value:
                value = value.replace(needle, WITHHELD)
        return value
    if isinstance(value, dict):
        return {key: _replace(item, needles) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, needles) for item in value]
    return value


def iso_time(moment: datetime | float) -> str:
    """CloudTrail's time format: `2026-11-28T11:27:19Z` (UTC, whole seconds)."""
    if not isinstance(moment, datetime):
        return _iso_second(math.floor(moment))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # naive datetimes in Strongroom are UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=4)  # one record after another falls in the same second
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_in_json(text: str) -> str:
    """``text`` as it appears inside a JSON string (the escaping json.dumps does)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return json.dumps(text)[1:-1]
