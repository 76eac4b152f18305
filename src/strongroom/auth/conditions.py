"""The pure pieces under IAM policies: wildcards, policy variables and condition operators.

Theory of operation. A pattern or condition value is parsed once into a `Template`: literal
text, `*`/`?` wildcards and `${...}` variables. At evaluation the variables are filled from
the request context; a variable with no value and no default makes the element unknown.

Every evaluation here answers True, False or None ("cannot tell": a variable without a
value, a context value that is not a number or date...). policy.py turns None into "does not
grant" for an Allow and "applies" for a Deny, so what we do not understand never allows.

AWS references: "IAM JSON policy elements: Condition operators", "IAM policy elements:
Variables and tags", "Single-valued vs. multivalued context keys".
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

ContextValue = str | bool | int | float | Sequence[str] | None
Lookup = Callable[[str], ContextValue]

SYNTAX_ERROR = "Syntax errors in policy."
LEGACY_PARSING = "The policy failed legacy parsing"  # IAM's text for unparseable values
VENDOR_PREFIX = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."


class ConditionSyntaxError(ValueError):
    """A condition block IAM would refuse; policy.py reraises it as MalformedPolicy."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Wild(enum.Enum):
    STAR = "*"
    QMARK = "?"


@dataclass(frozen=True, slots=True)
class Var:
    key: str  # lower case: context key names are case-insensitive
    default: str | None


Part = str | Wild | Var
Template = tuple[Part, ...]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_WITH_DEFAULT = re.compile(r"\s*([^\s,']+)\s*,\s*'([^']*)'\s*")
_KEY_NAME = re.compile(r"[^\s,'${}]+")


def parse_template(text: str, *, variables: bool) -> Template:
    """Split a pattern into literal text, wildcards and (for 2012-10-17 policies) variables."""
    parts: list[Part] = []
    position = 0
    if variables:
        for match in _VARIABLE.finditer(text):
            parts.extend(_split_wild(text[position : match.start()]))
            parts.extend(_variable(match.group(1), match.group(0)))
            position = match.end()
    parts.extend(_split_wild(text[position:]))
    return tuple(parts)


def _split_wild(text: str) -> list[Part]:
    parts: list[Part] = []
    for piece in re.split(r"([*?])", text):
        if piece == "*":
            parts.append(Wild.STAR)
        elif piece == "?":
            parts.append(Wild.QMARK)
        elif piece:
            parts.append(piece)
    return parts


def _variable(body: str, whole: str) -> list[Part]:
    if body in ("*", "?", "$"):  # ${*} ${?} ${$}: the character itself, never a wildcard
        return [body]
    if _KEY_NAME.fullmatch(body):
        return [Var(body.lower(), None)]
    with_default = _WITH_DEFAULT.fullmatch(body)
    if with_default:
        return [Var(with_default.group(1).lower(), with_default.group(2))]
    return _split_wild(whole)  # not variable syntax: plain text, as written


def has_variables(template: Template) -> bool:
    return any(isinstance(part, Var) for part in template)


def scalar_text(value: ContextValue) -> str | None:
    """A context value as IAM compares it; None for absent and multi-valued keys."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def render(template: Template, lookup: Lookup) -> Template | None:
    """Fill variables in; None when one has neither a value nor a default."""
    if not has_variables(template):
        return template
    rendered: list[Part] = []
    for part in template:
        if isinstance(part, Var):
            text = scalar_text(lookup(part.key))
            if text is None:
                if part.default is None:
                    return None
                text = part.default
            rendered.append(text)
        else:
            rendered.append(part)
    return tuple(rendered)


def template_text(template: Template) -> str:
    """The template as plain text: wildcards are ordinary characters here."""
    return "".join(part.value if isinstance(part, Wild) else str(part) for part in template)


@lru_cache(maxsize=4096)
def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _glob_pattern(template: Template, *, arn_segments: bool) -> str:
    # In a Resource, a * at the end of a colon-separated segment may run past colons; any
    # other * or ? stays inside its segment (IAM "Resource" element reference).
    out: list[str] = []
    for index, part in enumerate(template):
        if part is Wild.STAR:
            after = template[index + 1] if index + 1 < len(template) else None
            ends_segment = after is None or (isinstance(after, str) and after.startswith(":"))
            out.append(".*" if not arn_segments or ends_segment else "[^:]*")
        elif part is Wild.QMARK:
            out.append("[^:]" if arn_segments else ".")
        else:
            out.append(re.escape(str(part)))
    return "".join(out)


def glob_match(
    template: Template, value: str, *, ignore_case: bool = False, arn_segments: bool = False
) -> bool:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    pattern = _glob_pattern(template, arn_segments=arn_segments)
    return _compiled(pattern, flags).fullmatch(value) is not None


def _split_arn(template: Template) -> list[Template]:
    fields: list[list[Part]] = [[]]
    for part in template:
        if isinstance(part, str) and ":" in part and len(fields) < 6:  # noqa: PLR2004 - ARN fields
            pieces = part.split(":", 6 - len(fields))
            fields[-1].append(pieces[0])
            fields.extend([piece] for piece in pieces[1:])
        else:
            fields[-1].append(part)
    return [tuple(piece for piece in field if piece != "") for field in fields]


def arn_like(template: Template, value: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-separated fields matched on its own."""
    value_fields = value.split(":", 5)
    pattern_fields = _split_arn(template)
    if len(value_fields) != 6 or len(pattern_fields) != 6:  # noqa: PLR2004 - ARN fields
        return False
    return all(glob_match(p, v) for p, v in zip(pattern_fields, value_fields, strict=True))


