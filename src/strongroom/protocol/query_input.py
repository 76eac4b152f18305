"""Query-protocol requests: a flat form read through the botocore model into member values.

``Tags.member.1.Key=k&Tags.member.1.Value=v`` becomes ``{"Tags": [{"Key": "k", "Value": "v"}]}``.
The form is first folded into a tree on its dots; each input shape, compiled once into a
closure, then walks its own part of the tree, converting the strings and checking the model's
constraints on the way.

IAM and STS answer constraint failures from the same (Coral) front end as the JSON services,
with the same texts but the code ``ValidationError``: "1 validation error detected: Value
'charon-...' at 'roleName' failed to satisfy constraint: Member must have length less than or
equal to 64" (an IAM ErrorResponse quoted in NixOS/nixops#328); "... at 'instanceProfileName'
failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
(aws/aws-sdk-ruby#1025). Paths into lists ('tags.1.member.key') follow the JSON front end's
form, UNCONFIRMED for IAM.

Parameters the model does not know are ignored, as the JSON front end ignores unknown members;
UNCONFIRMED for IAM/STS (EC2, a different front end, answers UnknownParameter).
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from botocore.model import Shape

from strongroom.errors import ValidationError
from strongroom.protocol.constraints import (
    JAVA_RANGE as _JAVA_RANGE,
)
from strongroom.protocol.constraints import (
    MAX_REPORTED_VIOLATIONS,
    Violation,
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

# The JSON front end stops at ten (see protocol/model.py); assumed the same here.


class _Node:
    """One dotted segment of the form: its own value (if the key ends here) and deeper keys."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


def fold(form: Mapping[str, str]) -> _Node:
    root = _Node()
    for key, value in form.items():
        node = root
        for part in key.split("."):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node()
            node = child
        node.value = value
    return root


class _Absent:
    """What a parser returns when the form holds nothing for its member."""


ABSENT: Any = _Absent()
Parse = Callable[[_Node, list[Violation]], Any]
Check = tuple[Callable[[Any], bool], str]


_INTEGRAL = re.compile(r"[+-]?[0-9]+")


def _integer(kind: str) -> Callable[[str], Any]:
    limit = _JAVA_RANGE[kind]

    def convert(text: str) -> int:
        if _INTEGRAL.fullmatch(text) is None or not -limit <= (number := int(text)) < limit:
            raise ValueError(text)
        return number

    return convert


