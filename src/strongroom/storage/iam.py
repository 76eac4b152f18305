"""The IAM part of ``SqlTransaction`` (see ``storage.base`` for the contract).

Kept apart from ``sql.py``, whose statements serve the Secrets Manager hot paths: nothing
here runs on them. IAM data is small (users, roles and policies number in the hundreds),
so listings are plain keyset queries on the lower-cased name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from strongroom.storage import schema
from strongroom.storage.base import (
    AccessKeyRow,
    AlreadyExists,
    ConstraintViolation,
    IamRoleRow,
    IamUserRow,
    ManagedPolicyRow,
)
from strongroom.storage.execute import Executor, Result

_U = schema.iam_users
_R = schema.iam_roles
_P = schema.iam_policies
_PV = schema.iam_policy_versions
_IP = schema.iam_inline_policies
_A = schema.iam_attachments
_TG = schema.iam_tags
_K = schema.access_keys

_SESSION_ARN = re.compile(r"^arn:[^:]+:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")
_USER_ARN = re.compile(r"^arn:[^:]+:iam::\d{12}:user/.+$")


def _p(name: str) -> Any:
    return sa.bindparam(name)


_USER_FIELDS = [c for c in _U.columns if c.name != "name_key"]
_ROLE_FIELDS = [c for c in _R.columns if c.name != "name_key"]
_ATTACHED = (
    sa.select(_A.c.policy_id, sa.func.count().label("n")).group_by(_A.c.policy_id).subquery()
)
_POLICY_FIELDS = [
    *(c for c in _P.columns if c.name != "name_key"),
    sa.func.coalesce(_ATTACHED.c.n, 0).label("attachment_count"),
]
_POLICIES = sa.select(*_POLICY_FIELDS).outerjoin(_ATTACHED, _ATTACHED.c.policy_id == _P.c.policy_id)

USER_BY_NAME = sa.select(*_USER_FIELDS).where(
    _U.c.account_id == _p("account_id"), _U.c.name_key == _p("name_key")
)
USER_BY_ARN = sa.select(*_USER_FIELDS).where(_U.c.arn == _p("arn"))
ROLE_BY_NAME = sa.select(*_ROLE_FIELDS).where(
    _R.c.account_id == _p("account_id"), _R.c.name_key == _p("name_key")
)
POLICY_BY_ARN = _POLICIES.where(_P.c.arn == _p("arn"))
POLICY_VERSION = sa.select(_PV.c.document, _PV.c.created_at).where(
    _PV.c.policy_id == _p("policy_id"), _PV.c.version_id == _p("version_id")
)
KEYS_OF_USER = (
    sa.select(_K)
    .where(_K.c.user_id == _p("user_id"), _K.c.session_token_hash.is_(None))
    .order_by(_K.c.created_at, _K.c.access_key_id)
)
INLINE_POLICY = sa.select(_IP.c.document).where(
    _IP.c.owner_id == _p("owner_id"), _IP.c.name == _p("name")
)
INLINE_NAMES = sa.select(_IP.c.name).where(_IP.c.owner_id == _p("owner_id")).order_by(_IP.c.name)
INLINE_DOCUMENTS = (
    sa.select(_IP.c.document).where(_IP.c.owner_id == _p("owner_id")).order_by(_IP.c.name)
)
ATTACHED_POLICIES = (
    _POLICIES.join(_A, _A.c.policy_id == _P.c.policy_id)
    .where(_A.c.owner_id == _p("owner_id"))
    .order_by(_P.c.name_key)
)
ATTACHED_DOCUMENTS = (
    sa.select(_PV.c.document)
    .join(_P, sa.and_(_P.c.policy_id == _PV.c.policy_id, _P.c.default_version == _PV.c.version_id))
    .join(_A, _A.c.policy_id == _P.c.policy_id)
    .where(_A.c.owner_id == _p("owner_id"))
    .order_by(_P.c.name_key)
)
TAGS_OF = (
    sa.select(_TG.c.key, _TG.c.value)
    .where(_TG.c.owner_id == _p("owner_id"))
    .order_by(_TG.c.position)
)


def _user(row: Any) -> IamUserRow:
    return IamUserRow(**row._asdict())


def _role(row: Any) -> IamRoleRow:
    return IamRoleRow(**row._asdict())


def _policy(row: Any) -> ManagedPolicyRow:
    values = row._asdict()
    values["attachment_count"] = int(values["attachment_count"])
    return ManagedPolicyRow(**values)


def _access_key(row: Any) -> AccessKeyRow:
    values = row._asdict()
    values["sealed_secret"] = bytes(values["sealed_secret"])
    return AccessKeyRow(**values)


class IamQueries:
    """Mixed into ``SqlTransaction``: the IAM methods of the ``Transaction`` contract."""

    db: Executor

    def _iam_one(self, statement: Any, **params: Any) -> Any:
        return self.db.execute(statement, params, cache=True).first()

    def _iam_run(self, statement: Any, **params: Any) -> Result:
        return self.db.execute(statement, params, cache=True)

    def _insert_named(self, table: sa.Table, values: dict[str, Any]) -> None:
        values = {**values, "name_key": values["name"].lower()}
        try:
            with self.db.savepoint():
                self.db.execute(sa.insert(table).values(values))
        except ConstraintViolation as exc:
            raise AlreadyExists(values["name"]) from exc

    def _list_named(
        self, query: Any, table: sa.Table, path_prefix: str, after: str | None, limit: int
    ) -> list[Any]:
        # Path prefixes are plain text, not patterns: compare a substring, not LIKE.
        conditions = [sa.func.substr(table.c.path, 1, len(path_prefix)) == path_prefix]
        key: Any = table.c.name_key
        if self.db.dialect.name == "postgresql":
            key = key.collate("C")  # code-point order, as on SQLite (see SqlTransaction)
        if after is not None:
            conditions.append(key > after)
        return list(self.db.execute(query.where(*conditions).order_by(key).limit(limit)))

    # -- users -----------------------------------------------------------------------------
    def insert_iam_user(self, row: IamUserRow) -> None:
        self._insert_named(_U, {c.name: getattr(row, c.name) for c in _USER_FIELDS})

    def iam_user(self, account_id: str, name: str) -> IamUserRow | None:
        row = self._iam_one(USER_BY_NAME, account_id=account_id, name_key=name.lower())
        return None if row is None else _user(row)

    def iam_user_by_arn(self, arn: str) -> IamUserRow | None:
        row = self._iam_one(USER_BY_ARN, arn=arn)
        return None if row is None else _user(row)

    def list_iam_users(
        self, account_id: str, path_prefix: str, after: str | None, limit: int
    ) -> list[IamUserRow]:
        query = sa.select(*_USER_FIELDS).where(_U.c.account_id == account_id)
        return [_user(row) for row in self._list_named(query, _U, path_prefix, after, limit)]

    def delete_iam_user(self, user_id: str) -> None:
        self.db.execute(sa.delete(_TG).where(_TG.c.owner_id == user_id))
        self.db.execute(sa.delete(_U).where(_U.c.user_id == user_id))

    # -- roles -----------------------------------------------------------------------------
    def insert_iam_role(self, row: IamRoleRow) -> None:
        self._insert_named(_R, {c.name: getattr(row, c.name) for c in _ROLE_FIELDS})

    def iam_role(self, account_id: str, name: str) -> IamRoleRow | None:
        row = self._iam_one(ROLE_BY_NAME, account_id=account_id, name_key=name.lower())
        return None if row is None else _role(row)

    def list_iam_roles(
        self, account_id: str, path_prefix: str, after: str | None, limit: int
    ) -> list[IamRoleRow]:
        query = sa.select(*_ROLE_FIELDS).where(_R.c.account_id == account_id)
        return [_role(row) for row in self._list_named(query, _R, path_prefix, after, limit)]

    def delete_iam_role(self, role_id: str) -> None:
        self.db.execute(sa.delete(_TG).where(_TG.c.owner_id == role_id))
        self.db.execute(sa.delete(_R).where(_R.c.role_id == role_id))

    # -- access keys -------------------------------------------------------------------------
    def user_access_keys(self, user_id: str) -> list[AccessKeyRow]:
        return [_access_key(row) for row in self._iam_run(KEYS_OF_USER, user_id=user_id)]

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        self.db.execute(
            sa.update(_K).where(_K.c.access_key_id == access_key_id).values(status=status)
        )

    def delete_access_key(self, access_key_id: str) -> None:
        self.db.execute(sa.delete(_K).where(_K.c.access_key_id == access_key_id))

    def delete_expired_sessions(self, now: float) -> int:
        stmt = sa.delete(_K).where(_K.c.expires_at.is_not(None), _K.c.expires_at <= now)
        return self.db.execute(stmt).rowcount

    # -- inline policies -----------------------------------------------------------------------
    def put_inline_policy(self, owner_id: str, name: str, document: str) -> None:
        updated = self.db.execute(
            sa.update(_IP)
            .where(_IP.c.owner_id == owner_id, _IP.c.name == name)
            .values(document=document)
        )
        if not updated.rowcount:
            self.db.execute(sa.insert(_IP).values(owner_id=owner_id, name=name, document=document))

    def inline_policy(self, owner_id: str, name: str) -> str | None:
        row = self._iam_one(INLINE_POLICY, owner_id=owner_id, name=name)
        return None if row is None else str(row.document)

    def inline_policy_names(self, owner_id: str) -> list[str]:
        return [str(name) for name in self._iam_run(INLINE_NAMES, owner_id=owner_id).scalars()]

    def delete_inline_policy(self, owner_id: str, name: str) -> bool:
        stmt = sa.delete(_IP).where(_IP.c.owner_id == owner_id, _IP.c.name == name)
        return bool(self.db.execute(stmt).rowcount)

    # -- managed policies --------------------------------------------------------------------
    def insert_managed_policy(self, row: ManagedPolicyRow, document: str) -> None:
        fields = [c.name for c in _P.columns if c.name != "name_key"]
        self._insert_named(_P, {name: getattr(row, name) for name in fields})
        self.db.execute(
            sa.insert(_PV).values(
                policy_id=row.policy_id,
                version_id=row.default_version,
                document=document,
                created_at=row.created_at,
            )
        )

    def managed_policy(self, arn: str) -> ManagedPolicyRow | None:
        row = self._iam_one(POLICY_BY_ARN, arn=arn)
        return None if row is None else _policy(row)

    def list_managed_policies(
        self,
        account_id: str,
        path_prefix: str,
        *,
        only_attached: bool,
        after: str | None,
        limit: int,
    ) -> list[ManagedPolicyRow]:
        query = _POLICIES.where(_P.c.account_id == account_id)
        if only_attached:
            query = query.where(_ATTACHED.c.n > 0)
        return [_policy(row) for row in self._list_named(query, _P, path_prefix, after, limit)]

    def policy_version(self, policy_id: str, version_id: str) -> tuple[str, float] | None:
        row = self._iam_one(POLICY_VERSION, policy_id=policy_id, version_id=version_id)
        return None if row is None else (str(row.document), float(row.created_at))

    def delete_managed_policy(self, policy_id: str) -> None:
        # Children first: foreign-key cascades are not relied upon (SQLite needs a pragma).
        for table in (_PV, _A):
            self.db.execute(sa.delete(table).where(table.c.policy_id == policy_id))
        self.db.execute(sa.delete(_TG).where(_TG.c.owner_id == policy_id))
        self.db.execute(sa.delete(_P).where(_P.c.policy_id == policy_id))

    # -- attachments ---------------------------------------------------------------------------
    def attach_policy(self, owner_id: str, policy_id: str) -> None:
        exists = sa.select(_A.c.owner_id).where(
            _A.c.owner_id == owner_id, _A.c.policy_id == policy_id
        )
        if self.db.execute(exists).first() is None:
            self.db.execute(sa.insert(_A).values(owner_id=owner_id, policy_id=policy_id))

    def detach_policy(self, owner_id: str, policy_id: str) -> bool:
        stmt = sa.delete(_A).where(_A.c.owner_id == owner_id, _A.c.policy_id == policy_id)
        return bool(self.db.execute(stmt).rowcount)

    def attached_policies(self, owner_id: str) -> list[ManagedPolicyRow]:
        return [_policy(row) for row in self._iam_run(ATTACHED_POLICIES, owner_id=owner_id)]

    # -- tags ----------------------------------------------------------------------------------
    def iam_tags(self, owner_id: str) -> list[tuple[str, str]]:
        return [(key, value) for key, value in self._iam_run(TAGS_OF, owner_id=owner_id)]

    def set_iam_tags(self, owner_id: str, tags: Sequence[tuple[str, str]]) -> None:
        self.db.execute(sa.delete(_TG).where(_TG.c.owner_id == owner_id))
        self.db.insert_many(
            _TG,
            [
                {"owner_id": owner_id, "position": i, "key": k, "value": v}
                for i, (k, v) in enumerate(tags)
            ],
        )

    # -- what authorization needs ----------------------------------------------------------------
    def _owner_of(self, principal_arn: str, user_id: str | None) -> str | None:
        """The user or role id whose policies and tags apply to ``principal_arn``."""
        owner: str | None = None
        if _USER_ARN.match(principal_arn):
            user = self.iam_user_by_arn(principal_arn)
            owner = None if user is None else user.user_id
        elif match := _SESSION_ARN.match(principal_arn):
            role = self.iam_role(match["account"], match["role"])
            owner = None if role is None else role.role_id
        if owner is not None and user_id is not None and user_id.split(":")[0] != owner:
            return None  # deleted and created again since these credentials were issued
        return owner

    def identity_policies(self, principal_arn: str, user_id: str | None = None) -> list[str]:
        owner = self._owner_of(principal_arn, user_id)
        if owner is None:
            return []
        inline = self._iam_run(INLINE_DOCUMENTS, owner_id=owner).scalars()
        attached = self._iam_run(ATTACHED_DOCUMENTS, owner_id=owner).scalars()
        return [str(document) for document in (*inline, *attached)]

    def principal_tags(self, principal_arn: str) -> dict[str, str]:
        owner = self._owner_of(principal_arn, None)
        return {} if owner is None else dict(self.iam_tags(owner))
