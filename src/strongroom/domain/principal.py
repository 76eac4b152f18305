"""Who a request acts for, once its signature has been verified."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    arn: str  # arn:aws:iam::<account>:root, ...:user/<name>, ...:assumed-role/<role>/<session>
    access_key_id: str | None
    user_name: str | None = None


def root_principal(account_id: str, access_key_id: str | None, partition: str = "aws") -> Principal:
    return Principal(
        account_id=account_id,
        arn=f"arn:{partition}:iam::{account_id}:root",
        access_key_id=access_key_id,
    )
