"""The Secrets Manager service model, compiled once into request parsers and response writers.

The shapes come from the model botocore ships, so they always match what the SDKs send. At load
every input shape becomes a tree of small closures (bounds, compiled patterns and enum sets bound
in), so a request costs one ``json`` decode plus one pass over the members it actually carries.

Error texts imitate the AWS (Coral) JSON front end; the sources are named where they are built.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from botocore.loaders import Loader
from botocore.model import ServiceModel as BotocoreServiceModel
from botocore.model import Shape

from strongroom.errors import SerializationException, ValidationException
from strongroom.protocol.constraints import (
    JAVA_RANGE as _JAVA_RANGE,
)
from strongroom.protocol.constraints import (
    MAX_REPORTED_VIOLATIONS,
)
from strongroom.protocol.constraints import (
    Violation as _Violation,
)
from strongroom.protocol.constraints import (
    prefix as _prefix,
)
from strongroom.protocol.constraints import (
    subject as _subject,
)
from strongroom.protocol.constraints import (
    u16len as _u16len,
)

# Members whose model constraints (required, min/max length) the front end must NOT enforce:
# AWS answers a missing or malformed ClientRequestToken from the operation itself, with
# InvalidRequestException / InvalidParameterException (docs/api-spec.md §4), so the operations
# layer checks it. Only the JSON type is still checked for these.
UNCHECKED_CONSTRAINT_MEMBERS = frozenset({"ClientRequestToken"})


# Coral's text for any undecodable base64 (DynamoDB, via dynalite's tests; the typo is AWS's).
BAD_BASE64 = "Invalid last non-pad Base64 character dectected"

_TYPE_NAMES = {
    "string": "a String",
    "integer": "an Integer",
    "long": "a Long",
    "boolean": "a Boolean",
    "blob": "a Blob",
    "timestamp": "a Timestamp",
    "double": "a Double",
    "float": "a Float",
}


Parse = Callable[[Any, list[_Violation]], Any]
Check = tuple[Callable[[Any], bool], str]
Serialize = Callable[[Any], Any]


class _Scalar(NamedTuple):
    convert: Callable[[Any], Any]  # JSON value -> Python value, or SerializationException
    ok: Callable[[Any], bool] | None  # all constraints at once; None when there are none
    checks: tuple[Check, ...]  # one per constraint, in the order AWS lists them
    display: Callable[[Any], str | None]  # how a value is echoed; None hides it (sensitive)
    text: _Text | None = None  # strings only: what the inlined fast check needs


class _Text(NamedTuple):
    lo: int
    fast_hi: int  # up to this many code points the UTF-16 length cannot exceed max either
    pattern: re.Pattern[str] | None
    enum: frozenset[str] | None


def _same(value: Any) -> Any:
    return value


def _type_error(value: Any, expected: str) -> SerializationException:
    # Texts measured on Athena (another Coral JSON 1.1 service) by an emulator's test suite.
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected")
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected.")
    if expected in ("list", "map", "structure"):
        return SerializationException(
            "Expected null" if expected == "structure" else f"Expected {expected} or null"
        )
    token = "STRING_VALUE" if isinstance(value, str) else "NUMBER_VALUE"
    if isinstance(value, bool):
        token = "TRUE_VALUE" if value else "FALSE_VALUE"
    return SerializationException(f"{token} can not be converted to {expected}")


def _decode_blob(value: Any) -> bytes:
    if type(value) is not str:
        raise _type_error(value, "a Blob")
    if len(value) % 4:
        raise SerializationException(
            f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(value)}"
        )
    try:
        data = binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        raise SerializationException(BAD_BASE64) from None
    # strict_mode still accepts padding bits that are not zero ("Zm9="); Coral does not.
    if (rest := len(data) % 3) and base64.b64encode(data[-rest:]) != value[-4:].encode():
        raise SerializationException(BAD_BASE64)
    return data


def _number(kind: str) -> Callable[[Any], Any]:
    expected = _TYPE_NAMES[kind]
    integral = kind in _JAVA_RANGE

    def convert(value: Any) -> Any:
        if type(value) is int:
            return value if integral else float(value)
        if type(value) is float:
            if not math.isfinite(value):
                raise SerializationException("")
            return int(value) if integral else value  # AWS truncates 1.5 to 1 (Athena)
        raise _type_error(value, expected)

    return convert


def _strict(kind: type, expected: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise _type_error(value, expected)
        return value

    return convert


def _timestamp(value: Any) -> datetime:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _type_error(value, "a Timestamp")
    return datetime.fromtimestamp(value, UTC)


def _hide(_value: Any) -> str | None:
    return None


def _show_number(limit: int) -> Callable[[Any], str | None]:
    # Athena echoes no value when it overflows the Java type (measured: 99999999999 for an int).
    return lambda n: str(n) if -limit <= n < limit else None


class _Kind(NamedTuple):
    convert: Callable[[Any], Any]
    size: Callable[[Any], Any]  # what min/max bound: UTF-16 length, byte length or the value
    noun: str  # "length" or "value", as in "Member must have length less than or equal to 512"
    display: Callable[[Any], str | None]


_KINDS = {
    "string": _Kind(_strict(str, "a String"), _u16len, "length", str),
    "blob": _Kind(_decode_blob, len, "length", _hide),
    "integer": _Kind(_number("integer"), _same, "value", _show_number(2**31)),
    "long": _Kind(_number("long"), _same, "value", _show_number(2**63)),
    "double": _Kind(_number("double"), _same, "value", str),
    "float": _Kind(_number("float"), _same, "value", str),
    "boolean": _Kind(_strict(bool, "a Boolean"), _same, "value", lambda b: str(b).lower()),
    "timestamp": _Kind(_timestamp, _same, "value", _hide),
}


def _scalar(shape: Shape, *, checked: bool) -> _Scalar | None:
    """Compile a scalar shape; None for structures, lists and maps."""
    kind = _KINDS.get(shape.type_name)
    if kind is None:
        return None
    meta = shape.metadata
    display = _hide if meta.get("sensitive") else kind.display
    if not checked:
        return _Scalar(kind.convert, None, (), display)
    size, noun, lo, hi = kind.size, kind.noun, meta.get("min"), meta.get("max")
    checks: list[Check] = []
    # AWS lists bounds max first, then min, then pattern (FIELD: ACM and Lambda messages).
    if hi is not None:
        text = f"Member must have {noun} less than or equal to {hi}"
        checks.append((lambda x: size(x) <= hi, text))
    if lo is not None:
        text = f"Member must have {noun} greater than or equal to {lo}"
        checks.append((lambda x: size(x) >= lo, text))
    pattern = _pattern(meta.get("pattern"))
    if pattern is not None:
        text = f"Member must satisfy regular expression pattern: {pattern.pattern}"
        checks.append((lambda x: pattern.fullmatch(x) is not None, text))
    names: list[str] = meta.get("enum", [])
    enum = frozenset(names) if names else None
    if enum is not None:
        text = f"Member must satisfy enum value set: [{', '.join(names)}]"
        checks.append((lambda x: x in enum, text))
    if not checks:
        return _Scalar(kind.convert, None, (), display)
    predicates = tuple(check for check, _ in checks)
    ok = lambda x: all(check(x) for check in predicates)  # noqa: E731
    fast = None
    if shape.type_name == "string":
        fast = _Text(lo or 0, sys.maxsize if hi is None else hi // 2, pattern, enum)
    return _Scalar(kind.convert, ok, tuple(checks), display, fast)


def _pattern(source: str | None) -> re.Pattern[str] | None:
    if source is None:
        return None
    try:
        return re.compile(source, re.ASCII)  # Java's \d and \w are ASCII-only
    except re.error:  # a Java-only construct (there is none in Secrets Manager today): skip
        return None


def _leaf(scalar: _Scalar) -> Parse:
    convert, ok = scalar.convert, scalar.ok
    if ok is None:
        return lambda value, _errors: convert(value)
    if scalar.text is not None:
        return _string_leaf(scalar, scalar.text)

    def parse(value: Any, errors: list[_Violation]) -> Any:
        result = convert(value)
        if not ok(result):
            _report(scalar, result, errors)
        return result

    return parse


def _string_leaf(scalar: _Scalar, spec: _Text) -> Parse:
    # The hot path of nearly every request: the common case makes no inner calls. When the
    # quick test fails, _report runs the exact checks (UTF-16 length) and may find nothing.
    lo, fast_hi, pattern, enum = spec

    def parse(value: Any, errors: list[_Violation]) -> Any:
        if type(value) is not str:
            raise _type_error(value, "a String")
        size = len(value)
        if (
            (size < lo or size > fast_hi)
            or (pattern is not None and pattern.fullmatch(value) is None)
            or (enum is not None and value not in enum)
        ):
            _report(scalar, value, errors)
        return value

    return parse


def _report(scalar: _Scalar, value: Any, errors: list[_Violation]) -> None:
    failed = [text for check, text in scalar.checks if not check(value)]
    subject = _subject(scalar.display(value))
    errors.extend(_Violation(subject, text) for text in failed)


def _list_subject(scalar: _Scalar | None, values: list[Any]) -> str:
    # A list of scalars is echoed Java-style, '[a, b]'; anything else (or a secret) is not.
    shown = [None] if scalar is None else [scalar.display(v) for v in values]
    return "Value" if None in shown else f"Value '[{', '.join(map(str, shown))}]'"


def _nested(scalar: _Scalar, values: list[Any], label: str) -> _Violation | None:
    """The single violation AWS reports for bad scalar elements of a list (or map keys/values).

    It sits on the list itself and names every constraint of the element shape (FIELD, ACM:
    "Member must satisfy constraint: [Member must have length less than or equal to 253, ...]").
    """
    if scalar.ok is None or all(map(scalar.ok, values)):
        return None
    texts = ", ".join(text for _, text in scalar.checks)
    return _Violation(_list_subject(scalar, values), f"{label} must satisfy constraint: [{texts}]")


def _elements(element: Parse, items: list[Any], errors: list[_Violation]) -> list[Any]:
    result = []
    for index, item in enumerate(items, 1):  # AWS numbers elements from 1
        if item is not None:
            before = len(errors) if errors else 0
            result.append(element(item, errors))
            if errors and len(errors) != before:
                _prefix(errors, before, "member", str(index))
    return result


class _Compiler:
    def __init__(self) -> None:
        self._structures: dict[str, Parse] = {}
        self._writers: dict[str, Serialize] = {}

    def parser(self, shape: Shape, *, checked: bool = True) -> Parse:
        scalar = _scalar(shape, checked=checked)
        if scalar is not None:
            return _leaf(scalar)
        if shape.type_name == "list":
            return self._list(shape)
        if shape.type_name == "map":
            return self._map(shape)
        return self._structure(shape)

    def _structure(self, shape: Shape) -> Parse:
        if shape.name in self._structures:  # also ends recursion through self-referencing shapes
            return self._structures[shape.name]
        members: tuple[tuple[str, str, Parse, bool], ...] = ()

        def parse(value: Any, errors: list[_Violation]) -> dict[str, Any]:
            if type(value) is not dict:
                raise _type_error(value, "structure")
            result: dict[str, Any] = {}
            get = value.get
            for name, camel, member, required in members:
                item = get(name)
                if item is None:  # null is the same as absent (Athena)
                    if required:
                        errors.append(_Violation("Value null", "Member must not be null", camel))
                    continue
                before = len(errors) if errors else 0  # truthiness is cheaper than len()
                result[name] = member(item, errors)
                if errors and len(errors) != before:
                    _prefix(errors, before, camel)
            return result

        self._structures[shape.name] = parse
        required = set(shape.required_members)
        compiled = []
        for name, member in shape.members.items():
            checked = name not in UNCHECKED_CONSTRAINT_MEMBERS
            camel = name[:1].lower() + name[1:]  # 'SAMLAssertion' -> 'sAMLAssertion', as AWS does
            compiled.append(
                (name, camel, self.parser(member, checked=checked), checked and name in required)
            )
        members = tuple(compiled)
        return parse

    def _list(self, shape: Shape) -> Parse:
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        bounds: list[Check] = []
        if hi is not None:
            bounds.append(
                (lambda x: len(x) <= hi, f"Member must have length less than or equal to {hi}")
            )
        if lo is not None:
            bounds.append(
                (lambda x: len(x) >= lo, f"Member must have length greater than or equal to {lo}")
            )
        scalar = _scalar(shape.member, checked=True)
        element = self.parser(shape.member)

        def parse(value: Any, errors: list[_Violation]) -> list[Any]:
            if type(value) is not list:
                raise _type_error(value, "list")
            if scalar is not None:
                result = [scalar.convert(item) for item in value if item is not None]
            else:
                result = _elements(element, value, errors)
            for check, text in bounds:
                if not check(result):
                    errors.append(_Violation(_list_subject(scalar, result), text))
            if scalar is not None and (nested := _nested(scalar, result, "Member")) is not None:
                errors.append(nested)
            return result

        return parse

    def _map(self, shape: Shape) -> Parse:
        # Secrets Manager has no map inputs; texts follow dynalite's DynamoDB-checked ones.
        key, value_shape = _scalar(shape.key, checked=True), shape.value
        scalar, element = _scalar(value_shape, checked=True), self.parser(value_shape)

        def parse(value: Any, errors: list[_Violation]) -> dict[str, Any]:
            if type(value) is not dict:
                raise _type_error(value, "map")
            result = {}
            for name, item in value.items():
                if item is not None:
                    before = len(errors)
                    result[name] = (
                        scalar.convert(item) if scalar is not None else element(item, errors)
                    )
                    if len(errors) != before:
                        _prefix(errors, before, name)
            for part, values, label in (
                (key, list(result), "Map keys"),
                (scalar, list(result.values()), "Map value"),
            ):
                if part is not None and (nested := _nested(part, values, label)) is not None:
                    errors.append(nested)
            return result

        return parse

    def writer(self, shape: Shape) -> Serialize:
        """A converter from result values of this shape to JSON values."""
        kind = shape.type_name
        if kind == "structure":
            return self._structure_writer(shape)
        if kind == "list":
            element = self.writer(shape.member)
            if element is _same:
                return lambda items: [item for item in items if item is not None]
            return lambda items: [element(item) for item in items if item is not None]
        if kind == "map":
            value = self.writer(shape.value)
            return lambda items: {k: value(v) for k, v in items.items() if v is not None}
        return _SCALAR_WRITERS.get(kind, _same)

    def _structure_writer(self, shape: Shape) -> Serialize:
        if shape.name in self._writers:
            return self._writers[shape.name]
        members: dict[str, Serialize] = {}

        def write(result: Mapping[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, item in result.items():  # the caller's key order is kept
                if item is not None and (convert := members.get(name)) is not None:
                    # a key outside the model is dropped: AWS would never send it
                    out[name] = item if convert is _same else convert(item)
            return out

        self._writers[shape.name] = write
        members.update((name, self.writer(member)) for name, member in shape.members.items())
        return write


def _write_blob(value: Any) -> Any:
    return (
        base64.b64encode(value).decode("ascii")
        if isinstance(value, bytes | bytearray | memoryview)
        else value
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime.resolution


def _write_timestamp(value: Any) -> Any:
    # Epoch seconds with millisecond precision, as AWS sends them (1523477145.713).
    if isinstance(value, datetime):
        if value.tzinfo is None:  # storage keeps UTC; never let local time leak in
            value = value.replace(tzinfo=UTC)
        micros = (value - _EPOCH) // _MICROSECOND
        return (micros + 500) // 1000 / 1000
    if isinstance(value, float):
        return round(value, 3)
    return value


_SCALAR_WRITERS: dict[str, Serialize] = {"blob": _write_blob, "timestamp": _write_timestamp}


def _reject_constant(_name: str) -> Any:
    raise SerializationException("")  # NaN / Infinity are not JSON


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> bool:
    """False when some string in ``value`` holds a lone surrogate (invalid in UTF-8)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(item) for item in value)
    return True


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps(**kw) builds one a call