def _boolean(text: str) -> bool:
    lowered = text.lower()  # Java's Boolean parsing ignores case
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def _timestamp(text: str) -> datetime:
    # botocore sends ISO 8601 ("2026-11-28T11:27:19Z", with ".%f" when there are microseconds)
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _blob(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise ValueError(text) from None


def _double(text: str) -> float:
    return float(text)  # like Java's Double.parseDouble, also takes "NaN" and "Infinity"


class _Kind(NamedTuple):
    convert: Callable[[str], Any]
    size: Callable[[Any], int | float]  # what min/max bound: UTF-16 length, byte length, value
    noun: str  # "length" or "value": "Member must have length less than or equal to 64"
    display: Callable[[Any], str | None]
    expected: str  # UNCONFIRMED: the text for a value that does not convert


_KINDS = {
    "string": _Kind(str, _u16len, "length", str, "a String"),
    "blob": _Kind(_blob, len, "length", lambda _b: None, "a Blob"),
    "integer": _Kind(_integer("integer"), int, "value", str, "an Integer"),
    "long": _Kind(_integer("long"), int, "value", str, "a Long"),
    "double": _Kind(_double, float, "value", str, "a Double"),
    "float": _Kind(_double, float, "value", str, "a Float"),
    "boolean": _Kind(_boolean, int, "value", lambda b: str(b).lower(), "a Boolean"),
    "timestamp": _Kind(_timestamp, int, "value", str, "a Timestamp"),
}

# Java character properties Python's re lacks; IAM's tag patterns use them: [\p{L}\p{Z}\p{N}...]+
_PROPERTY = re.compile(r"\\p\{([A-Z])\}")
_ONE_CLASS = re.compile(r"\[(?P<body>[^\]]*)\](?P<repeat>[*+])")


def _pattern(source: str | None) -> Callable[[str], bool] | None:
    if source is None:
        return None
    if _PROPERTY.search(source):
        return _property_class(source)
    try:
        compiled = re.compile(source, re.ASCII)  # Java's \d and \w are ASCII-only
    except re.error:  # a Java-only construct: not checked rather than wrongly refused
        return None
    return lambda text: compiled.fullmatch(text) is not None


def _property_class(source: str) -> Callable[[str], bool] | None:
    """A single character class with ``\\p{X}`` general categories, repeated by * or +."""
    match = _ONE_CLASS.fullmatch(source)
    if match is None:
        return None
    categories = tuple(_PROPERTY.findall(match["body"]))
    rest = _PROPERTY.sub("", match["body"])
    try:
        others = re.compile(f"[{rest}]", re.ASCII) if rest else None
    except re.error:
        return None
    least = 1 if match["repeat"] == "+" else 0

    def allowed(char: str) -> bool:
        if unicodedata.category(char)[0] in categories:
            return True
        return others is not None and others.fullmatch(char) is not None

    return lambda text: len(text) >= least and all(map(allowed, text))


class _Scalar(NamedTuple):
    kind: _Kind
    checks: tuple[Check, ...]  # one per constraint, in the order AWS lists them
    display: Callable[[Any], str | None]  # how a value is echoed; None hides it (sensitive)

    def ok(self, value: Any) -> bool:
        return all(check(value) for check, _ in self.checks)


def _scalar(shape: Shape) -> _Scalar | None:
    """Compile a scalar shape; None for structures, lists and maps."""
    kind = _KINDS.get(shape.type_name)
    if kind is None:
        return None
    meta = shape.metadata
    size, noun, lo, hi = kind.size, kind.noun, meta.get("min"), meta.get("max")
    checks: list[Check] = []
    # AWS lists bounds max first, then min, then pattern (as the JSON front end does).
    if hi is not None:
        checks.append(
            (lambda x: size(x) <= hi, f"Member must have {noun} less than or equal to {hi}")
        )
    if lo is not None:
        checks.append(
            (lambda x: size(x) >= lo, f"Member must have {noun} greater than or equal to {lo}")
        )
    matches = _pattern(meta.get("pattern"))
    if matches is not None:
        checks.append(
            (matches, f"Member must satisfy regular expression pattern: {meta['pattern']}")
        )
    names: list[str] = meta.get("enum", [])
    if names:
        allowed = frozenset(names)
        checks.append(
            (allowed.__contains__, f"Member must satisfy enum value set: [{', '.join(names)}]")
        )
    display = (lambda _v: None) if meta.get("sensitive") else kind.display
    return _Scalar(kind, tuple(checks), display)


def _convert(scalar: _Scalar, text: str, errors: list[Violation]) -> Any:
    """The typed value, or ABSENT after recording why the text is not one."""
    try:
        return scalar.kind.convert(text)
    except ValueError:
        shown = None if scalar.display(text) is None else text
        errors.append(Violation(_subject(shown), f"Member must be {scalar.kind.expected}"))
        return ABSENT


def _leaf(scalar: _Scalar) -> Parse:
    def parse(node: _Node, errors: list[Violation]) -> Any:
        if node.value is None:
            return ABSENT
        value = _convert(scalar, node.value, errors)
        if value is not ABSENT and scalar.checks and not scalar.ok(value):
            subject = _subject(scalar.display(value))
            errors.extend(Violation(subject, t) for check, t in scalar.checks if not check(value))
        return value

    return parse


def _list_subject(scalar: _Scalar | None, values: list[Any]) -> str:
    # A list of scalars is echoed Java-style, '[a, b]'; anything else (or a secret) is not.
    shown = [None] if scalar is None else [scalar.display(v) for v in values]
    return "Value" if None in shown else f"Value '[{', '.join(map(str, shown))}]'"


def _nested(scalar: _Scalar | None, values: list[Any], label: str) -> Violation | None:
    """The one violation AWS reports, on the list itself, for bad scalar elements (or map keys)."""
    if scalar is None or all(map(scalar.ok, values)):
        return None
    texts = ", ".join(text for _, text in scalar.checks)
    return Violation(_list_subject(scalar, values), f"{label} must satisfy constraint: [{texts}]")


def _numbered(holder: _Node) -> list[_Node]:
    """The ``.1``, ``.2``, ... children in index order; other keys are not entries."""
    indexed = [
        (int(key), child)
        for key, child in holder.children.items()
        if key.isascii() and key.isdigit()
    ]
    return [child for _, child in sorted(indexed, key=lambda pair: pair[0])]


def _bounds(shape: Shape) -> tuple[Check, ...]:
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
    return tuple(bounds)


def _serialized_name(shape: Shape, default: str) -> str:
    name: str = shape.serialization.get("name", default)
    return name


class InputCompiler:
    """Turns input shapes into parsers; structures are compiled once and shared."""

    def __init__(self) -> None:
        self._structures: dict[str, Parse] = {}

    def parser(self, shape: Shape) -> Parse:
        scalar = _scalar(shape)
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
        members: tuple[tuple[str, str, str, Parse, bool], ...] = ()

        def parse(node: _Node, errors: list[Violation]) -> dict[str, Any]:
            result: dict[str, Any] = {}
            children = node.children
            for name, key, camel, member, required in members:
                before = len(errors)
                child = children.get(key)
                value = ABSENT if child is None else member(child, errors)
                if value is not ABSENT:
                    result[name] = value
                elif required and len(errors) == before:  # not also "null" when malformed
                    errors.append(Violation("Value null", "Member must not be null"))
                if len(errors) != before:
                    _prefix(errors, before, camel)
            return result

        self._structures[shape.name] = parse
        required = set(shape.required_members)
        members = tuple(
            (
                name,
                _serialized_name(member, name),
                name[:1].lower() + name[1:],  # 'SAMLAssertion' -> 'sAMLAssertion', as AWS does
                self.parser(member),
                name in required,
            )
            for name, member in shape.members.items()
        )
        return parse

    def _element(self, shape: Shape) -> Parse:
        """Elements of lists and maps: scalars are only converted; _nested reports their checks."""
        scalar = _scalar(shape)
        if scalar is None:
            return self.parser(shape)

        def parse(node: _Node, errors: list[Violation]) -> Any:
            return ABSENT if node.value is None else _convert(scalar, node.value, errors)

        return parse

    def _list(self, shape: Shape) -> Parse:
        flattened = bool(shape.serialization.get("flattened"))
        member_key = _serialized_name(shape.member, "member")
        bounds = _bounds(shape)
        scalar = _scalar(shape.member)
        element = self._element(shape.member)

        def parse(node: _Node, errors: list[Violation]) -> Any:
            holder = node if flattened else node.children.get(member_key)
            if holder is None:
                # botocore sends an empty list as a bare "Tags=" (the query protocol has no [])
                return [] if node.value is not None else ABSENT
            result = []
            for index, child in enumerate(_numbered(holder), 1):  # AWS numbers from 1
                before = len(errors)
                if (value := element(child, errors)) is not ABSENT:
                    result.append(value)
                if len(errors) != before:
                    _prefix(errors, before, "member", str(index))
            for check, text in bounds:
                if not check(result):
                    errors.append(Violation(_list_subject(scalar, result), text))
            if (nested := _nested(scalar, result, "Member")) is not None:
                errors.append(nested)
            return result

        return parse

    def _map(self, shape: Shape) -> Parse:
        # IAM and STS take no map input today; texts follow the JSON front end's.
        flattened = bool(shape.serialization.get("flattened"))
        key_name = _serialized_name(shape.key, "key")
        value_name = _serialized_name(shape.value, "value")
        key_scalar, value_scalar = _scalar(shape.key), _scalar(shape.value)
        key_parse, value_parse = self._element(shape.key), self._element(shape.value)

        def parse(node: _Node, errors: list[Violation]) -> Any:
            holder = node if flattened else node.children.get("entry")
            if holder is None:
                return {} if node.value is not None else ABSENT
            result: dict[Any, Any] = {}
            for entry in _numbered(holder):
                key_node, value_node = entry.children.get(key_name), entry.children.get(value_name)
                if key_node is None or value_node is None:
                    continue
                before = len(errors)
                key, value = key_parse(key_node, errors), value_parse(value_node, errors)
                if key is not ABSENT and value is not ABSENT:
                    result[key] = value
                if len(errors) != before:
                    _prefix(errors, before, str(key_node.value))
            for part, values, label in (
                (key_scalar, list(result), "Map keys"),
                (value_scalar, list(result.values()), "Map value"),
            ):
                if (nested := _nested(part, values, label)) is not None:
                    errors.append(nested)
            return result

        return parse


def raise_violations(errors: list[Violation]) -> None:
    if not errors:
        return
    shown = errors[:MAX_REPORTED_VIOLATIONS]
    head = "1 validation error" if len(shown) == 1 else f"{len(shown)} validation errors"
    raise ValidationError(f"{head} detected: " + "; ".join(map(str, shown)))
