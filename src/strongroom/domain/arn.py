"""Secret ARNs: minting them and telling full ARNs from partial ones (spec §2.2, §2.4)."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

_SUFFIX_ALPHABET = string.ascii_letters + string.digits
# A resource part ending in "-" plus six characters is read as a full ARN, even when the
# secret's name itself ends that way; AWS does the same (spec §2.4 rule 4).
_LOOKS_FULL = re.compile(r"-[A-Za-z0-9]{6}$")
_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):secretsmanager:(?P<region>[^:]*):(?P<account>[^:]*):secret:(?P<resource>.+)$",
    re.DOTALL,
)


def new_secret_arn(*, partition: str, region: str, account_id: str, name: str) -> str:
    # The exact suffix alphabet is UNCONFIRMED; real ARNs mix cases and digits (spec §2.2).
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))
    return f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}"


@dataclass(frozen=True, slots=True)
class SecretArn:
    partition: str
    region: str
    account_id: str
    resource: str  # the part after "secret:": "<name>-<suffix>" or, when partial, "<name>"

    @property
    def looks_full(self) -> bool:
        return bool(_LOOKS_FULL.search(self.resource))


def parse_secret_arn(value: str) -> SecretArn | None:
    """Split a Secrets Manager secret ARN; None when ``value`` is not one."""
    match = _ARN.match(value)
    if match is None:
        return None
    return SecretArn(
        partition=match["partition"],
        region=match["region"],
        account_id=match["account"],
        resource=match["resource"],
    )


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