class Operation:
    def __init__(self, name: str, parse: Parse | None, write: Serialize | None) -> None:
        self.name = name
        self._parse = parse
        self._write = write

    def parse_input(self, body: bytes) -> dict[str, Any]:
        """Request body -> validated members (blobs decoded); raises the error AWS would send."""
        if not body.strip():  # botocore always sends "{}", but curl users may send nothing
            data: Any = {}
        else:
            try:
                data = _DECODER.decode(body.decode("utf-8"))
            except (ValueError, RecursionError):
                # AWS (Athena, measured) sends no Message for an unparsable body.
                raise SerializationException("") from None
            # A "\ud800" escape decodes to a lone surrogate, which no later layer can encode;
            # Coral's Jackson parser refuses it as invalid JSON text, so do we.
            if _SURROGATE_ESCAPE.search(body) and not _encodable(data):
                raise SerializationException("")
        if type(data) is not dict:
            raise SerializationException(
                "Start of list found where not expected" if type(data) is list else ""
            )
        if self._parse is None:
            return {}
        errors: list[_Violation] = []
        result: dict[str, Any] = self._parse(data, errors)
        if errors:
            shown = errors[:MAX_REPORTED_VIOLATIONS]
            head = "1 validation error" if len(shown) == 1 else f"{len(shown)} validation errors"
            raise ValidationException(f"{head} detected: " + "; ".join(map(str, shown)))
        return result

    def serialize_output(self, result: Mapping[str, Any]) -> bytes:
        out = (
            self._write(result)
            if self._write is not None
            else {k: v for k, v in result.items() if v is not None}
        )
        return _ENCODER.encode(out).encode("ascii")


