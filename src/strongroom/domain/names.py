"""Which secret names and secret ids are well formed (spec §2.3)."""

from __future__ import annotations

import re

# Documented characters, plus "!" which AWS lists in its own error text: service-managed
# secrets such as "rds!db-..." are addressed by name (spec §2.3 inference). We accept it in
# SecretId and also in CreateSecret names, since AWS's message advertises it as valid.
_VALID_NAME = re.compile(r"^[A-Za-z0-9/_+=.@!-]+$")


def is_valid_name(name: str) -> bool:
    return bool(_VALID_NAME.match(name))
