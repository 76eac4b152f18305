"""Query-protocol responses: result values written as the XML botocore's QueryParser reads.

Each output shape is compiled once into a writer that appends text to a list. Element names
come from the model (member ``locationName``, list ``<member>`` wrappers or flattened lists,
maps as ``<entry><key/><value/></entry>``); members that are None or not in the model are left
out, as AWS leaves out members it has no value for.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.model import Shape

# Appends the value as element(s) named by the second argument.
Write = Callable[[list[str], str, Any], None]

_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&apos;",
        # A parser folds a literal CR (and CRLF) into LF; a reference keeps it.
        "\r": "&#13;",
    }
)
# Characters XML 1.0 cannot carry at all, not even as references: no parser would read the
# response, so they are sent as U+FFFD. (The input patterns keep them out of IAM's own data.)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    text = text.translate(_ESCAPES)
    return _NOT_XML.sub("\ufffd", text) if _NOT_XML.search(text) else text


def _timestamp(value: Any) -> str:
    """ISO 8601 in UTC: "2026-11-28T11:27:19Z", with milliseconds only when there are some."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    else:
        moment = datetime.fromtimestamp(float(value), UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def _blob(value: Any) -> str:
    if isinstance(value, str):
        return escape(value)
    return base64.b64encode(bytes(value)).decode("ascii")


def _boolean(value: Any) -> str:
    return "true" if value else "false"


_SCALARS: dict[str, Callable[[Any], str]] = {
    "string": lambda value: escape(str(value)),
    "integer": lambda value: str(int(value)),
    "long": lambda value: str(int(value)),
    "double": lambda value: repr(float(value)),
    "float": lambda value: repr(float(value)),
    "boolean": _boolean,
    "timestamp": _timestamp,
    "blob": _blob,
}


def _scalar(text: Callable[[Any], str]) -> Write:
    def write(out: list[str], tag: str, value: Any) -> None:
        out.append(f"<{tag}>{text(value)}</{tag}>")

    return write


def _name(shape: Shape, default: str) -> str:
    name: str = shape.serialization.get("name", default)
    return name


def with_datetimes(value: Any, shape: Shape) -> Any:
    """``value`` with each member the model types as a timestamp made an aware datetime (the
    operations give epoch seconds): for the audit record, which writes dates as text."""
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {
            name: with_datetimes(item, members[name]) if name in members else item
            for name, item in value.items()
        }
    if kind == "list" and isinstance(value, list | tuple):
        return [with_datetimes(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {key: with_datetimes(item, shape.value) for key, item in value.items()}
    return value


class OutputCompiler:
    """Turns output shapes into writers; structures are compiled once and shared."""

    def __init__(self) -> None:
        self._structures: dict[str, Write] = {}
        self._members: dict[str, Callable[[list[str], Mapping[str, Any]], None]] = {}

    def writer(self, shape: Shape) -> Write:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape)
        if kind == "list":
            return self._list(shape)
        if kind == "map":
            return self._map(shape)
        return _scalar(_SCALARS.get(kind, lambda value: escape(str(value))))

    def members(self, shape: Shape) -> Callable[[list[str], Mapping[str, Any]], None]:
        """Writes a structure's members without an element around them (a Result's content)."""
        if shape.name in self._members:  # also ends recursion through self-referencing shapes
            return self._members[shape.name]
        fields: tuple[tuple[str, str, Write], ...] = ()

        def write(out: list[str], result: Mapping[str, Any]) -> None:
            for name, tag, member in fields:
                value = result.get(name)
                if value is not None:
                    member(out, tag, value)

        self._members[shape.name] = write
        fields = tuple(
            (name, self._tag(member, name), self.writer(member))
            for name, member in shape.members.items()
        )
        return write

    @staticmethod
    def _tag(shape: Shape, name: str) -> str:
        # A flattened list takes its member's name, as botocore's parser looks it up.
        if shape.type_name == "list" and shape.serialization.get("flattened"):
            member_name = shape.member.serialization.get("name")
            if member_name is not None:
                return str(member_name)
        return _name(shape, name)

    def _structure(self, shape: Shape) -> Write:
        if shape.name in self._structures:
            return self._structures[shape.name]
        content = self.members(shape)

        def write(out: list[str], tag: str, value: Any) -> None:
            out.append(f"<{tag}>")
            content(out, value)
            out.append(f"</{tag}>")

        self._structures[shape.name] = write
        return write

    def _list(self, shape: Shape) -> Write:
        element = self.writer(shape.member)
        member_tag = _name(shape.member, "member")
        if shape.serialization.get("flattened"):

            def flattened(out: list[str], tag: str, items: Any) -> None:
                for item in items:
                    if item is not None:
                        element(out, tag, item)

            return flattened

        def wrapped(out: list[str], tag: str, items: Any) -> None:
            out.append(f"<{tag}>")
            for item in items:
                if item is not None:
                    element(out, member_tag, item)
            out.append(f"</{tag}>")

        return wrapped

    def _map(self, shape: Shape) -> Write:
        key, value = self.writer(shape.key), self.writer(shape.value)
        key_tag, value_tag = _name(shape.key, "key"), _name(shape.value, "value")
        flattened = bool(shape.serialization.get("flattened"))

        def entries(out: list[str], tag: str, items: Any) -> None:
            entry_tag = tag if flattened else "entry"
            if not flattened:
                out.append(f"<{tag}>")
            for name, item in items.items():
                if item is not None:
                    out.append(f"<{entry_tag}>")
                    key(out, key_tag, name)
                    value(out, value_tag, item)
                    out.append(f"</{entry_tag}>")
            if not flattened:
                out.append(f"</{tag}>")

        return entries
