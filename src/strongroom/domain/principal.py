"""Who a request acts for, once its signature has been verified."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    arn: str  # arn:aws:iam::<account>:root, ...:user/<name>, arn:aws:sts::...:assumed-role/<r>/<s>
    access_key_id: str | None
    user_name: str | None = None  # IAM users only
    # aws:userid as AWS sets it: the account id for the root, AIDA... for a user,
    # "AROA...:<session name>" for an assumed-role session.
    user_id: str | None = None
    role_arn: str | None = None  # assumed-role sessions: the role's ARN
    session_name: str | None = None
    # A rotation function's session: its only identity policy (the secret being rotated).
    session_policy: str | None = None
    session_created: float | None = None  # assumed-role sessions: when it was issued

    @property
    def is_root(self) -> bool:
        return self.arn.endswith(":root")

    @property
    def kind(self) -> str:
        """CloudTrail's userIdentity.type: Root, IAMUser or AssumedRole."""
        if self.is_root:
            return "Root"
        return "AssumedRole" if self.role_arn is not None else "IAMUser"


def root_principal(account_id: str, access_key_id: str | None, partition: str = "aws") -> Principal:
    return Principal(
        account_id=account_id,
        arn=f"arn:{partition}:iam::{account_id}:root",
        access_key_id=access_key_id,
        user_id=account_id,
    )
