"""What both request parsers (JSON 1.1 in ``model``, Query in ``query_input``) report the
same way: constraint violations in the AWS (Coral) front end's words."""

from __future__ import annotations

# AWS stops listing violations at ten (dynalite, whose messages are checked against DynamoDB).
MAX_REPORTED_VIOLATIONS = 10
# Java's integer ranges, which Coral's numbers are parsed into.
JAVA_RANGE = {"integer": 2**31, "long": 2**63}


class Violation:
    """One failed constraint; ``path`` collects member names innermost first, on the way out."""

    __slots__ = ("path", "subject", "text")

    def __init__(self, subject: str, text: str, *path: str) -> None:
        self.subject = subject
        self.text = text
        self.path = list(path)

    def __str__(self) -> str:
        where = ".".join(reversed(self.path))
        return f"{self.subject} at '{where}' failed to satisfy constraint: {self.text}"


def prefix(errors: list[Violation], start: int, *names: str) -> None:
    """Add ``names`` to the path of every violation found since ``start``."""
    for error in errors[start:]:
        error.path.extend(names)


def subject(shown: str | None) -> str:
    # Sensitive values are not echoed: "Value at 'secretString' ..." (FIELD, CDK deploy logs).
    return "Value" if shown is None else f"Value '{shown}'"


def u16len(text: str) -> int:
    # Coral counts Java chars (UTF-16 code units): a character outside the BMP counts twice.
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2
