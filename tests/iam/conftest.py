"""IAM and STS operations, called in-process against a real SqlStore on a temporary SQLite
database (the boto3 / ``aws iam`` tests over the wire live with the front end).

The actors: the account root (allowed everything; the only principal an installation
starts with), alice and bob (IAM users the tests create) and sessions of roles alice
assumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from strongroom.crypto.envelope import Sealer
from strongroom.crypto.keys import Keyring, LocalMasterKey
from strongroom.domain.principal import Principal, root_principal
from strongroom.operations.context import Context
from strongroom.operations.iam.registry import IAM_OPERATIONS, STS_OPERATIONS
from strongroom.storage import migrate
from strongroom.storage.sql import SqlStore

ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = 1_750_000_000.0
ROOT = root_principal(ACCOUNT, "AKIAROOTTESTKEY00001")


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Iam:
    """Runs IAM and STS actions as one principal or another."""

    store: SqlStore
    sealer: Sealer
    clock: Clock = field(default_factory=Clock)

    def context(self, principal: Principal = ROOT) -> Context:
        return Context(
            store=self.store,
            sealer=self.sealer,
            account_id=ACCOUNT,
            region=REGION,
            principal=principal,
            clock=self.clock,
            token_key=b"k" * 32,
        )

    def __call__(self, action: str, principal: Principal = ROOT, **request: Any) -> Any:
        operation = IAM_OPERATIONS.get(action) or STS_OPERATIONS[action]
        return operation(self.context(principal), request)

    def user(self, name: str, **request: Any) -> Principal:
        """Create user ``name`` and return it as a caller (with a key of its own)."""
        user = self("CreateUser", UserName=name, **request)["User"]
        key = self("CreateAccessKey", UserName=name)["AccessKey"]
        return Principal(
            account_id=ACCOUNT,
            arn=user["Arn"],
            access_key_id=key["AccessKeyId"],
            user_name=name,
            user_id=user["UserId"],
        )

    def session(self, caller: Principal, role_arn: str, name: str = "s1") -> Principal:
        """Assume ``role_arn`` as ``caller``; the session as a caller."""
        out = self("AssumeRole", caller, RoleArn=role_arn, RoleSessionName=name)
        assumed = out["AssumedRoleUser"]
        return Principal(
            account_id=ACCOUNT,
            arn=assumed["Arn"],
            access_key_id=out["Credentials"]["AccessKeyId"],
            user_id=assumed["AssumedRoleId"],
            role_arn=role_arn,
            session_name=name,
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    sqlite_store = SqlStore.from_url(f"sqlite:///{tmp_path / 'iam.db'}")
    migrate.upgrade(sqlite_store.engine)
    yield sqlite_store
    sqlite_store.close()


@pytest.fixture
def iam(store: SqlStore) -> Iam:
    return Iam(store=store, sealer=Sealer(Keyring(LocalMasterKey.generate(), [])))