class ServiceModel:
    def __init__(self, model: BotocoreServiceModel) -> None:
        self.target_prefix: str = model.metadata["targetPrefix"]
        compiler = _Compiler()
        self._operations: dict[str, Operation] = {}
        for name in model.operation_names:
            op = model.operation_model(name)
            parse = compiler.parser(op.input_shape) if op.input_shape is not None else None
            write = compiler.writer(op.output_shape) if op.output_shape is not None else None
            self._operations[name] = Operation(name, parse, write)
        self.operation_names: frozenset[str] = frozenset(self._operations)

    @classmethod
    def load(cls, service: str = "secretsmanager") -> ServiceModel:
        """The compiled model, built once per process."""
        return _load(service)

    def operation(self, name: str) -> Operation | None:
        return self._operations.get(name)


@functools.cache
def _load(service: str) -> ServiceModel:
    raw = Loader().load_service_model(service, "service-2")
    return ServiceModel(BotocoreServiceModel(raw, service_name=service))


def error_body(code: str, message: str) -> bytes:
    """``{"__type": code, "Message": message}``; without Message when there is no text.

    AWS answers an unparsable body (and an unknown operation) with only ``__type`` (Athena,
    measured), so an empty message is left out rather than sent as "".
    """
    body = {"__type": code, "Message": message} if message else {"__type": code}
    return _ENCODER.encode(body).encode("ascii")