# ---- three-valued logic -------------------------------------------------------------------

Tri = bool | None


def any3(results: Iterable[Tri]) -> Tri:
    unknown = False
    for result in results:
        if result is True:
            return True
        unknown = unknown or result is None
    return None if unknown else False


def all3(results: Iterable[Tri]) -> Tri:
    unknown = False
    for result in results:
        if result is False:
            return False
        unknown = unknown or result is None
    return None if unknown else True


def not3(result: Tri) -> Tri:
    return None if result is None else not result


# ---- value parsing ------------------------------------------------------------------------


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_EPOCH = re.compile(r"-?\d{1,12}")


def _date(text: str) -> datetime | None:
    text = text.strip()
    try:
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(int(text), tz=UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


def _binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


# ---- operators ----------------------------------------------------------------------------

Kind = Literal["string", "string_ic", "like", "num", "date", "bool", "binary", "ip", "arn", "null"]
Order = Literal["eq", "lt", "le", "gt", "ge"]


@dataclass(frozen=True, slots=True)
class Operator:
    kind: Kind
    negated: bool = False
    order: Order = "eq"


def _ordered(prefix: str, kind: Kind) -> dict[str, Operator]:
    return {
        f"{prefix}Equals": Operator(kind),
        f"{prefix}NotEquals": Operator(kind, negated=True),
        f"{prefix}LessThan": Operator(kind, order="lt"),
        f"{prefix}LessThanEquals": Operator(kind, order="le"),
        f"{prefix}GreaterThan": Operator(kind, order="gt"),
        f"{prefix}GreaterThanEquals": Operator(kind, order="ge"),
    }


OPERATORS: Mapping[str, Operator] = {
    "StringEquals": Operator("string"),
    "StringNotEquals": Operator("string", negated=True),
    "StringEqualsIgnoreCase": Operator("string_ic"),
    "StringNotEqualsIgnoreCase": Operator("string_ic", negated=True),
    "StringLike": Operator("like"),
    "StringNotLike": Operator("like", negated=True),
    **_ordered("Numeric", "num"),
    **_ordered("Date", "date"),
    "Bool": Operator("bool"),
    "BinaryEquals": Operator("binary"),
    "IpAddress": Operator("ip"),
    "NotIpAddress": Operator("ip", negated=True),
    # AWS documents ArnEquals and ArnLike as the same test, wildcards allowed in both.
    "ArnEquals": Operator("arn"),
    "ArnLike": Operator("arn"),
    "ArnNotEquals": Operator("arn", negated=True),
    "ArnNotLike": Operator("arn", negated=True),
    "Null": Operator("null"),
}
_BY_LOWER = {name.lower(): name for name in OPERATORS}

SetOperator = Literal["any", "all"] | None


@dataclass(frozen=True, slots=True)
class Condition:
    """One key under one operator; a statement's conditions are ANDed."""

    operator: str  # canonical base name, e.g. "StringEquals"
    set_operator: SetOperator  # ForAnyValue: / ForAllValues:
    if_exists: bool
    key: str  # lower case
    values: tuple[Template, ...]  # ORed

    @property
    def spec(self) -> Operator:
        return OPERATORS[self.operator]


def _parse_operator(name: str) -> tuple[str, SetOperator, bool]:
    set_operator: SetOperator = None
    lowered = name.lower()
    for prefix, kind in (("foranyvalue:", "any"), ("forallvalues:", "all")):
        if lowered.startswith(prefix):
            set_operator = "any" if kind == "any" else "all"
            lowered = lowered[len(prefix) :]
    if_exists = lowered.endswith("ifexists")
    if if_exists:
        lowered = lowered.removesuffix("ifexists")
    canonical = _BY_LOWER.get(lowered)
    if canonical is None or (canonical == "Null" and (if_exists or set_operator)):
        raise ConditionSyntaxError(SYNTAX_ERROR)  # AWS answers unknown operators this way
    return canonical, set_operator, if_exists


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConditionSyntaxError(SYNTAX_ERROR)


_STATIC_CHECKS: Mapping[Kind, Callable[[str], object]] = {
    "num": _number,
    "date": _date,
    "bool": _bool,
    "null": _bool,
    "binary": _binary,
    "ip": _network,
}


def parse_conditions(block: object, *, variables: bool) -> tuple[Condition, ...]:
    """Parse a statement's Condition element; raise ConditionSyntaxError as IAM would."""
    if not isinstance(block, dict):
        raise ConditionSyntaxError(SYNTAX_ERROR)
    conditions: list[Condition] = []
    for name, keys in block.items():
        if not isinstance(keys, dict):
            raise ConditionSyntaxError(SYNTAX_ERROR)
        operator, set_operator, if_exists = _parse_operator(name)
        check = _STATIC_CHECKS.get(OPERATORS[operator].kind)
        for key, raw in keys.items():
            if ":" not in key or key.startswith(":"):
                raise ConditionSyntaxError(VENDOR_PREFIX)
            listed = raw if isinstance(raw, list) else [raw]
            templates = []
            for value in listed:
                template = parse_template(_value_text(value), variables=variables)
                if check and not has_variables(template) and check(template_text(template)) is None:
                    raise ConditionSyntaxError(LEGACY_PARSING)
                templates.append(template)
            conditions.append(
                Condition(operator, set_operator, if_exists, key.lower(), tuple(templates))
            )
    return tuple(conditions)


# ---- evaluation ---------------------------------------------------------------------------


def context_values(value: ContextValue) -> tuple[str, ...] | None:
    """A context value as a tuple of strings; None when the key is absent."""
    if value is None:
        return None
    if isinstance(value, str | bool | int | float):
        return (str(scalar_text(value)),)
    return tuple(str(item) for item in value)


def _compare_text(kind: Kind, actual: str, expected: str, template: Template) -> Tri:
    if kind == "string":
        return actual == expected
    if kind == "string_ic":
        return actual.casefold() == expected.casefold()
    if kind == "like":
        return glob_match(template, actual)
    if kind == "arn":
        return arn_like(template, actual)
    return _compare_parsed(kind, actual, expected)


def _compare_parsed(kind: Kind, actual: str, expected: str) -> Tri:
    if kind == "bool":
        wanted, got = _bool(expected), _bool(actual)
        return None if wanted is None or got is None else wanted == got
    if kind == "binary":
        wanted_bytes, got_bytes = _binary(expected), _binary(actual)
        return None if wanted_bytes is None or got_bytes is None else wanted_bytes == got_bytes
    network, address = _network(expected), _address(actual)  # kind == "ip"
    if network is None or address is None:
        return None
    return address.version == network.version and address in network


def _compare(op: Operator, actual: str, expected: str, template: Template) -> Tri:
    if op.kind == "num":
        return _ordered_compare(op.order, _number(actual), _number(expected))
    if op.kind == "date":
        return _ordered_compare(op.order, _date(actual), _date(expected))
    return _compare_text(op.kind, actual, expected, template)


def _ordered_compare(order: Order, left: Decimal | datetime | None, right: object) -> Tri:
    if left is None or right is None or type(left) is not type(right):
        return None
    match order:
        case "eq":
            return left == right
        case "lt":
            return left < right  # type: ignore[operator]
        case "le":
            return left <= right  # type: ignore[operator]
        case "gt":
            return left > right  # type: ignore[operator]
        case "ge":
            return left >= right  # type: ignore[operator]


def _matches_any_value(condition: Condition, actual: str, lookup: Lookup) -> Tri:
    """The positive test: does one context value match any of the policy's values?"""
    op = condition.spec
    results: list[Tri] = []
    for template in condition.values:
        rendered = render(template, lookup)
        if rendered is None:
            results.append(None)
            continue
        results.append(_compare(op, actual, template_text(rendered), rendered))
    if not results:  # an empty value list: IAM accepts it; we cannot tell what it means
        return None
    return any3(results)


def evaluate_condition(condition: Condition, lookup: Lookup) -> Tri:
    """True/False as AWS documents, None when the answer depends on what we cannot read."""
    actual = context_values(lookup(condition.key))
    if condition.operator == "Null":
        absent = not actual
        wanted = [_bool(template_text(t)) for t in condition.values]
        return any3(None if w is None else w == absent for w in wanted) if wanted else None
    negated = condition.spec.negated
    if not actual:
        # Absent key: IfExists and ForAllValues are true, ForAnyValue false, and a plain
        # operator is false unless negated ("Condition operators", missing keys).
        if condition.if_exists or condition.set_operator == "all":
            return True
        if condition.set_operator == "any":
            return False
        return negated
    if condition.set_operator is None:
        # A single-valued operator on a multivalued key: positive if any value matches.
        positive = any3(_matches_any_value(condition, value, lookup) for value in actual)
        return not3(positive) if negated else positive
    per_value = (_matches_any_value(condition, value, lookup) for value in actual)
    tests = (not3(result) if negated else result for result in per_value)
    return all3(tests) if condition.set_operator == "all" else any3(tests)


def evaluate_conditions(conditions: Sequence[Condition], lookup: Lookup) -> Tri:
    return all3(evaluate_condition(condition, lookup) for condition in conditions)
